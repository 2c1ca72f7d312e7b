//! Where signed events live: the [`Store`] trait and its SQLite implementation.
//!
//! The signing body commits every event through [`Store::submit`] **before** it releases the end
//! of the response, so an event whose response a client saw end is in the store, even if the
//! process is killed the next instant. Events are looked up by the request id the caller was
//! given at response start ([`Store::get`]), and by NIP-01 filters for the websocket
//! ([`Store::query`]).
//!
//! # Durability of [`SqliteStore`]
//!
//! The database runs in WAL mode. With [`Durability::Full`] (the default) every commit is
//! fsynced (`synchronous=FULL`): an event survives a power cut as soon as `put` returns. With
//! [`Durability::Process`] (`synchronous=NORMAL`) commits reach the WAL file but are fsynced
//! only at checkpoints: an event then survives the process being killed (`kill -9`: the
//! operating system still holds the written pages), but the last commits may be lost to a
//! power cut or kernel crash. It saves one fsync per answer.
//!
//! # Who commits
//!
//! One connection writes. When it is idle, [`Store::submit`] commits on the caller's thread:
//! at low load that saves handing the event to another thread and being woken by it (two
//! wake-ups, each of which can wait for a core). When a commit is running or events are
//! queued, events go to the writer thread, which commits all those waiting in one
//! transaction (group commit: concurrent answers share one fsync).
//!
//! # Checkpoints
//!
//! Checkpoints (copying the log into the database file) are kept off the commit path: with
//! SQLite's automatic checkpoint the writer thread copied 1,000 pages and fsynced the
//! database every few hundred commits, 5 to 25 ms during which every waiting commit waited
//! too. Here the writer does not checkpoint on its own (`wal_autocheckpoint=0`); a
//! checkpointer thread with its own connection runs passive checkpoints, which never block
//! the writer, after each commit that follows a pause ([`Durability::checkpoint_pause`]: 5 ms,
//! or 1 ms with [`Durability::Process`]). The pause is short on purpose: a checkpoint's cost
//! (pages copied, then the fsyncs and their writeback) grows with the commits since the last
//! one, and while it runs it holds a core. With 100 ms between checkpoints, at one client
//! against a canned upstream on two cores, each checkpoint copied about 800 pages and the
//! answers that waited behind it made most of the p99 (docs/benchmarks.md, "The one-client
//! tail"). Under steady load a passive checkpoint never catches up with the end of the log,
//! and SQLite restarts the log only once every frame is copied; so when the checkpointer has
//! just copied [`WAL_RESTART_FRAMES`] frames or more, the writer thread, after the next commit,
//! runs one passive checkpoint with the write connection held, which copies only the frames
//! since (and fsyncs the database file), after which the following commit starts the log over.
//! When that next commit was made on a caller's thread, the caller hands the checkpoint to the
//! writer thread instead of running it: it took 0.3 to 14 ms (docs/benchmarks.md, "The
//! one-client tail"), during which the caller's thread, a runtime worker that serves other
//! answers too, would serve nothing. The log file is cut back to [`WAL_SIZE_LIMIT`] bytes when
//! it restarts.
//!
//! The prompt salt is never stored: it goes to the caller only (see `docs/signer.md`).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError, mpsc};
use std::time::Duration;

use provenance::nostr::filter::MatchEventOptions;
use provenance::nostr::prelude::{Event, Filter};
use rand::RngCore;
use rusqlite::{Connection, OptionalExtension, params};

/// A request id: 16 bytes, written as 32 lowercase hex characters. Ids made by
/// [`RequestId::generate`] start with the time, so that they sort (roughly) in the order they
/// were made.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId([u8; 16]);

