//! `provenance verify`: check events and report every claim.
//!
//! Events from files and stdin are read in chunks (at most [`CHUNK_EVENTS`] events or
//! [`CHUNK_BYTES`] bytes) by a reader thread; each chunk is parsed, verified and rendered on
//! all cores, then written in input order, so memory stays flat in the batch size and the
//! output order never depends on scheduling. Events from a relay query are verified the same
//! way as they arrive.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::{FutureExt, StreamExt};
use provenance::commitment::Salt;
use provenance::event::{self, Expect, Limits, Verification, Verifier};
use provenance::label::{self, VerifiedLabel};
use provenance::nostr::prelude::{Filter, Kind, Timestamp};
use provenance::verdict::{Claim, Code, Status};
use provenance::{Event, EventId, PublicKey, json, nip19};
use provenance_gguf::resolve::{self, StoreDirs};
use provenance_gguf::{Cache, Hasher, ModelIdentity};
use rayon::prelude::*;
use serde::Serialize;

use crate::input::{self, Item, ReadError, Source};
use crate::output::{Out, Status as Exit, push_hex, push_u64, warn, write_json};
use crate::sign::read_capped;
use crate::trust::{TrustList, load_trust, parse_key};

/// Largest evidence file read (`--output`, `--prompt`): 256 MiB.
const MAX_EVIDENCE_BYTES: u64 = 256 << 20;

/// Most events verified together (one parallel step).
const CHUNK_EVENTS: usize = 4096;

/// Most bytes of event text held in one chunk.
const CHUNK_BYTES: usize = 16 << 20;

/// Most output buffers kept for reuse (two chunks' worth of batches on a few threads).
const MAX_BUFFERS: usize = 64;

/// Most event ids in one label query filter.
const LABEL_IDS_PER_QUERY: usize = 256;

/// Most differing tensors named in a claim's detail.
const MAX_TENSORS_NAMED: usize = 20;

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

/// The weights given with --model, hashed once.
struct ModelEvidence {
    input: String,
    identity: ModelIdentity,
    /// The reference model and the tensors in which --model differs from it.
    reference: Option<(String, ModelIdentity, Vec<String>)>,
}

/// Evidence to check every verified record against.
struct Evidence {
    output: Option<Vec<u8>>,
    prompt: Option<(Vec<u8>, Salt)>,
    trusted: Option<TrustList>,
    model: Option<ModelEvidence>,
}

#[derive(Default, Serialize)]
struct Summary {
    events: u64,
    verified: u64,
    failed: u64,
    errors: u64,
    codes: BTreeMap<&'static str, u64>,
}

/// A `verdict` message's data, as [`verdict_json`] writes it (the reference it is tested
/// against).
#[cfg(test)]
#[derive(Serialize)]
struct Verdict<'a> {
    input: &'a str,
    id: String,
    author: String,
    kind: u16,
    holds: bool,
    claims: &'a [Claim],
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<&'a provenance::Record>,
}

#[derive(Serialize)]
struct ItemError<'a> {
    input: &'a str,
    message: &'a str,
}

/// What one item, or a batch of items, came to, rendered and ready to write.
#[derive(Default)]
struct Outcome {
    /// Events that held.
    verified: u64,
    /// Events that did not hold.
    failed: u64,
    /// Items that were not events.
    errors: u64,
    /// The recomputed id of an event that held (for de-duplication of relay copies; only
    /// meaningful in the outcome of one item).
    held_id: Option<EventId>,
    codes: Vec<Code>,
    /// Lines for stdout, each with its newline (empty when nothing is printed).
    stdout: String,
    /// Lines for stderr (idem).
    stderr: String,
    /// Items still to be rendered into this outcome, to size `stdout` once for a batch.
    items_left: usize,
}

impl Outcome {
    /// An outcome for a batch of `items`.
    fn batch(items: usize) -> Self {
        Self {
            items_left: items,
            ..Self::default()
        }
    }
}

/// An item after parsing and verification, before labels and rendering.
enum Checked {
    Event {
        origin: String,
        event: Box<Event>,
        verification: Box<Verification>,
    },
    Error {
        origin: String,
        message: String,
    },
}

/// Everything the parallel stage needs: read-only, shared by all threads.
struct Checker {
    evidence: Evidence,
    limits: Limits,
    json: bool,
    quiet: bool,
    labels: bool,
    labellers: Option<TrustList>,
    relays: Vec<String>,
    relay_opts: provenance_relay::Options,
    /// Verifiers (with their key caches) lent to the threads of each parallel step.
    verifiers: Mutex<Vec<Verifier>>,
    /// Output buffers of batches already written, for the next batches: a fresh
    /// multi-megabyte buffer per batch costs page faults.
    buffers: Mutex<Vec<String>>,
}

