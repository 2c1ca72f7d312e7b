//! What the agent has handled, in SQLite, so that a restart neither answers a direct message
//! twice nor loses one it accepted.
//!
//! One row per gift wrap the agent decided about, keyed by the wrap's event id:
//!
//! | state | meaning | kept |
//! |---|---|---|
//! | `queued` | accepted, waiting for the model; the wrap itself is kept so that a restart answers it | until answered |
//! | `answered` | the reply gift wrap is made; `published` says whether a relay took it | the reply until published |
//! | `refused` | the sender is not admitted, over its rate, or the queue was full | the reason |
//!
//! A reply is written here before it is published, and a restart publishes the stored reply
//! again (the same event, so relays keep one copy) instead of asking the model again. Gift
//! wraps that fail to open are not stored: they fail the same way every time they come back.
//!
//! Rows are pruned by the wrap's own date once it is older than [`super::MAX_WRAP_AGE`]: the
//! agent refuses wraps that old anyway, so a pruned one can never be answered again.

use std::path::Path;
use std::sync::Mutex;

use provenance::{EventId, PublicKey};
use rusqlite::{Connection, OptionalExtension, params};

/// A failure of the inbox database.
#[derive(Debug, thiserror::Error)]
#[error("direct-message store: {0}")]
pub struct InboxError(#[from] rusqlite::Error);

/// A reply made but not yet taken by any relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpublished {
    /// The wrap it answers.
    pub wrap_id: String,
    /// The reply gift wrap's JSON.
    pub reply: String,
    /// The recipient.
    pub recipient: String,
}

/// The SQLite inbox; see the module.
#[derive(Debug)]
pub struct Inbox {
    conn: Mutex<Connection>,
    table: &'static str,
}

impl Inbox {
    /// Opens (or makes) the inbox of direct messages at `path` (table `dm_wraps`).
    pub fn open(path: &Path) -> Result<Self, InboxError> {
        Self::open_table(path, "dm_wraps")
    }

    /// Opens (or makes) the inbox of NIP-90 job requests at `path` (table `jobs`, the same
    /// columns: the request event where a direct message has its wrap, the result or error
    /// feedback where it has its reply).
    pub fn open_jobs(path: &Path) -> Result<Self, InboxError> {
        Self::open_table(path, "jobs")
    }

