//! [`SqliteStore`]: a [`Store`] in one SQLite database file (WAL mode).
//!
//! # Durability
//!
//! The database runs in WAL mode. With [`Durability::Full`] (the default) every commit is
//! fsynced (`synchronous=FULL`): an event survives a power cut as soon as `put` returns. With
//! [`Durability::Process`] (`synchronous=NORMAL`) commits reach the WAL file but are fsynced
//! only at checkpoints: an event then survives the process being killed (`kill -9`: the
//! operating system still holds the written pages), but the last commits may be lost to a
//! power cut or kernel crash. It saves one fsync per answer.
//!
//! Commits go through the one write connection of `writer`. Reads have connections of their
//! own, so that one kind of read never waits for another: one for events by request id
//! (`GET /provenance/<id>`), one for relay queries (which may scan many rows), and one for
//! the outbox and the NIP-98 table. In WAL mode readers do not wait for the writer.
//!
//! # Indexes for relay filters
//!
//! Besides `created_at`, each event's author (`pubkey`) and `kind` are columns with an index
//! on each (with `created_at`, newest first), and its `x` tags (the SHA-256 of the output,
//! see [`provenance::event`]) are rows of `event_x`, indexed by value: a NIP-01 filter on
//! `authors`, `kinds` or `#x` reads only the rows that can match instead of scanning the
//! newest 50,000. Stores written before these columns existed are filled in when opened.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, TryLockError, mpsc};

use provenance::nostr::filter::MatchEventOptions;
use provenance::nostr::prelude::{Event, EventId, Filter};
use rusqlite::{Connection, OptionalExtension, params};

use super::checkpoint::checkpointer;
use super::writer::{Checkpoints, Job, WAL_SIZE_LIMIT, Write, Writer, gone, write_queued};
use super::{Done, Durability, RequestId, Store, StoreError};