/// Where outcomes go, in order.
struct Sink {
    out: Out,
    exit: Exit,
    summary: Summary,
    /// How often each code was reported, by its place in [`Code::ALL`] (put in
    /// `summary.codes` at the end: a map by name is slow to count into).
    code_counts: Vec<u64>,
    progress: Option<indicatif::ProgressBar>,
    show_progress: bool,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    if let Some(jobs) = args.jobs {
        rayon::ThreadPoolBuilder::new()
            .num_threads(jobs.max(1))
            .build_global()
            .context("cannot start the verification threads")?;
    }
    let evidence = Evidence {
        output: args
            .output
            .as_ref()
            .map(|p| read_capped(p, MAX_EVIDENCE_BYTES))
            .transpose()?,
        prompt: match (&args.prompt, &args.salt) {
            (Some(p), Some(s)) => Some((
                read_capped(p, MAX_EVIDENCE_BYTES)?,
                s.parse::<Salt>()
                    .map_err(|e| anyhow::anyhow!("--salt {s:?}: {e}"))?,
            )),
            _ => None,
        },
        trusted: args
            .trust
            .as_deref()
            .map(|p| load_trust(p, Duration::from_secs(args.timeout)))
            .transpose()?,
        model: match &args.model {
            Some(model) => Some(model_evidence(
                model,
                args.reference_model.as_deref(),
                args.no_cache,
                args.json,
            )?),
            None => None,
        },
    };
    let labellers = args
        .trust_labellers
        .as_deref()
        .map(|p| load_trust(p, Duration::from_secs(args.timeout)))
        .transpose()?;
    let checker = Checker {
        evidence,
        limits: Limits::default(),
        json: args.json,
        quiet: args.quiet,
        labels: args.labels || labellers.is_some(),
        labellers,
        relays: args.relays.clone(),
        relay_opts: provenance_relay::Options {
            eose_timeout: Duration::from_secs(args.timeout),
            ..provenance_relay::Options::default()
        },
        verifiers: Mutex::new(Vec::new()),
        buffers: Mutex::new(Vec::new()),
    };
    let mut sink = Sink {
        out: Out::new(args.json),
        exit: Exit::default(),
        summary: Summary::default(),
        code_counts: vec![0; Code::ALL.len()],
        progress: None,
        show_progress: !args.json && io::stderr().is_terminal(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    for input in &args.inputs {
        match input::classify(input) {
            Err(message) => sink.emit(checker.error(input::redact(input), &message))?,
            Ok(Source::Files(paths)) => checker.check_files(&runtime, &mut sink, paths)?,
            Ok(Source::Remote { id, author, relays }) => {
                let mut all = relays;
                all.extend(args.relays.iter().cloned());
                all.dedup();
                if all.is_empty() {
                    sink.emit(checker.error(
                        input,
                        "no relay to ask: the input has no relay hints; pass --relay URL",
                    ))?;
                    continue;
                }
                let outcome = runtime.block_on(checker.check_remote(input, id, author, &all));
                sink.emit(outcome)?;
            }
        }
    }
    if args.author.is_some() || args.since.is_some() || args.until.is_some() {
        let mut filter = Filter::new().kind(Kind::Custom(event::KIND));
        if let Some(author) = &args.author {
            filter =
                filter.author(parse_key(author).map_err(|e| anyhow::anyhow!("--author: {e}"))?);
        }
        if let Some(since) = args.since {
            filter = filter.since(Timestamp::from_secs(since));
        }
        if let Some(until) = args.until {
            filter = filter.until(Timestamp::from_secs(until));
        }
        runtime.block_on(checker.check_query(&mut sink, &filter))?;
    }
    sink.finish()
}

impl Checker {
    /// Verifies files (or stdin) in chunks: a reader thread splits them into items while the
    /// previous chunk is verified on all cores.
    fn check_files(
        &self,
        runtime: &tokio::runtime::Runtime,
        sink: &mut Sink,
        paths: Vec<PathBuf>,
    ) -> Result<()> {
        enum Message {
            Items(Vec<Item>, u64),
            InputError(String, String),
        }
        let total: u64 = paths
            .iter()
            .filter(|p| p.as_os_str() != "-")
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        let (tx, rx) = mpsc::sync_channel::<Message>(2);
        let limits = self.limits;
        std::thread::scope(|scope| -> Result<()> {
            scope.spawn(move || {
                for path in paths {
                    let mut items = Vec::new();
                    let mut bytes = 0usize;
                    let mut each = |item: Item| -> io::Result<()> {
                        bytes += item.text.as_ref().map_or(0, String::len) + 1;
                        items.push(item);
                        if items.len() >= CHUNK_EVENTS || bytes >= CHUNK_BYTES {
                            let chunk = std::mem::take(&mut items);
                            tx.send(Message::Items(chunk, std::mem::take(&mut bytes) as u64))
                                .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
                        }
                        Ok(())
                    };
                    let result = input::read_events(&path, &limits, &mut each);
                    let sent = match result {
                        Ok(()) => tx.send(Message::Items(items, bytes as u64)),
                        Err(ReadError::Input(message)) => {
                            tx.send(Message::Items(items, bytes as u64)).and_then(|()| {
                                tx.send(Message::InputError(path.display().to_string(), message))
                            })
                        }
                        // Only a closed channel stops the callback: the consumer has gone.
                        Err(ReadError::Output(_)) => return,
                    };
                    if sent.is_err() {
                        return;
                    }
                }
            });
            let as_items = |items: Vec<Item>| -> Vec<_> {
                items
                    .into_iter()
                    .map(|item| (item.origin, item.text, Expect::default()))
                    .collect()
            };
            if self.labels {
                for message in rx {
                    match message {
                        Message::Items(items, bytes) => {
                            if items.len() >= CHUNK_EVENTS && sink.show_progress {
                                sink.start_progress(total);
                            }
                            let outcomes = runtime.block_on(self.check_chunk(as_items(items)));
                            sink.emit_all(&outcomes, bytes)?;
                        }
                        Message::InputError(origin, message) => {
                            sink.emit(self.error(&origin, &message))?
                        }
                    }
                }
                return Ok(());
            }
            // Without labels, a chunk is verified on the pool while this thread writes out the
            // one before it, so the pool does not wait for the writing.
            rayon::in_place_scope(|pool| -> Result<()> {
                let mut writing: Option<(mpsc::Receiver<Vec<Outcome>>, u64)> = None;
                let write =
                    |sink: &mut Sink, writing: Option<(mpsc::Receiver<Vec<Outcome>>, u64)>| {
                        match writing {
                            // The job always sends, unless it panicked (then the panic is raised
                            // again when the scope ends).
                            Some((outcomes, bytes)) => match outcomes.recv() {
                                Ok(outcomes) => {
                                    let written = sink.emit_all(&outcomes, bytes);
                                    self.recycle(outcomes);
                                    written
                                }
                                Err(_) => Ok(()),
                            },
                            None => Ok(()),
                        }
                    };
                for message in rx {
                    match message {
                        Message::Items(items, bytes) => {
                            if items.len() >= CHUNK_EVENTS && sink.show_progress {
                                sink.start_progress(total);
                            }
                            let (done, outcomes) = mpsc::sync_channel(1);
                            let items = as_items(items);
                            pool.spawn(move |_| {
                                let _ = done.send(self.check_batched(items));
                            });
                            write(sink, writing.replace((outcomes, bytes)))?;
                        }
                        Message::InputError(origin, message) => {
                            write(sink, writing.take())?;
                            sink.emit(self.error(&origin, &message))?
                        }
                    }
                }
                write(sink, writing.take())?;
                Ok(())
            })
        })
    }

    /// Parses, verifies (on all cores), collects labels for, and renders a chunk of items.
    async fn check_chunk(
        &self,
        items: Vec<(String, Result<String, String>, Expect)>,
    ) -> Vec<Outcome> {
        if !self.labels {
            return self.check_now(items);
        }
        let checked: Vec<Checked> = self.verify_items(items, |origin, checked| match checked {
            Ok((event, verification)) => Checked::Event {
                origin,
                event: Box::new(event),
                verification: Box::new(verification),
            },
            Err(message) => Checked::Error { origin, message },
        });
        let labels = self.fetch_labels(&checked).await;
        checked
            .into_par_iter()
            .map_init(
                || self.lend_verifier(),
                |verifier, item| match item {
                    Checked::Event {
                        origin,
                        event,
                        mut verification,
                    } => {
                        let found = labels.get(&event.id).map_or(&[][..], Vec::as_slice);
                        self.add_labels(&mut verifier.0, &event, found, &mut verification);
                        self.render(&origin, &event, &verification)
                    }
                    Checked::Error { origin, message } => self.error(&origin, &message),
                },
            )
            .collect()
    }

    /// [`Checker::check_chunk`] without labels: nothing to fetch between verifying and
    /// rendering, so one parallel pass.
    fn check_now(&self, items: Vec<(String, Result<String, String>, Expect)>) -> Vec<Outcome> {
        self.verify_items(items, |origin, checked| {
            let mut outcome = Outcome::default();
            self.render_checked(&mut outcome, &origin, checked);
            outcome
        })
    }

    /// [`Checker::check_now`] with one outcome per batch of items instead of one per item:
    /// each thread renders its batch into one string, which is written as it is, so no line
    /// is allocated, copied into the chunk's text or freed on its own. For files and stdin,
    /// where nothing looks at single items after rendering.
    fn check_batched(&self, items: Vec<(String, Result<String, String>, Expect)>) -> Vec<Outcome> {
        let start = |items| Outcome {
            stdout: self
                .buffers
                .lock()
                .ok()
                .and_then(|mut pool| pool.pop())
                .unwrap_or_default(),
            ..Outcome::batch(items)
        };
        self.verify_batches(items, start, |outcome, origin, checked| {
            self.render_checked(outcome, &origin, checked);
        })
    }

    /// Keeps the output buffers of written outcomes for [`Checker::check_batched`].
    fn recycle(&self, outcomes: Vec<Outcome>) {
        if let Ok(mut pool) = self.buffers.lock() {
            for o in outcomes {
                let mut buffer = o.stdout;
                if buffer.capacity() > 0 && pool.len() < MAX_BUFFERS {
                    buffer.clear();
                    pool.push(buffer);
                }
            }
        }
    }

    /// Parses and verifies items on all cores (with the evidence), handing each result, in
    /// input order, to `then`.
    fn verify_items<T: Send>(
        &self,
        items: Vec<(String, Result<String, String>, Expect)>,
        then: impl Fn(String, Result<(Event, Verification), String>) -> T + Sync,
    ) -> Vec<T> {
        self.verify_batches(items, Vec::with_capacity, |done, origin, checked| {
            done.push(then(origin, checked));
        })
        .into_iter()
        .flatten()
        .collect()
    }

    /// Parses and verifies items on all cores (with the evidence). Items go to the threads in
    /// batches ([`verify_batch`]) whose signatures are checked together
    /// ([`Verifier::verify_many`]); each batch gets a `start(batch length)` to which `add`
    /// hands each result, in input order.
    fn verify_batches<A: Send>(
        &self,
        items: Vec<(String, Result<String, String>, Expect)>,
        start: impl Fn(usize) -> A + Sync,
        add: impl Fn(&mut A, String, Result<(Event, Verification), String>) + Sync,
    ) -> Vec<A> {
        let items_len = items.len();
        items
            .into_par_iter()
            .chunks(event::verify_batch_size(
                items_len,
                rayon::current_num_threads(),
            ))
            .map(|batch| {
                let parsed: Vec<(String, Result<Event, String>, Expect)> = batch
                    .into_iter()
                    .map(|(origin, text, expect)| (origin, self.parse(text), expect))
                    .collect();
                let events: Vec<(&Event, &Expect)> = parsed
                    .iter()
                    .filter_map(|(_, event, expect)| Some((event.as_ref().ok()?, expect)))
                    .collect();
                let mut verifications = self.lend_verifier().0.verify_many(&events).into_iter();
                let mut done = start(parsed.len());
                for (origin, event, _) in parsed {
                    let checked = event.and_then(|event| {
                        // One verification per parsed event, in order.
                        let mut verification = verifications
                            .next()
                            .ok_or("internal error: an event was not verified")?;
                        self.add_evidence(&mut verification);
                        Ok((event, verification))
                    });
                    add(&mut done, origin, checked);
                }
                done
            })
            .collect()
    }

    /// An item's text as an event, or the message saying why it is not one.
    fn parse(&self, text: Result<String, String>) -> Result<Event, String> {
        let text = text?;
        event::parse_event(&text, &self.limits).map_err(|e| e.to_string())
    }

    /// A verifier for one thread of a parallel step, returned to the pool when dropped, so
    /// that the parsed-key caches live for the whole run.
    fn lend_verifier(&self) -> Lent<'_> {
        let verifier = self
            .verifiers
            .lock()
            .map(|mut pool| pool.pop())
            .ok()
            .flatten()
            .unwrap_or_default();
        Lent(verifier, &self.verifiers)
    }

    fn verify_with_evidence(
        &self,
        verifier: &mut Verifier,
        ev: &Event,
        expect: &Expect,
    ) -> Verification {
        let mut verification = verifier.verify_expected(ev, expect);
        self.add_evidence(&mut verification);
        verification
    }

    /// Checks the evidence (output, prompt, weights, trust list) against a verified record.
    fn add_evidence(&self, verification: &mut Verification) {
        let Some(verified) = verification.verified() else {
            return;
        };
        let mut claims = Vec::new();
        if let Some(output) = &self.evidence.output {
            claims.push(verified.check_output(output));
        }
        if let Some((prompt, salt)) = &self.evidence.prompt {
            claims.push(verified.check_prompt(prompt, salt));
        }
        if let Some(model) = &self.evidence.model {
            claims.push(model.check(verified));
        }
        if let Some(trusted) = &self.evidence.trusted {
            let mut claim = verified.check_signer(&trusted.keys);
            if let Some(name) = trusted.name_detail(&verified.author()) {
                claim.detail = format!("{} {name}", claim.detail);
            }
            claims.push(claim);
        }
        // Every check ran on the record as verified by the structural checks alone, as
        // before any evidence claim was added.
        for claim in claims {
            verification.add_evidence(claim);
        }
    }

    /// Fetches audit labels about the chunk's events from the relays: one query per
    /// [`LABEL_IDS_PER_QUERY`] ids. Relay errors are warnings; labels are never required.
    async fn fetch_labels(&self, checked: &[Checked]) -> HashMap<EventId, Vec<(String, Event)>> {
        let ids: Vec<EventId> = checked
            .iter()
            .filter_map(|c| match c {
                Checked::Event { event, .. } => Some(event.id),
                Checked::Error { .. } => None,
            })
            .collect();
        let mut found: HashMap<EventId, Vec<(String, Event)>> = HashMap::new();
        let mut seen = HashSet::new();
        for part in ids.chunks(LABEL_IDS_PER_QUERY) {
            let wanted: HashSet<String> = part.iter().map(EventId::to_hex).collect();
            let filter = Filter::new()
                .kind(Kind::Custom(label::KIND))
                .events(part.iter().copied());
            let outcome = provenance_relay::fetch(&self.relays, &filter, &self.relay_opts).await;
            for report in &outcome.relays {
                if let Err(e) = &report.outcome {
                    warn(&format!("labels: relay {}: {e}", report.relay));
                }
            }
            for raw in outcome.events {
                let Ok(ev) = event::parse_event(&raw.json, &self.limits) else {
                    continue;
                };
                if !seen.insert(ev.id) {
                    continue;
                }
                // File the label under every event of this query it names.
                for t in ev.tags.iter() {
                    let v = t.as_slice();
                    if v.len() >= 2 && v[0] == "e" && wanted.contains(&v[1]) {
                        if let Ok(id) = event::parse_event_id(&v[1]) {
                            found
                                .entry(id)
                                .or_default()
                                .push((raw.relay.clone(), ev.clone()));
                        }
                    }
                }
            }
        }
        found
    }

    /// Adds one claim per label event about `ev`: asserted for a trusted labeller, unknown
    /// otherwise, and unknown (ignored) for a label event that is not genuine.
    fn add_labels(
        &self,
        verifier: &mut Verifier,
        ev: &Event,
        found: &[(String, Event)],
        verification: &mut Verification,
    ) {
        let trusted = self
            .labellers
            .as_ref()
            .map_or(&[][..], |t| t.keys.as_slice());
        for (relay, label_event) in found {
            let claim = match label::verify_label(label_event, &ev.id, verifier) {
                Ok(l) => self.label_claim(&l, trusted),
                Err(e) => Claim::new(
                    Code::LabelInvalid,
                    format!("label event {} from {relay} ignored: {e}", label_event.id),
                ),
            };
            verification.add_claim(claim);
        }
    }

    fn label_claim(&self, l: &VerifiedLabel, trusted: &[PublicKey]) -> Claim {
        let who = match &self.labellers {
            Some(list) => list.describe(&l.labeller),
            None => nip19::encode_npub(&l.labeller),
        };
        let detail: String = l.detail.chars().take(200).collect();
        let text = format!(
            "{who} labelled it {} (label event {}){}{detail}",
            l.values.join(", "),
            l.id,
            if detail.is_empty() { "" } else { ": " },
        );
        match l.status(trusted) {
            Status::Asserted => Claim::new(Code::LabelTrusted, text),
            _ => Claim::new(
                Code::LabelUntrusted,
                format!("{text} [labeller not trusted]"),
            ),
        }
    }

    /// Fetches an event by id from relays and checks it. Only a copy whose recomputed id is
    /// the requested id can pass; every relay's copy is considered, so a relay that answers
    /// first with a forgery cannot hide the genuine event another relay holds.
    async fn check_remote(
        &self,
        input: &str,
        id: EventId,
        author: Option<PublicKey>,
        relays: &[String],
    ) -> Outcome {
        let expect = Expect {
            id: Some(id),
            author,
        };
        let filter = Filter::new().id(id);
        let mut stream =
            std::pin::pin!(provenance_relay::stream(relays, &filter, &self.relay_opts));
        let mut best: Option<(String, String, bool)> = None;
        let mut rejected = Vec::new();
        let mut relay_errors = Vec::new();
        let mut verifier = self.lend_verifier();
        while let Some(item) = stream.next().await {
            match item {
                provenance_relay::StreamItem::Event(raw) => {
                    let ev = match event::parse_event(&raw.json, &self.limits) {
                        Ok(ev) => ev,
                        Err(e) => {
                            rejected.push(format!("{}: {e}", raw.relay));
                            continue;
                        }
                    };
                    let holds = self
                        .verify_with_evidence(&mut verifier.0, &ev, &expect)
                        .holds();
                    let better = match &best {
                        None => true,
                        Some((_, _, held)) => !held && holds,
                    };
                    if better {
                        best = Some((raw.relay, raw.json, holds));
                    }
                }
                provenance_relay::StreamItem::End(report) => {
                    if let Err(e) = report.outcome {
                        relay_errors.push(format!("{}: {e}", report.relay));
                    }
                }
            }
        }
        drop(verifier);
        for message in &relay_errors {
            warn(&format!("{input}: relay {message}"));
        }
        match best {
            Some((relay, json, _)) => {
                let origin = format!("{input} (from {relay})");
                self.check_chunk(vec![(origin, Ok(json), expect)])
                    .await
                    .pop()
                    .unwrap_or_else(|| self.error(input, "the event was lost"))
            }
            None if !rejected.is_empty() => self.error(
                input,
                &format!("no relay returned a usable event: {}", rejected.join("; ")),
            ),
            None => self.error(
                input,
                &format!(
                    "event {id} not found on {} relay{}",
                    relays.len(),
                    if relays.len() == 1 { "" } else { "s" }
                ),
            ),
        }
    }

    /// Runs a query on the --relay relays and verifies the events as they arrive: whatever
    /// has arrived is verified whenever the relays pause (or a chunk fills up). A copy of an
    /// event already verified from another relay is not reported again.
    async fn check_query(&self, sink: &mut Sink, filter: &Filter) -> Result<()> {
        let opts = provenance_relay::Options {
            max_events_per_relay: 1_000_000,
            ..self.relay_opts.clone()
        };
        let mut stream = std::pin::pin!(provenance_relay::stream(&self.relays, filter, &opts));
        let mut pending: Vec<(String, Result<String, String>, Expect)> = Vec::new();
        let mut held = HashSet::new();
        let mut failed_relays = 0usize;
        loop {
            let next = match stream.next().now_or_never() {
                Some(next) => next,
                None => {
                    self.flush_query(sink, &mut pending, &mut held).await?;
                    stream.next().await
                }
            };
            let Some(item) = next else { break };
            match item {
                provenance_relay::StreamItem::Event(raw) => {
                    pending.push((
                        format!("{} (query)", raw.relay),
                        Ok(raw.json),
                        Expect::default(),
                    ));
                    if pending.len() >= CHUNK_EVENTS {
                        self.flush_query(sink, &mut pending, &mut held).await?;
                    }
                }
                provenance_relay::StreamItem::End(report) => {
                    if let Err(e) = report.outcome {
                        failed_relays += 1;
                        self.flush_query(sink, &mut pending, &mut held).await?;
                        sink.emit(self.error(&report.relay, &format!("relay query: {e}")))?;
                    }
                }
            }
        }
        self.flush_query(sink, &mut pending, &mut held).await?;
        if failed_relays == 0 && held.is_empty() && sink.summary.events == 0 {
            warn("the relays returned no provenance events for the query");
        }
        Ok(())
    }

    async fn flush_query(
        &self,
        sink: &mut Sink,
        pending: &mut Vec<(String, Result<String, String>, Expect)>,
        held: &mut HashSet<EventId>,
    ) -> io::Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let outcomes = self.check_chunk(std::mem::take(pending)).await;
        let fresh: Vec<Outcome> = outcomes
            .into_iter()
            .filter(|o| o.held_id.is_none_or(|id| held.insert(id)))
            .collect();
        sink.emit_all(&fresh, 0)
    }

