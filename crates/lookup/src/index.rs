//! The SQLite index: verified provenance events, keyed by their output hashes and fingerprints.
//!
//! # Tables (migration 1)
//!
//! | table | holds |
//! |---|---|
//! | `migrations` | one row per applied migration: version, Unix time applied |
//! | `events` | every indexed event: id, author, created_at, model name, the event JSON exactly as received, the number and largest of its fingerprints |
//! | `exact` | output SHA-256 → event |
//! | `normalized` | normalised-text SHA-256 → event |
//! | `fingerprints` | fingerprint (as a signed 64-bit integer, same bits) → event |
//! | `counters` | ingest counters: indexed, duplicate, rejected |
//!
//! Only events that [`provenance::event::verify`] accepts are indexed; the rest are counted as
//! rejected. The index is not trusted when answering: events are verified again before they
//! are returned ([`crate::lookup`]).

use std::path::Path;

use provenance::event::{self, Limits};
use provenance::fingerprint::{self, FingerprintHash};
use provenance::{Event, EventId};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Error;

/// The migrations, in order; each runs once, in a transaction, and is recorded in
/// `migrations`. Never edit a published one: add another.
const MIGRATIONS: &[&str] = &[r"
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    author BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    model TEXT NOT NULL,
    json TEXT NOT NULL,
    fp_count INTEGER NOT NULL,
    fp_max INTEGER
);
CREATE TABLE exact (hash BLOB NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (hash, seq)) WITHOUT ROWID;
CREATE TABLE normalized (hash BLOB NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (hash, seq)) WITHOUT ROWID;
CREATE TABLE fingerprints (hash INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (hash, seq)) WITHOUT ROWID;
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO counters VALUES ('indexed', 0), ('duplicate', 0), ('rejected', 0);
"];

/// What happened to one event handed to [`Index::ingest`].
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
    /// Its largest fingerprint, when it has any.
    pub fingerprint_max: Option<FingerprintHash>,
}

/// The index, one SQLite database.
pub struct Index {
    conn: Connection,
    limits: Limits,
    batch: usize,
    // Held across events: it caches parsed keys (one operator signs many events).
    verifier: event::Verifier,
}

