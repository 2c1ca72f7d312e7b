//! Bulk ingest: JSON Lines files of events, a signer's event store, and relay subscriptions.
//!
//! Every event is verified ([`Prepared::verify_many_json`]: on every core, each thread checking
//! the signatures of a batch of events together) before it is indexed, or counted as rejected.
//! A forged event on a relay (edited content, a signature from another key) is therefore never
//! indexed, whatever the relay claims.

use std::io::BufRead;
use std::path::Path;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use provenance::PublicKey;
use provenance::event;
use provenance::nostr::prelude::{Filter, Kind, Timestamp};
use provenance_relay::{Options, RelayReport, StreamItem};
use provenance_signer::store::{StoreError, StoreReader};
use provenance_verify::source::{Line, read_line_capped};
use rayon::prelude::*;

use crate::error::Error;
use crate::index::{Index, Ingested, Prepared};

/// Most events per transaction in bulk ingest, verified together on every core.
pub const BATCH: usize = 4096;

/// Most bytes of event JSON per transaction in bulk ingest: a batch ends once it holds this
/// many (or [`BATCH`] events, whichever comes first), so that large events from a file, a
/// store or a followed relay do not make a batch hold up to [`BATCH`] times 512 KiB. Ingest
/// holds about three batches at once (one read, one verified, one being written).
pub const BATCH_BYTES: usize = 16 << 20;

/// Where bulk ingest cuts its batches: after `events` events or once they hold `bytes` bytes
/// of event JSON, whichever comes first; a batch holds at least one event, so one event
/// larger than `bytes` is a batch of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most events per batch.
    pub events: usize,
    /// Bytes of event JSON after which a batch ends.
    pub bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            events: BATCH,
            bytes: BATCH_BYTES,
        }
    }
}

impl BatchLimits {
    /// Whether a batch of `events` events holding `bytes` bytes is full.
    fn full(&self, events: usize, bytes: usize) -> bool {
        events >= self.events.max(1) || bytes >= self.bytes
    }
}

/// Longest line accepted in a JSON Lines file (events are at most 512 KiB by default).
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
    /// Batches read, verified and committed (one transaction each); see [`BatchLimits`].
    pub batches: u64,
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

/// Up to [`BatchLimits`] inputs: event JSON, or why an input is no event (an unreadable line); and
/// where the source stands once they are indexed.
struct Chunk {
    inputs: Vec<Result<String, String>>,
    position: Option<(String, i64)>,
}

/// Verifies chunks on every core (rayon), in batches of [`verify_batch`] events whose
/// signatures are checked together, while one thread writes the previous chunk, each in one
/// transaction; flushes the keys at the end. The order of the inputs is kept.
fn ingest_chunks(
    index: &mut Index,
    chunks: impl Iterator<Item = Result<Chunk, Error>>,
) -> Result<IngestReport, Error> {
    type Verified = (Vec<Result<Prepared, String>>, Option<(String, i64)>);
    let (send, receive) = std::sync::mpsc::sync_channel::<Verified>(1);
    // Verifiers keep the keys they have lifted; the pool keeps them for the whole run.
    let verifiers = Mutex::new(Vec::<event::Verifier>::new());
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> Result<IngestReport, Error> {
            let mut report = IngestReport::default();
            for (prepared, position) in receive {
                report.batches += 1;
                index.in_batch(|index| {
                    for p in prepared {
                        report.add(match p {
                            Ok(p) => index.add(p)?,
                            Err(reason) => index.reject(reason)?,
                        });
                    }
                    if let Some((name, at)) = &position {
                        index.set_source_position(name, *at)?;
                    }
                    Ok(())
                })?;
            }
            index.flush()?;
            Ok(report)
        });
        let mut read_error = None;
        for chunk in chunks {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    read_error = Some(e);
                    break;
                }
            };
            let size = provenance::event::verify_batch_size(
                chunk.inputs.len(),
                rayon::current_num_threads(),
            );
            let prepared: Vec<Result<Prepared, String>> = chunk
                .inputs
                .into_par_iter()
                .chunks(size)
                .flat_map_iter(|batch| {
                    let mut verifier = verifiers
                        .lock()
                        .ok()
                        .and_then(|mut pool| pool.pop())
                        .unwrap_or_default();
                    let prepared = Prepared::verify_many_json(&mut verifier, batch);
                    if let Ok(mut pool) = verifiers.lock() {
                        pool.push(verifier);
                    }
                    prepared
                })
                .collect();
            if send.send((prepared, chunk.position)).is_err() {
                // The writer stopped on an error, which join returns.
                break;
            }
        }
        drop(send);
        let report = writer.join().map_err(|_| Error::Corrupt {
            detail: "the index writer panicked".into(),
        })??;
        match read_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    })
}

