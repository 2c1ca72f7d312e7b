//! `provenance verify`: check events and report every claim.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use provenance::commitment::Salt;
use provenance::event::{self, Expect, Limits, Verification};
use provenance::nostr::prelude::Filter;
use provenance::verdict::Claim;
use provenance::{Event, EventId, PublicKey, nip19};
use serde::Serialize;

use crate::input::{self, Item, ReadError, Source};
use crate::output::{Out, Status as Exit, warn};
use crate::sign::read_capped;

/// Largest evidence file read (`--output`, `--prompt`): 256 MiB.
const MAX_EVIDENCE_BYTES: u64 = 256 << 20;

/// Verify provenance events: signature, id, record, tags, and any evidence given
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Events to check: nevent1.../note1.../nostr: URIs or hex ids (fetched from relays),
    /// event files (JSON or JSON Lines), directories of them, or "-" for stdin
    #[arg(value_name = "INPUT", required = true)]
    inputs: Vec<String>,
    /// Relay to fetch events from, besides the nevent's own relay hints (repeatable)
    #[arg(long = "relay", value_name = "URL")]
    relays: Vec<String>,
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
    /// A file of trusted signers (npub or hex, one per line, # comments)
    #[arg(long, value_name = "FILE")]
    trust: Option<PathBuf>,
    /// Print JSON Lines instead of text
    #[arg(long)]
    json: bool,
}

/// Evidence to check every verified record against.
struct Evidence {
    output: Option<Vec<u8>>,
    prompt: Option<(Vec<u8>, Salt)>,
    trusted: Option<Vec<PublicKey>>,
}

#[derive(Default, Serialize)]
struct Summary {
    events: u64,
    verified: u64,
    failed: u64,
    errors: u64,
    codes: BTreeMap<&'static str, u64>,
}

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

struct Run {
    out: Out,
    exit: Exit,
    summary: Summary,
    evidence: Evidence,
    limits: Limits,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
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
        trusted: args.trust.as_ref().map(load_trust).transpose()?,
    };
    let mut run = Run {
        out: Out::new(args.json),
        exit: Exit::default(),
        summary: Summary::default(),
        evidence,
        limits: Limits::default(),
    };
    let relay_opts = provenance_relay::Options {
        eose_timeout: Duration::from_secs(args.timeout),
        ..provenance_relay::Options::default()
    };
    let mut runtime = None;
    for input in &args.inputs {
        match input::classify(input) {
            Err(message) => run.error(input::redact(input), &message)?,
            Ok(Source::Files(paths)) => {
                for path in paths {
                    let limits = run.limits;
                    let result =
                        input::read_events(&path, &limits, &mut |item: Item| match item.text {
                            Ok(text) => run.check_text(&item.origin, &text, &Expect::default()),
                            Err(message) => run.error(&item.origin, &message),
                        });
                    match result {
                        Ok(()) => {}
                        Err(ReadError::Input(message)) => {
                            run.error(&path.display().to_string(), &message)?
                        }
                        Err(ReadError::Output(e)) => return Err(e.into()),
                    }
                }
            }
            Ok(Source::Remote { id, author, relays }) => {
                let mut all = relays;
                all.extend(args.relays.iter().cloned());
                all.dedup();
                if all.is_empty() {
                    run.error(
                        input,
                        "no relay to ask: the input has no relay hints; pass --relay URL",
                    )?;
                    continue;
                }
                let rt = match &mut runtime {
                    Some(rt) => rt,
                    None => runtime.insert(
                        tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .context("cannot start the async runtime")?,
                    ),
                };
                rt.block_on(run.check_remote(input, id, author, &all, &relay_opts))?;
            }
        }
    }
    run.finish()
}

impl Run {
    /// Parses and checks one event's JSON text.
    fn check_text(&mut self, origin: &str, text: &str, expect: &Expect) -> io::Result<()> {
        match event::parse_event(text, &self.limits) {
            Ok(ev) => self.check_event(origin, &ev, expect),
            Err(e) => self.error(origin, &e.to_string()),
        }
    }

    fn check_event(&mut self, origin: &str, ev: &Event, expect: &Expect) -> io::Result<()> {
        let verification = self.verify_with_evidence(ev, expect);
        self.report(origin, ev, &verification)
    }

    fn verify_with_evidence(&self, ev: &Event, expect: &Expect) -> Verification {
        let mut verification = event::verify_expected(ev, expect);
        if let Some(verified) = verification.verified().cloned() {
            if let Some(output) = &self.evidence.output {
                verification.add_evidence(verified.check_output(output));
            }
            if let Some((prompt, salt)) = &self.evidence.prompt {
                verification.add_evidence(verified.check_prompt(prompt, salt));
            }
            if let Some(trusted) = &self.evidence.trusted {
                verification.add_evidence(verified.check_signer(trusted));
            }
        }
        verification
    }

