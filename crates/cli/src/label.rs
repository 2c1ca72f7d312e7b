//! `provenance label`: publish an auditor's NIP-32 label (kind 1985) about a provenance event.
//!
//! The label event is built by [`provenance::label`]; this command finds the target (an event
//! file, whose id and signature are checked first, or an `nevent`/`note`/hex id), signs with
//! the auditor's key, prints the event and sends it to every `--relay`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use provenance::clock::SystemClock;
use provenance::event::{self, Limits, Verifier};
use provenance::label::{self, Label};
use provenance::verdict::Status;
use serde::Serialize;

use crate::input::{self, Source};
use crate::keyfile;
use crate::output::{Out, Status as Exit, warn};
use crate::sign::read_capped;

/// Publish an audit label (NIP-32, kind 1985) about a provenance event
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The event labelled: an event file (its id and signature are checked), or an
    /// nevent1.../note1.../nostr: URI or hex id
    #[arg(value_name = "EVENT")]
    target: String,
    /// The label, e.g. replay.match, weights.match, weights.mismatch, output.match
    /// (repeatable; a-z, 0-9, '.', '_', '-')
    #[arg(long = "label", value_name = "VALUE", required = true)]
    labels: Vec<String>,
    /// Free-text detail: what was compared, expected vs found
    #[arg(long, value_name = "TEXT", default_value = "")]
    detail: String,
    /// Signing key file [default: $XDG_CONFIG_HOME/provenance/key.nsec]
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Relay to publish to (repeatable); without one the event is only printed
    #[arg(long = "relay", value_name = "URL")]
    relays: Vec<String>,
    /// Relay where the labelled event can be found, for the label's `e` tag [default: the
    /// nevent's first relay hint]
    #[arg(long, value_name = "URL")]
    relay_hint: Option<String>,
    /// Seconds each relay has to answer
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    timeout: u64,
    /// Print JSON Lines instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct LabelMessage {
    event: serde_json::Value,
    relays: Vec<RelayAnswer>,
}

/// What one relay answered to a published label.
#[derive(Serialize)]
pub(crate) struct RelayAnswer {
    pub(crate) relay: String,
    pub(crate) accepted: bool,
    pub(crate) message: String,
}

/// Sends a signed label event to every relay (none: nothing is sent) and collects their
/// answers; a relay that fails is an answer that was not accepted.
pub(crate) fn publish(
    signed: &provenance::Event,
    relays: &[String],
    timeout: Duration,
) -> Result<Vec<RelayAnswer>> {
    if relays.is_empty() {
        return Ok(Vec::new());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let opts = provenance_relay::Options {
        eose_timeout: timeout,
        ..provenance_relay::Options::default()
    };
    let reports = runtime.block_on(provenance_relay::publish(relays, signed, &opts));
    Ok(reports
        .into_iter()
        .map(|report| {
            let (accepted, message) = match report.outcome {
                Ok(ack) => (ack.accepted, ack.message),
                Err(e) => (false, e.to_string()),
            };
            RelayAnswer {
                relay: report.relay,
                accepted,
                message,
            }
        })
        .collect())
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let (target, author, hint) = match input::classify(&args.target) {
        Err(message) => bail!("{}: {message}", input::redact(&args.target)),
        Ok(Source::Remote { id, author, relays }) => (id, author, relays.into_iter().next()),
        Ok(Source::Files(paths)) => {
            let [path] = paths.as_slice() else {
                bail!("{}: expected one event file", args.target);
            };
            let bytes = read_capped(path, Limits::default().max_event_bytes as u64)?;
            let ev = event::parse_event_bytes(bytes.trim_ascii(), &Limits::default())
                .with_context(|| format!("{}", path.display()))?;
            let (computed, _, sig) = Verifier::new().check_id_and_sig(&ev);
            if computed != ev.id || sig.status != Status::Proven {
                bail!(
                    "{}: the event's id or signature does not verify; refusing to label it",
                    path.display()
                );
            }
            (ev.id, Some(ev.pubkey), None)
        }
    };
    let key_path = match &args.key {
        Some(p) => p.clone(),
        None => keyfile::default_path()?,
    };
    let keys = keyfile::load(&key_path)?;
    let label = Label {
        target,
        target_author: author,
        relay_hint: args.relay_hint.clone().or(hint),
        values: args.labels.clone(),
        detail: args.detail.clone(),
    };
    let signed = label.sign(&keys, &SystemClock)?;
    let mut exit = Exit::default();
    let answers = publish(&signed, &args.relays, Duration::from_secs(args.timeout))?;
    if answers.iter().any(|a| !a.accepted) {
        exit.error();
    }
    let mut out = Out::new(args.json);
    if args.json {
        out.message(
            "label",
            &LabelMessage {
                event: serde_json::from_str(&signed.as_json())?,
                relays: answers,
            },
        )?;
    } else {
        out.raw(&signed.as_json())?;
        for a in &answers {
            let verdict = if a.accepted { "accepted" } else { "REFUSED" };
            warn(&format!("{}: {verdict} {}", a.relay, a.message));
        }
        warn(&format!(
            "label {} ({}) about {target} by {}",
            label.values.join(", "),
            label::NAMESPACE,
            provenance::nip19::encode_npub(&keys.public_key()),
        ));
    }
    Ok(exit.code())
}
