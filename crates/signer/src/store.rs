//! Where signed events live: the [`Store`] trait, here, and its rooms:
//!
//! | room | what |
//! |---|---|
//! | `sqlite` | [`SqliteStore`]: the schema, reads, the outbox table, [`Store`] over SQLite |
//! | `writer` | the one write connection: commits on the caller's thread or the writer thread (group commit) |
//! | `checkpoint` | the checkpointer thread that keeps checkpoints off the commit path |
//! | `reader` | [`StoreReader`]: another process's read-only view (events since a row) |
//! | `registry` | where in-flight requests stand, for [`Lookup`] |
//!
//!
//! The signing body commits every event through [`Store::submit`] **before** it releases the end
//! of the response, so an event whose response a client saw end is in the store, even if the
//! process is killed the next instant. Events are looked up by the request id the caller was
//! given at response start ([`Store::get`]), and by NIP-01 filters for the websocket
//! ([`Store::query`]).
//!
//! The prompt salt is never stored: it goes to the caller only (see `docs/signer.md`).

mod checkpoint;
mod reader;
mod registry;
mod sqlite;
mod writer;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use provenance::nostr::prelude::{Event, Filter};
use rand::RngCore;

pub use self::reader::{StoreReader, StoredRow};
pub(crate) use self::registry::Registry;
pub use self::sqlite::SqliteStore;
pub use self::writer::{WAL_RESTART_FRAMES, WAL_SIZE_LIMIT};

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
    /// one-client rate (docs/benchmarks-history.md, "The one-client tail").
    pub fn checkpoint_pause(self) -> Duration {
        match self {
            Self::Full => Duration::from_millis(5),
            Self::Process => Duration::from_millis(1),
        }
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

#[cfg(test)]
mod tests;
