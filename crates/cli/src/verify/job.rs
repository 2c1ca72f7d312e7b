//! `provenance verify` on a NIP-90 job result (kinds 6000-6999): the result is read and
//! checked ([`provenance_verify::job`]), then its provenance event is verified with the
//! result's content as the output evidence.

use std::path::Path;
use std::time::Duration;

use provenance::nip19::{self, Nip19};
use provenance::nostr::prelude::Filter;
use provenance::{Event, EventId};
use provenance_verify::job::{self, JobResult, JobResultError};
use provenance_verify::source::read_capped;

use crate::input::{self, Source};

/// The largest job result file read: 4 MiB (results carry text answers).
const MAX_RESULT_BYTES: u64 = 4 << 20;

/// A job result given as the one input.
pub(super) struct JobInput {
    /// The input as given.
    pub input: String,
    /// The result, read and checked.
    pub result: JobResult,
    /// Where to look for its provenance event: the `q` tag's hint, the input's hints, then
    /// `--relay`.
    pub relays: Vec<String>,
}

/// Why a job result is not checked further.
pub(super) enum Refused {
    /// Evidence that fails (a forged result, an `x` that does not match): exit 1.
    Failed(String),
    /// Unusable input (not found, not an event, names no event): exit 2.
    Unusable(String),
}

/// The job result named by `input`, if it names one: a file holding one event of a result
/// kind, or a `nevent` whose kind is one (fetched from its hints and `relays`). `Ok(None)`
/// for every other input, which the pipeline verifies as usual.
pub(super) fn detect(
    input: &str,
    relays: &[String],
    timeout: Duration,
    runtime: &tokio::runtime::Runtime,
) -> Result<Option<JobInput>, Refused> {
    let (json, mut hints) = match input::classify(input) {
        Ok(Source::Files(paths)) if paths.len() == 1 && paths[0].is_file() => {
            match from_file(&paths[0]) {
                Some(json) => (json, Vec::new()),
                None => return Ok(None),
            }
        }
        Ok(Source::Remote {
            id, relays: hints, ..
        }) => {
            let is_result = matches!(
                nip19::decode_uri(input.trim()),
                Ok(Nip19::Nevent(n)) if n.kind.is_some_and(|k| job::is_result_kind(k as u16) && k < 65_536)
            );
            if !is_result {
                return Ok(None);
            }
            let mut all = hints.clone();
            all.extend(relays.iter().cloned());
            all.dedup();
            if all.is_empty() {
                return Err(Refused::Unusable(format!(
                    "{input}: no relay to ask: the input has no relay hints; pass --relay URL"
                )));
            }
            let json = runtime.block_on(fetch(id, &all, timeout)).ok_or_else(|| {
                Refused::Unusable(format!(
                    "{input}: job result {id} not found on {} relay{}",
                    all.len(),
                    if all.len() == 1 { "" } else { "s" }
                ))
            })?;
            (json, hints)
        }
        _ => return Ok(None),
    };
    let result = job::read_result(&json).map_err(|e| match e {
        JobResultError::BadEvent | JobResultError::HashMismatch { .. } => {
            Refused::Failed(format!("{input}: {e}"))
        }
        other => Refused::Unusable(format!("{input}: {other}")),
    })?;
    let mut all = Vec::new();
    all.extend(result.relay.clone());
    all.append(&mut hints);
    all.extend(relays.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    all.retain(|r| seen.insert(r.clone()));
    Ok(Some(JobInput {
        input: input.to_owned(),
        result,
        relays: all,
    }))
}

/// The file's text when it holds one event whose kind is a job result.
fn from_file(path: &Path) -> Option<String> {
    let bytes = read_capped(path, MAX_RESULT_BYTES).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let value: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
    let kind = value.get("kind")?.as_u64()?;
    (kind < 65_536 && job::is_result_kind(kind as u16)).then(|| text.trim().to_owned())
}

/// The first copy of event `id` on `relays` whose id and signature verify.
async fn fetch(id: EventId, relays: &[String], timeout: Duration) -> Option<String> {
    let options = provenance_relay::Options {
        eose_timeout: timeout,
        max_events_per_relay: 16,
        ..provenance_relay::Options::default()
    };
    let found = provenance_relay::fetch(relays, &Filter::new().id(id), &options).await;
    found.events.into_iter().find_map(|raw| {
        let event = Event::from_json(&raw.json).ok()?;
        (event.id == id && event.verify().is_ok()).then_some(raw.json)
    })
}

/// The line said before the provenance event is checked.
pub(super) fn describe(job: &JobInput) -> String {
    let result = &job.result;
    let author = provenance::nostr::nips::nip19::ToBech32::to_bech32(&result.event.pubkey)
        .unwrap_or_else(|_| result.event.pubkey.to_hex());
    let answers = result
        .job
        .map(|id| format!(", answering job {id}"))
        .unwrap_or_default();
    let content = if result.output.is_some() {
        "its content matches its x tag"
    } else {
        "its content is encrypted (give the decrypted text as --output to check it)"
    };
    format!(
        "{}: job result {} (kind {}) by {author}{answers}: signature valid, {content}; checking its provenance event {}",
        job.input,
        result.event.id,
        result.event.kind.as_u16(),
        result.provenance
    )
}

impl Refused {
    /// The message and exit code.
    pub(super) fn into_parts(self) -> (String, u8) {
        match self {
            Self::Failed(m) => (m, 1),
            Self::Unusable(m) => (m, crate::output::EXIT_ERROR),
        }
    }
}