    /// Fetches an event by id from relays and checks it. Only a copy whose recomputed id is
    /// the requested id can pass; every relay's copy is considered, so a relay that answers
    /// first with a forgery cannot hide the genuine event another relay holds.
    async fn check_remote(
        &mut self,
        input: &str,
        id: EventId,
        author: Option<PublicKey>,
        relays: &[String],
        opts: &provenance_relay::Options,
    ) -> io::Result<()> {
        let expect = Expect {
            id: Some(id),
            author,
        };
        let filter = Filter::new().id(id);
        let mut stream = std::pin::pin!(provenance_relay::stream(relays, &filter, opts));
        let mut best: Option<(String, Event, Verification)> = None;
        let mut rejected = Vec::new();
        let mut relay_errors = Vec::new();
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
                    let verification = self.verify_with_evidence(&ev, &expect);
                    let better = match &best {
                        None => true,
                        Some((_, _, v)) => !v.holds() && verification.holds(),
                    };
                    if better {
                        best = Some((raw.relay, ev, verification));
                    }
                }
                provenance_relay::StreamItem::End(report) => {
                    if let Err(e) = report.outcome {
                        relay_errors.push(format!("{}: {e}", report.relay));
                    }
                }
            }
        }
        for message in &relay_errors {
            warn(&format!("{input}: relay {message}"));
        }
        match best {
            Some((relay, ev, verification)) => {
                self.report(&format!("{input} (from {relay})"), &ev, &verification)
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

    fn report(&mut self, origin: &str, ev: &Event, v: &Verification) -> io::Result<()> {
        let holds = v.holds();
        self.summary.events += 1;
        if holds {
            self.summary.verified += 1;
        } else {
            self.summary.failed += 1;
            self.exit.failed();
        }
        for claim in v.claims() {
            *self.summary.codes.entry(claim.code.as_str()).or_default() += 1;
        }
        self.out.message(
            "verdict",
            &Verdict {
                input: origin,
                id: ev.id.to_hex(),
                author: ev.pubkey.to_hex(),
                kind: ev.kind.as_u16(),
                holds,
                claims: v.claims(),
                record: v.record(),
            },
        )?;
        if !self.out.json() {
            let model = v
                .record()
                .map(|r| format!("  model {:?}", r.model.name))
                .unwrap_or_default();
            self.out.line(&format!(
                "{:<7} {origin}\n        id {}  by {}{model}",
                if holds { "OK" } else { "FAILED" },
                ev.id,
                nip19::encode_npub(&ev.pubkey),
            ))?;
            for claim in v.claims() {
                self.out.line(&format!(
                    "        {:<9} {:<31} {}",
                    claim.status.as_str(),
                    claim.code.as_str(),
                    claim.detail
                ))?;
            }
        }
        Ok(())
    }

    fn error(&mut self, origin: &str, message: &str) -> io::Result<()> {
        self.summary.errors += 1;
        self.exit.error();
        self.out.message(
            "error",
            &ItemError {
                input: origin,
                message,
            },
        )?;
        if !self.out.json() {
            warn(&format!("{origin}: {message}"));
        }
        Ok(())
    }

    fn finish(mut self) -> Result<ExitCode> {
        self.out.message("summary", &self.summary)?;
        if !self.out.json() && self.summary.events + self.summary.errors > 1 {
            let s = &self.summary;
            self.out.line(&format!(
                "{} event{}: {} verified, {} failed, {} error{}",
                s.events,
                if s.events == 1 { "" } else { "s" },
                s.verified,
                s.failed,
                s.errors,
                if s.errors == 1 { "" } else { "s" },
            ))?;
        }
        if self.summary.events == 0 && self.summary.errors == 0 {
            warn("no events found in the input");
            self.exit.error();
        }
        Ok(self.exit.code())
    }
}

/// Reads a trust list: npub or 64-hex keys, one per line; `#` starts a comment.
fn load_trust(path: &PathBuf) -> Result<Vec<PublicKey>> {
    let bytes = read_capped(path, 1 << 20)?;
    let text =
        String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8", path.display()))?;
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        let key = if entry.starts_with("npub1") {
            nip19::decode_npub(entry)
                .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), n + 1))?
        } else {
            PublicKey::from_hex(entry)
                .ok()
                .filter(|k| k.xonly().is_ok())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{}:{}: not an npub or a 64-hex public key",
                        path.display(),
                        n + 1
                    )
                })?
        };
        keys.push(key);
    }
    if keys.is_empty() {
        bail!("trust list {} names no keys", path.display());
    }
    Ok(keys)
}
