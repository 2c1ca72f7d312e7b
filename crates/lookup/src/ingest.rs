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
use rayon::prelude::*;
use rusqlite::{Connection, OpenFlags, params};

use crate::error::Error;
use crate::index::{Index, Ingested, Prepared};

/// Events per transaction in bulk ingest, verified together on every core.
pub const BATCH: usize = 4096;

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

/// Up to [`BATCH`] inputs: event JSON, or why an input is no event (an unreadable line); and
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
/// verifying on every core and committing every [`BATCH`] events. A line longer than
/// [`MAX_LINE_BYTES`] is rejected. Every event is found by lookups when this returns; a
/// crash before leaves an index that [`Index::open`] completes, and a rerun skips the events
/// already indexed.
pub fn ingest_jsonl(index: &mut Index, mut reader: impl BufRead) -> Result<IngestReport, Error> {
    let reader: &mut dyn BufRead = &mut reader;
    let mut line = Vec::new();
    let mut done = false;
    let chunks = std::iter::from_fn(|| {
        if done {
            return None;
        }
        let mut inputs = Vec::with_capacity(BATCH);
        while inputs.len() < BATCH {
            match read_line(reader, &mut line) {
                Ok(None) => {
                    done = true;
                    break;
                }
                Ok(Some(input)) => inputs.extend(input),
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

/// The next line: `None` at the end, `Some(None)` for a blank line.
#[allow(clippy::option_option)]
fn read_line(
    reader: &mut dyn BufRead,
    line: &mut Vec<u8>,
) -> Result<Option<Option<Result<String, String>>>, Error> {
    line.clear();
    let io = |source| Error::Io {
        path: "input".into(),
        source,
    };
    let n = std::io::Read::take(&mut *reader, MAX_LINE_BYTES as u64 + 1)
        .read_until(b'\n', line)
        .map_err(io)?;
    if n == 0 {
        return Ok(None);
    }
    if line.len() > MAX_LINE_BYTES {
        // Skip the rest of the overlong line.
        skip_line(reader)?;
        return Ok(Some(Some(Err(format!("line over {MAX_LINE_BYTES} bytes")))));
    }
    Ok(Some(match std::str::from_utf8(line) {
        Ok(t) if t.trim().is_empty() => None,
        Ok(t) => Some(Ok(t.trim().to_owned())),
        Err(_) => Some(Err("line is not UTF-8".into())),
    }))
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

/// Ingests the events of a `provenance serve` event store (its SQLite file, opened read-only)
/// that this index has not read yet: rows after the last one read, in the order the signer
/// stored them. Where it stopped is committed with each batch, so a rerun (or the next poll)
/// goes on from there. The store's schema is `events (request_id, event_id, created_at,
/// json)` with an implicit rowid (`provenance-signer`'s `store.rs`).
pub fn ingest_signer_db(index: &mut Index, path: &Path) -> Result<IngestReport, Error> {
    let store = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| not_a_store(path, &e))?;
    store
        .busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| not_a_store(path, &e))?;
    let name = format!(
        "signer-db:{}",
        std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.to_owned())
            .display()
    );
    let mut after = index.source_position(&name)?;
    let last: i64 = store
        .query_row("SELECT IFNULL(MAX(rowid), 0) FROM events", [], |r| r.get(0))
        .map_err(|e| not_a_store(path, &e))?;
    if last < after {
        // A store smaller than what was read: a new store under the same name. Read it all;
        // events already indexed count as duplicates.
        after = 0;
    }
    let mut stmt = store
        .prepare("SELECT rowid, json FROM events WHERE rowid > ?1 ORDER BY rowid LIMIT ?2")
        .map_err(|e| not_a_store(path, &e))?;
    let mut done = false;
    let chunks = std::iter::from_fn(|| {
        if done {
            return None;
        }
        let rows = stmt
            .query_map(params![after, BATCH as i64], |r| {
                let json = match r.get_ref(1)?.as_str() {
                    Ok(s) => Ok(s.to_owned()),
                    Err(_) => Err(format!(
                        "store row {}: json is not text",
                        r.get::<_, i64>(0)?
                    )),
                };
                Ok((r.get::<_, i64>(0)?, json))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                done = true;
                return Some(Err(not_a_store(path, &e)));
            }
        };
        done = rows.len() < BATCH;
        let last = rows.last()?.0;
        after = last;
        Some(Ok(Chunk {
            inputs: rows.into_iter().map(|(_, json)| json).collect(),
            position: Some((name.clone(), last)),
        }))
    });
    ingest_chunks(index, chunks)
}

fn not_a_store(path: &Path, e: &rusqlite::Error) -> Error {
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
    let mut buffer = Vec::new();
    loop {
        let item = items.next().await;
        let end = item.is_none();
        match item {
            Some(StreamItem::Event(raw)) => buffer.push(Ok(raw.json)),
            Some(StreamItem::End(r)) => relay_reports.push(r),
            None => {}
        }
        if buffer.len() >= BATCH || (end && !buffer.is_empty()) {
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
            let room = 20usize.saturating_sub(report.reasons.len());
            report.reasons.extend(part.reasons.into_iter().take(room));
        }
        if end {
            return Ok((report, relay_reports));
        }
    }
}
