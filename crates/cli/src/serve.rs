//! `provenance serve`: a signing reverse proxy in front of a model server.
//!
//! Argument parsing only: the server is `provenance_signer::server`. This file reads the
//! options (command line over `--config`), loads the key, hashes the model once, and hands
//! everything to [`Server`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use http::Uri;
use provenance::nostr::nips::nip19::ToBech32;
use provenance::record::Model;
use provenance_gguf::Cache;
use provenance_gguf::resolve::{self, IdentifyError, StoreDirs};
use provenance_signer::Durability;
use provenance_signer::nip98::Allow;
use provenance_signer::server::lightning::LightningOptions;
use provenance_signer::server::pay::Payments;
use provenance_signer::server::{Limits, Server};

use crate::keyfile;

mod options;

/// Run a signing reverse proxy in front of a model server (llama.cpp, Ollama, OpenAI-compatible)
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The model server, e.g. http://127.0.0.1:8080
    #[arg(long, value_name = "URL", required_unless_present = "config")]
    upstream: Option<String>,
    /// The weights it serves: a GGUF path or ollama:NAME (hashed once at start-up)
    #[arg(
        long,
        value_name = "PATH|ollama:NAME",
        required_unless_present = "config"
    )]
    model: Option<String>,
    /// The name written to records [default: the file name without .gguf, or the Ollama name]
    #[arg(long, value_name = "NAME")]
    model_name: Option<String>,
    /// Secret key file [default: ~/.config/provenance/key.nsec]
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Address to listen on (loopback by default)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8088")]
    listen: SocketAddr,
    /// Event database [default: ~/.local/share/provenance/events.sqlite]
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
    /// Also put the event in the response: a JSON field, or a last SSE / NDJSON message
    #[arg(long)]
    inline: bool,
    /// Publish the output text in the record (off: the record carries hashes only)
    #[arg(long)]
    include_text: bool,
    /// Leave `output.fingerprints` out of records (they let a copied paragraph be looked up,
    /// and reveal which runs of words the answer holds to whoever can guess them)
    #[arg(long)]
    no_fingerprints: bool,
    /// The engine binary, to record its SHA-256
    #[arg(long, value_name = "FILE")]
    engine_binary: Option<PathBuf>,
    /// fsync every event (full, survives power loss) or rely on the OS (process, survives kill -9)
    #[arg(long, value_name = "MODE", default_value = "full", value_parser = ["full", "process"])]
    durability: String,
    /// Largest request body accepted, in bytes
    #[arg(long, value_name = "BYTES", default_value_t = 8 * 1024 * 1024)]
    max_request_bytes: usize,
    /// Largest answer signed, in bytes: a larger whole answer gets 502, a longer stream is
    /// passed on unsigned
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024 * 1024)]
    max_response_bytes: usize,
    /// Also publish every event to this relay (repeatable), through a durable outbox
    #[arg(long = "relay", value_name = "URL")]
    relays: Vec<String>,
    /// Require NIP-98 auth from the keys in FILE (npub or hex, one per line)
    #[arg(long, value_name = "FILE", conflicts_with = "auth_any")]
    auth_allow: Option<PathBuf>,
    /// Require NIP-98 auth from any key (callers are identified, not restricted)
    #[arg(long)]
    auth_any: bool,
    /// Write the authenticated caller's public key into records (off: privacy)
    #[arg(long)]
    record_caller: bool,
    /// The URL clients reach this server at, which NIP-98 events must name [default: http://LISTEN]
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Generation requests sent to the upstream at once; more wait in the proxy, in order of
    /// arrival (0: no limit) [default: one more than llama.cpp's slot count from /props, else
    /// no limit]
    #[arg(long, value_name = "N")]
    upstream_concurrency: Option<usize>,
    /// Connections open at once; more wait to be accepted
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_connections: usize,
    /// Seconds a client has to send a request head; also how long an idle keep-alive
    /// connection stays open
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    header_timeout: u64,
    /// Seconds a client has to send a whole request body, from its head
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    body_timeout: u64,
    /// Make llama.cpp /completion answers replayable: forward them with the prompt cache off
    /// and token ids asked for (docs/replay.md)
    #[arg(long)]
    replayable: bool,
    /// An engine setting the engine does not report, for the records and replay (repeatable):
    /// batch=N, ubatch=N, flash_attn=on|off, repack=true|false, threads=N
    #[arg(long = "engine-param", value_name = "KEY=VALUE", value_parser = options::engine_param)]
    engine_params: Vec<(String, serde_json::Value)>,
    /// At start, take TEE evidence binding the signing key through configfs-tsm (sev-snp or
    /// tdx), write the attestation event to --attest-out, and reference it in every record
    /// (docs/attest.md)
    #[arg(long, value_name = "PLATFORM")]
    attest: Option<String>,
    /// The configfs-tsm report directory of --attest
    #[arg(long, value_name = "DIR", default_value = provenance_attest::configfs::DEFAULT_ROOT)]
    attest_tsm: PathBuf,
    /// SEV-SNP: the VCEK certificate (DER) the attestation event carries
    #[arg(long, value_name = "FILE", requires = "attest")]
    attest_vcek: Option<PathBuf>,
    /// TDX: the collateral (JSON) the attestation event carries
    #[arg(long, value_name = "FILE", requires = "attest")]
    attest_collateral: Option<PathBuf>,
    /// Where --attest writes the attestation event [default: attestation.json beside --store]
    #[arg(long, value_name = "FILE", requires = "attest")]
    attest_out: Option<PathBuf>,
    /// Answer NIP-17 direct messages to the signing key, read from and written to this relay
    /// (repeatable); each answer goes through the signing path and carries its event
    /// (docs/dm.md)
    #[arg(long = "dm-relay", value_name = "URL")]
    dm_relays: Vec<String>,
    /// Direct messages: answer only the keys in FILE (npub or hex, one per line)
    #[arg(
        long,
        value_name = "FILE",
        requires = "dm_relays",
        conflicts_with = "dm_any"
    )]
    dm_allow: Option<PathBuf>,
    /// Direct messages: answer any key
    #[arg(long, requires = "dm_relays")]
    dm_any: bool,
    /// Direct messages: say nothing to refused senders (by default they are told why)
    #[arg(long, requires = "dm_relays")]
    dm_silent: bool,
    /// Direct messages: messages a minute per sender
    #[arg(long, value_name = "N", default_value_t = 10, requires = "dm_relays")]
    dm_rate: u32,
    /// Direct messages: the most tokens of one answer
    #[arg(long, value_name = "N", default_value_t = 512, requires = "dm_relays")]
    dm_max_tokens: u32,
    /// Direct messages: what was handled [default: dm.sqlite beside --store]
    #[arg(long, value_name = "FILE", requires = "dm_relays")]
    dm_inbox: Option<PathBuf>,
    /// Also answer NIP-90 text-generation jobs (kind 5050) addressed to the key on the
    /// --dm-relay relays, with kind 7000 feedback and kind 6050 results naming their
    /// provenance event, and announce them (NIP-89 kind 31990); --dm-allow/--dm-any apply
    #[arg(long, requires = "dm_relays")]
    dm_jobs: bool,
    /// Direct messages: the profile name published with the key (kind 0)
    #[arg(long, value_name = "NAME", requires = "dm_relays")]
    dm_name: Option<String>,
    /// Charge for generations (repeatable): `[ROUTE] PART = AMOUNT`, PART one of request,
    /// output_1k, input_1k, AMOUNT in sat or msat, e.g. "output_1k = 50 sat" or
    /// "/v1/chat/completions request = 1 sat" (docs/pay.md)
    #[arg(long = "price", value_name = "PRICE")]
    prices: Vec<String>,
    /// With --price: a Cashu mint whose tokens are taken (repeatable; the allow list)
    #[arg(long = "cashu-mint", value_name = "URL")]
    cashu_mints: Vec<String>,
    /// With --price: the wallet and balances [default: pay.sqlite beside --store]
    #[arg(long, value_name = "FILE")]
    pay_db: Option<PathBuf>,
    /// With --price: output tokens reserved for a request that names no max_tokens
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pay_default_max_tokens: u64,
    /// With --price and --relay: publish the prices at start as an addressable event signed by
    /// the key (NIP-78, kind 30078, d tag provenance/pricing), through the relay outbox
    #[arg(long, requires_all = ["prices", "relays"])]
    publish_prices: bool,
    /// With --price and --relay: publish the signed receipt of every token given out (change,
    /// refunds) through the relay outbox; without it, receipts go only to the customer
    #[arg(long, requires_all = ["prices", "relays"])]
    publish_receipts: bool,
    /// With --price: Lightning top-ups and zaps to the model through the Nostr Wallet Connect
    /// URI (NIP-47) in FILE, which must be mode 0600: it holds the connection's secret
    /// (docs/pay.md)
    #[arg(long, value_name = "FILE", requires = "prices")]
    nwc_file: Option<PathBuf>,
    /// With --nwc-file: the name zaps are paid to (`/.well-known/lnurlp/NAME`)
    #[arg(long, value_name = "NAME", default_value = "model")]
    zap_name: String,
    /// Read options from FILE: one `name = value` per line (`relay` may repeat; `#` comments);
    /// options given on the command line win
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