impl RequestId {
    /// A fresh id: the time in milliseconds since 1970 (6 bytes, big-endian), then 10 random
    /// bytes (80 bits: two ids made in the same millisecond collide with odds of 2^-80, and
    /// an id cannot be guessed from another). The time prefix makes the store's index of
    /// request ids grow at its end, like the events table, instead of taking each new id
    /// at a random place: one page written per answer instead of a different page each time,
    /// which is what checkpoints copy.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        // 6 bytes of milliseconds last until the year 10889.
        let millis = u64::try_from(millis).unwrap_or(u64::MAX).to_be_bytes();
        bytes[..6].copy_from_slice(&millis[2..]);
        rand::rng().fill_bytes(&mut bytes[6..]);
        Self(bytes)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({self})")
    }
}

/// A string that is not a request id.
#[derive(Debug, thiserror::Error)]
#[error("expected a request id of 32 hex characters")]
pub struct RequestIdError;

impl FromStr for RequestId {
    type Err = RequestIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 16];
        if s.len() != 32 {
            return Err(RequestIdError);
        }
        hex::decode_to_slice(s, &mut bytes).map_err(|_| RequestIdError)?;
        Ok(Self(bytes))
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed.
    #[error("event store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The writer thread could not be started, or has stopped.
    #[error("event store: {0}")]
    Thread(String),
    /// A stored event no longer parses (the database was edited by hand or damaged).
    #[error("event store holds an unreadable event for request {request}")]
    Corrupt {
        /// The request id of the row.
        request: String,
    },
}

/// Storage for signed events. Implementations must make [`Store::put`] durable before it
/// returns: the signing body releases the end of the response right after.
pub trait Store: Send + Sync + 'static {
    /// Stores `event`, signed for the request `id`.
    fn put(&self, id: RequestId, event: &Event) -> Result<(), StoreError>;
    /// Stores `event` as [`Store::put`] does, without waiting: `done` is called with the
    /// event and the outcome once it is durable (or has failed), on whatever thread finished
    /// the write, so it must be quick. The default calls [`Store::put`] and then `done`, on
    /// the caller's thread. [`SqliteStore`] does the same when no commit is running or queued
    /// (one commit, a few hundred microseconds with its fsync, is cheaper than two thread
    /// hand-offs); otherwise it hands the event to its writer thread and returns at once.
    fn submit(&self, id: RequestId, event: Event, done: Done) {
        let outcome = self.put(id, &event);
        done(&event, outcome);
    }
    /// The event signed for request `id`, as JSON.
    fn get(&self, id: RequestId) -> Result<Option<String>, StoreError>;
    /// Events matching `filter`, newest first, at most `limit`.
    fn query(&self, filter: &Filter, limit: usize) -> Result<Vec<Event>, StoreError>;
}

/// What [`Store::submit`] calls once an event is stored or has failed to be.
pub type Done = Box<dyn FnOnce(&Event, Result<(), StoreError>) + Send>;

/// How hard [`SqliteStore`] works to keep a committed event; see the module docs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// `synchronous=FULL`: survives power loss. The default.
    #[default]
    Full,
    /// `synchronous=NORMAL`: survives the process being killed, not power loss.
    Process,
}

impl Durability {
    /// Least time between two checkpoints (see the module docs for why it is short).
    ///
    /// 5 ms with [`Durability::Full`]; 1 ms with [`Durability::Process`], whose checkpoint
    /// also fsyncs the log, writing back every commit since the last checkpoint (with `Full`
    /// each commit has already done that). At one client against a canned upstream on two
    /// cores, 5 ms left that mode's p99 at 3.1 to 7 ms and 1 ms brought it to 1.3 to 2.8 ms,
    /// with as many answers a second at 1 and 16 clients; with `Full`, 1 ms cost 10 % of the
    /// one-client rate (docs/benchmarks.md, "The one-client tail").
    pub fn checkpoint_pause(self) -> Duration {
        match self {
            Self::Full => Duration::from_millis(5),
            Self::Process => Duration::from_millis(1),
        }
    }
}

/// A [`Store`] in one SQLite database file (WAL mode).
pub struct SqliteStore {
    conn: Mutex<Connection>,
    relays: std::sync::Arc<[String]>,
    writer: Arc<Writer>,
    jobs: mpsc::Sender<Job>,
}

