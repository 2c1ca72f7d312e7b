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

use std::collections::HashMap;
use std::path::Path;

use provenance::event::{self, Limits};
use provenance::fingerprint::{self, FingerprintHash};
use provenance::{Event, EventId};
use rusqlite::{Connection, OptionalExtension, params};

use crate::codec;
use crate::error::Error;

/// One migration: SQL, or SQL followed by code that moves the data.
enum Migration {
    Sql(&'static str),
    Code(
        &'static str,
        fn(&rusqlite::Transaction<'_>) -> Result<(), Error>,
    ),
}

/// The migrations, in order; each runs once, in a transaction, and is recorded in
/// `migrations`. Never edit a published one: add another.
const MIGRATIONS: &[Migration] = &[
    Migration::Sql(
        r"
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
",
    ),
    // Compact events (a third of the size), 8-byte key prefixes, deferred key writes.
    Migration::Code(
        r"
CREATE TABLE authors (n INTEGER PRIMARY KEY, pubkey BLOB NOT NULL UNIQUE);
CREATE TABLE events_v2 (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL,
    author INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    sig BLOB NOT NULL,
    body BLOB NOT NULL,
    fp_count INTEGER NOT NULL,
    fp_max INTEGER
);
CREATE TABLE ids (key INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (key, seq)) WITHOUT ROWID;
CREATE TABLE exact_v2 (key INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (key, seq)) WITHOUT ROWID;
CREATE TABLE normalized_v2 (key INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (key, seq)) WITHOUT ROWID;
CREATE TABLE state (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE sources (name TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID;
",
        migrate_v1_events,
    ),
];

/// Migration 2's data move: every v1 event (JSON text) into the compact table, keys cut to
/// their 8-byte prefixes; the fingerprints table is unchanged.
fn migrate_v1_events(tx: &rusqlite::Transaction<'_>) -> Result<(), Error> {
    let mut authors = Authors::default();
    {
        let mut read = tx.prepare("SELECT seq, json FROM events ORDER BY seq")?;
        let mut rows = read.query([])?;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            let json: String = row.get(1)?;
            let ev = event::parse_event(&json, &Limits::default()).map_err(|e| Error::Corrupt {
                detail: format!("event {seq} of the v1 index: {e}"),
            })?;
            let row = Row::new(&ev, &record_fingerprints(&ev.content))
                .map_err(|detail| Error::Corrupt { detail })?;
            let author = authors.number(tx, &row.author)?;
            row.insert(tx, "events_v2", Some(seq), author)?;
            tx.prepare_cached("INSERT INTO ids VALUES (?1, ?2)")?
                .execute(params![prefix(&row.id), seq])?;
        }
    }
    for (old, new) in [("exact", "exact_v2"), ("normalized", "normalized_v2")] {
        let mut read = tx.prepare(&format!("SELECT hash, seq FROM {old}"))?;
        let mut write = tx.prepare(&format!("INSERT OR IGNORE INTO {new} VALUES (?1, ?2)"))?;
        let mut rows = read.query([])?;
        while let Some(row) = rows.next()? {
            let hash: Vec<u8> = row.get(0)?;
            write.execute(params![prefix(&hash), row.get::<_, i64>(1)?])?;
        }
    }
    tx.execute_batch(
        r"
DROP TABLE events; DROP TABLE exact; DROP TABLE normalized;
ALTER TABLE events_v2 RENAME TO events;
ALTER TABLE exact_v2 RENAME TO exact;
ALTER TABLE normalized_v2 RENAME TO normalized;
INSERT INTO state VALUES ('built_seq', (SELECT IFNULL(MAX(seq), 0) FROM events));
INSERT INTO state VALUES ('newest_created_at', (SELECT IFNULL(MAX(created_at), -1) FROM events));
",
    )?;
    Ok(())
}

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

/// An event checked and encoded for [`Index::add`]: what the index stores, and its keys.
/// Made by [`Prepared::verify`] or [`Prepared::verify_many_json`], which may run on any thread.
#[derive(Clone, Debug)]
pub struct Prepared {
    row: Row,
    exact: [u8; 32],
    normalized: Option<[u8; 32]>,
    fingerprints: Vec<FingerprintHash>,
}

/// The stored form of an event.
#[derive(Clone, Debug)]
struct Row {
    id: [u8; 32],
    author: [u8; 32],
    created_at: i64,
    sig: [u8; 64],
    body: Vec<u8>,
    fp_count: i64,
    fp_max: Option<i64>,
}

impl Row {
    /// Encodes `ev`, whose record (verified by the caller) holds `fps`.
    fn new(ev: &Event, fps: &[FingerprintHash]) -> Result<Self, String> {
        let tags =
            serde_json::to_string(&ev.tags).map_err(|e| format!("tags of {}: {e}", ev.id))?;
        Ok(Self {
            id: *ev.id.as_bytes(),
            author: ev.pubkey.to_bytes(),
            created_at: ev.created_at.as_secs() as i64,
            sig: *ev.sig.as_ref(),
            body: codec::encode_body(&tags, &ev.content),
            fp_count: fps.len() as i64,
            // Only a capped set needs its largest (see `crate::lookup`); NULL saves 8 bytes.
            fp_max: fps
                .iter()
                .max()
                .filter(|_| fps.len() >= fingerprint::MAX_HASHES)
                .map(|h| h.as_u64() as i64),
        })
    }

    fn insert(
        &self,
        tx: &Connection,
        table: &str,
        seq: Option<i64>,
        author: i64,
    ) -> Result<i64, Error> {
        tx.prepare_cached(&format!(
            "INSERT INTO {table} (seq, id, author, created_at, sig, body, fp_count, fp_max) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        ))?
        .execute(params![
            seq,
            self.id.as_slice(),
            author,
            self.created_at,
            self.sig.as_slice(),
            self.body,
            self.fp_count,
            self.fp_max,
        ])?;
        Ok(tx.last_insert_rowid())
    }
}

/// The fingerprints of the rule this index compares, from a record's canonical JSON; none
/// when it has another rule or does not parse (the caller verified it).
fn record_fingerprints(content: &str) -> Vec<FingerprintHash> {
    match serde_json::from_str::<provenance::Record>(content) {
        Ok(record) => fingerprints_of(&record).to_vec(),
        Err(_) => Vec::new(),
    }
}

fn fingerprints_of(record: &provenance::Record) -> &[FingerprintHash] {
    match &record.output.fingerprints {
        // Only the rule this index compares; other rules are indexed without them.
        Some(f) if f.rule == fingerprint::RULE => &f.hashes,
        _ => &[],
    }
}

impl Prepared {
    /// Verifies `ev` (id, signature, kind, record, tags) and encodes it; `Err` gives the
    /// reason it is refused, for the log.
    pub fn verify(verifier: &mut event::Verifier, ev: &Event) -> Result<Self, String> {
        let verification = verifier.verify_expected(ev, &event::Expect::default());
        Self::from_verification(ev, &verification)
    }

    /// Parses and verifies event JSON; see [`Prepared::verify`].
    pub fn verify_json(verifier: &mut event::Verifier, json: &str) -> Result<Self, String> {
        Self::verify(verifier, &parse(json)?)
    }

    /// Parses and verifies several inputs at once: event JSON, or why an input is no event
    /// (passed through as the reason). The signatures of the events that parse are checked
    /// together by BIP-340 batch verification ([`event::Verifier::verify_many`]), which costs
    /// less per event than one check each; a bad signature is still found and refused alone.
    /// Gives, in input order, exactly what [`Prepared::verify_json`] gives for each.
    pub fn verify_many_json<S: AsRef<str>>(
        verifier: &mut event::Verifier,
        inputs: impl IntoIterator<Item = Result<S, String>>,
    ) -> Vec<Result<Self, String>> {
        let parsed: Vec<Result<Event, String>> = inputs
            .into_iter()
            .map(|input| parse(input?.as_ref()))
            .collect();
        let none = event::Expect::default();
        let events: Vec<(&Event, &event::Expect)> = parsed
            .iter()
            .filter_map(|ev| Some((ev.as_ref().ok()?, &none)))
            .collect();
        let mut verifications = verifier.verify_many(&events).into_iter();
        parsed
            .into_iter()
            .map(|ev| {
                let ev = ev?;
                // `verify_many` gives one verification per event, in order.
                let verification = verifications
                    .next()
                    .ok_or_else(|| format!("{}: internal error: not verified", ev.id))?;
                Self::from_verification(&ev, &verification)
            })
            .collect()
    }

    /// Encodes `ev` if `verification` (of `ev`) holds; otherwise the failed claims are the
    /// reason it is refused.
    fn from_verification(ev: &Event, verification: &event::Verification) -> Result<Self, String> {
        let Some(verified) = verification.verified().filter(|_| verification.holds()) else {
            let failed: Vec<&str> = verification
                .claims()
                .iter()
                .filter(|c| c.status == provenance::verdict::Status::Failed)
                .map(|c| c.code.as_str())
                .collect();
            return Err(format!("{}: {}", ev.id, failed.join(", ")));
        };
        let output = &verified.record().output;
        let fps = fingerprints_of(verified.record());
        Ok(Self {
            row: Row::new(ev, fps)?,
            exact: *output.sha256.as_bytes(),
            normalized: output
                .normalized
                .as_ref()
                .filter(|n| n.rule == provenance::normalize::RULE)
                .map(|n| *n.sha256.as_bytes()),
            fingerprints: fps.to_vec(),
        })
    }
}

/// Event JSON as an event, or the reason it is refused.
fn parse(json: &str) -> Result<Event, String> {
    event::parse_event(json, &Limits::default()).map_err(|e| format!("unparsable event: {e}"))
}

/// Author numbers, cached (one operator signs many events).
#[derive(Default)]
struct Authors(HashMap<[u8; 32], i64>);

impl Authors {
    fn number(&mut self, conn: &Connection, key: &[u8; 32]) -> Result<i64, Error> {
        if let Some(&n) = self.0.get(key) {
            return Ok(n);
        }
        conn.prepare_cached("INSERT OR IGNORE INTO authors (pubkey) VALUES (?1)")?
            .execute([key.as_slice()])?;
        let n: i64 = conn
            .prepare_cached("SELECT n FROM authors WHERE pubkey = ?1")?
            .query_row([key.as_slice()], |r| r.get(0))?;
        if self.0.len() >= 4096 {
            self.0.clear();
        }
        self.0.insert(*key, n);
        Ok(n)
    }
}

/// Keys of added events not yet in the key tables, and the ids they hold.
#[derive(Default)]
struct Pending {
    ids: Vec<(i64, i64)>,
    exact: Vec<(i64, i64)>,
    normalized: Vec<(i64, i64)>,
    fingerprints: Vec<(i64, i64)>,
    // id prefix → seq of the first pending event with it; later ones with the same prefix
    // (a collision) go to `more`, searched in full.
    by_id: HashMap<i64, i64>,
    more: Vec<(i64, i64)>,
}

impl Pending {
    fn push(&mut self, seq: i64, p: &Prepared, limit: usize) {
        if self.fingerprints.capacity() == 0 {
            // Reserved once: growing by doubling would copy, and could ask for twice the
            // limit. Pages never touched cost nothing.
            self.fingerprints.reserve(limit + fingerprint::MAX_HASHES);
        }
        let key = prefix(&p.row.id);
        self.ids.push((key, seq));
        if let Some(&first) = self.by_id.get(&key) {
            if first != seq {
                self.more.push((key, seq));
            }
        } else {
            self.by_id.insert(key, seq);
        }
        self.exact.push((prefix(&p.exact), seq));
        if let Some(n) = &p.normalized {
            self.normalized.push((prefix(n), seq));
        }
        self.fingerprints
            .extend(p.fingerprints.iter().map(|h| (h.as_u64() as i64, seq)));
    }

    fn seqs_with(&self, key: i64) -> impl Iterator<Item = i64> + '_ {
        self.by_id
            .get(&key)
            .copied()
            .into_iter()
            .chain(self.more.iter().filter(move |m| m.0 == key).map(|m| m.1))
    }

    fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
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

    /// Parses, verifies and indexes one event given as JSON text; it is found by lookups as
    /// soon as this returns.
    pub fn ingest_json(&mut self, json: &str) -> Result<Ingested, Error> {
        let outcome = match Prepared::verify_json(&mut self.verifier, json) {
            Ok(p) => self.in_batch(|index| index.add(p))?,
            Err(reason) => self.reject(reason)?,
        };
        self.flush_if_outside_batch()?;
        Ok(outcome)
    }

    /// Verifies and indexes one parsed event; found by lookups as soon as this returns.
    pub fn ingest_parsed(&mut self, ev: &Event) -> Result<Ingested, Error> {
        let outcome = match Prepared::verify(&mut self.verifier, ev) {
            Ok(p) => self.in_batch(|index| index.add(p))?,
            Err(reason) => self.reject(reason)?,
        };
        self.flush_if_outside_batch()?;
        Ok(outcome)
    }

    fn flush_if_outside_batch(&mut self) -> Result<(), Error> {
        if self.batch == 0 {
            self.flush()?;
        }
        Ok(())
    }

    /// Stores a verified event, unless its id is already indexed. Its keys are written by the
    /// next [`Index::flush`] (at the latest when more than the pending limit are kept, at the
    /// end of a batch). Inside [`Index::in_batch`] for speed; alone it is its own batch.
    pub fn add(&mut self, p: Prepared) -> Result<Ingested, Error> {
        if self.batch == 0 {
            return self.in_batch(|index| index.add(p));
        }
        if self.holds_id(&p.row.id)? {
            self.delta.duplicate += 1;
            return Ok(Ingested::Duplicate);
        }
        let author = self.authors.number(&self.conn, &p.row.author)?;
        let seq = p.row.insert(&self.conn, "events", None, author)?;
        self.pending.push(seq, &p, self.pending_limit);
        self.delta.indexed += 1;
        self.newest = self.newest.max(Some(p.row.created_at));
        Ok(Ingested::Indexed)
    }

    fn holds_id(&self, id: &[u8; 32]) -> Result<bool, Error> {
        let key = prefix(id);
        let mut stmt = self.conn.prepare_cached(
            "SELECT e.id FROM ids t JOIN events e ON e.seq = t.seq WHERE t.key = ?1",
        )?;
        let mut rows = stmt.query([key])?;
        while let Some(r) = rows.next()? {
            if blob(r, 0)? == id.as_slice() {
                return Ok(true);
            }
        }
        for seq in self.pending.seqs_with(key) {
            let stored: Vec<u8> = self
                .conn
                .prepare_cached("SELECT id FROM events WHERE seq = ?1")?
                .query_row([seq], |r| r.get(0))?;
            if stored == id.as_slice() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Counts an input that is not an event at all (an unreadable line), or an event that
    /// did not verify, as rejected.
    pub fn reject(&mut self, reason: String) -> Result<Ingested, Error> {
        if self.batch == 0 {
            return self.in_batch(|index| index.reject(reason));
        }
        self.delta.rejected += 1;
        Ok(Ingested::Rejected { reason })
    }

    /// Runs `f` inside one transaction, so that bulk ingest commits once per batch instead of
    /// once per event. Counters are written with the batch; kept keys are flushed after it
    /// when there are more than the pending limit.
    pub fn in_batch<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if self.batch > 0 {
            return f(self);
        }
        self.conn.execute_batch("BEGIN")?;
        self.batch += 1;
        let out = f(self).and_then(|v| {
            self.write_counters()?;
            Ok(v)
        });
        self.batch -= 1;
        match out {
            Ok(v) => {
                self.conn.execute_batch("COMMIT")?;
                if self.pending.fingerprints.len() >= self.pending_limit {
                    self.flush()?;
                }
                Ok(v)
            }
            Err(e) => {
                // The original error matters more than a failed rollback.
                let _ = self.conn.execute_batch("ROLLBACK");
                self.delta = Counters::default();
                // Keys of rolled-back rows must not be written: recover from the table.
                self.pending = Pending::default();
                let _ = self.recover();
                Err(e)
            }
        }
    }

    fn write_counters(&mut self) -> Result<(), Error> {
        let d = std::mem::take(&mut self.delta);
        let mut stmt = self
            .conn
            .prepare_cached("UPDATE counters SET value = value + ?2 WHERE name = ?1")?;
        for (name, v) in [
            ("indexed", d.indexed),
            ("duplicate", d.duplicate),
            ("rejected", d.rejected),
        ] {
            if v > 0 {
                stmt.execute(params![name, v as i64])?;
            }
        }
        if let Some(newest) = self.newest {
            self.conn
                .prepare_cached(
                    "UPDATE state SET value = MAX(value, ?1) WHERE name = 'newest_created_at'",
                )?
                .execute([newest])?;
        }
        Ok(())
    }

    /// Writes the kept keys of added events into the key tables, sorted, and records that
    /// every stored event has its keys. After it, lookups find every added event.
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let upto = self
            .pending
            .ids
            .iter()
            .map(|&(_, seq)| seq)
            .max()
            .unwrap_or(0);
        self.flush_upto(upto)
    }

    fn flush_upto(&mut self, upto: i64) -> Result<(), Error> {
        let mut pending = std::mem::take(&mut self.pending);
        let tables: [(&str, &mut Vec<(i64, i64)>); 4] = [
            ("ids", &mut pending.ids),
            ("exact", &mut pending.exact),
            ("normalized", &mut pending.normalized),
            ("fingerprints", &mut pending.fingerprints),
        ];
        let outside = self.batch == 0;
        if outside {
            self.conn.execute_batch("BEGIN")?;
        }
        let result = (|| -> Result<(), Error> {
            for (table, rows) in tables {
                rows.sort_unstable();
                let sql = format!("INSERT OR IGNORE INTO {table} VALUES (?1, ?2)");
                for chunk in rows.chunks(FLUSH_CHUNK) {
                    let mut stmt = self.conn.prepare_cached(&sql)?;
                    for &(key, seq) in chunk {
                        stmt.execute([key, seq])?;
                    }
                    drop(stmt);
                    if outside && chunk.len() == FLUSH_CHUNK {
                        // Rows written so far may stay if a crash follows: a rerun writes
                        // them again (INSERT OR IGNORE) because built_seq has not moved.
                        self.conn.execute_batch("COMMIT; BEGIN")?;
                    }
                }
            }
            self.conn
                .prepare_cached("UPDATE state SET value = MAX(value, ?1) WHERE name = 'built_seq'")?
                .execute([upto])?;
            Ok(())
        })();
        match result {
            Ok(()) => {
                if outside {
                    self.conn.execute_batch("COMMIT")?;
                }
                Ok(())
            }
            Err(e) => {
                if outside {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                Err(e)
            }
        }
    }

    /// Where a source was read up to (`ingest --signer-db`), 0 when never.
    pub fn source_position(&self, name: &str) -> Result<i64, Error> {
        Ok(self
            .conn
            .prepare_cached("SELECT position FROM sources WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    }

    /// Records where a source was read up to; in the current batch, so that it commits with
    /// the events read.
    pub fn set_source_position(&mut self, name: &str, position: i64) -> Result<(), Error> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO sources VALUES (?1, ?2)")?
            .execute(params![name, position])?;
        Ok(())
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
        let v = self.state("newest_created_at")?;
        Ok((v >= 0).then_some(v as u64))
    }

    /// Events whose output may have this exact SHA-256 (the key is a prefix: the caller
    /// compares the record's hash).
    pub fn by_exact(&self, hash: &[u8; 32], limit: usize) -> Result<Vec<Stored>, Error> {
        self.by_key("exact", hash, limit)
    }

    /// Events whose normalised text may have this SHA-256 (the caller compares, as for
    /// [`Index::by_exact`]).
    pub fn by_normalized(&self, hash: &[u8; 32], limit: usize) -> Result<Vec<Stored>, Error> {
        self.by_key("normalized", hash, limit)
    }

    fn by_key(&self, table: &str, hash: &[u8; 32], limit: usize) -> Result<Vec<Stored>, Error> {
        let sql = format!(
            "SELECT {STORED_COLUMNS} FROM {table} t JOIN events e ON e.seq = t.seq \
             JOIN authors a ON a.n = e.author \
             WHERE t.key = ?1 ORDER BY e.created_at, e.seq LIMIT ?2"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params![prefix(hash), limit as i64])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(stored_from_row(r)?);
        }
        Ok(out)
    }

    /// The events holding fingerprint `hash` (sequence numbers), at most `limit` of them.
    pub fn by_fingerprint(&self, hash: FingerprintHash, limit: usize) -> Result<Vec<i64>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq FROM fingerprints WHERE hash = ?1 LIMIT ?2")?;
        let rows = stmt.query_map(params![hash.as_u64() as i64, limit as i64], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many fingerprints event `seq` has, and its largest when its set was capped.
    pub fn fingerprint_set(
        &self,
        seq: i64,
    ) -> Result<Option<(u32, Option<FingerprintHash>)>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT fp_count, fp_max FROM events WHERE seq = ?1")?;
        Ok(stmt
            .query_row([seq], |r| {
                Ok((
                    r.get::<_, i64>(0)? as u32,
                    r.get::<_, Option<i64>>(1)?
                        .map(|v| FingerprintHash::from_u64(v as u64)),
                ))
            })
            .optional()?)
    }

    /// The stored event with sequence number `seq`.
    pub fn by_seq(&self, seq: i64) -> Result<Option<Stored>, Error> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {STORED_COLUMNS} FROM events e JOIN authors a ON a.n = e.author WHERE e.seq = ?1"
        ))?;
        let mut rows = stmt.query([seq])?;
        match rows.next()? {
            Some(r) => Ok(Some(stored_from_row(r)?)),
            None => Ok(None),
        }
    }

    /// The stored event with this id.
    pub fn by_id(&self, id: &EventId) -> Result<Option<Stored>, Error> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {STORED_COLUMNS} FROM ids t JOIN events e ON e.seq = t.seq \
             JOIN authors a ON a.n = e.author WHERE t.key = ?1"
        ))?;
        let mut rows = stmt.query([prefix(id.as_bytes())])?;
        while let Some(r) = rows.next()? {
            if blob(r, 1)? == id.as_bytes().as_slice() {
                return Ok(Some(stored_from_row(r)?));
            }
        }
        Ok(None)
    }
}

