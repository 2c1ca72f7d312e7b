//! The one write connection, and who commits through it.
//!
//! One connection writes. When it is idle, [`super::Store::submit`] commits on the caller's thread:
//! at low load that saves handing the event to another thread and being woken by it (two
//! wake-ups, each of which can wait for a core). When a commit is running or events are
//! queued, events go to the writer thread, which commits all those waiting in one

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};

use provenance::nostr::prelude::Event;
use rusqlite::{Connection, params};

use super::checkpoint::passive_checkpoint;
use super::{Done, StoreError};

/// Work for the writer thread.
// Jobs go through the channel by value as a bare `Write` did; boxing it to shrink `Restart`
// (rare) would cost an allocation per queued event.
#[allow(clippy::large_enum_variant)]
pub(super) enum Job {
    /// An event to commit.
    Write(Write),
    /// The checkpoint that lets the log restart, due after a commit on a caller's thread
    /// (see [`Writer::commit`]).
    Restart,
}

/// One event for the writer thread, and where to say how it went.
pub(super) struct Write {
    pub(super) request_id: String,
    pub(super) event_id: String,
    pub(super) created_at: i64,
    pub(super) json: String,
    pub(super) relays: std::sync::Arc<[String]>,
    pub(super) event: Event,
    pub(super) done: Done,
}

/// Most events committed in one transaction.
const MAX_GROUP: usize = 256;

/// Log frames (pages) copied by the checkpointer after which the writer finishes the
/// checkpoint itself so that the log restarts: 4,096 frames of 4 KiB pages, a 16 MiB log.
pub const WAL_RESTART_FRAMES: i64 = 4_096;

/// Size the log file is cut back to when it restarts (`journal_size_limit`).
pub const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// The write connection, shared by the writer thread and by callers of [`super::Store::submit`]
/// that find it idle.
pub(super) struct Writer {
    pub(super) conn: Mutex<Connection>,
    /// Events handed to the writer thread and not yet answered.
    pub(super) queued: AtomicUsize,
    pub(super) checkpoints: Checkpoints,
}

/// The writer's side of checkpointing.
pub(super) struct Checkpoints {
    /// Wakes the checkpointer after a commit.
    pub(super) kick: mpsc::SyncSender<()>,
    /// Log frames the checkpointer had copied when it last finished; 0 once the writer has
    /// looked.
    pub(super) copied: Arc<AtomicI64>,
}

impl Writer {
    pub(super) fn lock(&self) -> MutexGuard<'_, Connection> {
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
    pub(super) fn commit(&self, mut conn: MutexGuard<'_, Connection>, group: Vec<Write>) -> bool {
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
pub(super) fn write_queued(writer: &Writer, queue: &mpsc::Receiver<Job>) {
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

/// Writes one event (and its outbox rows) with statements prepared once per connection:
/// parsing the SQL again cost more instructions per event than running it.
fn write_one(conn: &Connection, job: &Write) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "INSERT INTO events (request_id, event_id, created_at, json, pubkey, kind)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        job.request_id,
        job.event_id,
        job.created_at,
        job.json,
        job.event.pubkey.to_hex(),
        job.event.kind.as_u16()
    ])?;
    // The `x` tags, for relay filters on `#x` (see the store's module).
    for value in job
        .event
        .tags
        .iter()
        .filter_map(|t| match t.single_letter_tag() {
            Some(tag) if tag.as_char() == 'x' => t.content(),
            _ => None,
        })
    {
        conn.prepare_cached("INSERT OR IGNORE INTO event_x (x, event_id) VALUES (?1, ?2)")?
            .execute(params![value, job.event_id])?;
    }
    if !job.relays.is_empty() {
        let mut queue =
            conn.prepare_cached("INSERT OR IGNORE INTO outbox (event_id, relay) VALUES (?1, ?2)")?;
        for relay in job.relays.iter() {
            queue.execute(params![job.event_id, relay])?;
        }
    }
    Ok(())
}

pub(super) fn gone() -> StoreError {
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