/// Work for the writer thread.
// Jobs go through the channel by value as a bare `Write` did; boxing it to shrink `Restart`
// (rare) would cost an allocation per queued event.
#[allow(clippy::large_enum_variant)]
enum Job {
    /// An event to commit.
    Write(Write),
    /// The checkpoint that lets the log restart, due after a commit on a caller's thread
    /// (see [`Writer::commit`]).
    Restart,
}

/// One event for the writer thread, and where to say how it went.
struct Write {
    request_id: String,
    event_id: String,
    created_at: i64,
    json: String,
    relays: std::sync::Arc<[String]>,
    event: Event,
    done: Done,
}

/// Most events committed in one transaction.
const MAX_GROUP: usize = 256;

/// Log frames (pages) copied by the checkpointer after which the writer finishes the
/// checkpoint itself so that the log restarts: 4,096 frames of 4 KiB pages, a 16 MiB log.
pub const WAL_RESTART_FRAMES: i64 = 4_096;

/// Size the log file is cut back to when it restarts (`journal_size_limit`).
pub const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

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
            );",
        )?;
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
            relays: std::sync::Arc::from([]),
            writer,
            jobs,
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

    /// Number of queued publications.
    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        Ok(self
            .lock()
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))?)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (its own
        // transactions are atomic), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
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

    fn get(&self, id: RequestId) -> Result<Option<String>, StoreError> {
        Ok(self
            .lock()
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
        let conn = self.lock();
        let mut rows: Vec<(String, String)> = Vec::new();
        match &filter.ids {
            Some(ids) if !ids.is_empty() => {
                let mut stmt =
                    conn.prepare("SELECT request_id, json FROM events WHERE event_id = ?1")?;
                for id in ids {
                    if let Some(row) = stmt
                        .query_row(params![id.to_hex()], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?
                    {
                        rows.push(row);
                    }
                }
            }
            _ => {
                let since = filter.since.map_or(0, |t| t.as_secs());
                let until = filter.until.map_or(i64::MAX as u64, |t| t.as_secs());
                let mut stmt = conn.prepare(
                    "SELECT request_id, json FROM events WHERE created_at BETWEEN ?1 AND ?2
                     ORDER BY created_at DESC LIMIT ?3",
                )?;
                let clamp = |t: u64| i64::try_from(t).unwrap_or(i64::MAX);
                let found = stmt
                    .query_map(params![clamp(since), clamp(until), MAX_SCAN as i64], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?;
                for row in found {
                    rows.push(row?);
                }
            }
        }
        let mut events = Vec::new();
        for (request, json) in rows {
            let event = Event::from_json(&json).map_err(|_| StoreError::Corrupt { request })?;
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

/// The write connection, shared by the writer thread and by callers of [`Store::submit`]
/// that find it idle.
struct Writer {
    conn: Mutex<Connection>,
    /// Events handed to the writer thread and not yet answered.
    queued: AtomicUsize,
    checkpoints: Checkpoints,
}

/// The writer's side of checkpointing.
struct Checkpoints {
    /// Wakes the checkpointer after a commit.
    kick: mpsc::SyncSender<()>,
    /// Log frames the checkpointer had copied when it last finished; 0 once the writer has
    /// looked.
    copied: Arc<AtomicI64>,
}

impl Writer {
    fn lock(&self) -> MutexGuard<'_, Connection> {
        // As for the read connection: SQLite's transactions are atomic, so a poisoned lock
        // is still usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes each event of `group` in its own savepoint (one failing insert does not undo
    /// the others), commits once, lets go of the connection, then answers each.
    ///
    /// Returns whether the checkpointer has just copied [`WAL_RESTART_FRAMES`] frames or
    /// more: then the writer thread runs [`Writer::restart_log`] next (the caller's job). The
    /// count is taken (swapped for 0) at the first commit after the checkpointer has
    /// finished, so only the frames of that commit and the few since remain to copy.
    #[must_use]
    fn commit(&self, mut conn: MutexGuard<'_, Connection>, group: Vec<Write>) -> bool {
        let mut outcomes: Vec<Result<(), rusqlite::Error>> = Vec::with_capacity(group.len());
        let committed = (|| {
            let mut tx = conn.transaction()?;
            for job in &group {
                let mut savepoint = tx.savepoint()?;
                let written = write_one(&savepoint, job);
                if written.is_ok() {
                    savepoint.commit()?;
                } else {
                    savepoint.rollback()?;
                }
                outcomes.push(written);
            }
            tx.commit()
        })();
        drop(conn);
        // Full: a kick is already waiting, which covers this commit too.
        let _ = self.checkpoints.kick.try_send(());
        for (n, job) in group.into_iter().enumerate() {
            let outcome = match (&committed, outcomes.get_mut(n)) {
                (Ok(()), Some(outcome)) => std::mem::replace(outcome, Ok(())),
                (Err(e), _) => Err(clone_error(e)),
                (Ok(()), None) => Err(rusqlite::Error::InvalidQuery),
            };
            (job.done)(&job.event, outcome.map_err(StoreError::from));
        }
        self.checkpoints.copied.swap(0, Ordering::Relaxed) >= WAL_RESTART_FRAMES
    }

    /// One passive checkpoint with the write connection held, so that no commit lands
    /// during it: it copies the rest of the log (and fsyncs the database file), and the next
    /// commit starts the log over. The events are already durable; this only bounds the log.
    fn restart_log(&self) {
        let _ = passive_checkpoint(&self.lock());
    }
}

/// The writer thread: takes every event waiting (at most [`MAX_GROUP`]) and commits them in
/// one transaction, then lets the log restart when that is due (after one of its commits or
/// one on a caller's thread). Ends when the store is dropped.
fn write_queued(writer: &Writer, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut group = Vec::new();
        let mut restart = false;
        let mut next = Some(first);
        while let Some(job) = next {
            match job {
                Job::Write(write) => group.push(write),
                Job::Restart => restart = true,
            }
            next = if group.len() < MAX_GROUP {
                queue.try_recv().ok()
            } else {
                None
            };
        }
        if !group.is_empty() {
            let taken = group.len();
            restart |= writer.commit(writer.lock(), group);
            writer.queued.fetch_sub(taken, Ordering::AcqRel);
        }
        if restart {
            writer.restart_log();
        }
    }
}

/// The checkpointer thread: after each kick (a commit), one passive checkpoint, then a pause
/// of `pause`. Ends, after a last checkpoint, once the writer thread has ended.
fn checkpointer(
    conn: &Connection,
    kicks: &mpsc::Receiver<()>,
    copied: &AtomicI64,
    pause: Duration,
) {
    while kicks.recv().is_ok() {
        // A failed checkpoint loses nothing (the log keeps every commit); the next kick
        // tries again.
        if let Ok((_, frames)) = passive_checkpoint(conn) {
            copied.store(frames, Ordering::Relaxed);
        }
        std::thread::sleep(pause);
    }
    let _ = passive_checkpoint(conn);
}

/// One passive checkpoint: `(frames in the log, frames copied)`.
fn passive_checkpoint(conn: &Connection) -> Result<(i64, i64), rusqlite::Error> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get(1)?, row.get(2)?))
    })
}

