//! Events addressed to the box: what the relay takes from clients ([`Inbox`]).
//!
//! The relay accepts an `EVENT` only when it is addressed to the signing key: a `p` tag that
//! names it, on a NIP-59 gift wrap ([`GIFT_WRAP`], [`EPHEMERAL_GIFT_WRAP`]) or a NIP-90
//! text-generation job request ([`JOB_REQUEST`]). [`Inbox::check`] says whether one is
//! acceptable (kind, `p` tag, size, id, BIP-340 signature, date); [`Inbox::accept`] keeps it:
//!
//! - kinds 1059 and 5050 go into the table `addressed_events` of the signer's SQLite file
//!   (`id` primary key, `kind`, `pubkey`, `created_at`, `json`, `received_at` in milliseconds,
//!   `size` in bytes), committed before the relay answers `OK true`. A row is dropped once its
//!   `created_at` is more than [`InboxLimits::retention`] old (9 days: NIP-59 wraps are
//!   backdated up to 2 days, so a wrap is kept at least 7 days after it arrives). When the
//!   table holds more than [`InboxLimits::max_events`] events or [`InboxLimits::max_bytes`]
//!   bytes, the events received first are dropped first: a flood can push out old events but
//!   never stops new ones from arriving (a table that refused when full would let anyone stop
//!   the box's mail for days with a few thousand events).
//! - kind 21059 is ephemeral: never stored, only handed to the live subscriptions. The ids
//!   of the last [`RECENT_EPHEMERAL`] are remembered in memory, so that one sent again is a
//!   `duplicate:` and reaches the subscriptions once.

use std::collections::{HashSet, VecDeque};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use provenance::nostr::filter::MatchEventOptions;
use provenance::nostr::prelude::{Event, EventId, Filter, PublicKey, Timestamp};
use rusqlite::{Connection, params};

use crate::store::{Durability, StoreError};

/// NIP-59 gift wrap.
pub const GIFT_WRAP: u16 = 1059;
/// NIP-59 ephemeral gift wrap (NIP-17 allows it for messages that need not be kept).
pub const EPHEMERAL_GIFT_WRAP: u16 = 21059;
/// NIP-90 job request for text generation.
pub const JOB_REQUEST: u16 = 5050;
/// The kind of a NIP-90 text-generation result (the box's own, kept by [`Inbox::check_own`]).
pub const JOB_RESULT: u16 = 6050;
/// The kind of NIP-90 job feedback (the box's own).
pub const JOB_FEEDBACK: u16 = 7000;

/// Ids of ephemeral events remembered to answer `duplicate:`.
pub const RECENT_EPHEMERAL: usize = 4096;

/// Most rows read by one query before the filter is applied (the table is capped anyway).
const MAX_SCAN: i64 = 50_000;

/// Whether `kind` is a gift wrap: sent only to a connection authenticated as its addressee.
pub fn is_gift_wrap(kind: u16) -> bool {
    kind == GIFT_WRAP || kind == EPHEMERAL_GIFT_WRAP
}

/// The bounds of what the inbox takes and keeps.
#[derive(Clone, Copy, Debug)]
pub struct InboxLimits {
    /// Largest `EVENT` message (the text as received) of an addressed event: 256 KiB by
    /// default (gift wraps of long messages are larger than the 64 KiB other messages may be).
    pub max_event_bytes: usize,
    /// How far in the future an event's `created_at` may be: 10 minutes by default.
    pub max_future: Duration,
    /// How long stored events are kept, counted from their `created_at`: 9 days by default.
    pub retention: Duration,
    /// Most events stored: 10,000 by default.
    pub max_events: u64,
    /// Most bytes of stored events (their JSON): 64 MiB by default.
    pub max_bytes: u64,
}

