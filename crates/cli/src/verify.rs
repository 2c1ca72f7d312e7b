//! `provenance verify`: check events and report every claim.
//!
//! The verification itself is [`provenance_verify`]'s pipeline (chunked batches on every
//! core, evidence, the best copy across relays, labels); this module turns the flags into its
//! evidence and options and hands it the inputs, and [`render`] and [`sink`] are the report
//! it fills: text or JSON Lines, the summary and the exit status.

mod job;
mod render;
mod sink;

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use provenance::commitment::Salt;
use provenance::event::{self, Limits};
use provenance::nip19;
use provenance::nostr::prelude::{Filter, Kind, Timestamp};
use provenance_gguf::Cache;
use provenance_gguf::resolve::StoreDirs;
use provenance_replay::EngineChoice;
use provenance_verify::source::read_capped;
use provenance_verify::{
    Evidence, ModelEvidence, Options, Pipeline, PromptEvidence, ReplayEvidence, error_report, trust,
};

use self::render::{Buffers, Rendered, Style};
use self::sink::Writer;
use crate::input::{self, Source};
use crate::output::warn;

/// Largest evidence file read (`--output`, `--prompt`): 256 MiB.
const MAX_EVIDENCE_BYTES: u64 = 256 << 20;

/// Verify provenance events: signature, id, record, tags, and any evidence given
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Events to check: nevent1.../note1.../nostr: URIs or hex ids (fetched from relays),
    /// event files (JSON or JSON Lines), directories of them, or "-" for stdin
    #[arg(value_name = "INPUT", required_unless_present_any = ["author", "since", "until"])]
    inputs: Vec<String>,
    /// Relay to fetch events from, besides the nevent's own relay hints (repeatable)
    #[arg(long = "relay", value_name = "URL")]
    relays: Vec<String>,
    /// Query the --relay relays for provenance events by this author (npub or hex), verifying
    /// them as they arrive
    #[arg(long, value_name = "NPUB", requires = "relays")]
    author: Option<String>,
    /// Query the --relay relays for provenance events created at or after this Unix time
    #[arg(long, value_name = "UNIX", requires = "relays")]
    since: Option<u64>,
    /// Query the --relay relays for provenance events created at or before this Unix time
    #[arg(long, value_name = "UNIX", requires = "relays")]
    until: Option<u64>,
    /// Seconds each relay has to answer
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    timeout: u64,
    /// The output bytes to check against the record ("-" for stdin)
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// A disclosed prompt to check against the commitment (needs --salt)
    #[arg(long, value_name = "FILE", requires = "salt")]
    prompt: Option<PathBuf>,
    /// The salt disclosed with the prompt (64 hex characters)
    #[arg(long, value_name = "HEX", requires = "prompt")]
    salt: Option<String>,
    /// The weights to check the record's digests against: a GGUF path or ollama:NAME[:TAG]
    /// (hashed once; the hash cache is used unless --no-cache)
    #[arg(long, value_name = "MODEL")]
    model: Option<String>,
    /// Weights that have the recorded digests, to name the tensors in which --model differs
    #[arg(long, value_name = "MODEL", requires = "model")]
    reference_model: Option<String>,
    /// Replay each record that has a replay section on this llama-server binary (it must be
    /// the recorded one), with --model, --prompt and --salt, and report the outcome as a
    /// generation.replay claim
    #[arg(long, value_name = "BIN", requires_all = ["model", "prompt"])]
    llama_server: Option<PathBuf>,
    /// Hash --model and --reference-model even if the cache has them, and store nothing
    #[arg(long)]
    no_cache: bool,
    /// A file of trusted signers, one per line: npub or hex, optionally preceded by a name
    /// pinned to it ("alice@example.com npub1..."), or a NIP-05 name alone
    /// ("alice@example.com", looked up when the run starts); # starts a comment
    #[arg(long, value_name = "FILE")]
    trust: Option<PathBuf>,
    /// Collect NIP-32 audit labels (kind 1985) about each event from the --relay relays
    #[arg(long, requires = "relays")]
    labels: bool,
    /// A file of trusted labellers, in the --trust format (implies --labels)
    #[arg(long, value_name = "FILE", requires = "relays")]
    trust_labellers: Option<PathBuf>,
    /// An attestation bundle or event (`provenance attest bundle`) for the records'
    /// attestation references, checked at each record's time (repeatable; docs/attest.md)
    #[arg(long, value_name = "FILE")]
    attestation: Vec<PathBuf>,
    /// With --attestation: an accepted launch measurement (SEV-SNP) or MRTD (TDX), hex
    /// (repeatable; without one the TEE claim stays unchecked)
    #[arg(long, value_name = "HEX", requires = "attestation")]
    attest_measurement: Vec<String>,
    /// With --attestation: the longest an attestation may precede a record, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 86_400)]
    attest_max_age: u64,
    /// With --attestation: trust this SEV-SNP ARK (PEM) instead of AMD's (with --attest-snp-ask)
    #[arg(long, value_name = "FILE", requires_all = ["attestation", "attest_snp_ask"])]
    attest_snp_root: Option<PathBuf>,
    /// The ASK (PEM) under --attest-snp-root
    #[arg(long, value_name = "FILE", requires = "attest_snp_root")]
    attest_snp_ask: Option<PathBuf>,
    /// Print only what did not verify (failures and errors) and the summary
    #[arg(long, short)]
    quiet: bool,
    /// Threads for verification [default: all cores]
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Print JSON Lines instead of text
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    if let Some(jobs) = args.jobs {
        rayon::ThreadPoolBuilder::new()
            .num_threads(jobs.max(1))
            .build_global()
            .context("cannot start the verification threads")?;
    }
    let timeout = Duration::from_secs(args.timeout);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // A NIP-90 job result is checked, then its provenance event with its content as output.
    let job = match args.inputs.as_slice() {
        [one] => match job::detect(one, &args.relays, timeout, &runtime) {
            Ok(found) => found,
            Err(refused) => {
                let (message, code) = refused.into_parts();
                warn(&message);
                return Ok(ExitCode::from(code));
            }
        },
        _ => None,
    };
    let mut evidence = Evidence::default();
    evidence.output = args
        .output
        .as_ref()
        .map(|p| read_capped(p, MAX_EVIDENCE_BYTES))
        .transpose()?;
    if let Some(job) = &job {
        if evidence.output.is_none() {
            evidence.output.clone_from(&job.result.output);
        }
    }
    evidence.prompt = match (&args.prompt, &args.salt) {
        (Some(p), Some(s)) => Some(PromptEvidence {
            prompt: read_capped(p, MAX_EVIDENCE_BYTES)?,
            salt: s
                .parse::<Salt>()
                .map_err(|e| anyhow::anyhow!("--salt {s:?}: {e}"))?,
        }),
        _ => None,
    };
    evidence.trusted = args
        .trust
        .as_deref()
        .map(|p| trust::load(p, timeout))
        .transpose()?;
    if let Some(model) = &args.model {
        let cache = if args.no_cache {
            None
        } else {
            Cache::default_dir().map(Cache::new)
        };
        let json = args.json;
        evidence.model = Some(ModelEvidence::identify(
            model,
            args.reference_model.as_deref(),
            &StoreDirs::from_env(),
            cache.as_ref(),
            &mut |input| {
                if !json {
                    warn(&format!("hashing {input}"));
                }
            },
        )?);
    }
    if let (Some(binary), Some(model)) = (&args.llama_server, &args.model) {
        let resolved = provenance_gguf::resolve::resolve(model, &StoreDirs::from_env())
            .map_err(|e| anyhow::anyhow!("--model {model}: {e}"))?;
        evidence.replay = Some(ReplayEvidence {
            model: resolved.path,
            engine: EngineChoice::Binary(binary.clone()),
        });
    }
    if !args.attestation.is_empty() {
        evidence.attestation = Some(crate::attest::evidence(
            &args.attestation,
            &args.attest_measurement,
            args.attest_max_age,
            args.attest_snp_root
                .as_deref()
                .zip(args.attest_snp_ask.as_deref()),
        )?);
    }
    let labellers = args
        .trust_labellers
        .as_deref()
        .map(|p| trust::load(p, timeout))
        .transpose()?;
    let mut options = Options::default();
    options.limits = Limits::default();
    options.relays = args.relays.clone();
    options.relay_options = provenance_relay::Options {
        eose_timeout: timeout,
        ..provenance_relay::Options::default()
    };
    options.labels = args.labels || labellers.is_some();
    options.labellers = labellers;
    let pipeline = Pipeline::new(evidence, options);
    let style = Style {
        json: args.json,
        quiet: args.quiet,
    };
    let buffers = Buffers::default();
    let new_report = |items| Rendered::new(style, items, &buffers);
    let show_progress = !args.json && io::stderr().is_terminal();
    let mut sink = Writer::new(args.json, show_progress, &buffers);
    sink.quiet = args.quiet;
    if let Some(job) = &job {
        warn(&job::describe(job));
        runtime.block_on(pipeline.check_remote(
            &mut sink,
            &new_report,
            &format!("{} (its provenance event)", job.input),
            job.result.provenance,
            Some(job.result.event.pubkey),
            &job.relays,
        ))?;
        return sink.finish();
    }
    for input in &args.inputs {
        match input::classify(input) {
            Err(message) => {
                let report = error_report(&new_report, input::redact(input), &message);
                sink.write_one(report)?;
            }
            Ok(Source::Files(paths)) => {
                pipeline.verify_files(&runtime, &mut sink, &new_report, paths)?;
            }
            Ok(Source::Remote { id, author, relays }) => {
                let mut all = relays;
                all.extend(args.relays.iter().cloned());
                all.dedup();
                if all.is_empty() {
                    let message = "no relay to ask: the input has no relay hints; pass --relay URL";
                    sink.write_one(error_report(&new_report, input, message))?;
                    continue;
                }
                runtime.block_on(pipeline.check_remote(
                    &mut sink,
                    &new_report,
                    input,
                    id,
                    author,
                    &all,
                ))?;
            }
        }
    }
    if args.author.is_some() || args.since.is_some() || args.until.is_some() {
        let mut filter = Filter::new().kind(Kind::Custom(event::KIND));
        if let Some(author) = &args.author {
            let author =
                nip19::parse_public_key(author).map_err(|e| anyhow::anyhow!("--author: {e}"))?;
            filter = filter.author(author);
        }
        if let Some(since) = args.since {
            filter = filter.since(Timestamp::from_secs(since));
        }
        if let Some(until) = args.until {
            filter = filter.until(Timestamp::from_secs(until));
        }
        let end = runtime.block_on(pipeline.check_query(&mut sink, &new_report, &filter))?;
        if end.failed_relays == 0 && end.held == 0 && sink.summary.events == 0 {
            warn("the relays returned no provenance events for the query");
        }
    }
    sink.finish()
}