pub(crate) fn run(args: Args) -> Result<std::process::ExitCode> {
    let args = options::with_config(args)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(serve(args))?;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn serve(args: Args) -> Result<()> {
    let (Some(upstream), Some(model_arg)) = (&args.upstream, &args.model) else {
        bail!("--upstream and --model are needed (on the command line or in --config)");
    };
    let upstream: Uri = upstream
        .trim_end_matches('/')
        .parse()
        .with_context(|| format!("--upstream {upstream}: not a URL"))?;
    if upstream.scheme_str() != Some("http") {
        bail!("--upstream must be an http:// URL (found {upstream})");
    }
    refuse_self(&upstream, args.listen).await?;
    let key_path = match &args.key {
        Some(path) => path.clone(),
        None => keyfile::default_path()?,
    };
    let keys = keyfile::load(&key_path)?;
    let npub = keys.public_key().to_bech32().unwrap_or_default();
    let model = identify(model_arg, args.model_name.as_deref())?;
    let store = match &args.store {
        Some(path) => path.clone(),
        None => default_store()?,
    };
    let durability = if args.durability == "process" {
        Durability::Process
    } else {
        Durability::Full
    };
    let auth = match (&args.auth_allow, args.auth_any) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --auth-allow {}", path.display()))?;
            let allow = Allow::parse_list(&text)
                .with_context(|| format!("--auth-allow {}", path.display()))?;
            Some(allow)
        }
        (None, true) => Some(Allow::Any),
        (None, false) => None,
    };
    let attested = match &args.attest {
        Some(platform) => {
            let out = args.attest_out.clone().unwrap_or_else(|| {
                store
                    .parent()
                    .unwrap_or(std::path::Path::new("."))
                    .join("attestation.json")
            });
            let taken = crate::attest::at_start(
                platform,
                &args.attest_tsm,
                args.attest_vcek.as_deref(),
                args.attest_collateral.as_deref(),
                &keys,
                &out,
            )?;
            Some((taken, out))
        }
        None => None,
    };
    let dm = dm_gate(&args)?;
    let (payments, pay_notes) = payments(&args, &store, &keys).await?;
    let dm_keys = keys.clone();
    let price_keys = keys.clone();
    crate::fdlimit::raise();
    let server = Server::builder(keys, model.clone(), upstream.clone(), store.clone())
        .listen(args.listen)
        .durability(durability)
        .relays(args.relays.clone())
        .engine_binary(args.engine_binary)
        .engine_params(args.engine_params.into_iter().collect())
        .replayable(args.replayable)
        .upstream_concurrency(args.upstream_concurrency)
        .auth(auth)
        .public_url(args.public_url)
        .max_request_bytes(args.max_request_bytes)
        .max_response_bytes(args.max_response_bytes)
        .limits(Limits {
            max_connections: args.max_connections,
            header_timeout: Duration::from_secs(args.header_timeout),
            body_timeout: Duration::from_secs(args.body_timeout),
        })
        .inline(args.inline)
        .include_text(args.include_text)
        .fingerprints(!args.no_fingerprints)
        .record_caller(args.record_caller)
        .attestations(attested.iter().map(|(r, _)| r.clone()).collect())
        .payments(payments.clone())
        .bind()
        .await?;
    let runtime = &server.engine().runtime;
    crate::output::warn(&format!(
        "serving on http://{}, signing as {npub}, model {} ({}), upstream {upstream} ({} {}), events in {}",
        server.local_addr(),
        model.name,
        model
            .sha256
            .map_or_else(|| "digest unknown".to_owned(), |d| format!("sha256 {d}")),
        runtime.engine,
        runtime.version.as_deref().unwrap_or("version unknown"),
        store.display(),
    ));
    if let Some((r, out)) = &attested {
        crate::output::warn(&format!(
            "attested ({}): evidence sha256 {}, attestation event {} written to {}; every record references it",
            r.kind,
            r.sha256,
            r.uri.as_deref().unwrap_or_default(),
            out.display()
        ));
    }
    let engine = server.engine();
    if let Some(why) = &engine.unreachable {
        crate::output::warn(&format!(
            "the upstream {upstream} does not answer ({why}); serving anyway: requests get 502 until it is up"
        ));
    }
    if model_arg.starts_with("ollama:")
        && engine.unreachable.is_none()
        && runtime.engine != "ollama"
    {
        crate::output::warn(&format!(
            "--model {model_arg} names an Ollama model, but the upstream {upstream} is {}, not Ollama",
            runtime.engine
        ));
    }
    for note in &engine.notes {
        crate::output::warn(note);
    }
    for note in &pay_notes {
        crate::output::warn(note);
    }
    if let Some(payments) = &payments {
        crate::output::warn(&format!(
            "charging for generations: {} (routes: {}); Cashu from {}",
            payments.prices.default,
            payments.prices.routes.len(),
            payments.wallet.mints().join(", ")
        ));
        let published = payments
            .publish_through(
                server.signer(),
                &price_keys,
                args.publish_receipts,
                args.publish_prices,
            )
            .map_err(|e| anyhow::anyhow!("--publish-prices: {e}"))?;
        if let Some(event) = published {
            crate::output::warn(&format!(
                "publishing the prices as event {} (kind 30078, d provenance/pricing) to {}",
                event.id.to_hex(),
                args.relays.join(", ")
            ));
        }
    }
    if let Some(gate) = dm {
        let inbox = args.dm_inbox.clone().unwrap_or_else(|| {
            store
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join("dm.sqlite")
        });
        let mut config = provenance_agent::Config::new(args.dm_relays.clone(), inbox.clone());
        config.per_minute = args.dm_rate;
        config.burst = args.dm_rate.clamp(1, 5);
        config.jobs = args.dm_jobs;
        if args.dm_silent {
            config.refusal = provenance_agent::Refusal::Silent;
        }
        let name = args.dm_name.clone().unwrap_or_else(|| model.name.clone());
        let meter = payments
            .clone()
            .map(|p| p as std::sync::Arc<dyn provenance_agent::Meter>);
        let agent = provenance_agent::Agent::beside(
            &server,
            dm_keys,
            gate,
            meter,
            config,
            &name,
            args.dm_max_tokens,
        )
        .with_context(|| format!("--dm-inbox {}", inbox.display()))?;
        crate::output::warn(&format!(
            "answering direct messages{} to {npub} on {}, handled messages in {}",
            if args.dm_jobs { " and NIP-90 jobs" } else { "" },
            args.dm_relays.join(", "),
            inbox.display()
        ));
        tokio::spawn(agent.run(std::future::pending()));
    }
    server
        .run(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("server failed")
}