impl Default for InboxLimits {
    fn default() -> Self {
        Self {
            max_event_bytes: 256 * 1024,
            max_future: Duration::from_secs(600),
            retention: Duration::from_secs(9 * 24 * 3600),
            max_events: 10_000,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What became of an accepted event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Stored (kinds 1059, 5050): hand it to the live subscriptions.
    Stored,
    /// Ephemeral (kind 21059): not stored; hand it to the live subscriptions.
    Ephemeral,
    /// Already stored, or an ephemeral event seen recently: nothing to hand on.
    Duplicate,
}

/// The events addressed to the box; see the module.
pub struct Inbox {
    key: PublicKey,
    relay_url: String,
    /// Other URLs the relay answers to in NIP-42 (the listener's own loopback address).
    other_urls: Vec<String>,
    limits: InboxLimits,
    writes: Mutex<Connection>,
    reads: Mutex<Connection>,
    recent: Mutex<(VecDeque<EventId>, HashSet<EventId>)>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("key", &self.key)
            .field("relay_url", &self.relay_url)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Inbox {
    /// The inbox of the key `key`, in the table `addressed_events` of the SQLite database at
    /// `path` (the signer's store file is fine: WAL mode lets both write). `relay_url` is the
    /// URL clients reach the relay at (`ws://` or `wss://`), which NIP-42 `AUTH` events must
    /// name. Rows past their retention are dropped now.
    pub fn open(
        path: &Path,
        durability: Durability,
        key: PublicKey,
        relay_url: &str,
        limits: InboxLimits,
    ) -> Result<Self, StoreError> {
        let connect = || -> Result<Connection, rusqlite::Error> {
            let conn = Connection::open(path)?;
            conn.busy_timeout(Duration::from_secs(5))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            let sync = match durability {
                Durability::Full => "FULL",
                Durability::Process => "NORMAL",
            };
            conn.pragma_update(None, "synchronous", sync)?;
            Ok(conn)
        };
        let writes = connect()?;
        writes.execute_batch(
            "CREATE TABLE IF NOT EXISTS addressed_events (
                id TEXT PRIMARY KEY,
                kind INTEGER NOT NULL,
                pubkey TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                json TEXT NOT NULL,
                received_at INTEGER NOT NULL,
                size INTEGER NOT NULL
            );
            CREATE INDEX IF NOT EXISTS addressed_events_created_at
                ON addressed_events (created_at);
            CREATE INDEX IF NOT EXISTS addressed_events_received_at
                ON addressed_events (received_at);",
        )?;
        let inbox = Self {
            key,
            relay_url: normalize_url(relay_url),
            other_urls: Vec::new(),
            limits,
            writes: Mutex::new(writes),
            reads: Mutex::new(connect()?),
            recent: Mutex::new((VecDeque::new(), HashSet::new())),
        };
        inbox.prune(Timestamp::now())?;
        Ok(inbox)
    }

    /// The key events must be addressed to.
    pub fn key(&self) -> PublicKey {
        self.key
    }

    /// The relay URL NIP-42 `AUTH` events must name (lower-case scheme and host, no trailing
    /// `/`).
    pub fn relay_url(&self) -> &str {
        &self.relay_url
    }

    /// Also accepts `url` in NIP-42 `AUTH` events: the listener's loopback address, through
    /// which a program on the box itself (the DM agent) reads its inbox whatever the public
    /// URL is.
    pub fn also_named(mut self, url: &str) -> Self {
        let url = normalize_url(url);
        if url != self.relay_url && !self.other_urls.contains(&url) {
            self.other_urls.push(url);
        }
        self
    }

    /// Whether an `AUTH` event naming `url` (normalised) names this relay.
    pub fn is_named(&self, url: &str) -> bool {
        url == self.relay_url || self.other_urls.iter().any(|u| u == url)
    }

    /// Why the box's own program may not keep `event` here for its addressee to read;
    /// `None` when it may. The box's DM agent delivers its replies this way (gift wraps to
    /// their senders, NIP-90 feedback and results), so that a client that talks to the box
    /// alone reads them from it: the event must be of one of those kinds, within the size
    /// limit, with a valid id and signature. Its `p` tag names someone else, which is the
    /// point: gift wraps are still only sent to a connection authenticated as their addressee.
    pub fn check_own(&self, event: &Event, now: Timestamp) -> Option<String> {
        let kind = event.kind.as_u16();
        if !matches!(
            kind,
            GIFT_WRAP | EPHEMERAL_GIFT_WRAP | JOB_RESULT | JOB_FEEDBACK
        ) {
            return Some(format!("kind {kind} is not a reply this relay keeps"));
        }
        let bytes = event.as_json().len();
        if bytes > self.limits.max_event_bytes {
            return Some(format!(
                "event too large ({bytes} bytes; at most {})",
                self.limits.max_event_bytes
            ));
        }
        if event.verify().is_err() {
            return Some("bad id or signature".to_owned());
        }
        if event.created_at.as_secs()
            > now
                .as_secs()
                .saturating_add(self.limits.max_future.as_secs())
        {
            return Some("dated in the future".to_owned());
        }
        None
    }

    /// The bounds.
    pub fn limits(&self) -> &InboxLimits {
        &self.limits
    }

    /// Why `event` (sent in an `EVENT` message of `message_bytes` bytes) is not accepted at
    /// `now`, as the message of an `OK false` (`blocked:` or `invalid:`); `None` when it is.
    pub fn check(&self, event: &Event, message_bytes: usize, now: Timestamp) -> Option<String> {
        let kind = event.kind.as_u16();
        if !matches!(kind, GIFT_WRAP | EPHEMERAL_GIFT_WRAP | JOB_REQUEST) {
            return Some(format!(
                "blocked: this relay serves its signer's events and takes only gift wraps \
                 (kinds {GIFT_WRAP}, {EPHEMERAL_GIFT_WRAP}) and job requests (kind \
                 {JOB_REQUEST}) addressed to its key"
            ));
        }
        if !p_tags(event).any(|p| p == self.key.to_hex()) {
            return Some(format!(
                "blocked: not addressed to this relay's key ({}): no p tag names it",
                self.key.to_hex()
            ));
        }
        if message_bytes > self.limits.max_event_bytes {
            return Some(format!(
                "invalid: event too large ({message_bytes} bytes; at most {})",
                self.limits.max_event_bytes
            ));
        }
        if !event.verify_id() {
            return Some("invalid: the event id does not match its content".to_owned());
        }
        if !event.verify_signature() {
            return Some("invalid: bad signature".to_owned());
        }
        let (at, now) = (event.created_at.as_secs(), now.as_secs());
        if at > now.saturating_add(self.limits.max_future.as_secs()) {
            return Some(format!(
                "invalid: created_at is more than {} s in the future",
                self.limits.max_future.as_secs()
            ));
        }
        if kind != EPHEMERAL_GIFT_WRAP && at < now.saturating_sub(self.limits.retention.as_secs()) {
            return Some(format!(
                "invalid: created_at is older than the {} days this relay keeps events",
                self.limits.retention.as_secs() / 86_400
            ));
        }
        None
    }

    /// Keeps an event that passed [`Inbox::check`]: stores kinds 1059 and 5050 (committed
    /// when this returns), remembers the id of an ephemeral one. Blocking: call it off the
    /// async threads.
    pub fn accept(&self, event: &Event, now: Timestamp) -> Result<Accepted, StoreError> {
        if event.kind.as_u16() == EPHEMERAL_GIFT_WRAP {
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            let (order, ids) = &mut *recent;
            if !ids.insert(event.id) {
                return Ok(Accepted::Duplicate);
            }
            order.push_back(event.id);
            if order.len() > RECENT_EPHEMERAL {
                if let Some(old) = order.pop_front() {
                    ids.remove(&old);
                }
            }
            return Ok(Accepted::Ephemeral);
        }
        let json = event.as_json();
        let received_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let mut conn = self.writes.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction()?;
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO addressed_events
                (id, kind, pubkey, created_at, json, received_at, size)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                event.id.to_hex(),
                event.kind.as_u16(),
                event.pubkey.to_hex(),
                secs(event.created_at.as_secs()),
                json,
                received_ms,
                json.len() as i64,
            ],
        )?;
        if inserted == 0 {
            return Ok(Accepted::Duplicate);
        }
        prune_in(&tx, &self.limits, now)?;
        tx.commit()?;
        Ok(Accepted::Stored)
    }

