//! The checkpointer: copying the log into the database file, off the commit path.
//!
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
//! answers that waited behind it made most of the p99 (docs/benchmarks-history.md, "The one-client
//! tail"). Under steady load a passive checkpoint never catches up with the end of the log,
//! and SQLite restarts the log only once every frame is copied; so when the checkpointer has
//! just copied [`WAL_RESTART_FRAMES`] frames or more, the writer thread, after the next commit,
//! runs one passive checkpoint with the write connection held, which copies only the frames
//! since (and fsyncs the database file), after which the following commit starts the log over.
//! When that next commit was made on a caller's thread, the caller hands the checkpoint to the
//! writer thread instead of running it: it took 0.3 to 14 ms (docs/benchmarks-history.md, "The
//! one-client tail"), during which the caller's thread, a runtime worker that serves other
//! answers too, would serve nothing. The log file is cut back to [`WAL_SIZE_LIMIT`] bytes when
//! it restarts.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

#[cfg(doc)]
use super::{Durability, WAL_RESTART_FRAMES, WAL_SIZE_LIMIT};

/// The checkpointer thread: after each kick (a commit), one passive checkpoint, then a pause
/// of `pause`. Ends, after a last checkpoint, once the writer thread has ended.
pub(super) fn checkpointer(
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
pub(super) fn passive_checkpoint(conn: &Connection) -> Result<(i64, i64), rusqlite::Error> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get(1)?, row.get(2)?))
    })
}
