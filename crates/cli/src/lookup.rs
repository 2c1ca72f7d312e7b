//! `provenance lookup`: the "was this AI-generated?" index and its HTTP API.

use std::io::BufReader;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use provenance::{PublicKey, nip19};
use provenance_lookup::http::{self, Config};
use provenance_lookup::ingest::{self, IngestReport};
use provenance_lookup::{Index, TrustList};

use crate::output::{self, Status};

/// How long each NIP-05 name of a --trust list has to resolve.
const NIP05_TIMEOUT: Duration = Duration::from_secs(10);

/// Index provenance events and answer "was this text produced by a model that signs its
/// output?" over HTTP
#[derive(Parser, Debug)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: LookupCommand,
}

#[derive(Subcommand, Debug)]
enum LookupCommand {
    Serve(ServeArgs),
    Ingest(IngestArgs),
}

/// Serve the lookup API (POST /v1/lookup, GET /v1/events/{id}, GET /healthz), following
/// relays for new events
#[derive(Parser, Debug)]
struct ServeArgs {
    /// The index database (SQLite; created if missing)
    #[arg(long, value_name = "FILE")]
    db: PathBuf,
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// Relay to follow for provenance events (repeatable)
    #[arg(long = "relay", value_name = "URL")]
    relays: Vec<String>,
    /// Only index events by this author, npub or hex (repeatable; default: all authors)
    #[arg(long = "author", value_name = "NPUB", requires = "relays")]
    authors: Vec<String>,
    /// Follow this `provenance serve` event store (its SQLite file, read-only): index its
    /// new events every --poll seconds
    #[arg(long, value_name = "FILE")]
    signer_db: Option<PathBuf>,
    /// Seconds between relay or signer store queries
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    poll: u64,
    /// Trusted signers: npub or hex, one per line, optionally preceded by a name; # comments
    #[arg(long, value_name = "FILE")]
    trust: Option<PathBuf>,
    /// CORS origin allowed to call the API: exact, or a prefix ending in * (repeatable;
    /// default: chrome-extension://* and moz-extension://*)
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// Largest request body in bytes
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    body_limit: usize,
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
    /// Requests a client IP may make in a burst
    #[arg(long, value_name = "N", default_value_t = 30)]
    rate_burst: u32,
    /// Requests per second a client IP regains
    #[arg(long, value_name = "N", default_value_t = 5.0)]
    rate_per_second: f64,
}

/// Verify and index events from JSON Lines files (one event per line; - for stdin) or from
/// the event store of `provenance serve`
#[derive(Parser, Debug)]
struct IngestArgs {
    /// The index database (SQLite; created if missing)
    #[arg(long, value_name = "FILE")]
    db: PathBuf,
    /// The event store of `provenance serve` (its SQLite file, opened read-only): index the
    /// events not read by an earlier run
    #[arg(long, value_name = "FILE", required_unless_present = "files")]
    signer_db: Option<PathBuf>,
    /// Memory in MiB for index keys written sorted at the end (and whenever it is full);
    /// more means fewer, larger writes on a big ingest
    #[arg(long, value_name = "MIB", default_value_t = 512)]
    memory: usize,
    /// Bytes of event JSON after which an ingest batch (one transaction) ends; batches also
    /// end at 4,096 events. Bounds the events held in memory whatever their size
    #[arg(long, value_name = "BYTES", default_value_t = ingest::BATCH_BYTES)]
    batch_bytes: usize,
    /// JSON Lines files of events
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
}

pub(crate) fn run(args: Args) -> Result<std::process::ExitCode> {
    match args.command {
        LookupCommand::Serve(args) => serve(args),
        LookupCommand::Ingest(args) => ingest_files(args),
    }
}

fn open(db: &Path) -> Result<Index> {
    Index::open(db).with_context(|| format!("cannot open the index {}", db.display()))
}

