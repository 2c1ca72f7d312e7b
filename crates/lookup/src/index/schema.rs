//! The index schema: its migrations, applied in order when an index opens.

use super::*;

/// One migration: SQL, or SQL followed by code that moves the data.
pub(super) enum Migration {
    Sql(&'static str),
    Code(
        &'static str,
        fn(&rusqlite::Transaction<'_>) -> Result<(), Error>,
    ),
}

/// The migrations, in order; each runs once, in a transaction, and is recorded in
/// `migrations`. Never edit a published one: add another.
pub(super) const MIGRATIONS: &[Migration] = &[
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
pub(super) fn migrate_v1_events(tx: &rusqlite::Transaction<'_>) -> Result<(), Error> {
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
