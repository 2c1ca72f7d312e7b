//! Bulk ingest: JSON Lines files of events, and relay subscriptions.
//!
//! Every event goes through [`Index::ingest_json`]: verified, then indexed, or counted as
//! rejected. A forged event on a relay (edited content, a signature from another key) is
//! therefore never indexed, whatever the relay claims.

use std::io::BufRead;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use provenance::PublicKey;
use provenance::nostr::prelude::{Filter, Kind, Timestamp};
use provenance_relay::{Options, RelayReport, StreamItem};

use crate::error::Error;
use crate::index::{Index, Ingested};

/// Events per transaction in bulk ingest.
pub const BATCH: usize = 1000;

/// Longest line accepted in a JSON Lines file (events are at most 128 KiB by default).
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// What one ingest run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct IngestReport {
    /// Events verified and indexed.
    pub indexed: u64,
    /// Events already indexed.
    pub duplicate: u64,
    /// Events refused, with the first few reasons.
    pub rejected: u64,
    /// Up to 20 reasons for refusals, for the log.
    pub reasons: Vec<String>,
}

impl IngestReport {
    fn add(&mut self, outcome: Ingested) {
        match outcome {
            Ingested::Indexed => self.indexed += 1,
            Ingested::Duplicate => self.duplicate += 1,
            Ingested::Rejected { reason } => {
                self.rejected += 1;
                if self.reasons.len() < 20 {
                    self.reasons.push(reason);
                }
            }
        }
    }
}

/// Ingests a JSON Lines stream of events (one event object per line; blank lines skipped),
/// committing every [`BATCH`] events. A line longer than [`MAX_LINE_BYTES`] is rejected.
pub fn ingest_jsonl(index: &mut Index, mut reader: impl BufRead) -> Result<IngestReport, Error> {
    let reader: &mut dyn BufRead = &mut reader;
    let mut report = IngestReport::default();
    let mut line = Vec::new();
    loop {
        let mut done = false;
        index.in_batch(|index| {
            for _ in 0..BATCH {
                line.clear();
                let n = std::io::Read::take(&mut *reader, MAX_LINE_BYTES as u64 + 1)
                    .read_until(b'\n', &mut line)
                    .map_err(|source| Error::Io {
                        path: "input".into(),
                        source,
                    })?;
                if n == 0 {
                    done = true;
                    return Ok(());
                }
                if line.len() > MAX_LINE_BYTES {
                    // Skip the rest of the overlong line.
                    skip_line(&mut *reader)?;
                    report.add(index.reject(format!("line over {MAX_LINE_BYTES} bytes"))?);
                    continue;
                }
                let text = match std::str::from_utf8(&line) {
                    Ok(t) => t.trim(),
                    Err(_) => {
                        report.add(index.reject("line is not UTF-8".into())?);
                        continue;
                    }
                };
                if !text.is_empty() {
                    report.add(index.ingest_json(text)?);
                }
            }
            Ok(())
        })?;
        if done {
            return Ok(report);
        }
    }
}

fn skip_line(reader: &mut dyn BufRead) -> Result<(), Error> {
    loop {
        let buf = reader.fill_buf().map_err(|source| Error::Io {
            path: "input".into(),
            source,
        })?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            reader.consume(i + 1);
            return Ok(());
        }
        let n = buf.len();
        reader.consume(n);
    }
}

/// The filter for provenance events by these authors (all authors when empty), newer than
/// `since`.
pub fn provenance_filter(authors: &[PublicKey], since: Option<u64>) -> Filter {
    let mut filter = Filter::new().kind(Kind::Custom(provenance::event::KIND));
    if !authors.is_empty() {
        filter = filter.authors(authors.iter().copied());
    }
    if let Some(since) = since {
        filter = filter.since(Timestamp::from_secs(since));
    }
    filter
}

/// Queries `relays` once with `filter` and ingests every event they send. Returns what was
/// ingested and each relay's report (a relay that failed does not stop the others).
pub async fn ingest_from_relays(
    index: Arc<Mutex<Index>>,
    relays: &[String],
    filter: &Filter,
    opts: &Options,
) -> Result<(IngestReport, Vec<RelayReport>), Error> {
    let mut report = IngestReport::default();
    let mut relay_reports = Vec::new();
    let mut items = std::pin::pin!(provenance_relay::stream(relays, filter, opts));
    while let Some(item) = items.next().await {
        match item {
            StreamItem::Event(raw) => {
                let index = index.clone();
                let outcome = tokio::task::spawn_blocking(move || {
                    let mut index = index.lock().unwrap_or_else(|e| e.into_inner());
                    index.ingest_json(&raw.json)
                })
                .await
                .map_err(|e| Error::Corrupt {
                    detail: format!("ingest task failed: {e}"),
                })??;
                report.add(outcome);
            }
            StreamItem::End(r) => relay_reports.push(r),
        }
    }
    Ok((report, relay_reports))
}