/// The payments of `--price`: the prices, the wallet and the ledger, with what a crash left
/// open settled (swaps from the mint's record, reservations refunded), and the lines that say
/// what was settled (printed after the server's first line).
async fn payments(
    args: &Args,
    store: &std::path::Path,
    keys: &provenance::Keys,
) -> Result<(Option<std::sync::Arc<Payments>>, Vec<String>)> {
    if args.prices.is_empty() {
        if !args.cashu_mints.is_empty() {
            bail!("--cashu-mint needs --price: nothing is charged without a price");
        }
        return Ok((None, Vec::new()));
    }
    if args.cashu_mints.is_empty() {
        bail!("--price needs --cashu-mint URL: the mints whose tokens are taken");
    }
    let path = args.pay_db.clone().unwrap_or_else(|| {
        store
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join("pay.sqlite")
    });
    let (mut payments, notes) = Payments::open(&args.prices, &args.cashu_mints, &path)
        .await
        .map_err(|e| anyhow::anyhow!("--price/--cashu-mint/--pay-db: {e}"))?;
    payments.default_max_tokens = args.pay_default_max_tokens;
    payments.max_request_bytes = args.max_request_bytes;
    payments.max_response_bytes = args.max_response_bytes;
    let mut notes = notes;
    payments.receipts = Some(provenance_signer::server::pay::Receipts::new(keys.clone()));
    if let Some(file) = &args.nwc_file {
        let uri = crate::keyfile::read_secret_file(file, "--nwc-file")?;
        let options = LightningOptions {
            name: args.zap_name.clone(),
            public_url: args.public_url.clone(),
            ..LightningOptions::default()
        };
        let note = payments
            .add_lightning(&uri, &path, keys.clone(), options)
            .await
            .map_err(|e| anyhow::anyhow!("--nwc-file {}: {e}", file.display()))?;
        notes.push(note);
    }
    Ok((Some(std::sync::Arc::new(payments)), notes))
}