/// The columns [`stored_from_row`] reads, from `events e` joined with `authors a`.
const STORED_COLUMNS: &str =
    "e.seq, e.id, a.pubkey, e.created_at, e.sig, e.body, e.fp_count, e.fp_max";

/// The event JSON rebuilt from the columns id, pubkey, created_at, sig, body starting at
/// `first`.
fn stored_json(r: &rusqlite::Row<'_>, first: usize) -> Result<String, Error> {
    let b = |i: usize| blob(r, first + i);
    codec::event_json(b(0)?, b(1)?, r.get(first + 2)?, b(3)?, b(4)?).map_err(|e| Error::Corrupt {
        detail: e.to_string(),
    })
}

/// Column `i` as a blob; anything else means the database was damaged.
fn blob<'a>(r: &'a rusqlite::Row<'_>, i: usize) -> Result<&'a [u8], Error> {
    r.get_ref(i)?.as_blob().map_err(|e| Error::Corrupt {
        detail: format!("column {i}: {e}"),
    })
}

fn stored_from_row(r: &rusqlite::Row<'_>) -> Result<Stored, Error> {
    Ok(Stored {
        seq: r.get(0)?,
        json: stored_json(r, 1)?,
        fingerprints: r.get::<_, i64>(6)? as u32,
        fingerprint_max: r
            .get::<_, Option<i64>>(7)?
            .map(|v| FingerprintHash::from_u64(v as u64)),
    })
}