    /// Drops the rows past their retention. Blocking.
    pub fn prune(&self, now: Timestamp) -> Result<(), StoreError> {
        let conn = self.writes.lock().unwrap_or_else(|e| e.into_inner());
        prune_in(&conn, &self.limits, now)?;
        Ok(())
    }

    /// Stored events matching `filter` within their retention at `now`, newest first, at most
    /// `limit`; gift wraps only when `wraps`. Blocking.
    pub fn query(
        &self,
        filter: &Filter,
        limit: usize,
        wraps: bool,
        now: Timestamp,
    ) -> Result<Vec<Event>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        if let Some(kinds) = &filter.kinds {
            let stored = |k: u16| {
                (k == GIFT_WRAP && wraps) || matches!(k, JOB_REQUEST | JOB_RESULT | JOB_FEEDBACK)
            };
            if !kinds.is_empty() && !kinds.iter().any(|k| stored(k.as_u16())) {
                return Ok(Vec::new());
            }
        }
        let oldest = now
            .as_secs()
            .saturating_sub(self.limits.retention.as_secs());
        let since = filter.since.map_or(0, |t| t.as_secs()).max(oldest);
        let until = filter.until.map_or(i64::MAX as u64, |t| t.as_secs());
        let conn = self.reads.lock().unwrap_or_else(|e| e.into_inner());
        let mut rows: Vec<String> = Vec::new();
        let excluded = if wraps { -1 } else { i64::from(GIFT_WRAP) };
        match &filter.ids {
            Some(ids) if !ids.is_empty() => {
                let mut stmt = conn.prepare_cached(
                    "SELECT json FROM addressed_events
                     WHERE id = ?1 AND created_at BETWEEN ?2 AND ?3 AND kind != ?4",
                )?;
                for id in ids {
                    let found = stmt.query_map(
                        params![id.to_hex(), secs(since), secs(until), excluded],
                        |r| r.get(0),
                    )?;
                    for json in found {
                        rows.push(json?);
                    }
                }
            }
            _ => {
                let mut stmt = conn.prepare_cached(
                    "SELECT json FROM addressed_events
                     WHERE created_at BETWEEN ?1 AND ?2 AND kind != ?3
                     ORDER BY created_at DESC LIMIT ?4",
                )?;
                let found = stmt
                    .query_map(params![secs(since), secs(until), excluded, MAX_SCAN], |r| {
                        r.get(0)
                    })?;
                for json in found {
                    rows.push(json?);
                }
            }
        }
        let mut events = Vec::new();
        for json in rows {
            // Written by `accept` from a parsed event: a row that does not parse was edited by
            // hand; it is left out.
            let Ok(event) = Event::from_json(&json) else {
                continue;
            };
            if filter.match_event(&event, MatchEventOptions::new()) {
                events.push(event);
                if events.len() >= limit {
                    break;
                }
            }
        }
        events.sort_by_key(|e| std::cmp::Reverse(e.created_at));
        Ok(events)
    }
}

