//! The SQLite index: verified provenance events, keyed by their output hashes and fingerprints.
//!
//! # Tables (migration 2)
//!
//! | table | holds |
//! |---|---|
//! | `migrations` | one row per applied migration: version, Unix time applied |
//! | `events` | every indexed event, compactly ([`crate::codec`]): binary id and signature, author number, created_at, tags and content compressed, the number and largest of its fingerprints |
//! | `authors` | public key of each author number |
//! | `ids` | first 8 bytes of the event id → event |
//! | `exact` | first 8 bytes of the output SHA-256 → event |
//! | `normalized` | first 8 bytes of the normalised-text SHA-256 → event |
//! | `fingerprints` | fingerprint (as a signed 64-bit integer, same bits) → event |
//! | `counters` | ingest counters: indexed, duplicate, rejected |
//! | `state` | `built_seq` (events up to it have all their keys written), `newest_created_at` |
//! | `sources` | how far each signer store has been read (`ingest --signer-db`) |
//!
//! Keys are 8-byte prefixes of the 32-byte hashes: a probe may return an event whose full
//! hash differs (by chance, about one in 2^64, or by design, for about 2^32 work), so every
//! candidate is compared with the full value before it is used ([`Index::by_id`],
//! [`crate::lookup`]).
//!
//! # Writing
//!
//! Only events that [`provenance::event::verify`] accepts are indexed; the rest are counted as
//! rejected. [`Index::add`] appends the event row in the current transaction and keeps its
//! keys in memory; [`Index::flush`] sorts the kept keys and writes them into the key tables
//! in order, so that a bulk load touches each page of a key table once per flush instead of
//! once per key, then records `built_seq`. A crash between the two leaves committed events
//! whose keys are missing: [`Index::open`] finds them (`seq > built_seq`), takes their keys
//! from the stored events and writes them, so the index is always complete once open. Until a
//! flush, a kept event is recognised as a duplicate but is not found by lookups nor by id.
//!
//! The index is not trusted when answering: events are verified again before they are
//! returned ([`crate::lookup`]).
//!
//! Where each part lives: `schema` (migrations), `prepare` (verifying and keying events on
//! any thread), `write` (the single writer: batches, pending fingerprints, flushes, counters)
//! and `read` (the lookups by key, sequence and id).

use std::collections::HashMap;
use std::path::Path;

use provenance::event::{self, Limits};
use provenance::fingerprint::{self, FingerprintHash};
use provenance::{Event, EventId};
use rusqlite::{Connection, OptionalExtension, params};

use crate::codec;
use crate::error::Error;

mod prepare;
mod read;
mod schema;
mod write;

pub use self::prepare::*;
use self::read::*;
use self::schema::*;
use self::write::*;

/// The key of a 32-byte hash or id: its first 8 bytes, as a signed integer.
fn prefix(hash: &[u8]) -> i64 {
    let mut b = [0u8; 8];
    let n = hash.len().min(8);
    b[..n].copy_from_slice(&hash[..n]);
    i64::from_be_bytes(b)
}

/// Key-table rows waiting for [`Index::flush`] past this many fingerprints by default (about
/// 16 bytes each in memory).
pub const DEFAULT_PENDING_FINGERPRINTS: usize = 32 << 20;

/// Rows written per transaction by a flush outside a batch, so that the write-ahead log stays
/// small during a big flush.
const FLUSH_CHUNK: usize = 4 << 20;

/// What happened to one event handed to [`Index::add`] or [`Index::ingest_json`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ingested {
    /// Verified and indexed.
    Indexed,
    /// Already in the index (same id); nothing changed.
    Duplicate,
    /// Not indexed: it did not parse, or a claim failed (forged id or signature, wrong kind,
    /// invalid record, inconsistent tags). The codes or the parse error say why.
    Rejected {
        /// Why, for the log.
        reason: String,
    },
}

/// Ingest counters, kept in the index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Events indexed.
    pub indexed: u64,
    /// Events seen again.
    pub duplicate: u64,
    /// Events refused.
    pub rejected: u64,
}

/// An event found by a lookup, as stored.
#[derive(Clone, Debug)]
pub struct Stored {
    /// Internal sequence number.
    pub seq: i64,
    /// The event JSON exactly as received.
    pub json: String,
    /// How many fingerprints its record carries.
    pub fingerprints: u32,
    /// Its largest fingerprint, when its set was capped (at [`fingerprint::MAX_HASHES`]).
    pub fingerprint_max: Option<FingerprintHash>,
}