fn ingest_files(args: IngestArgs) -> Result<std::process::ExitCode> {
    let mut index = open(&args.db)?;
    // About 16 bytes a key in memory.
    index.set_pending_limit(args.memory.max(1) << 16);
    let mut status = Status::default();
    let limits = ingest::BatchLimits {
        bytes: args.batch_bytes,
        ..ingest::BatchLimits::default()
    };
    if let Some(store) = &args.signer_db {
        let started = std::time::Instant::now();
        let report = ingest::ingest_signer_db_with(&mut index, store, limits)
            .with_context(|| format!("ingesting {}", store.display()))?;
        print_report(&store.display().to_string(), &report, started.elapsed());
        if report.rejected > 0 {
            status.failed();
        }
    }
    for file in &args.files {
        let started = std::time::Instant::now();
        let report = if file.as_os_str() == "-" {
            ingest::ingest_jsonl_with(&mut index, std::io::stdin().lock(), limits)
        } else {
            let f = std::fs::File::open(file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            ingest::ingest_jsonl_with(&mut index, BufReader::with_capacity(1 << 20, f), limits)
        }
        .with_context(|| format!("ingesting {}", file.display()))?;
        print_report(&file.display().to_string(), &report, started.elapsed());
        if report.rejected > 0 {
            status.failed();
        }
    }
    Ok(status.code())
}

/// Prints one line per ingest run (and the reasons for rejections). A closed standard output
/// must not stop a server that follows relays or a signer store, so write errors are ignored
/// (`println!` would panic on them).
fn print_report(source: &str, report: &IngestReport, took: Duration) {
    use std::io::Write as _;
    let seen = report.indexed + report.duplicate + report.rejected;
    let _ = writeln!(
        std::io::stdout().lock(),
        "{source}: {} indexed, {} already indexed, {} rejected ({seen} in {:.1} s, {:.0}/s, {} batch{})",
        report.indexed,
        report.duplicate,
        report.rejected,
        took.as_secs_f64(),
        seen as f64 / took.as_secs_f64().max(1e-9),
        report.batches,
        if report.batches == 1 { "" } else { "es" }
    );
    for reason in &report.reasons {
        output::warn(&format!("{source}: rejected {reason}"));
    }
}

fn parse_key(s: &str) -> Result<PublicKey> {
    nip19::parse_public_key(s).with_context(|| format!("{s} is not a public key"))
}

fn serve(args: ServeArgs) -> Result<std::process::ExitCode> {
    let trust = match &args.trust {
        None => TrustList::default(),
        Some(path) => {
            // The verifier's trust-list format, NIP-05 names included (looked up now).
            let list = provenance_verify::trust::load(path, NIP05_TIMEOUT)?;
            TrustList::from_keys(list.keys().to_vec())
        }
    };
    let authors = args
        .authors
        .iter()
        .map(|a| parse_key(a))
        .collect::<Result<Vec<_>>>()?;
    let mut config = Config {
        body_limit: args.body_limit,
        rate_burst: args.rate_burst.max(1),
        rate_per_second: args.rate_per_second,
        ..Config::default()
    };
    if !(config.rate_per_second.is_finite() && config.rate_per_second > 0.0) {
        bail!("--rate-per-second must be a positive number");
    }
    if !args.allow_origins.is_empty() {
        config.allowed_origins = args.allow_origins.clone();
    }
    let index = Arc::new(Mutex::new(open(&args.db)?));
    crate::fdlimit::raise();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        if !args.relays.is_empty() {
            tokio::spawn(follow(
                index.clone(),
                args.relays.clone(),
                authors,
                args.poll,
            ));
        }
        if let Some(store) = args.signer_db.clone() {
            tokio::spawn(follow_store(index.clone(), store, args.poll));
        }
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        // The first line of stdout says where the server is (tests read it).
        println!("listening on http://{addr}");
        let limits = http::Limits {
            max_connections: args.max_connections,
            header_timeout: Duration::from_secs(args.header_timeout),
            body_timeout: Duration::from_secs(args.body_timeout),
        };
        http::serve_with(listener, http::router(index, trust, config), limits)
            .await
            .context("server failed")?;
        Ok(std::process::ExitCode::SUCCESS)
    })
}

/// Reads the signer's event store every `poll` seconds for events not read yet.
async fn follow_store(index: Arc<Mutex<Index>>, store: PathBuf, poll: u64) {
    loop {
        let started = std::time::Instant::now();
        let (index, path) = (index.clone(), store.clone());
        let outcome = tokio::task::spawn_blocking(move || {
            let mut index = index.lock().unwrap_or_else(|e| e.into_inner());
            ingest::ingest_signer_db(&mut index, &path)
        })
        .await;
        match outcome {
            Ok(Ok(report)) => {
                if report.indexed + report.rejected > 0 {
                    print_report(&store.display().to_string(), &report, started.elapsed());
                }
            }
            Ok(Err(e)) => output::warn(&format!("{}: {e}", store.display())),
            Err(e) => output::warn(&format!("{}: {e}", store.display())),
        }
        tokio::time::sleep(Duration::from_secs(poll.max(1))).await;
    }
}

/// Queries the relays every `poll` seconds for events newer than the newest indexed.
async fn follow(index: Arc<Mutex<Index>>, relays: Vec<String>, authors: Vec<PublicKey>, poll: u64) {
    let opts = provenance_relay::Options {
        eose_timeout: Duration::from_secs(60),
        max_events_per_relay: 100_000,
        ..provenance_relay::Options::default()
    };
    loop {
        let since = {
            let index = index.lock().unwrap_or_else(|e| e.into_inner());
            index.newest_created_at().ok().flatten()
        };
        let filter = ingest::provenance_filter(&authors, since);
        let started = std::time::Instant::now();
        match ingest::ingest_from_relays(index.clone(), &relays, &filter, &opts).await {
            Ok((report, relay_reports)) => {
                print_report("relays", &report, started.elapsed());
                for r in relay_reports {
                    if let Err(e) = r.outcome {
                        output::warn(&format!("{}: {e}", r.relay));
                    }
                }
            }
            Err(e) => output::warn(&format!("relay ingest: {e}")),
        }
        tokio::time::sleep(Duration::from_secs(poll.max(1))).await;
    }
}