/// The values of an event's `p` tags.
fn p_tags(event: &Event) -> impl Iterator<Item = &str> {
    event.tags.iter().filter_map(|tag| match tag.as_slice() {
        [name, value, ..] if name == "p" => Some(value.as_str()),
        _ => None,
    })
}

/// Whether a connection authenticated as `reader` may receive `event`: anything but a gift
/// wrap, and a gift wrap only when it `p`-tags `reader`.
pub fn readable_by(event: &Event, reader: Option<&PublicKey>) -> bool {
    if !is_gift_wrap(event.kind.as_u16()) {
        return true;
    }
    reader.is_some_and(|reader| {
        let reader = reader.to_hex();
        p_tags(event).any(|p| p == reader)
    })
}

/// A relay URL as compared for NIP-42: scheme and host in lower case, no trailing `/`.
pub fn normalize_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            format!(
                "{}://{}{path}",
                scheme.to_ascii_lowercase(),
                host.to_ascii_lowercase()
            )
        }
        None => url.to_owned(),
    }
}

fn secs(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// Drops rows past their retention, then the rows received first while the table holds
/// more than its caps.
fn prune_in(
    conn: &Connection,
    limits: &InboxLimits,
    now: Timestamp,
) -> Result<(), rusqlite::Error> {
    let oldest = now.as_secs().saturating_sub(limits.retention.as_secs());
    conn.execute(
        "DELETE FROM addressed_events WHERE created_at < ?1",
        params![secs(oldest)],
    )?;
    conn.execute(
        "DELETE FROM addressed_events WHERE rowid IN (
            SELECT rowid FROM (
                SELECT rowid,
                    SUM(size) OVER newest AS total,
                    ROW_NUMBER() OVER newest AS n
                FROM addressed_events
                WINDOW newest AS (ORDER BY received_at DESC, rowid DESC)
            ) WHERE total > ?1 OR n > ?2
        )",
        params![
            i64::try_from(limits.max_bytes).unwrap_or(i64::MAX),
            i64::try_from(limits.max_events).unwrap_or(i64::MAX),
        ],
    )?;
    Ok(())
}