    fn open_table(path: &Path, table: &'static str) -> Result<Self, InboxError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS {table} (
                 wrap_id    TEXT PRIMARY KEY,
                 sender     TEXT NOT NULL,
                 wrap_date  INTEGER NOT NULL,
                 state      TEXT NOT NULL CHECK (state IN ('queued', 'answered', 'refused')),
                 wrap       TEXT,
                 reply      TEXT,
                 published  INTEGER NOT NULL DEFAULT 0,
                 reason     TEXT
             );
             CREATE INDEX IF NOT EXISTS {table}_date ON {table} (wrap_date);"
        ))?;
        Ok(Self {
            conn: Mutex::new(conn),
            table,
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while the lock was held leaves SQLite consistent (each call is one
        // statement or one transaction), so a poisoned lock is still usable.
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the wrap was decided about before.
    pub fn seen(&self, wrap_id: &EventId) -> Result<bool, InboxError> {
        let found: Option<i64> = self
            .conn()
            .query_row(
                &format!("SELECT 1 FROM {} WHERE wrap_id = ?1", self.table),
                [wrap_id.to_hex()],
                |row| row.get(0),
            )
            .optional()?;
        Ok(found.is_some())
    }

    /// Records an accepted wrap, with its JSON. Returns `false` (and changes nothing) when
    /// the wrap was decided about before.
    pub fn queue(
        &self,
        wrap_id: &EventId,
        sender: &PublicKey,
        wrap_date: u64,
        wrap_json: &str,
    ) -> Result<bool, InboxError> {
        let n = self.conn().execute(
            &format!(
                "INSERT OR IGNORE INTO {} (wrap_id, sender, wrap_date, state, wrap)
                 VALUES (?1, ?2, ?3, 'queued', ?4)",
                self.table
            ),
            params![
                wrap_id.to_hex(),
                sender.to_hex(),
                wrap_date as i64,
                wrap_json
            ],
        )?;
        Ok(n == 1)
    }

    /// Records a refused wrap. Returns `false` when it was decided about before.
    pub fn refuse(
        &self,
        wrap_id: &EventId,
        sender: &PublicKey,
        wrap_date: u64,
        reason: &str,
    ) -> Result<bool, InboxError> {
        let n = self.conn().execute(
            &format!(
                "INSERT OR IGNORE INTO {} (wrap_id, sender, wrap_date, state, reason)
                 VALUES (?1, ?2, ?3, 'refused', ?4)",
                self.table
            ),
            params![wrap_id.to_hex(), sender.to_hex(), wrap_date as i64, reason],
        )?;
        Ok(n == 1)
    }

    /// Turns a queued wrap into an answered one, keeping the reply until it is published.
    pub fn answer(&self, wrap_id: &EventId, reply_json: &str) -> Result<(), InboxError> {
        self.conn().execute(
            &format!(
                "UPDATE {} SET state = 'answered', wrap = NULL, reply = ?2, published = 0
                 WHERE wrap_id = ?1",
                self.table
            ),
            params![wrap_id.to_hex(), reply_json],
        )?;
        Ok(())
    }

    /// Keeps a reply (a refusal) to a refused wrap until it is published.
    pub fn refusal_reply(&self, wrap_id: &EventId, reply_json: &str) -> Result<(), InboxError> {
        self.conn().execute(
            &format!(
                "UPDATE {} SET reply = ?2, published = 0 WHERE wrap_id = ?1",
                self.table
            ),
            params![wrap_id.to_hex(), reply_json],
        )?;
        Ok(())
    }

    /// A relay took the reply: it is no longer kept.
    pub fn published(&self, wrap_id: &str) -> Result<(), InboxError> {
        self.conn().execute(
            &format!(
                "UPDATE {} SET published = 1, reply = NULL WHERE wrap_id = ?1",
                self.table
            ),
            [wrap_id],
        )?;
        Ok(())
    }

    /// The wraps accepted but not answered (after a restart: to answer now), oldest first.
    pub fn queued(&self) -> Result<Vec<String>, InboxError> {
        let conn = self.conn();
        let mut statement = conn.prepare(&format!(
            "SELECT wrap FROM {} WHERE state = 'queued' AND wrap IS NOT NULL ORDER BY rowid",
            self.table
        ))?;
        let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
        rows.collect::<Result<_, _>>().map_err(InboxError)
    }

    /// Replies made but not yet taken by a relay, oldest first.
    pub fn unpublished(&self) -> Result<Vec<Unpublished>, InboxError> {
        let conn = self.conn();
        let mut statement = conn.prepare(&format!(
            "SELECT wrap_id, reply, sender FROM {}
             WHERE reply IS NOT NULL AND published = 0 ORDER BY rowid",
            self.table
        ))?;
        let rows = statement.query_map([], |row| {
            Ok(Unpublished {
                wrap_id: row.get(0)?,
                reply: row.get(1)?,
                recipient: row.get(2)?,
            })
        })?;
        rows.collect::<Result<_, _>>().map_err(InboxError)
    }

    /// Counts of rows per state, for tests and metrics: (queued, answered, refused).
    pub fn counts(&self) -> Result<(u64, u64, u64), InboxError> {
        let conn = self.conn();
        let count = |state: &str| -> Result<u64, InboxError> {
            let n: i64 = conn.query_row(
                &format!("SELECT COUNT(*) FROM {} WHERE state = ?1", self.table),
                [state],
                |row| row.get(0),
            )?;
            Ok(n.max(0) as u64)
        };
        Ok((count("queued")?, count("answered")?, count("refused")?))
    }

    /// Deletes rows of wraps dated before `before` (seconds) that are done with.
    pub fn prune(&self, before: u64) -> Result<usize, InboxError> {
        let n = self.conn().execute(
            &format!(
                "DELETE FROM {} WHERE wrap_date < ?1 AND state != 'queued'
                 AND (reply IS NULL OR published = 1)",
                self.table
            ),
            [before as i64],
        )?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use provenance::Keys;

    use super::*;

    fn id(byte: u8) -> EventId {
        EventId::from_byte_array([byte; 32])
    }

    #[test]
    fn a_wrap_is_decided_once_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dm.sqlite");
        let sender = Keys::generate().public_key();
        {
            let inbox = Inbox::open(&path).unwrap();
            assert!(inbox.queue(&id(1), &sender, 100, "{wrap}").unwrap());
            assert!(!inbox.queue(&id(1), &sender, 100, "{wrap}").unwrap());
            assert!(!inbox.refuse(&id(1), &sender, 100, "no").unwrap());
            assert!(inbox.refuse(&id(2), &sender, 100, "not allowed").unwrap());
        }
        let inbox = Inbox::open(&path).unwrap();
        assert!(inbox.seen(&id(1)).unwrap() && inbox.seen(&id(2)).unwrap());
        assert!(!inbox.seen(&id(3)).unwrap());
        assert_eq!(inbox.queued().unwrap(), vec!["{wrap}".to_owned()]);
        inbox.answer(&id(1), "{reply}").unwrap();
        assert!(inbox.queued().unwrap().is_empty());
        let pending = inbox.unpublished().unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].reply, "{reply}");
        assert_eq!(pending[0].recipient, sender.to_hex());
        inbox.published(&pending[0].wrap_id).unwrap();
        assert!(inbox.unpublished().unwrap().is_empty());
        assert_eq!(inbox.counts().unwrap(), (0, 1, 1));
    }

    #[test]
    fn pruning_keeps_queued_and_unpublished_rows() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(&dir.path().join("dm.sqlite")).unwrap();
        let sender = Keys::generate().public_key();
        inbox.queue(&id(1), &sender, 10, "{queued}").unwrap();
        inbox.queue(&id(2), &sender, 10, "{w}").unwrap();
        inbox.answer(&id(2), "{unpublished}").unwrap();
        inbox.refuse(&id(3), &sender, 10, "no").unwrap();
        inbox.refuse(&id(4), &sender, 500, "no").unwrap();
        assert_eq!(inbox.prune(100).unwrap(), 1);
        assert!(inbox.seen(&id(1)).unwrap() && inbox.seen(&id(2)).unwrap());
        assert!(!inbox.seen(&id(3)).unwrap() && inbox.seen(&id(4)).unwrap());
    }
}