/// Writes one event (and its outbox rows) with statements prepared once per connection:
/// parsing the SQL again cost more instructions per event than running it.
fn write_one(conn: &Connection, job: &Write) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "INSERT INTO events (request_id, event_id, created_at, json) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        job.request_id,
        job.event_id,
        job.created_at,
        job.json
    ])?;
    if !job.relays.is_empty() {
        let mut queue =
            conn.prepare_cached("INSERT OR IGNORE INTO outbox (event_id, relay) VALUES (?1, ?2)")?;
        for relay in job.relays.iter() {
            queue.execute(params![job.event_id, relay])?;
        }
    }
    Ok(())
}

fn gone() -> StoreError {
    StoreError::Thread("the store's writer thread stopped".to_owned())
}

/// `rusqlite::Error` is not `Clone`; a failed commit is reported to every event of the group.
fn clone_error(error: &rusqlite::Error) -> rusqlite::Error {
    match error {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        _ => rusqlite::Error::ToSqlConversionFailure(error.to_string().into()),
    }
}

/// Where a request's event stands, for `GET /provenance/<id>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The signed event, as JSON.
    Done(String),
    /// The response is still being sent; the event will exist when it ends.
    InProgress,
    /// No event will exist for this request, and why.
    Failed(String),
    /// The id is unknown (never given out, or given out before a restart and never signed).
    Unknown,
}