/// Ingests a JSON Lines stream of events (one event object per line; blank lines skipped),
/// verifying on every core and committing in batches of the default [`BatchLimits`]. A line
/// longer than [`MAX_LINE_BYTES`] is rejected. Every event is found by lookups when this
/// returns; a crash before leaves an index that [`Index::open`] completes, and a rerun skips
/// the events already indexed.
pub fn ingest_jsonl(index: &mut Index, reader: impl BufRead) -> Result<IngestReport, Error> {
    ingest_jsonl_with(index, reader, BatchLimits::default())
}

/// [`ingest_jsonl`] with batches cut at `limits`.
pub fn ingest_jsonl_with(
    index: &mut Index,
    mut reader: impl BufRead,
    limits: BatchLimits,
) -> Result<IngestReport, Error> {
    let reader: &mut dyn BufRead = &mut reader;
    let mut line = Vec::new();
    let mut done = false;
    let chunks = std::iter::from_fn(|| {
        if done {
            return None;
        }
        let mut inputs = Vec::new();
        let mut bytes = 0;
        while !limits.full(inputs.len(), bytes) {
            match read_line(reader, &mut line) {
                Ok(None) => {
                    done = true;
                    break;
                }
                Ok(Some(input)) => {
                    bytes += input
                        .as_ref()
                        .map_or(0, |i| i.as_ref().map_or_else(String::len, String::len));
                    inputs.extend(input);
                }
                Err(e) => {
                    done = true;
                    return Some(Err(e));
                }
            }
        }
        (!inputs.is_empty()).then_some(Ok(Chunk {
            inputs,
            position: None,
        }))
    });
    ingest_chunks(index, chunks)
}

/// The next line: `None` at the end, `Some(None)` for a blank line. Read by the capped line
/// reader every JSON Lines input shares ([`provenance_verify::source::read_line_capped`]).
#[allow(clippy::option_option)]
fn read_line(
    reader: &mut dyn BufRead,
    line: &mut Vec<u8>,
) -> Result<Option<Option<Result<String, String>>>, Error> {
    let read = read_line_capped(reader, MAX_LINE_BYTES, line).map_err(|source| Error::Io {
        path: "input".into(),
        source,
    })?;
    match read {
        Line::End => return Ok(None),
        Line::TooLong => return Ok(Some(Some(Err(format!("line over {MAX_LINE_BYTES} bytes"))))),
        Line::Read => {}
    }
    Ok(Some(match std::str::from_utf8(line) {
        Ok(t) if t.trim().is_empty() => None,
        Ok(t) => Some(Ok(t.trim().to_owned())),
        Err(_) => Some(Err("line is not UTF-8".into())),
    }))
}

/// Ingests the events of a `provenance serve` event store (its SQLite file, opened read-only)
/// that this index has not read yet: rows after the last one read, in the order the signer
/// stored them. Where it stopped is committed with each batch, so a rerun (or the next poll)
/// goes on from there. The store is read through the signer's own reader
/// ([`provenance_signer::store::StoreReader`]), not its schema. Batches are cut at the
/// default [`BatchLimits`].
pub fn ingest_signer_db(index: &mut Index, path: &Path) -> Result<IngestReport, Error> {
    ingest_signer_db_with(index, path, BatchLimits::default())
}