    fn render(&self, origin: &str, ev: &Event, v: &Verification) -> Outcome {
        let mut outcome = Outcome::default();
        self.render_into(&mut outcome, origin, ev, v);
        outcome
    }

    fn render_checked(
        &self,
        outcome: &mut Outcome,
        origin: &str,
        checked: Result<(Event, Verification), String>,
    ) {
        match checked {
            Ok((event, verification)) => self.render_into(outcome, origin, &event, &verification),
            Err(message) => self.error_into(outcome, origin, &message),
        }
    }

    /// Adds an event's verdict to `outcome`.
    fn render_into(&self, outcome: &mut Outcome, origin: &str, ev: &Event, v: &Verification) {
        let holds = v.holds();
        outcome.codes.extend(v.claims().iter().map(|c| c.code));
        if holds {
            outcome.verified += 1;
        } else {
            outcome.failed += 1;
        }
        outcome.held_id = holds.then_some(ev.id);
        // The first line of a batch makes room for all of them (a failure at a time with
        // --quiet).
        let lines = std::mem::take(&mut outcome.items_left).max(1);
        if self.quiet && holds {
            return;
        }
        let out = &mut outcome.stdout;
        if self.json {
            verdict_json(out, origin, ev, v, if self.quiet { 1 } else { lines });
        } else {
            let model = v
                .record()
                .map(|r| format!("  model {:?}", r.model.name))
                .unwrap_or_default();
            let mut lines = vec![format!(
                "{:<7} {origin}\n        id {}  by {}{model}",
                if holds { "OK" } else { "FAILED" },
                ev.id,
                nip19::encode_npub(&ev.pubkey),
            )];
            for claim in v.claims() {
                lines.push(format!(
                    "        {:<9} {:<31} {}",
                    claim.status.as_str(),
                    claim.code.as_str(),
                    claim.detail
                ));
            }
            out.push_str(&lines.join("\n"));
        }
        out.push('\n');
    }