/// The index, one SQLite database.
pub struct Index {
    conn: Connection,
    batch: usize,
    // Held across events: it caches parsed keys (one operator signs many events).
    verifier: event::Verifier,
    authors: Authors,
    pending: Pending,
    pending_limit: usize,
    delta: Counters,
    newest: Option<i64>,
}

impl Index {
    /// Opens (creating if needed) the index at `path`, applies pending migrations, and writes
    /// the keys of events a crash left without them.
    pub fn open(path: &Path) -> Result<Self, Error> {
        Self::from_connection(Connection::open(path)?)
    }

    /// An index in memory, for tests.
    pub fn open_in_memory() -> Result<Self, Error> {
        Self::from_connection(Connection::open_in_memory()?)
    }

    fn from_connection(mut conn: Connection) -> Result<Self, Error> {
        // WAL: readers are not blocked by a writer; NORMAL sync is durable at checkpoints,
        // which is enough for an index that can be rebuilt from its sources.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // 256 MiB of page cache: the key tables are the hot part at scale.
        conn.pragma_update(None, "cache_size", -262_144)?;
        // A big flush grows the log; give the space back after it.
        conn.pragma_update(None, "journal_size_limit", 64 << 20)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
        )?;
        let applied: i64 = conn.query_row("SELECT COUNT(*) FROM migrations", [], |r| r.get(0))?;
        if applied as usize > MIGRATIONS.len() {
            return Err(Error::SchemaTooNew {
                found: applied as u64,
                known: MIGRATIONS.len() as u64,
            });
        }
        for (version, migration) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
            let tx = conn.transaction()?;
            match migration {
                Migration::Sql(sql) => tx.execute_batch(sql)?,
                Migration::Code(sql, code) => {
                    tx.execute_batch(sql)?;
                    code(&tx)?;
                }
            }
            tx.execute(
                "INSERT INTO migrations VALUES (?1, unixepoch())",
                params![version as i64 + 1],
            )?;
            tx.commit()?;
        }
        let newest: i64 = conn.query_row(
            "SELECT value FROM state WHERE name = 'newest_created_at'",
            [],
            |r| r.get(0),
        )?;
        let mut index = Self {
            conn,
            batch: 0,
            verifier: event::Verifier::new(),
            authors: Authors::default(),
            pending: Pending::default(),
            pending_limit: DEFAULT_PENDING_FINGERPRINTS,
            delta: Counters::default(),
            newest: (newest >= 0).then_some(newest),
        };
        index.recover()?;
        Ok(index)
    }

    /// Sets how many fingerprints [`Index::add`] keeps in memory before it flushes (at least
    /// one event's worth). More memory means fewer, larger sorted writes.
    pub fn set_pending_limit(&mut self, fingerprints: usize) {
        self.pending_limit = fingerprints.max(1);
    }

    /// Writes the keys of events stored after the last complete flush (a crash between an
    /// event's commit and its keys' flush), taking them from the stored events.
    fn recover(&mut self) -> Result<(), Error> {
        let built = self.state("built_seq")?;
        let mut stmt = self.conn.prepare(
            "SELECT e.seq, e.id, a.pubkey, e.created_at, e.sig, e.body FROM events e \
             JOIN authors a ON a.n = e.author WHERE e.seq > ?1 ORDER BY e.seq",
        )?;
        let mut rows = stmt.query([built])?;
        let mut stored = Vec::new();
        while let Some(r) = rows.next()? {
            stored.push((r.get::<_, i64>(0)?, stored_json(r, 1)?));
        }
        drop(rows);
        drop(stmt);
        // The keys come from the verified record, as at ingest.
        let mut found = Vec::new();
        for batch in stored.chunks(provenance::event::MAX_VERIFY_BATCH) {
            let inputs = batch.iter().map(|(_, json)| Ok::<_, String>(json));
            let prepared = Prepared::verify_many_json(&mut self.verifier, inputs);
            for ((seq, _), p) in batch.iter().zip(prepared) {
                if let Ok(p) = p {
                    found.push((*seq, p));
                }
            }
        }
        for (seq, p) in &found {
            self.pending.push(*seq, p, self.pending_limit);
        }
        let max: i64 = self
            .conn
            .query_row("SELECT IFNULL(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
        if max > built {
            self.flush_upto(max)?;
        }
        Ok(())
    }

    fn state(&self, name: &str) -> Result<i64, Error> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM state WHERE name = ?1")?
            .query_row([name], |r| r.get(0))?)
    }

    /// The schema version (number of applied migrations).
    pub fn schema_version(&self) -> Result<u64, Error> {
        let v: i64 = self
            .conn
            .query_row("SELECT MAX(version) FROM migrations", [], |r| r.get(0))?;
        Ok(v as u64)
    }
}