impl Index {
    /// Opens (creating if needed) the index at `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self, Error> {
        Self::from_connection(Connection::open(path)?)
    }

    /// An index in memory, for tests.
    pub fn open_in_memory() -> Result<Self, Error> {
        Self::from_connection(Connection::open_in_memory()?)
    }

    fn from_connection(mut conn: Connection) -> Result<Self, Error> {
        // WAL: readers are not blocked by a writer; NORMAL sync is durable at checkpoints,
        // which is enough for an index that can be rebuilt from relays.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // 64 MiB of page cache: the fingerprint B-tree is the hot part at scale.
        conn.pragma_update(None, "cache_size", -65536)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
        )?;
        let applied: i64 = conn.query_row("SELECT COUNT(*) FROM migrations", [], |r| r.get(0))?;
        for (version, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO migrations VALUES (?1, unixepoch())",
                params![version as i64 + 1],
            )?;
            tx.commit()?;
        }
        if applied as usize > MIGRATIONS.len() {
            return Err(Error::SchemaTooNew {
                found: applied as u64,
                known: MIGRATIONS.len() as u64,
            });
        }
        Ok(Self {
            conn,
            limits: Limits::default(),
            batch: 0,
            verifier: event::Verifier::new(),
        })
    }

    /// The schema version (number of applied migrations).
    pub fn schema_version(&self) -> Result<u64, Error> {
        let v: i64 = self
            .conn
            .query_row("SELECT MAX(version) FROM migrations", [], |r| r.get(0))?;
        Ok(v as u64)
    }

    /// Parses, verifies and indexes one event given as JSON text.
    pub fn ingest_json(&mut self, json: &str) -> Result<Ingested, Error> {
        match event::parse_event(json, &self.limits) {
            Ok(ev) => self.ingest_parsed(&ev, json),
            Err(e) => self.count_rejected(format!("unparsable event: {e}")),
        }
    }

    /// Verifies and indexes one parsed event (`json` is its text as received, stored as is).
    pub fn ingest_parsed(&mut self, ev: &Event, json: &str) -> Result<Ingested, Error> {
        let verification = self.verifier.verify_expected(ev, &event::Expect::default());
        let Some(verified) = verification.verified().filter(|_| verification.holds()) else {
            let failed: Vec<&str> = verification
                .claims()
                .iter()
                .filter(|c| c.status == provenance::verdict::Status::Failed)
                .map(|c| c.code.as_str())
                .collect();
            return self.count_rejected(format!("{}: {}", ev.id, failed.join(", ")));
        };
        let record = verified.record();
        let output = &record.output;
        let fps: &[FingerprintHash] = match &output.fingerprints {
            // Only the rule this index compares; other rules are indexed without them.
            Some(f) if f.rule == fingerprint::RULE => &f.hashes,
            _ => &[],
        };
        // A savepoint, not a transaction: it nests inside [`Index::in_batch`].
        let tx = self.conn.savepoint()?;
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO events (id, author, created_at, model, json, fp_count, fp_max) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                verified.id().as_bytes().as_slice(),
                verified.author().to_bytes().as_slice(),
                verified.created_at().as_secs() as i64,
                record.model.name,
                json,
                fps.len() as i64,
                fps.iter().max().map(|h| h.as_u64() as i64),
            ],
        )?;
        if inserted == 0 {
            tx.execute(
                "UPDATE counters SET value = value + 1 WHERE name = 'duplicate'",
                [],
            )?;
            tx.commit()?;
            return Ok(Ingested::Duplicate);
        }
        let seq = tx.last_insert_rowid();
        tx.execute(
            "INSERT OR IGNORE INTO exact VALUES (?1, ?2)",
            params![output.sha256.as_bytes().as_slice(), seq],
        )?;
        if let Some(n) = &output.normalized {
            if n.rule == provenance::normalize::RULE {
                tx.execute(
                    "INSERT OR IGNORE INTO normalized VALUES (?1, ?2)",
                    params![n.sha256.as_bytes().as_slice(), seq],
                )?;
            }
        }
        {
            let mut stmt =
                tx.prepare_cached("INSERT OR IGNORE INTO fingerprints VALUES (?1, ?2)")?;
            for h in fps {
                // Stored as i64 with the same 64 bits.
                stmt.execute(params![h.as_u64() as i64, seq])?;
            }
        }
        tx.execute(
            "UPDATE counters SET value = value + 1 WHERE name = 'indexed'",
            [],
        )?;
        tx.commit()?;
        Ok(Ingested::Indexed)
    }

    /// Counts an input that is not an event at all (an unreadable line) as rejected.
    pub fn reject(&mut self, reason: String) -> Result<Ingested, Error> {
        self.count_rejected(reason)
    }

    fn count_rejected(&mut self, reason: String) -> Result<Ingested, Error> {
        self.conn.execute(
            "UPDATE counters SET value = value + 1 WHERE name = 'rejected'",
            [],
        )?;
        Ok(Ingested::Rejected { reason })
    }

    /// Runs `f` inside one transaction, so that bulk ingest commits once per batch instead of
    /// once per event.
    pub fn in_batch<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if self.batch > 0 {
            return f(self);
        }
        self.conn.execute_batch("BEGIN")?;
        self.batch += 1;
        let out = f(self);
        self.batch -= 1;
        match out {
            Ok(v) => {
                self.conn.execute_batch("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                // The original error matters more than a failed rollback.
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// The ingest counters.
    pub fn counters(&self) -> Result<Counters, Error> {
        let mut c = Counters::default();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, value FROM counters")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (name, value) = row?;
            let value = value as u64;
            match name.as_str() {
                "indexed" => c.indexed = value,
                "duplicate" => c.duplicate = value,
                "rejected" => c.rejected = value,
                _ => {}
            }
        }
        Ok(c)
    }

    /// The newest `created_at` indexed, to resume a relay subscription from.
    pub fn newest_created_at(&self) -> Result<Option<u64>, Error> {
        let v: Option<i64> =
            self.conn
                .query_row("SELECT MAX(created_at) FROM events", [], |r| r.get(0))?;
        Ok(v.map(|v| v as u64))
    }

    /// Events whose output has this exact SHA-256.
    pub fn by_exact(&self, hash: &[u8; 32], limit: usize) -> Result<Vec<Stored>, Error> {
        self.by_hash("exact", hash, limit)
    }

    /// Events whose normalised text has this SHA-256.
    pub fn by_normalized(&self, hash: &[u8; 32], limit: usize) -> Result<Vec<Stored>, Error> {
        self.by_hash("normalized", hash, limit)
    }

    fn by_hash(&self, table: &str, hash: &[u8; 32], limit: usize) -> Result<Vec<Stored>, Error> {
        let sql = format!(
            "SELECT e.seq, e.json, e.fp_count, e.fp_max FROM {table} t JOIN events e ON e.seq = t.seq \
             WHERE t.hash = ?1 ORDER BY e.created_at, e.seq LIMIT ?2"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![hash.as_slice(), limit as i64], stored_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The events holding fingerprint `hash` (sequence numbers), at most `limit` of them.
    pub fn by_fingerprint(&self, hash: FingerprintHash, limit: usize) -> Result<Vec<i64>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq FROM fingerprints WHERE hash = ?1 LIMIT ?2")?;
        let rows = stmt.query_map(params![hash.as_u64() as i64, limit as i64], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The stored event with sequence number `seq`.
    pub fn by_seq(&self, seq: i64) -> Result<Option<Stored>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, json, fp_count, fp_max FROM events WHERE seq = ?1")?;
        Ok(stmt.query_row([seq], stored_from_row).optional()?)
    }

    /// The stored event with this id.
    pub fn by_id(&self, id: &EventId) -> Result<Option<Stored>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, json, fp_count, fp_max FROM events WHERE id = ?1")?;
        Ok(stmt
            .query_row([id.as_bytes().as_slice()], stored_from_row)
            .optional()?)
    }
}

fn stored_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Stored> {
    Ok(Stored {
        seq: r.get(0)?,
        json: r.get(1)?,
        fingerprints: r.get::<_, i64>(2)? as u32,
        fingerprint_max: r
            .get::<_, Option<i64>>(3)?
            .map(|v| FingerprintHash::from_u64(v as u64)),
    })
}