    fn error(&self, origin: &str, message: &str) -> Outcome {
        let mut outcome = Outcome::default();
        self.error_into(&mut outcome, origin, message);
        outcome
    }

    /// Adds an item that is not an event to `outcome`.
    fn error_into(&self, outcome: &mut Outcome, origin: &str, message: &str) {
        outcome.errors += 1;
        if self.json {
            let line = envelope(
                "error",
                &ItemError {
                    input: origin,
                    message,
                },
                128 + origin.len() + message.len(),
            );
            outcome.stdout.push_str(&line);
            outcome.stdout.push('\n');
        } else {
            let stderr = &mut outcome.stderr;
            stderr.push_str("provenance: ");
            stderr.push_str(origin);
            stderr.push_str(": ");
            stderr.push_str(message);
            stderr.push('\n');
        }
    }
}

/// A verifier on loan from [`Checker::verifiers`].
struct Lent<'a>(Verifier, &'a Mutex<Vec<Verifier>>);

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Ok(mut pool) = self.1.lock() {
            pool.push(std::mem::take(&mut self.0));
        }
    }
}

impl ModelEvidence {
    /// The record's digests against the weights; on a mismatch, the tensors that differ
    /// from a reference model that has the recorded digests.
    fn check(&self, verified: &event::VerifiedRecord) -> Claim {
        let id = &self.identity;
        let mut claim =
            verified.check_model(Some(&id.sha256), Some(&id.blake3), Some(&id.tensor_root));
        claim.detail = format!("{} ({}: {})", claim.detail, self.input, id.sha256);
        if claim.code != Code::ModelDigestMismatch {
            return claim;
        }
        let note = match &self.reference {
            None => {
                "; pass --reference-model with the recorded weights to name the differing tensors"
                    .to_owned()
            }
            Some((name, reference, differing)) => {
                let reference_matches = verified
                    .check_model(
                        Some(&reference.sha256),
                        Some(&reference.blake3),
                        Some(&reference.tensor_root),
                    )
                    .code
                    == Code::ModelDigestMatch;
                if !reference_matches {
                    format!(
                        "; the reference {name} does not have the recorded digests either, so the differing tensors cannot be named"
                    )
                } else if differing.is_empty() {
                    format!(
                        "; every tensor equals the reference {name}'s (only metadata or layout differ)"
                    )
                } else {
                    let mut named: Vec<&str> = differing
                        .iter()
                        .take(MAX_TENSORS_NAMED)
                        .map(String::as_str)
                        .collect();
                    let more = differing.len().saturating_sub(MAX_TENSORS_NAMED);
                    let more = if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    };
                    named.sort_unstable();
                    format!(
                        "; {} tensor{} differ from the reference {name}, which has the recorded digests: {}{more}",
                        differing.len(),
                        if differing.len() == 1 { "" } else { "s" },
                        named.join(", ")
                    )
                }
            }
        };
        claim.detail.push_str(&note);
        claim
    }
}