/// In-flight requests: given an id at response start, not yet signed (or never to be).
#[derive(Debug, Default)]
pub(crate) struct Registry {
    inner: Mutex<RegistryInner>,
}

#[derive(Debug, Default)]
struct RegistryInner {
    in_progress: HashMap<RequestId, ()>,
    failed: HashMap<RequestId, String>,
    failed_order: VecDeque<RequestId>,
}

/// Failures remembered for `GET /provenance/<id>`; older ones are forgotten (then 404).
const MAX_FAILED: usize = 10_000;

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, RegistryInner> {
        // The maps stay consistent whatever panicked: every update is one insert or remove.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn start(&self, id: RequestId) {
        self.lock().in_progress.insert(id, ());
    }

    pub(crate) fn done(&self, id: RequestId) {
        self.lock().in_progress.remove(&id);
    }

    pub(crate) fn fail(&self, id: RequestId, reason: String) {
        let mut inner = self.lock();
        inner.in_progress.remove(&id);
        if inner.failed.insert(id, reason).is_none() {
            inner.failed_order.push_back(id);
        }
        while inner.failed_order.len() > MAX_FAILED {
            if let Some(old) = inner.failed_order.pop_front() {
                inner.failed.remove(&old);
            }
        }
    }

    pub(crate) fn state(&self, id: RequestId) -> Option<Lookup> {
        let inner = self.lock();
        if inner.in_progress.contains_key(&id) {
            return Some(Lookup::InProgress);
        }
        inner.failed.get(&id).map(|r| Lookup::Failed(r.clone()))
    }
}

#[cfg(test)]
mod tests {
    use provenance::clock::FixedClock;
    use provenance::nostr::prelude::{Kind, Timestamp};
    use provenance::{Keys, Model, Output, Record};

    use super::*;

    fn event(text: &str, at: u64) -> Event {
        let record = Record::new(Output::from_text(text), Model::named("m"));
        provenance::event::sign(
            &record,
            &Keys::generate(),
            &FixedClock(Timestamp::from_secs(at)),
        )
        .unwrap()
    }