/// [`ingest_signer_db`] with batches cut at `limits`.
pub fn ingest_signer_db_with(
    index: &mut Index,
    path: &Path,
    limits: BatchLimits,
) -> Result<IngestReport, Error> {
    let store = StoreReader::open(path).map_err(|e| not_a_store(path, &e))?;
    let name = format!(
        "signer-db:{}",
        std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.to_owned())
            .display()
    );
    let mut after = index.source_position(&name)?;
    let last = store.last_row().map_err(|e| not_a_store(path, &e))?;
    if last < after {
        // A store smaller than what was read: a new store under the same name. Read it all;
        // events already indexed count as duplicates.
        after = 0;
    }
    let mut done = false;
    let chunks = std::iter::from_fn(|| {
        if done {
            return None;
        }
        let rows = match store.events_since_capped(after, limits.events.max(1), limits.bytes) {
            Ok(rows) => rows,
            Err(e) => {
                done = true;
                return Some(Err(not_a_store(path, &e)));
            }
        };
        // An empty answer is the end; a short one may be cut at the byte cap.
        let last = rows.last()?.row;
        after = last;
        Some(Ok(Chunk {
            inputs: rows
                .into_iter()
                .map(|r| {
                    r.json
                        .ok_or_else(|| format!("store row {}: json is not text", r.row))
                })
                .collect(),
            position: Some((name.clone(), last)),
        }))
    });
    ingest_chunks(index, chunks)
}

fn not_a_store(path: &Path, e: &StoreError) -> Error {
    Error::Source {
        detail: format!(
            "{} is not a readable provenance signer store: {e}",
            path.display()
        ),
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
/// ingested and each relay's report (a relay that failed does not stop the others). Batches
/// are cut at the default [`BatchLimits`].
pub async fn ingest_from_relays(
    index: Arc<Mutex<Index>>,
    relays: &[String],
    filter: &Filter,
    opts: &Options,
) -> Result<(IngestReport, Vec<RelayReport>), Error> {
    ingest_from_relays_with(index, relays, filter, opts, BatchLimits::default()).await
}

/// [`ingest_from_relays`] with batches cut at `limits`: events wait in memory until a batch is
/// full or the relays are done.
pub async fn ingest_from_relays_with(
    index: Arc<Mutex<Index>>,
    relays: &[String],
    filter: &Filter,
    opts: &Options,
    limits: BatchLimits,
) -> Result<(IngestReport, Vec<RelayReport>), Error> {
    let mut report = IngestReport::default();
    let mut relay_reports = Vec::new();
    let mut items = std::pin::pin!(provenance_relay::stream(relays, filter, opts));
    let mut buffer = Vec::new();
    let mut bytes = 0;
    loop {
        let item = items.next().await;
        let end = item.is_none();
        match item {
            Some(StreamItem::Event(raw)) => {
                bytes += raw.json.len();
                buffer.push(Ok(raw.json));
            }
            Some(StreamItem::End(r)) => relay_reports.push(r),
            None => {}
        }
        if limits.full(buffer.len(), bytes) || (end && !buffer.is_empty()) {
            bytes = 0;
            let inputs = std::mem::take(&mut buffer);
            let index = index.clone();
            let part = tokio::task::spawn_blocking(move || {
                let mut index = index.lock().unwrap_or_else(|e| e.into_inner());
                let chunk = Chunk {
                    inputs,
                    position: None,
                };
                ingest_chunks(&mut index, std::iter::once(Ok(chunk)))
            })
            .await
            .map_err(|e| Error::Corrupt {
                detail: format!("ingest task failed: {e}"),
            })??;
            report.indexed += part.indexed;
            report.duplicate += part.duplicate;
            report.rejected += part.rejected;
            report.batches += part.batches;
            let room = 20usize.saturating_sub(report.reasons.len());
            report.reasons.extend(part.reasons.into_iter().take(room));
        }
        if end {
            return Ok((report, relay_reports));
        }
    }
}