impl Sink {
    fn start_progress(&mut self, total: u64) {
        if self.progress.is_some() {
            return;
        }
        let bar = if total > 0 {
            indicatif::ProgressBar::new(total)
        } else {
            indicatif::ProgressBar::new_spinner()
        };
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        // The template is a constant known to parse.
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} {bytes}/{total_bytes} {bar:30} {msg} ({elapsed})",
        ) {
            bar.set_style(style);
        }
        self.progress = Some(bar);
    }

    fn emit(&mut self, outcome: Outcome) -> io::Result<()> {
        self.emit_all(&[outcome], 0)
    }

    /// Writes outcomes in order: stderr's lines in one write, then stdout's as they are (one
    /// write per batch of lines, small outcomes gathered into larger writes).
    fn emit_all(&mut self, outcomes: &[Outcome], bytes: u64) -> io::Result<()> {
        let mut stderr = String::new();
        for o in outcomes {
            self.summary.events += o.verified + o.failed;
            self.summary.verified += o.verified;
            self.summary.failed += o.failed;
            self.summary.errors += o.errors;
            if o.failed > 0 {
                self.exit.failed();
            }
            if o.errors > 0 {
                self.exit.error();
            }
            for code in &o.codes {
                // Every code is in `Code::ALL`.
                if let Some(i) = Code::ALL.iter().position(|c| c == code) {
                    self.code_counts[i] += 1;
                }
            }
            stderr.push_str(&o.stderr);
        }
        let write_stderr = |text: &str| {
            if !text.is_empty() {
                let _ = io::stderr().lock().write_all(text.as_bytes());
            }
        };
        match &self.progress {
            Some(bar) => {
                bar.suspend(|| write_stderr(&stderr));
                bar.inc(bytes);
                let s = &self.summary;
                bar.set_message(format!(
                    "{} verified, {} failed, {} errors",
                    s.verified, s.failed, s.errors
                ));
            }
            None => write_stderr(&stderr),
        }
        let stdout = outcomes.iter().map(|o| o.stdout.as_str());
        match &self.progress {
            Some(bar) => bar.suspend(|| self.out.lines(stdout))?,
            None => self.out.lines(stdout)?,
        }
        Ok(())
    }

    fn finish(mut self) -> Result<ExitCode> {
        if let Some(bar) = self.progress.take() {
            bar.finish_and_clear();
        }
        for (code, &n) in Code::ALL.iter().zip(&self.code_counts) {
            if n > 0 {
                self.summary.codes.insert(code.as_str(), n);
            }
        }
        self.out.message("summary", &self.summary)?;
        let s = &self.summary;
        if !self.out.json() && s.events + s.errors > 1 {
            self.out.line(&format!(
                "{} event{}: {} verified, {} failed, {} error{}",
                s.events,
                if s.events == 1 { "" } else { "s" },
                s.verified,
                s.failed,
                s.errors,
                if s.errors == 1 { "" } else { "s" },
            ))?;
            if s.events > 1 {
                let failing: Vec<String> = s
                    .codes
                    .iter()
                    .filter(|(code, _)| {
                        Code::ALL
                            .iter()
                            .any(|c| c.as_str() == **code && c.status() == Status::Failed)
                    })
                    .map(|(code, n)| format!("{code} x{n}"))
                    .collect();
                if !failing.is_empty() {
                    self.out
                        .line(&format!("failed claims: {}", failing.join(", ")))?;
                }
            }
        }
        if self.summary.events == 0 && self.summary.errors == 0 {
            warn("no events found in the input");
            self.exit.error();
        }
        Ok(self.exit.code())
    }
}