    /// Events in the database file itself, leaving the log aside (`immutable=1` reads the
    /// main file only): what checkpoints have copied so far. An error means "not yet": until
    /// the first checkpoint even the schema is only in the log ("no such table"), and a read
    /// can meet a page a checkpoint is writing at that moment.
    fn checkpointed(path: &Path) -> rusqlite::Result<i64> {
        let uri = format!("file:{}?immutable=1", path.display());
        let conn = Connection::open_with_flags(
            uri,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
    }

    #[test]
    fn the_checkpointer_copies_commits_into_the_database_file() {
        for durability in [Durability::Full, Durability::Process] {
            checkpointer_copies_commits(durability);
        }
    }

    fn checkpointer_copies_commits(durability: Durability) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.sqlite");
        let store = SqliteStore::open_with(&path, durability).unwrap();
        // Fewer pages than SQLite's automatic checkpoint (1,000): only the checkpointer
        // copies these.
        for n in 0..20 {
            store
                .put(RequestId::generate(), &event(&format!("{n}"), 1_000))
                .unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let copied = checkpointed(&path);
            if matches!(copied, Ok(n) if n >= 20) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{durability:?}: the file holds {copied:?} of 20 events after 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // And every event is still there, through the log or the file.
        assert_eq!(store.query(&Filter::new(), 100).unwrap().len(), 20);
    }

    #[test]
    fn checkpoints_stay_small_and_process_durability_runs_them_more_often() {
        // Longer pauses made bigger checkpoints and the one-client tail (module docs).
        assert!(Durability::Full.checkpoint_pause() <= Duration::from_millis(5));
        // Its checkpoints also write back the log, so more often (Durability docs).
        assert!(Durability::Process.checkpoint_pause() < Durability::Full.checkpoint_pause());
    }

    /// The log's checkpoint sequence number (bytes 12..16 of its header): SQLite adds one
    /// each time the log starts over.
    fn log_restarts(path: &Path) -> u32 {
        let wal = std::fs::read(format!("{}-wal", path.display())).unwrap();
        u32::from_be_bytes(wal[12..16].try_into().unwrap())
    }

    /// A write job for event `n`, and where its outcome arrives.
    fn write_job(n: u64) -> (Write, mpsc::Receiver<bool>) {
        let event = event(&format!("{n}"), 1_000);
        let (tx, rx) = mpsc::channel();
        let write = Write {
            request_id: RequestId::generate().to_string(),
            event_id: event.id.to_hex(),
            created_at: 1_000,
            json: event.as_json(),
            relays: Arc::from([]),
            event,
            done: Box::new(move |_, outcome| tx.send(outcome.is_ok()).unwrap()),
        };
        (write, rx)
    }

    #[test]
    fn the_writer_thread_finishes_a_checkpoint_so_the_log_starts_over_under_steady_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.sqlite");
        // The schema, then a store driven by hand: no checkpointer (the test says what it
        // copied) and no writer thread (the test runs its loop).
        drop(SqliteStore::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        let (kick, _kicks) = mpsc::sync_channel(1);
        let copied = Arc::new(AtomicI64::new(0));
        let writer = Arc::new(Writer {
            conn: Mutex::new(conn),
            queued: AtomicUsize::new(0),
            checkpoints: Checkpoints {
                kick,
                copied: copied.clone(),
            },
        });
        let (jobs, queue) = mpsc::channel();
        let store = SqliteStore {
            conn: Mutex::new(Connection::open(&path).unwrap()),
            relays: Arc::from([]),
            writer: writer.clone(),
            jobs: jobs.clone(),
        };
        // The store is idle: each commit is made on the caller's thread.
        let inline = |n: u64| {
            let done =
                submit_and_watch(&store, RequestId::generate(), event(&format!("{n}"), 1_000));
            assert_eq!(
                done.try_recv().unwrap(),
                (std::thread::current().id(), true)
            );
        };
        // A commit made by the writer thread's own hand, outside its loop.
        let by_hand = |n: u64| {
            let (write, done) = write_job(n);
            assert!(!writer.commit(writer.lock(), vec![write]));
            assert!(done.recv().unwrap());
        };
        // The writer thread's loop over `jobs` (ended by dropping every sender).
        let send = |jobs: &mpsc::Sender<Job>, n: u64| {
            let (write, done) = write_job(n);
            writer.queued.fetch_add(1, Ordering::AcqRel);
            jobs.send(Job::Write(write)).unwrap();
            done
        };
        inline(0);
        inline(1);
        let before = log_restarts(&path);
        inline(2);
        assert_eq!(
            log_restarts(&path),
            before,
            "nothing copied: the log goes on"
        );
        assert!(queue.try_recv().is_err(), "nothing for the writer thread");

        // The checkpointer has just copied enough. The next commit, on the caller's thread,
        // takes the count and hands the checkpoint to the writer thread without running it.
        copied.store(WAL_RESTART_FRAMES, Ordering::Relaxed);
        inline(3);
        assert_eq!(
            copied.load(Ordering::Relaxed),
            0,
            "the commit took the count"
        );
        inline(4);
        assert_eq!(
            log_restarts(&path),
            before,
            "the caller did not copy the rest of the log"
        );
        // The writer thread takes the checkpoint (after the event waiting with it); the commit
        // after that starts the log over.
        let done = send(&jobs, 5);
        drop((store, jobs));
        write_queued(&writer, &queue);
        assert!(done.recv().unwrap());
        assert_eq!(writer.queued.load(Ordering::Acquire), 0);
        by_hand(6);
        assert_eq!(log_restarts(&path), before + 1);

        // Under load the commit that takes the count is the writer thread's own: it runs the
        // checkpoint itself, after answering.
        by_hand(7);
        copied.store(WAL_RESTART_FRAMES, Ordering::Relaxed);
        let (jobs, queue) = mpsc::channel();
        let done = send(&jobs, 8);
        drop(jobs);
        write_queued(&writer, &queue);
        assert!(done.recv().unwrap());
        assert_eq!(
            copied.load(Ordering::Relaxed),
            0,
            "the commit took the count"
        );
        by_hand(9);
        assert_eq!(log_restarts(&path), before + 2);
    }

    #[test]
    fn events_survive_reopening_and_answer_filters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.sqlite");
        let (a, b) = (RequestId::generate(), RequestId::generate());
        let (ea, eb) = (event("one", 1_000), event("two", 2_000));
        {
            let store = SqliteStore::open(&path).unwrap();
            store.put(a, &ea).unwrap();
            store.put(b, &eb).unwrap();
            // The same request id twice is refused: an event is never replaced.
            assert!(store.put(a, &eb).is_err());
        }
        let store = SqliteStore::open_with(&path, Durability::Process).unwrap();
        assert_eq!(store.get(a).unwrap(), Some(ea.as_json()));
        assert_eq!(store.get(RequestId::generate()).unwrap(), None);
        let kind = Filter::new().kind(Kind::Custom(provenance::event::KIND));
        assert_eq!(
            store.query(&kind, 10).unwrap(),
            vec![eb.clone(), ea.clone()]
        );
        assert_eq!(store.query(&kind, 1).unwrap(), vec![eb.clone()]);
        assert_eq!(store.query(&kind, 0).unwrap(), vec![]);
        let by_id = Filter::new().id(ea.id);
        assert_eq!(store.query(&by_id, 10).unwrap(), vec![ea.clone()]);
        let since = kind.clone().since(Timestamp::from_secs(1_500));
        assert_eq!(store.query(&since, 10).unwrap(), vec![eb.clone()]);
        let output = provenance::digest::sha256(b"one").to_hex();
        let by_x = Filter::new().custom_tag(
            provenance::nostr::prelude::SingleLetterTag::from_char('x').unwrap(),
            output,
        );
        assert_eq!(store.query(&by_x, 10).unwrap(), vec![ea]);
    }