/// Who may write to the model by direct message: `--dm-allow FILE` or `--dm-any`; with
/// `--dm-relay` and neither, an error (answering every key by default would give the model
/// away to strangers).
fn dm_gate(args: &Args) -> Result<Option<std::sync::Arc<dyn provenance_agent::Gate>>> {
    if args.dm_relays.is_empty() {
        return Ok(None);
    }
    let allow = match (&args.dm_allow, args.dm_any) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --dm-allow {}", path.display()))?;
            Allow::parse_list(&text).with_context(|| format!("--dm-allow {}", path.display()))?
        }
        (None, true) => Allow::Any,
        (None, false) => {
            bail!("--dm-relay needs --dm-allow FILE or --dm-any: who may write to the model")
        }
    };
    Ok(Some(std::sync::Arc::new(allow)))
}

/// Hashes the weights once (through the digest cache) into the record's model identity: the
/// one resolve, hash and store check the verifier uses too.
fn identify(model: &str, name: Option<&str>) -> Result<Model> {
    let cache = Cache::new(
        Cache::default_dir().unwrap_or_else(|| std::env::temp_dir().join("provenance-gguf")),
    );
    let mut hashing = None;
    let identified = resolve::identify(model, &StoreDirs::from_env(), Some(&cache), &mut |r| {
        hashing = Some(r.path.clone());
    });
    let (resolved, identity) = match identified {
        Ok(found) => found,
        Err(e @ IdentifyError::Hash(_)) => {
            let path = hashing.unwrap_or_else(|| PathBuf::from(model));
            return Err(anyhow::Error::new(e).context(format!("cannot hash {}", path.display())));
        }
        Err(e) => return Err(e.into()),
    };
    let default_name = match model.strip_prefix("ollama:") {
        Some(rest) => rest.to_owned(),
        None => resolved
            .path
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".gguf").to_owned())
            .unwrap_or_else(|| model.to_owned()),
    };
    let summary = &identity.summary;
    Ok(Model {
        name: name.map_or(default_name, str::to_owned),
        sha256: Some(identity.sha256),
        blake3: Some(identity.blake3),
        tensor_root: Some(identity.tensor_root),
        bytes: Some(identity.size),
        architecture: summary.architecture.clone(),
        quantization: summary.file_type_name.clone(),
        parameters: Some(summary.parameter_count),
        tokenizer_sha256: summary.vocabulary,
        chat_template_sha256: summary.chat_template,
    })
}