/// A [`Store`] in one SQLite database file (WAL mode).
pub struct SqliteStore {
    /// Outbox and NIP-98 table.
    pub(super) conn: Mutex<Connection>,
    /// Events by request id ([`Store::get`]) only.
    pub(super) lookups: Mutex<Connection>,
    /// Relay queries ([`Store::query`]) only.
    pub(super) queries: Mutex<Connection>,
    pub(super) relays: std::sync::Arc<[String]>,
    pub(super) writer: Arc<Writer>,
    pub(super) jobs: mpsc::Sender<Job>,
    /// Rows that [`Store::query`] skipped because their event does not parse.
    pub(super) unreadable: AtomicU64,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

/// Most rows examined by one [`Store::query`] without an id list, so that one websocket
/// query cannot walk a huge store.
const MAX_SCAN: usize = 50_000;

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` with [`Durability::Full`].
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::Full)
    }

    /// Opens the database at `path` with the given durability.
    pub fn open_with(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let connect = || -> Result<Connection, rusqlite::Error> {
            let conn = Connection::open(path)?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            let sync = match durability {
                Durability::Full => "FULL",
                Durability::Process => "NORMAL",
            };
            conn.pragma_update(None, "synchronous", sync)?;
            Ok(conn)
        };
        let conn = connect()?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS events (
                request_id TEXT PRIMARY KEY,
                event_id TEXT NOT NULL UNIQUE,
                created_at INTEGER NOT NULL,
                json TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS events_created_at ON events (created_at);
            CREATE TABLE IF NOT EXISTS outbox (
                event_id TEXT NOT NULL,
                relay TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_try_ms INTEGER NOT NULL DEFAULT 0,
                last_error TEXT,
                PRIMARY KEY (event_id, relay)
            );
            CREATE TABLE IF NOT EXISTS nip98_seen (
                id TEXT PRIMARY KEY,
                expires INTEGER NOT NULL
            );",
        )?;
        add_filter_indexes(&conn)?;
        let write_conn = connect()?;
        write_conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        write_conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
        let checkpoint_conn = connect()?;
        // One waiting kick is enough: the checkpointer takes every commit so far.
        let (kick, kicks) = mpsc::sync_channel(1);
        let copied = Arc::new(AtomicI64::new(0));
        let checkpointer_copied = copied.clone();
        let pause = durability.checkpoint_pause();
        std::thread::Builder::new()
            .name("provenance-checkpoint".to_owned())
            .spawn(move || checkpointer(&checkpoint_conn, &kicks, &checkpointer_copied, pause))
            .map_err(|e| StoreError::Thread(e.to_string()))?;
        let writer = Arc::new(Writer {
            conn: Mutex::new(write_conn),
            queued: AtomicUsize::new(0),
            checkpoints: Checkpoints { kick, copied },
        });
        let (jobs, queue) = mpsc::channel();
        let thread_writer = writer.clone();
        std::thread::Builder::new()
            .name("provenance-store".to_owned())
            .spawn(move || write_queued(&thread_writer, &queue))
            .map_err(|e| StoreError::Thread(e.to_string()))?;
        Ok(Self {
            conn: Mutex::new(conn),
            lookups: Mutex::new(connect()?),
            queries: Mutex::new(connect()?),
            relays: std::sync::Arc::from([]),
            writer,
            jobs,
            unreadable: AtomicU64::new(0),
        })
    }

    /// Relays every stored event is to be published to: [`Store::put`] queues one outbox
    /// entry per relay in the same transaction as the event, so a queued publication is as
    /// durable as the event. None by default. See [`crate::outbox`].
    pub fn publish_to(mut self, relays: Vec<String>) -> Self {
        self.relays = relays.into();
        self
    }

    /// The relays set with [`SqliteStore::publish_to`]: where each stored event is queued.
    pub fn relays(&self) -> &[String] {
        &self.relays
    }

    /// Outbox entries due at `now_ms`: (event JSON, relay, attempts so far), oldest first.
    pub fn outbox_due(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<(String, String, u32)>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT e.json, o.relay, o.attempts FROM outbox o JOIN events e ON e.event_id = o.event_id
             WHERE o.next_try_ms <= ?1 ORDER BY o.next_try_ms, e.created_at LIMIT ?2",
        )?;
        let rows = stmt.query_map(
            params![i64::try_from(now_ms).unwrap_or(i64::MAX), limit as i64],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Removes a delivered outbox entry.
    pub fn outbox_delivered(&self, event_id: &str, relay: &str) -> Result<(), StoreError> {
        self.lock().execute(
            "DELETE FROM outbox WHERE event_id = ?1 AND relay = ?2",
            params![event_id, relay],
        )?;
        Ok(())
    }

    /// Records a failed attempt and when to try again.
    pub fn outbox_failed(
        &self,
        event_id: &str,
        relay: &str,
        next_try_ms: u64,
        error: &str,
    ) -> Result<(), StoreError> {
        self.lock().execute(
            "UPDATE outbox SET attempts = attempts + 1, next_try_ms = ?3, last_error = ?4
             WHERE event_id = ?1 AND relay = ?2",
            params![
                event_id,
                relay,
                i64::try_from(next_try_ms).unwrap_or(i64::MAX),
                error
            ],
        )?;
        Ok(())
    }

    /// Rows that relay queries skipped so far because the stored event does not parse (a
    /// database edited by hand or damaged): one such row is left out, the rest are served.
    pub fn unreadable_rows(&self) -> u64 {
        self.unreadable.load(Ordering::Relaxed)
    }

    /// Number of queued publications.
    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        Ok(self
            .lock()
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))?)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        lock(&self.conn)
    }
}

/// The statement for a relay query without an id list, and its parameters: rows in the
/// filter's time range, narrowed through the indexes by its authors, kinds and `#x` values
/// (each list one JSON array parameter), newest first, at most [`MAX_SCAN`]. The filter is
/// still applied to every event read.
pub(super) fn scan(filter: &Filter) -> (String, Vec<(usize, rusqlite::types::Value)>) {
    let since = filter.since.map_or(0, |t| t.as_secs());
    let until = filter.until.map_or(i64::MAX as u64, |t| t.as_secs());
    let list = |values: Vec<serde_json::Value>| {
        (!values.is_empty()).then(|| serde_json::Value::Array(values).to_string())
    };
    let authors = filter
        .authors
        .as_ref()
        .and_then(|a| list(a.iter().map(|k| k.to_hex().into()).collect()));
    let kinds = filter
        .kinds
        .as_ref()
        .and_then(|k| list(k.iter().map(|k| k.as_u16().into()).collect()));
    let xs = filter
        .generic_tags
        .iter()
        .find(|(tag, _)| tag.as_char() == 'x')
        .and_then(|(_, v)| list(v.iter().map(|v| v.as_str().into()).collect()));
    let mut sql =
        "SELECT request_id, json FROM events WHERE created_at BETWEEN ?1 AND ?2".to_owned();
    if authors.is_some() {
        sql.push_str(" AND pubkey IN (SELECT value FROM json_each(?4))");
    }
    if kinds.is_some() {
        sql.push_str(" AND kind IN (SELECT value FROM json_each(?5))");
    }
    if xs.is_some() {
        sql.push_str(concat!(
            " AND event_id IN (SELECT event_id FROM event_x",
            " WHERE x IN (SELECT value FROM json_each(?6)))"
        ));
    }
    sql.push_str(" ORDER BY created_at DESC LIMIT ?3");
    let clamp = |t: u64| i64::try_from(t).unwrap_or(i64::MAX);
    let mut bound = vec![
        (1, rusqlite::types::Value::Integer(clamp(since))),
        (2, rusqlite::types::Value::Integer(clamp(until))),
        (3, rusqlite::types::Value::Integer(MAX_SCAN as i64)),
    ];
    for (n, list) in [(4, authors), (5, kinds), (6, xs)] {
        if let Some(list) = list {
            bound.push((n, rusqlite::types::Value::Text(list)));
        }
    }
    (sql, bound)
}

pub(super) fn lock(conn: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
    // A panic while holding the lock cannot leave SQLite half-written (its own transactions
    // are atomic), so a poisoned lock is still usable.
    conn.lock().unwrap_or_else(|e| e.into_inner())
}

/// The columns, table and indexes that relay filters use (see the module), added to a store
/// written before they existed and filled in from its events. A row whose event is not JSON
/// keeps empty columns (relay queries leave it out anyway).
fn add_filter_indexes(conn: &Connection) -> Result<(), rusqlite::Error> {
    // Taken before looking, so that two processes opening an old store do not both add them.
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let has_kind = conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('events') WHERE name = 'kind'",
        [],
        |r| r.get::<_, bool>(0),
    );
    if has_kind.as_ref().map_or(true, |has| *has) {
        conn.execute_batch("ROLLBACK")?;
        return has_kind.map(|_| ());
    }
    let added = conn.execute_batch(
        "ALTER TABLE events ADD COLUMN pubkey TEXT;
        ALTER TABLE events ADD COLUMN kind INTEGER;
        UPDATE events SET pubkey = json_extract(json, '$.pubkey'), kind = json_extract(json, '$.kind')
            WHERE json_valid(json);
        CREATE TABLE IF NOT EXISTS event_x (
            x TEXT NOT NULL,
            event_id TEXT NOT NULL,
            PRIMARY KEY (x, event_id)
        ) WITHOUT ROWID;
        INSERT OR IGNORE INTO event_x (x, event_id)
            SELECT json_extract(t.value, '$[1]'), e.event_id
            FROM events e,
                json_each(CASE WHEN json_valid(e.json) THEN e.json ELSE '{}' END, '$.tags') t
            WHERE json_extract(t.value, '$[0]') = 'x'
                AND json_type(t.value, '$[1]') = 'text';
        CREATE INDEX IF NOT EXISTS events_pubkey ON events (pubkey, created_at);
        CREATE INDEX IF NOT EXISTS events_kind ON events (kind, created_at);
        COMMIT;",
    );
    if added.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    added
}