    /// Submits `event` and says, through the returned channel, on which thread `done` ran
    /// and whether the event was stored.
    fn submit_and_watch(
        store: &SqliteStore,
        id: RequestId,
        event: Event,
    ) -> mpsc::Receiver<(std::thread::ThreadId, bool)> {
        let (tx, rx) = mpsc::channel();
        store.submit(
            id,
            event,
            Box::new(move |_, outcome| {
                tx.send((std::thread::current().id(), outcome.is_ok()))
                    .unwrap();
            }),
        );
        rx
    }

    #[test]
    fn an_idle_store_commits_on_the_callers_thread_before_submit_returns() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("e.sqlite")).unwrap();
        let id = RequestId::generate();
        let done = submit_and_watch(&store, id, event("idle", 1_000));
        // Already answered, here: no hand-off to the writer thread and back.
        assert_eq!(
            done.try_recv().unwrap(),
            (std::thread::current().id(), true)
        );
        assert!(store.get(id).unwrap().is_some());
    }

    #[test]
    fn a_busy_store_hands_events_to_the_writer_thread() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("e.sqlite")).unwrap();
        // A commit in progress: the write connection is taken.
        let busy = store.writer.lock();
        let ids: Vec<RequestId> = (0..3).map(|_| RequestId::generate()).collect();
        let watches: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(n, id)| submit_and_watch(&store, *id, event(&format!("busy-{n}"), 1_000)))
            .collect();
        std::thread::sleep(Duration::from_millis(50));
        for watch in &watches {
            assert!(
                watch.try_recv().is_err(),
                "not answered while the connection is taken"
            );
        }
        drop(busy);
        let mut threads = std::collections::HashSet::new();
        for watch in watches {
            let (thread, stored) = watch.recv_timeout(Duration::from_secs(10)).unwrap();
            assert!(stored);
            threads.insert(thread);
        }
        assert_eq!(threads.len(), 1, "one writer thread answered them all");
        assert!(!threads.contains(&std::thread::current().id()));
        for id in ids {
            assert!(store.get(id).unwrap().is_some());
        }
        // Once the queue is empty, the store is idle again: the next commit is inline.
        for _ in 0..100 {
            if store.writer.queued.load(Ordering::Acquire) == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let done = submit_and_watch(&store, RequestId::generate(), event("after", 1_000));
        assert_eq!(
            done.try_recv().unwrap(),
            (std::thread::current().id(), true)
        );
    }

    #[test]
    fn concurrent_puts_share_transactions_and_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(SqliteStore::open(&dir.path().join("e.sqlite")).unwrap());
        let shared = RequestId::generate();
        let threads: Vec<_> = (0..16)
            .map(|n| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let mut ids = Vec::new();
                    for k in 0..8 {
                        let id = RequestId::generate();
                        store.put(id, &event(&format!("{n}-{k}"), 1_000)).unwrap();
                        ids.push(id);
                    }
                    // One duplicate request id per thread: refused, without undoing others.
                    let duplicate = store.put(shared, &event(&format!("dup-{n}"), 1_000));
                    (ids, duplicate.is_ok())
                })
            })
            .collect();
        let mut accepted_duplicates = 0;
        for thread in threads {
            let (ids, duplicate_ok) = thread.join().unwrap();
            accepted_duplicates += usize::from(duplicate_ok);
            for id in ids {
                assert!(store.get(id).unwrap().is_some());
            }
        }
        assert_eq!(
            accepted_duplicates, 1,
            "exactly one put of the shared id wins"
        );
    }

    #[test]
    fn request_ids_round_trip_and_reject_junk() {
        let id = RequestId::generate();
        assert_eq!(id.to_string().parse::<RequestId>().unwrap(), id);
        for junk in ["", "zz", &"a".repeat(31), &"g".repeat(32), &"a".repeat(33)] {
            assert!(junk.parse::<RequestId>().is_err(), "{junk}");
        }
    }

    #[test]
    fn generated_ids_start_with_the_time_and_differ() {
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let ids: Vec<RequestId> = (0..1_000).map(|_| RequestId::generate()).collect();
        let after = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let millis = |id: &RequestId| u128::from_str_radix(&id.to_string()[..12], 16).unwrap();
        for id in &ids {
            assert!((before..=after).contains(&millis(id)), "{id}");
        }
        // Made one after another: their text sorts in the order they were made, to the
        // millisecond.
        assert!(ids.windows(2).all(|w| millis(&w[0]) <= millis(&w[1])));
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        // The random part differs even within one millisecond.
        let tails: std::collections::HashSet<_> = ids
            .iter()
            .map(|id| id.to_string()[12..].to_owned())
            .collect();
        assert_eq!(tails.len(), ids.len());
    }

    #[test]
    fn registry_remembers_failures_and_forgets_done() {
        let registry = Registry::default();
        let (a, b) = (RequestId::generate(), RequestId::generate());
        registry.start(a);
        registry.start(b);
        assert_eq!(registry.state(a), Some(Lookup::InProgress));
        registry.done(a);
        registry.fail(b, "upstream broke".into());
        assert_eq!(registry.state(a), None);
        assert_eq!(
            registry.state(b),
            Some(Lookup::Failed("upstream broke".into()))
        );
    }
}