/// Appends a `verdict` message, `{"type":"verdict","data":{...}}` without the newline: the
/// bytes `envelope("verdict", &Verdict {...})` gives, written directly. Claim codes and
/// statuses are fixed ASCII names and ids hex, so only the input, the details and the record
/// go through the JSON string escaper. `out` makes room for `lines` lines like this one first.
fn verdict_json(out: &mut String, origin: &str, ev: &Event, v: &Verification, lines: usize) {
    // Room for the line as the generated events make it: the fixed fields, the claims, and
    // about a kilobyte of record.
    let claims = v.claims();
    let line = 512
        + origin.len()
        + claims.iter().map(|c| c.detail.len() + 64).sum::<usize>()
        + if v.record().is_some() { 1024 } else { 0 };
    out.reserve(line.saturating_mul(lines));
    out.push_str(r#"{"type":"verdict","data":{"input":"#);
    json::push_str(out, origin);
    out.push_str(r#","id":""#);
    push_hex(out, ev.id.as_bytes());
    out.push_str(r#"","author":""#);
    push_hex(out, ev.pubkey.as_bytes());
    out.push_str(r#"","kind":"#);
    push_u64(out, ev.kind.as_u16().into());
    out.push_str(if v.holds() {
        r#","holds":true,"claims":["#
    } else {
        r#","holds":false,"claims":["#
    });
    for (i, claim) in claims.iter().enumerate() {
        // Every field, so that a new one cannot be left out unnoticed.
        let Claim {
            code,
            status,
            detail,
        } = claim;
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"code":""#);
        out.push_str(code.as_str());
        out.push_str(r#"","status":""#);
        out.push_str(status.as_str());
        out.push_str(r#"","detail":"#);
        json::push_str(out, detail);
        out.push('}');
    }
    out.push(']');
    if let Some(record) = v.record() {
        out.push_str(r#","record":"#);
        write_json(out, record);
    }
    out.push_str("}}");
}

/// One JSON Lines message, `{"type": kind, "data": data}`, without the newline, in a string
/// of at least `capacity` bytes.
fn envelope<T: Serialize>(kind: &str, data: &T, capacity: usize) -> String {
    #[derive(Serialize)]
    struct Envelope<'a, T> {
        #[serde(rename = "type")]
        kind: &'a str,
        data: &'a T,
    }
    let mut out = String::with_capacity(capacity);
    write_json(&mut out, &Envelope { kind, data });
    out
}

/// Hashes --model (and --reference-model) once, before any event is read.
fn model_evidence(
    model: &str,
    reference: Option<&str>,
    no_cache: bool,
    json: bool,
) -> Result<ModelEvidence> {
    let dirs = StoreDirs::from_env();
    let cache = if no_cache {
        None
    } else {
        Cache::default_dir().map(Cache::new)
    };
    let identify = |input: &str| -> Result<ModelIdentity> {
        let resolved = resolve::resolve(input, &dirs)?;
        if !json {
            warn(&format!("hashing {input}"));
        }
        let identity = match &cache {
            Some(cache) => cache.digest_file(&resolved.path)?,
            None => Hasher::new().hash_file(&resolved.path)?,
        };
        if let Some(expected) = resolved.expected_sha256 {
            if expected != identity.sha256 {
                bail!(
                    "{input}: the store names the file sha256 {expected}, but it hashes to {}",
                    identity.sha256
                );
            }
        }
        Ok(identity)
    };
    let identity = identify(model).with_context(|| format!("--model {model}"))?;
    let reference = match reference {
        Some(name) => {
            let reference = identify(name).with_context(|| format!("--reference-model {name}"))?;
            let differing = reference
                .compare(&identity)
                .iter()
                .map(|d| d.name().to_owned())
                .collect();
            Some((name.to_owned(), reference, differing))
        }
        None => None,
    };
    Ok(ModelEvidence {
        input: model.to_owned(),
        identity,
        reference,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `verdict_json` against serde_json writing [`Verdict`], the way `--json` verdicts were
    /// written before: on every event fixture (with its output evidence when it has one, and
    /// a claim and an input that need escapes) and on generated events.
    #[derive(Serialize)]
    struct Envelope<'a, T> {
        #[serde(rename = "type")]
        kind: &'a str,
        data: &'a T,
    }

    #[test]
    fn verdict_lines_are_the_bytes_serde_json_writes() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/events");
        let mut cases: Vec<(Event, Option<Vec<u8>>)> = Vec::new();
        for dir in ["valid", "invalid"] {
            let mut paths: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            paths.sort();
            for path in paths {
                let fixture: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                let ev = event::parse_event(&fixture["event"].to_string(), &Limits::default());
                let output = fixture["evidence"]["output"]
                    .as_str()
                    .map(|o| o.as_bytes().to_vec());
                cases.push((ev.unwrap(), output));
            }
        }
        let generator = provenance_testkit::generate::EventGenerator::new();
        cases.extend((0..50).map(|i| (generator.event(i), None)));
        assert!(cases.len() > 70);
        let mut verifier = Verifier::default();
        for (n, (ev, output)) in cases.iter().enumerate() {
            let mut v = verifier.verify_expected(ev, &Expect::default());
            if let (Some(output), Some(verified)) = (output, v.verified()) {
                let claim = verified.check_output(output);
                v.add_evidence(claim);
            }
            if n % 3 == 0 {
                v.add_claim(Claim::new(
                    Code::LabelUntrusted,
                    "tab\t, \"quotes\", back\\slash, nul \u{0}, del \u{7f}, \u{2028} 😀",
                ));
            }
            let origin = format!("dir \"{n}\"\n/events.jsonl:{n}");
            let reference = serde_json::to_string(&Envelope {
                kind: "verdict",
                data: &Verdict {
                    input: &origin,
                    id: ev.id.to_hex(),
                    author: ev.pubkey.to_hex(),
                    kind: ev.kind.as_u16(),
                    holds: v.holds(),
                    claims: v.claims(),
                    record: v.record(),
                },
            })
            .unwrap();
            let mut ours = String::from("the line before\n");
            verdict_json(&mut ours, &origin, ev, &v, 1);
            assert_eq!(ours, format!("the line before\n{reference}"), "case {n}");
        }
    }

    #[test]
    fn claim_codes_and_statuses_need_no_json_escape() {
        // `verdict_json` copies them without escaping.
        for code in Code::ALL {
            for name in [code.as_str(), code.status().as_str()] {
                assert_eq!(serde_json::to_string(name).unwrap(), format!("\"{name}\""));
            }
        }
    }
}