/// NIP-98 ids accepted within their window, kept across restarts (table `nip98_seen`).
impl crate::nip98::SeenStore for SqliteStore {
    fn seen(&self, now: u64) -> Result<Vec<(EventId, u64)>, StoreError> {
        let conn = self.lock();
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        let read = || -> Result<Vec<(String, i64)>, rusqlite::Error> {
            let mut stmt =
                conn.prepare("SELECT id, expires FROM nip98_seen WHERE expires >= ?1")?;
            let rows = stmt.query_map(params![now], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        };
        let rows = read()?;
        // A row that does not parse cannot be an id a client could send again.
        Ok(rows
            .into_iter()
            .filter_map(|(id, expires)| {
                Some((EventId::from_hex(&id).ok()?, u64::try_from(expires).ok()?))
            })
            .collect())
    }

    fn remember(&self, id: EventId, expires: u64, now: u64) -> Result<(), StoreError> {
        let conn = self.lock();
        let (expires, now) = (
            i64::try_from(expires).unwrap_or(i64::MAX),
            i64::try_from(now).unwrap_or(i64::MAX),
        );
        conn.execute(
            "INSERT OR REPLACE INTO nip98_seen (id, expires) VALUES (?1, ?2)",
            params![id.to_hex(), expires],
        )
        .and_then(|_| conn.execute("DELETE FROM nip98_seen WHERE expires < ?1", params![now]))
        .map(|_| ())
        .map_err(StoreError::from)
    }
}

impl Store for SqliteStore {
    /// Commits the event (see [`Store::submit`] for where) and waits until its transaction
    /// is committed (with `synchronous=FULL`: fsynced).
    fn put(&self, id: RequestId, event: &Event) -> Result<(), StoreError> {
        let (done, outcome) = mpsc::sync_channel(1);
        self.submit(
            id,
            event.clone(),
            Box::new(move |_, result| {
                // The caller may have given up; nothing to do then.
                let _ = done.send(result);
            }),
        );
        outcome.recv().map_err(|_| gone())?
    }