/// Refuses an upstream that is this server's own listening address: every request would be
/// forwarded to itself until the descriptors run out. The upstream's host is resolved; an
/// address counts as ours when it is the listening address, or when listening on all
/// addresses (`0.0.0.0`, `::`) and it is one of this machine's (it can be bound).
async fn refuse_self(upstream: &Uri, listen: SocketAddr) -> Result<()> {
    let (Some(host), port) = (upstream.host(), upstream.port_u16().unwrap_or(80)) else {
        return Ok(());
    };
    if listen.port() == 0 || port != listen.port() {
        return Ok(());
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    // A name that does not resolve is the probe's to report.
    let Ok(resolved) = tokio::net::lookup_host((host, port)).await else {
        return Ok(());
    };
    for address in resolved {
        let ip = address.ip();
        let ours = ip == listen.ip()
            || (listen.ip().is_unspecified()
                && (ip.is_ipv4() == listen.is_ipv4() || listen.is_ipv6())
                && (ip.is_unspecified() || std::net::UdpSocket::bind((ip, 0)).is_ok()));
        if ours {
            bail!(
                "--upstream {upstream} is this server's own address ({listen}): it would forward every request to itself"
            );
        }
    }
    Ok(())
}

fn default_store() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".local").join("share"),
            None => bail!("neither XDG_DATA_HOME nor HOME is set; pass --store FILE"),
        },
    };
    Ok(base.join("provenance").join("events.sqlite"))
}