    /// When no commit is running or queued, commits the event on the caller's thread and
    /// calls `done` before returning: one commit (a few hundred microseconds with its fsync)
    /// instead of two thread hand-offs and their wake-ups, which at one client were most of
    /// the signer's tail latency. Otherwise hands it to the writer thread, which commits every
    /// event waiting in one transaction (group commit: concurrent answers share one fsync)
    /// and calls `done` there.
    fn submit(&self, id: RequestId, event: Event, done: Done) {
        let write = Write {
            request_id: id.to_string(),
            event_id: event.id.to_hex(),
            // Nostr timestamps are seconds; they fit an i64 for the next 292 billion years.
            created_at: i64::try_from(event.created_at.as_secs()).unwrap_or(i64::MAX),
            json: event.as_json(),
            relays: self.relays.clone(),
            event,
            done,
        };
        if self.writer.queued.load(Ordering::Acquire) == 0 {
            let idle = match self.writer.conn.try_lock() {
                Ok(conn) => Some(conn),
                Err(TryLockError::Poisoned(conn)) => Some(conn.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            };
            if let Some(conn) = idle {
                if self.writer.commit(conn, vec![write]) {
                    // Not on this thread, which serves answers: the checkpoint fsyncs.
                    let _ = self.jobs.send(Job::Restart);
                }
                return;
            }
        }
        self.writer.queued.fetch_add(1, Ordering::AcqRel);
        if let Err(mpsc::SendError(Job::Write(write))) = self.jobs.send(Job::Write(write)) {
            self.writer.queued.fetch_sub(1, Ordering::AcqRel);
            (write.done)(&write.event, Err(gone()));
        }
    }

    /// Reads on a connection of its own: relay queries, however long, never hold it.
    fn get(&self, id: RequestId) -> Result<Option<String>, StoreError> {
        Ok(lock(&self.lookups)
            .query_row(
                "SELECT json FROM events WHERE request_id = ?1",
                params![id.to_string()],
                |row| row.get(0),
            )
            .optional()?)
    }

    fn query(&self, filter: &Filter, limit: usize) -> Result<Vec<Event>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let conn = lock(&self.queries);
        // A json that is not text reads as `None`: an unreadable row, skipped below.
        let mut rows: Vec<(String, Option<String>)> = Vec::new();
        match &filter.ids {
            Some(ids) if !ids.is_empty() => {
                let mut stmt =
                    conn.prepare("SELECT request_id, json FROM events WHERE event_id = ?1")?;
                for id in ids {
                    if let Some(row) = stmt
                        .query_row(params![id.to_hex()], |r| Ok((r.get(0)?, r.get(1).ok())))
                        .optional()?
                    {
                        rows.push(row);
                    }
                }
            }
            _ => {
                let (sql, bound) = scan(filter);
                let mut stmt = conn.prepare_cached(&sql)?;
                for (n, value) in bound {
                    stmt.raw_bind_parameter(n, value)?;
                }
                let mut found = stmt.raw_query();
                while let Some(r) = found.next()? {
                    rows.push((r.get(0)?, r.get(1).ok()));
                }
            }
        }
        let mut events = Vec::new();
        for (request, json) in rows {
            let Some(event) = json.and_then(|json| Event::from_json(&json).ok()) else {
                // One damaged row must not make every query that scans it fail: left out and
                // counted, said once on stderr.
                if self.unreadable.fetch_add(1, Ordering::Relaxed) == 0 {
                    eprintln!(
                        "provenance: the event store holds an unreadable event (request {request}); relay queries leave such rows out"
                    );
                }
                continue;
            };
            if filter.match_event(&event, MatchEventOptions::new()) {
                events.push(event);
                if events.len() >= limit {
                    break;
                }
            }
        }
        Ok(events)
    }
}
