//! The box's own relay server: a NIP-01 relay over the signer's own events, with live
//! subscriptions, that also takes events addressed to the box.
//!
//! The signer's box can then be the relay hint of its events' `nevent`s, a client can watch
//! the events it signs, and a friend's client can write to the model at the box itself.
//! [`run_with`] serves one client connection ([`run`]: without an [`Inbox`], every `EVENT`
//! refused):
//!
//! - `REQ`: the stored events that match (newest first, at most [`MAX_LIMIT`] per filter),
//!   `EOSE`, and from then on every newly stored event that matches, until `CLOSE` or
//!   disconnect. A `REQ` with the id of an open subscription replaces it. At most
//!   [`Limits::max_subscriptions`] per connection and [`MAX_FILTERS`] filters per `REQ`; over
//!   either, or with a subscription id that is empty or over 64 characters, the `REQ` is
//!   refused with `CLOSED` and a reason.
//! - `CLOSE`: the subscription ends; nothing is sent back (NIP-01 defines no answer: `CLOSED`
//!   is for subscriptions the relay ends itself).
//! - `COUNT` (NIP-45): a count, bounded like `REQ`.
//! - `EVENT`: with an [`Inbox`], a gift wrap (kinds 1059, 21059) or NIP-90 job request (kind
//!   5050) whose `p` tag names the signing key is checked ([`Inbox::check`]: the `EVENT`
//!   message at most [`MAX_EVENT_MESSAGE_BYTES`], valid id and BIP-340 signature,
//!   `created_at` at most 10 minutes ahead and, for stored kinds, within the 9 days kept),
//!   kept ([`inbox`]: kinds 1059 and 5050 in SQLite, 21059 never stored) and answered
//!   `OK true` (`duplicate:` when seen before), then handed to the live subscriptions through
//!   the [`Hub`]. Every `EVENT` counts against [`Limits::events_per_minute`] (bursts of
//!   [`Limits::event_burst`]) per connection; over it, `OK false` `rate-limited:`. Anything
//!   else, or every `EVENT` without an inbox: `OK false` `blocked:` with the reason.
//! - `AUTH` (NIP-42, with an inbox): accepted when it is kind 22242 with a valid signature,
//!   this connection's challenge, a `relay` tag naming [`Inbox::relay_url`] and `created_at`
//!   within [`AUTH_WINDOW`] of the relay's clock (`OK false` `invalid:` otherwise).
//! - anything else: a `NOTICE`.
//!
//! Gift wraps are sent only to a connection authenticated as the key they `p`-tag: the box's
//! own key for those written to it, the sender's for the replies the box's DM agent keeps here
//! ([`crate::server::Mailbox`]). As NIP-17 inbox relays (khatru's, for one) do, the challenge
//! is sent when needed rather than on connect: a `REQ` from an unauthenticated connection
//! whose filters may match gift wraps (no `kinds`, or a gift wrap kind) gets
//! `["AUTH", challenge]` once; if every filter asks for gift wrap kinds only, the `REQ` is
//! refused with `CLOSED` `auth-required:`, so that a client authenticates and asks again; in
//! any other `REQ` the wraps are left out of the stored answer and of what is pushed live. An
//! authenticated connection gets the wraps addressed to the keys it authenticated as, and no
//! others. Job requests and the signer's
//! events are public. A connection that never asks for what may be a gift wrap sees no `AUTH`,
//! exactly as before the inbox.
//!
//! New events reach connections through a [`Hub`] (the signer's
//! [`crate::SignerBuilder::on_stored`] hook publishes to it). What a connection has not yet
//! sent is bounded: the hub keeps the last [`Hub::new`] `capacity` events for all connections
//! together, and one message being written may take at most [`Limits::send_timeout`]. A
//! connection that falls further behind than the hub holds gets `CLOSED` (`error: too
//! slow: ...`) for each open subscription and is disconnected; one whose reader stops reading
//! is disconnected when a write times out. Memory does not grow with a slow reader.
//!
//! A connection that holds no subscription and has sent nothing for
//! [`Limits::idle_timeout`] gets a `NOTICE` and is closed, so idle sockets cannot keep the
//! server's connection slots; one with an open subscription is waiting for events and stays.
//!
//! The websocket itself is the server's business (`crate::server::App` serves it at `/`): it
//! hands [`run_with`] a [`Transport`] that receives and sends text messages, at most
//! [`MAX_WEBSOCKET_MESSAGE_BYTES`] each with an inbox ([`MAX_MESSAGE_BYTES`] without); the
//! relay itself holds every message but an `EVENT` to [`MAX_MESSAGE_BYTES`].

pub mod inbox;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use provenance::nostr::filter::MatchEventOptions;
use provenance::nostr::prelude::{
    ClientMessage, Event, EventId, Filter, Kind, PublicKey, RelayMessage, SubscriptionId, Timestamp,
};
use rand::RngCore;
use tokio::sync::broadcast;

pub use self::inbox::{Inbox, InboxLimits};
use crate::OnStored;
use crate::store::{Store, StoreError};

/// Most events sent for one filter of the stored answer to a `REQ`, and the default when the
/// filter sets no `limit`.
pub const MAX_LIMIT: usize = 500;

/// Largest client message read, in bytes, except for an `EVENT` addressed to the box.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Largest `EVENT` message of an event addressed to the box (gift wraps of long messages are
/// larger than other messages): the default of [`InboxLimits::max_event_bytes`].
pub const MAX_EVENT_MESSAGE_BYTES: usize = 256 * 1024;

/// Largest websocket message (and frame) read when the relay has an [`Inbox`]: 64 KiB more
/// than [`MAX_EVENT_MESSAGE_BYTES`], so that an `EVENT` somewhat over its cap is answered
/// `OK false invalid:` instead of ending the connection. Larger ones end it.
pub const MAX_WEBSOCKET_MESSAGE_BYTES: usize = MAX_EVENT_MESSAGE_BYTES + 64 * 1024;

/// How far a NIP-42 `AUTH` event's `created_at` may be from the relay's clock.
pub const AUTH_WINDOW: Duration = Duration::from_secs(600);

/// Most keys one connection may authenticate as.
const MAX_AUTHENTICATED: usize = 8;

/// Most filters in one `REQ` (each new event is matched against every filter of every open
/// subscription).
pub const MAX_FILTERS: usize = 10;

/// Longest subscription id NIP-01 allows.
const MAX_SUBSCRIPTION_ID: usize = 64;

/// Events the default [`Hub`] holds for connections that have not sent them yet.
pub const HUB_CAPACITY: usize = 1024;

/// The bounds of one connection.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Open subscriptions per connection (20 by default).
    pub max_subscriptions: usize,
    /// How long one message may take to be written before the connection is dropped (10 s by
    /// default).
    pub send_timeout: Duration,
    /// How long a connection without an open subscription may send nothing before it is
    /// closed (60 s by default).
    pub idle_timeout: Duration,
    /// `EVENT`s a connection may send a minute, on average (20 by default); more are refused
    /// with `OK false` `rate-limited:`.
    pub events_per_minute: u32,
    /// `EVENT`s a connection may send at once before [`Limits::events_per_minute`] applies
    /// (10 by default).
    pub event_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_subscriptions: 20,
            send_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            events_per_minute: 20,
            event_burst: 10,
        }
    }
}

/// A websocket (or anything else) that carries NIP-01 text messages for [`run`].
pub trait Transport: Send {
    /// The next text message from the client; `None` once it has closed or failed.
    /// Must be cancel-safe (a message is not lost when the future is dropped unfinished).
    fn recv(&mut self) -> impl Future<Output = Option<String>> + Send;
    /// Sends one text message; `false` when the connection is gone.
    fn send(&mut self, text: String) -> impl Future<Output = bool> + Send;
}

/// Fans newly stored events out to the open connections. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Hub {
    sender: broadcast::Sender<(u64, Arc<Event>)>,
    /// The sequence number of the last event published; taken with the send, so that
    /// sequence numbers arrive in order.
    last: Arc<Mutex<u64>>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new(HUB_CAPACITY)
    }
}

impl Hub {
    /// A hub that holds the last `capacity` events for connections that have not sent them.
    pub fn new(capacity: usize) -> Self {
        Self {
            sender: broadcast::channel(capacity.max(1)).0,
            last: Arc::new(Mutex::new(0)),
        }
    }

    /// Hands a newly stored event to every connection.
    pub fn publish(&self, event: &Event) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        *last += 1;
        if self.sender.receiver_count() > 0 {
            // Err only when no connection listens: nothing to do.
            let _ = self.sender.send((*last, Arc::new(event.clone())));
        }
    }

    /// A hook for [`crate::SignerBuilder::on_stored`] that publishes every stored event.
    pub fn hook(&self) -> OnStored {
        let hub = self.clone();
        Arc::new(move |event| hub.publish(event))
    }

    fn last(&self) -> u64 {
        *self.last.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An open subscription.
struct Subscription {
    filters: Vec<Filter>,
    /// Events published up to this number were committed before the stored answer was read:
    /// they were in it (or left out by its `limit`), so they are not sent again.
    answered_through: u64,
    /// Events of the stored answer, and the last number published while it was read: an
    /// event published in that window may be in the answer already.
    recent: HashSet<EventId>,
    recent_through: u64,
}

impl Subscription {
    /// Whether a new event (number `seq`) is to be sent to this subscription.
    fn wants(&mut self, seq: u64, event: &Event) -> bool {
        if seq <= self.answered_through {
            return false;
        }
        if seq > self.recent_through {
            self.recent = HashSet::new();
        } else if self.recent.contains(&event.id) {
            return false;
        }
        self.filters
            .iter()
            .any(|f| f.match_event(event, MatchEventOptions::new()))
    }
}

/// Serves one client connection until it closes, fails, or falls too far behind; every
/// `EVENT` is refused (`blocked:`).
pub async fn run<T: Transport>(transport: T, store: Arc<dyn Store>, hub: Hub, limits: Limits) {
    run_with(transport, store, hub, limits, None).await;
}

/// [`run`], taking the events addressed to the box into `inbox` when there is one (see the
/// module).
pub async fn run_with<T: Transport>(
    mut transport: T,
    store: Arc<dyn Store>,
    hub: Hub,
    limits: Limits,
    inbox: Option<Arc<Inbox>>,
) {
    let mut challenge = [0u8; 16];
    rand::rng().fill_bytes(&mut challenge);
    let mut connection = Connection {
        store,
        hub: hub.clone(),
        limits,
        subscriptions: HashMap::new(),
        inbox,
        challenge: hex::encode(challenge),
        challenge_sent: false,
        authenticated: HashSet::new(),
        bucket: Bucket::new(limits),
    };
    let mut feed = hub.sender.subscribe();
    let mut deadline = tokio::time::Instant::now() + limits.idle_timeout;
    loop {
        let idle = tokio::time::sleep_until(deadline);
        let outgoing = tokio::select! {
            // New events first: a connection that keeps up never falls behind.
            biased;
            live = feed.recv() => match live {
                Ok((seq, event)) => connection.live(seq, &event),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    let reason = format!(
                        "error: too slow: {missed} new events were not read in time; reconnect"
                    );
                    let closing: Vec<String> = connection
                        .subscriptions
                        .keys()
                        .map(|id| RelayMessage::closed(id.clone(), reason.clone()).as_json())
                        .collect();
                    for message in closing.into_iter().chain([notice(&reason)]) {
                        if !send(&mut transport, message, limits.send_timeout).await {
                            break;
                        }
                    }
                    return;
                }
                // The hub is gone (the server is stopping): no more live events.
                Err(broadcast::error::RecvError::Closed) => return,
            },
            text = transport.recv() => match text {
                Some(text) => {
                    deadline = tokio::time::Instant::now() + limits.idle_timeout;
                    connection.message(&text).await
                }
                None => return,
            },
            () = idle, if connection.subscriptions.is_empty() => {
                let reason = format!(
                    "closing: no subscription and no message for {} s",
                    limits.idle_timeout.as_secs_f64()
                );
                send(&mut transport, notice(&reason), limits.send_timeout).await;
                return;
            }
        };
        for message in outgoing {
            if !send(&mut transport, message, limits.send_timeout).await {
                return;
            }
        }
    }
}

async fn send<T: Transport>(transport: &mut T, message: String, timeout: Duration) -> bool {
    matches!(
        tokio::time::timeout(timeout, transport.send(message)).await,
        Ok(true)
    )
}

/// A token bucket: [`Limits::events_per_minute`], bursts of [`Limits::event_burst`].
struct Bucket {
    tokens: f64,
    at: Instant,
    per_second: f64,
    burst: f64,
}

impl Bucket {
    fn new(limits: Limits) -> Self {
        let burst = f64::from(limits.event_burst.max(1));
        Self {
            tokens: burst,
            at: Instant::now(),
            per_second: f64::from(limits.events_per_minute) / 60.0,
            burst,
        }
    }

    /// Takes one token; `false` when none is left.
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The state of one connection.
struct Connection {
    store: Arc<dyn Store>,
    hub: Hub,
    limits: Limits,
    subscriptions: HashMap<SubscriptionId, Subscription>,
    /// Where events addressed to the box go; `None`: every `EVENT` is refused.
    inbox: Option<Arc<Inbox>>,
    /// The NIP-42 challenge of this connection.
    challenge: String,
    /// Whether `["AUTH", challenge]` was sent.
    challenge_sent: bool,
    /// The keys this connection authenticated as (NIP-42).
    authenticated: HashSet<PublicKey>,
    bucket: Bucket,
}

impl Connection {
    /// The messages a new event (number `seq`) gives: one per subscription it matches.
    fn live(&mut self, seq: u64, event: &Event) -> Vec<String> {
        let mut out = Vec::new();
        // A gift wrap goes only to a connection authenticated as a key it is addressed to.
        if inbox::is_gift_wrap(event.kind.as_u16())
            && !self
                .authenticated
                .iter()
                .any(|key| inbox::readable_by(event, Some(key)))
        {
            return out;
        }
        for (id, subscription) in &mut self.subscriptions {
            if subscription.wants(seq, event) {
                out.push(RelayMessage::event(id.clone(), event.clone()).as_json());
            }
        }
        out
    }

    /// The answer to one client message.
    async fn message(&mut self, text: &str) -> Vec<String> {
        let cap = if self.inbox.is_some() && is_event_message(text) {
            MAX_WEBSOCKET_MESSAGE_BYTES
        } else {
            MAX_MESSAGE_BYTES
        };
        if text.len() > cap {
            return vec![notice("invalid: message too large")];
        }
        let message = match ClientMessage::from_json(text) {
            Ok(message) => message,
            Err(e) => return vec![notice(&format!("invalid: {e}"))],
        };
        match message {
            ClientMessage::Req {
                subscription_id,
                filters,
            } => {
                let filters = filters
                    .into_iter()
                    .map(std::borrow::Cow::into_owned)
                    .collect();
                self.req(subscription_id.into_owned(), filters).await
            }
            ClientMessage::Count {
                subscription_id,
                filter,
            } => {
                let id = subscription_id.into_owned();
                match self.query(vec![filter.into_owned()], MAX_LIMIT).await {
                    Ok(events) => vec![RelayMessage::count(id, events.len()).as_json()],
                    Err(_) => vec![closed(id, "error: the store failed")],
                }
            }
            ClientMessage::Event(event) => vec![self.event(event.into_owned(), text.len()).await],
            ClientMessage::Auth(event) if self.inbox.is_some() => vec![self.auth(&event)],
            ClientMessage::Close(id) => {
                self.subscriptions.remove(id.as_ref());
                Vec::new()
            }
            _ if self.inbox.is_some() => {
                vec![notice(
                    "unsupported: only REQ, COUNT, CLOSE, EVENT and AUTH",
                )]
            }
            _ => vec![notice("unsupported: only REQ, COUNT and CLOSE")],
        }
    }

    /// The `OK` answer to an `EVENT`; an accepted one is handed to the live subscriptions.
    async fn event(&mut self, event: Event, bytes: usize) -> String {
        let id = event.id;
        let Some(inbox) = self.inbox.clone() else {
            return ok(
                id,
                false,
                "blocked: this relay only serves the events its signer made",
            );
        };
        if !self.bucket.take() {
            let reason = format!(
                "rate-limited: at most {} events a minute per connection (bursts of {})",
                self.limits.events_per_minute, self.limits.event_burst
            );
            return ok(id, false, &reason);
        }
        let now = Timestamp::now();
        if let Some(reason) = inbox.check(&event, bytes, now) {
            return ok(id, false, &reason);
        }
        let event = Arc::new(event);
        let kept = event.clone();
        let accepted = tokio::task::spawn_blocking(move || inbox.accept(&kept, now)).await;
        match accepted {
            Ok(Ok(inbox::Accepted::Stored | inbox::Accepted::Ephemeral)) => {
                // Stored before it is published, as the signer's events are: a `REQ` whose
                // stored part was read after this number has it.
                self.hub.publish(&event);
                ok(id, true, "")
            }
            Ok(Ok(inbox::Accepted::Duplicate)) => {
                ok(id, true, "duplicate: this relay has this event already")
            }
            Ok(Err(_)) | Err(_) => ok(id, false, "error: the store failed"),
        }
    }

    /// The `OK` answer to a NIP-42 `AUTH`: kind 22242, valid id and signature, this
    /// connection's challenge, the relay's URL, `created_at` within [`AUTH_WINDOW`].
    fn auth(&mut self, event: &Event) -> String {
        let id = event.id;
        let Some(inbox) = &self.inbox else {
            return ok(id, false, "restricted: nothing here needs authentication");
        };
        let refused = |why: &str| ok(id, false, &format!("invalid: {why}"));
        if event.kind != Kind::Authentication {
            return refused("an AUTH event has kind 22242");
        }
        if event.verify().is_err() {
            return refused("bad id or signature");
        }
        let (at, now) = (event.created_at.as_secs(), Timestamp::now().as_secs());
        if at.abs_diff(now) > AUTH_WINDOW.as_secs() {
            return refused("created_at is more than 10 minutes from the relay's clock");
        }
        if event.tags.challenge().as_deref() != Some(self.challenge.as_str()) {
            return refused("not this connection's challenge");
        }
        let relay = event.tags.iter().find_map(|tag| match tag.as_slice() {
            [name, value, ..] if name == "relay" => Some(inbox::normalize_url(value)),
            _ => None,
        });
        if !relay.as_deref().is_some_and(|r| inbox.is_named(r)) {
            return refused(&format!("the relay tag must be {}", inbox.relay_url()));
        }
        if !self.authenticated.contains(&event.pubkey)
            && self.authenticated.len() >= MAX_AUTHENTICATED
        {
            return ok(
                id,
                false,
                "restricted: too many keys authenticated on this connection",
            );
        }
        self.authenticated.insert(event.pubkey);
        ok(id, true, "")
    }

    async fn req(&mut self, id: SubscriptionId, filters: Vec<Filter>) -> Vec<String> {
        // A REQ with an open subscription's id replaces it.
        self.subscriptions.remove(&id);
        if id.as_str().is_empty() || id.as_str().len() > MAX_SUBSCRIPTION_ID {
            return vec![closed(
                id,
                "invalid: a subscription id has 1 to 64 characters",
            )];
        }
        if self.subscriptions.len() >= self.limits.max_subscriptions {
            let reason = format!(
                "error: too many open subscriptions (at most {} per connection); CLOSE one first",
                self.limits.max_subscriptions
            );
            return vec![closed(id, &reason)];
        }
        if filters.len() > MAX_FILTERS {
            let reason = format!("invalid: at most {MAX_FILTERS} filters per REQ");
            return vec![closed(id, &reason)];
        }
        let mut out = Vec::new();
        if self.inbox.is_some()
            && self.authenticated.is_empty()
            && filters.iter().any(may_match_wraps)
        {
            // NIP-42, as NIP-17 inbox relays do: a REQ for gift wraps alone is refused with
            // `auth-required:` (the challenge is sent first, so that a client answers it and
            // asks again); in a REQ for more, the wraps are left out. An authenticated
            // connection gets the wraps addressed to the keys it authenticated as, and no
            // others.
            if !self.challenge_sent {
                self.challenge_sent = true;
                out.push(RelayMessage::auth(self.challenge.clone()).as_json());
            }
            if filters.iter().all(only_wraps) {
                out.push(closed(
                    id,
                    "auth-required: gift wraps are sent only to the key they are addressed to",
                ));
                return out;
            }
        }
        let answered_through = self.hub.last();
        let events = match self.query(filters.clone(), MAX_LIMIT).await {
            Ok(events) => events,
            Err(_) => {
                out.push(closed(id, "error: the store failed"));
                return out;
            }
        };
        let recent_through = self.hub.last();
        out.reserve(events.len() + 1);
        let mut recent = HashSet::new();
        for event in events {
            if recent_through > answered_through {
                recent.insert(event.id);
            }
            out.push(RelayMessage::event(id.clone(), event).as_json());
        }
        out.push(RelayMessage::eose(id.clone()).as_json());
        self.subscriptions.insert(
            id,
            Subscription {
                filters,
                answered_through,
                recent,
                recent_through,
            },
        );
        out
    }

    /// The stored events matching any of `filters` (at most `max` per filter), each once, on
    /// a blocking thread: the signer's, and those of the inbox this connection may read.
    async fn query(&self, filters: Vec<Filter>, max: usize) -> Result<Vec<Event>, StoreError> {
        let store = self.store.clone();
        let inbox = self.inbox.clone();
        let readers: Vec<PublicKey> = self.authenticated.iter().copied().collect();
        tokio::task::spawn_blocking(move || {
            stored(store.as_ref(), inbox.as_deref(), &readers, &filters, max)
        })
        .await
        .map_err(|e| StoreError::Thread(e.to_string()))?
    }
}

/// The stored events matching any of `filters` (newest first per filter, at most `max` and
/// the filter's `limit` each), each once: the signer's, and those of `inbox` (gift wraps only
/// those addressed to one of `readers`, the keys the connection authenticated as).
fn stored(
    store: &dyn Store,
    inbox: Option<&Inbox>,
    readers: &[PublicKey],
    filters: &[Filter],
    max: usize,
) -> Result<Vec<Event>, StoreError> {
    let wraps = !readers.is_empty();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let now = Timestamp::now();
    for filter in filters {
        let limit = filter.limit.unwrap_or(max).min(max);
        let mut found = store.query(filter, limit)?;
        if let Some(inbox) = inbox {
            found.extend(
                inbox
                    .query(filter, usize::MAX, wraps, now)?
                    .into_iter()
                    .filter(|e| {
                        readers.iter().any(|r| inbox::readable_by(e, Some(r)))
                            || !inbox::is_gift_wrap(e.kind.as_u16())
                    }),
            );
            found.sort_by_key(|e| std::cmp::Reverse(e.created_at));
            found.truncate(limit);
        }
        for event in found {
            if seen.insert(event.id) {
                out.push(event);
            }
        }
    }
    Ok(out)
}

/// Whether `filter` may match a gift wrap: it names no kinds, or a gift wrap kind.
fn may_match_wraps(filter: &Filter) -> bool {
    filter.kinds.as_ref().is_none_or(|kinds| {
        kinds.is_empty() || kinds.iter().any(|k| inbox::is_gift_wrap(k.as_u16()))
    })
}

/// Whether `filter` matches gift wraps only: it names kinds, all of them gift wraps.
fn only_wraps(filter: &Filter) -> bool {
    filter.kinds.as_ref().is_some_and(|kinds| {
        !kinds.is_empty() && kinds.iter().all(|k| inbox::is_gift_wrap(k.as_u16()))
    })
}

/// Whether `text` is an `EVENT` message (by its start: the size cap applies before parsing).
fn is_event_message(text: &str) -> bool {
    text.trim_start()
        .strip_prefix('[')
        .is_some_and(|rest| rest.trim_start().starts_with("\"EVENT\""))
}

fn ok(id: EventId, accepted: bool, message: &str) -> String {
    RelayMessage::ok(id, accepted, message).as_json()
}

fn notice(text: &str) -> String {
    RelayMessage::notice(text).as_json()
}

fn closed(id: SubscriptionId, reason: &str) -> String {
    RelayMessage::closed(id, reason).as_json()
}

#[cfg(test)]
mod tests {
    use provenance::clock::FixedClock;
    use provenance::{Keys, Model, Output, Record, Timestamp};
    use tokio::sync::mpsc;

    use super::*;
    use crate::store::{RequestId, SqliteStore};

    fn event(keys: &Keys, text: &str, at: u64) -> Event {
        let record = Record::new(Output::from_text(text), Model::named("m"));
        provenance::event::sign(&record, keys, &FixedClock(Timestamp::from_secs(at))).unwrap()
    }

    /// A connection driven by the test: what it sends in, what the relay sent out. A send
    /// takes `delay` (a slow reader); with `stuck`, sends of events never finish.
    struct Pipe {
        incoming: mpsc::UnboundedReceiver<String>,
        outgoing: mpsc::UnboundedSender<String>,
        delay: Duration,
        stuck: bool,
    }

    impl Transport for Pipe {
        async fn recv(&mut self) -> Option<String> {
            self.incoming.recv().await
        }

        async fn send(&mut self, text: String) -> bool {
            if self.stuck && text.starts_with(r#"["EVENT""#) {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(self.delay).await;
            self.outgoing.send(text).is_ok()
        }
    }

    struct Client {
        to_relay: mpsc::UnboundedSender<String>,
        from_relay: mpsc::UnboundedReceiver<String>,
        done: tokio::task::JoinHandle<()>,
    }

    impl Client {
        async fn next(&mut self) -> String {
            tokio::time::timeout(Duration::from_secs(5), self.from_relay.recv())
                .await
                .expect("an answer in time")
                .expect("the connection is open")
        }

        fn say(&self, text: &str) {
            self.to_relay.send(text.to_owned()).unwrap();
        }
    }

    fn connect(
        store: &Arc<SqliteStore>,
        hub: &Hub,
        limits: Limits,
        pipe: (Duration, bool),
    ) -> Client {
        connect_with(store, hub, limits, pipe, None)
    }

    fn connect_with(
        store: &Arc<SqliteStore>,
        hub: &Hub,
        limits: Limits,
        pipe: (Duration, bool),
        inbox: Option<Arc<Inbox>>,
    ) -> Client {
        let (to_relay, incoming) = mpsc::unbounded_channel();
        let (outgoing, from_relay) = mpsc::unbounded_channel();
        let transport = Pipe {
            incoming,
            outgoing,
            delay: pipe.0,
            stuck: pipe.1,
        };
        let done = tokio::spawn(run_with(
            transport,
            store.clone(),
            hub.clone(),
            limits,
            inbox,
        ));
        Client {
            to_relay,
            from_relay,
            done,
        }
    }

    fn setup() -> (tempfile::TempDir, Arc<SqliteStore>, Keys, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("e.sqlite")).unwrap());
        let keys = Keys::generate();
        let mut ids = Vec::new();
        for (n, text) in ["a", "b", "c"].iter().enumerate() {
            let event = event(&keys, text, 1000 + n as u64);
            ids.push(event.id.to_hex());
            store.put(RequestId::generate(), &event).unwrap();
        }
        (dir, store, keys, ids)
    }

    /// Stores and publishes, as the signer does.
    fn sign_and_publish(store: &SqliteStore, hub: &Hub, keys: &Keys, text: &str) -> Event {
        let event = event(keys, text, 2000);
        store.put(RequestId::generate(), &event).unwrap();
        hub.publish(&event);
        event
    }

    #[tokio::test]
    async fn req_count_event_close_and_junk() {
        let (_dir, store, keys, ids) = setup();
        let hub = Hub::default();
        let mut c = connect(&store, &hub, Limits::default(), (Duration::ZERO, false));
        c.say(r#"["REQ","s",{"kinds":[1988],"limit":2}]"#);
        let first = c.next().await;
        assert!(first.starts_with(r#"["EVENT","s",{"#) && first.contains(&ids[2]));
        assert!(c.next().await.contains(&ids[1]));
        assert_eq!(c.next().await, r#"["EOSE","s"]"#);
        // Two filters matching the same event send it once.
        c.say(&format!(
            r#"["REQ","t",{{"ids":["{0}"]}},{{"ids":["{0}"]}}]"#,
            ids[0]
        ));
        assert!(c.next().await.contains(&ids[0]));
        assert_eq!(c.next().await, r#"["EOSE","t"]"#);
        c.say(r#"["COUNT","c",{"kinds":[1988]}]"#);
        assert_eq!(c.next().await, r#"["COUNT","c",{"count":3}]"#);
        c.say("not json");
        assert!(c.next().await.starts_with(r#"["NOTICE","invalid:"#));
        c.say(&format!(
            r#"["REQ","{}",{{}}]"#,
            "x".repeat(MAX_MESSAGE_BYTES)
        ));
        assert!(c.next().await.contains("too large"));
        c.say(&ClientMessage::event(event(&keys, "z", 1)).as_json());
        let ok = c.next().await;
        assert!(ok.starts_with(r#"["OK","#) && ok.contains("false"), "{ok}");
        c.say(&format!(r#"["REQ","{}",{{}}]"#, "x".repeat(65)));
        assert!(c.next().await.starts_with(r#"["CLOSED","#));
        let many = ["{}"; MAX_FILTERS + 1].join(",");
        c.say(&format!(r#"["REQ","f",{many}]"#));
        assert!(c.next().await.contains("at most 10 filters"));

        // Live: "s" (kind 1988) and "t" (one id) are open. A new event goes to "s" only.
        let new = sign_and_publish(&store, &hub, &keys, "live");
        let live = c.next().await;
        assert!(live.starts_with(r#"["EVENT","s",{"#) && live.contains(&new.id.to_hex()));
        // After CLOSE nothing more: no answer to the CLOSE, no event for "s".
        c.say(r#"["CLOSE","s"]"#);
        c.say(r#"["COUNT","closed",{"kinds":[1988]}]"#);
        assert_eq!(c.next().await, r#"["COUNT","closed",{"count":4}]"#);
        sign_and_publish(&store, &hub, &keys, "after close");
        c.say(r#"["COUNT","barrier",{"kinds":[1988]}]"#);
        assert_eq!(c.next().await, r#"["COUNT","barrier",{"count":5}]"#);
        drop(c.to_relay);
        c.done.await.unwrap();
    }

    #[tokio::test]
    async fn subscriptions_per_connection_are_bounded_and_replaced_by_id() {
        let (_dir, store, keys, _) = setup();
        let hub = Hub::default();
        let limits = Limits {
            max_subscriptions: 2,
            ..Limits::default()
        };
        let mut c = connect(&store, &hub, limits, (Duration::ZERO, false));
        for id in ["a", "b", "a"] {
            c.say(&format!(r#"["REQ","{id}",{{"limit":0}}]"#));
            assert_eq!(c.next().await, format!(r#"["EOSE","{id}"]"#));
        }
        c.say(r#"["REQ","c",{"limit":0}]"#);
        let refused = c.next().await;
        assert!(
            refused.starts_with(r#"["CLOSED","c","error: too many"#),
            "{refused}"
        );
        // The refused one is not live; "a" (replaced, not doubled) and "b" are.
        let new = sign_and_publish(&store, &hub, &keys, "x");
        let mut got = [c.next().await, c.next().await];
        got.sort();
        assert!(got[0].starts_with(r#"["EVENT","a","#) && got[1].starts_with(r#"["EVENT","b","#));
        assert!(got.iter().all(|m| m.contains(&new.id.to_hex())));
        c.say(r#"["CLOSE","b"]"#);
        c.say(r#"["REQ","c",{"limit":0}]"#);
        assert_eq!(c.next().await, r#"["EOSE","c"]"#);
    }

    #[tokio::test]
    async fn a_reader_that_falls_behind_is_closed_and_disconnected() {
        let (_dir, store, keys, _) = setup();
        let hub = Hub::new(4);
        // Every write takes 20 ms: 30 events come faster than they can be sent.
        let mut c = connect(
            &store,
            &hub,
            Limits::default(),
            (Duration::from_millis(20), false),
        );
        c.say(r#"["REQ","s",{"limit":0}]"#);
        assert_eq!(c.next().await, r#"["EOSE","s"]"#);
        for n in 0..30 {
            sign_and_publish(&store, &hub, &keys, &format!("{n}"));
        }
        let mut last = Vec::new();
        while let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_secs(5), c.from_relay.recv()).await
        {
            last.push(message);
        }
        let closed = last
            .iter()
            .position(|m| m.starts_with(r#"["CLOSED","s","error: too slow"#));
        assert!(closed.is_some(), "{last:?}");
        assert!(
            last.last()
                .unwrap()
                .starts_with(r#"["NOTICE","error: too slow"#)
        );
        tokio::time::timeout(Duration::from_secs(5), c.done)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn a_connection_without_subscriptions_that_says_nothing_is_closed() {
        let (_dir, store, keys, _) = setup();
        let hub = Hub::default();
        let limits = Limits {
            idle_timeout: Duration::from_millis(300),
            ..Limits::default()
        };
        // Silent from the start.
        let mut c = connect(&store, &hub, limits, (Duration::ZERO, false));
        let notice = c.next().await;
        assert!(
            notice.starts_with(r#"["NOTICE","closing: no subscription"#),
            "{notice}"
        );
        tokio::time::timeout(Duration::from_secs(5), c.done)
            .await
            .unwrap()
            .unwrap();

        // A subscription keeps it open past the timeout: it is waiting for events.
        let mut c = connect(&store, &hub, limits, (Duration::ZERO, false));
        c.say(r#"["REQ","s",{"limit":0}]"#);
        assert_eq!(c.next().await, r#"["EOSE","s"]"#);
        tokio::time::sleep(Duration::from_millis(900)).await;
        let new = sign_and_publish(&store, &hub, &keys, "late");
        let live = c.next().await;
        assert!(live.contains(&new.id.to_hex()), "{live}");
        // Closing the last subscription starts the clock again.
        c.say(r#"["CLOSE","s"]"#);
        let notice = c.next().await;
        assert!(
            notice.starts_with(r#"["NOTICE","closing: no subscription"#),
            "{notice}"
        );
        tokio::time::timeout(Duration::from_secs(5), c.done)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn a_reader_that_stops_reading_is_disconnected() {
        let (_dir, store, keys, _) = setup();
        let hub = Hub::default();
        let limits = Limits {
            send_timeout: Duration::from_millis(100),
            ..Limits::default()
        };
        let mut c = connect(&store, &hub, limits, (Duration::ZERO, true));
        c.say(r#"["REQ","s",{"limit":0}]"#);
        assert_eq!(c.next().await, r#"["EOSE","s"]"#);
        sign_and_publish(&store, &hub, &keys, "x");
        tokio::time::timeout(Duration::from_secs(5), c.done)
            .await
            .unwrap()
            .unwrap();
    }

    mod addressed {
        use provenance::nostr::prelude::{EventBuilder, FinalizeEvent, Tag};

        use super::*;
        use crate::store::Durability;

        const URL: &str = "ws://box.test";

        /// An event of `kind` from a fresh key, `p`-tagging `to`, dated `at` (now when `None`).
        fn addressed(kind: u16, to: &PublicKey, content: &str, at: Option<u64>) -> Event {
            let mut builder =
                EventBuilder::new(Kind::from_u16(kind), content).tag(Tag::public_key(*to));
            if let Some(at) = at {
                builder = builder.custom_created_at(Timestamp::from_secs(at));
            }
            builder.finalize(&Keys::generate()).unwrap()
        }

        fn auth_event(keys: &Keys, challenge: &str, relay: &str) -> String {
            let event = EventBuilder::new(Kind::Authentication, "")
                .tag(Tag::parse(["relay", relay]).unwrap())
                .tag(Tag::parse(["challenge", challenge]).unwrap())
                .finalize(keys)
                .unwrap();
            ClientMessage::auth(event).as_json()
        }

        fn open_inbox(dir: &tempfile::TempDir, key: &Keys, limits: InboxLimits) -> Arc<Inbox> {
            let path = dir.path().join("e.sqlite");
            let inbox = Inbox::open(&path, Durability::Full, key.public_key(), URL, limits);
            Arc::new(inbox.unwrap())
        }

        /// Generous rate limits, for tests about something else.
        fn no_rate() -> Limits {
            Limits {
                events_per_minute: 6000,
                event_burst: 1000,
                ..Limits::default()
            }
        }

        fn ok_of(message: &str) -> (bool, String) {
            let v: serde_json::Value = serde_json::from_str(message).unwrap();
            assert_eq!(v[0], "OK", "{message}");
            (v[2].as_bool().unwrap(), v[3].as_str().unwrap().to_owned())
        }

        async fn send_event(c: &mut Client, event: &Event) -> (bool, String) {
            c.say(&ClientMessage::event(event.clone()).as_json());
            ok_of(&c.next().await)
        }

        fn challenge_of(message: &str) -> String {
            let v: serde_json::Value = serde_json::from_str(message).unwrap();
            assert_eq!(v[0], "AUTH", "{message}");
            v[1].as_str().unwrap().to_owned()
        }

        #[tokio::test]
        async fn events_addressed_to_the_box_are_checked_stored_and_served() {
            let (dir, store, _, signed) = setup();
            let hub = Hub::default();
            let box_keys = Keys::generate();
            let inbox = open_inbox(&dir, &box_keys, InboxLimits::default());
            let me = box_keys.public_key();
            let mut c = connect_with(
                &store,
                &hub,
                no_rate(),
                (Duration::ZERO, false),
                Some(inbox.clone()),
            );

            let wrap = addressed(1059, &me, "sealed", None);
            assert_eq!(send_event(&mut c, &wrap).await, (true, String::new()));
            let (accepted, why) = send_event(&mut c, &wrap).await;
            assert!(accepted && why.starts_with("duplicate:"), "{why}");

            let other = Keys::generate().public_key();
            for refused in [
                addressed(1059, &other, "not ours", None),
                addressed(1, &me, "a note", None),
            ] {
                let (accepted, why) = send_event(&mut c, &refused).await;
                assert!(!accepted && why.starts_with("blocked:"), "{why}");
            }
            // A signature of another event; an id that is not the content's.
            let mut forged = addressed(1059, &me, "forged", None);
            forged.sig = addressed(1059, &me, "else", None).sig;
            let (accepted, why) = send_event(&mut c, &forged).await;
            assert!(!accepted && why == "invalid: bad signature", "{why}");
            let mut edited = addressed(1059, &me, "edited", None);
            edited.content = "changed".to_owned();
            let (accepted, why) = send_event(&mut c, &edited).await;
            assert!(
                !accepted && why.starts_with("invalid: the event id"),
                "{why}"
            );
            let now = Timestamp::now().as_secs();
            for (at, what) in [(now + 3600, "future"), (now - 10 * 86_400, "older")] {
                let dated = addressed(1059, &me, "dated", Some(at));
                let (accepted, why) = send_event(&mut c, &dated).await;
                assert!(
                    !accepted && why.starts_with("invalid:") && why.contains(what),
                    "{why}"
                );
            }
            // Backdated 2 days, as NIP-59 wraps are: accepted.
            let backdated = addressed(1059, &me, "backdated", Some(now - 2 * 86_400));
            assert!(send_event(&mut c, &backdated).await.0);
            let big = addressed(1059, &me, &"x".repeat(MAX_EVENT_MESSAGE_BYTES), None);
            let (accepted, why) = send_event(&mut c, &big).await;
            assert!(
                !accepted && why.starts_with("invalid: event too large"),
                "{why}"
            );
            // Under the cap, though over the 64 KiB of other messages.
            let large = addressed(1059, &me, &"x".repeat(200 * 1024), None);
            assert!(send_event(&mut c, &large).await.0);
            let job = addressed(5050, &me, "", None);
            assert!(send_event(&mut c, &job).await.0);

            // Unauthenticated: job requests and the signer's events, no wraps.
            c.say(r#"["REQ","wraps",{"kinds":[1059]}]"#);
            let challenge = challenge_of(&c.next().await);
            let closed = c.next().await;
            assert!(
                closed.starts_with(r#"["CLOSED","wraps","auth-required:"#),
                "{closed}"
            );
            c.say(r#"["REQ","all",{}]"#);
            let mut ids = Vec::new();
            loop {
                let message = c.next().await;
                if message == r#"["EOSE","all"]"# {
                    break;
                }
                let v: serde_json::Value = serde_json::from_str(&message).unwrap();
                ids.push(v[2]["id"].as_str().unwrap().to_owned());
            }
            let mut expected = signed.clone();
            expected.push(job.id.to_hex());
            ids.sort();
            expected.sort();
            assert_eq!(ids, expected, "no wrap, and the challenge only once");
            c.say(r#"["COUNT","n",{"kinds":[1059,5050]}]"#);
            assert_eq!(c.next().await, r#"["COUNT","n",{"count":1}]"#);

            // AUTH: a wrong challenge or relay is refused; another key is accepted but reads
            // no wraps; the box's key reads them.
            let stranger = Keys::generate();
            for (keys, challenge, relay, accepted) in [
                (&box_keys, "other", URL, false),
                (&box_keys, challenge.as_str(), "ws://elsewhere.test", false),
                (&stranger, challenge.as_str(), "WS://Box.test/", true),
            ] {
                c.say(&auth_event(keys, challenge, relay));
                let (ok, why) = ok_of(&c.next().await);
                assert_eq!(ok, accepted, "{why}");
            }
            // Authenticated as a key no wrap is addressed to: the REQ is answered, with none.
            c.say(r#"["REQ","wraps",{"kinds":[1059]}]"#);
            assert_eq!(c.next().await, r#"["EOSE","wraps"]"#);
            c.say(&auth_event(&box_keys, &challenge, URL));
            assert!(ok_of(&c.next().await).0);
            c.say(r#"["REQ","wraps",{"kinds":[1059]}]"#);
            let mut wraps = Vec::new();
            loop {
                let message = c.next().await;
                if message == r#"["EOSE","wraps"]"# {
                    break;
                }
                let v: serde_json::Value = serde_json::from_str(&message).unwrap();
                wraps.push(v[2]["id"].as_str().unwrap().to_owned());
            }
            assert_eq!(
                wraps,
                [large.id.to_hex(), wrap.id.to_hex(), backdated.id.to_hex()],
                "newest first"
            );
        }

        #[tokio::test]
        async fn gift_wraps_go_live_only_to_their_addressee_and_ephemeral_ones_are_not_stored() {
            let (dir, store, _, _) = setup();
            let hub = Hub::default();
            let box_keys = Keys::generate();
            let me = box_keys.public_key();
            let inbox = open_inbox(&dir, &box_keys, InboxLimits::default());
            let pipe = (Duration::ZERO, false);
            let mut reader = connect_with(&store, &hub, no_rate(), pipe, Some(inbox.clone()));
            reader.say(r#"["REQ","dm",{"kinds":[21059]}]"#);
            let challenge = challenge_of(&reader.next().await);
            assert!(reader.next().await.contains("auth-required:"));
            reader.say(&auth_event(&box_keys, &challenge, URL));
            assert!(ok_of(&reader.next().await).0);
            reader.say(r#"["REQ","dm",{"kinds":[1059,21059]}]"#);
            assert_eq!(reader.next().await, r#"["EOSE","dm"]"#);
            let mut public = connect_with(&store, &hub, no_rate(), pipe, Some(inbox.clone()));
            public.say(r#"["REQ","all",{"limit":0}]"#);
            let _challenge = challenge_of(&public.next().await);
            assert_eq!(public.next().await, r#"["EOSE","all"]"#);

            let mut writer = connect_with(&store, &hub, no_rate(), pipe, Some(inbox.clone()));
            let ephemeral = addressed(21059, &me, "now or never", None);
            assert_eq!(
                send_event(&mut writer, &ephemeral).await,
                (true, String::new())
            );
            let live = reader.next().await;
            assert!(live.contains(&ephemeral.id.to_hex()), "{live}");
            let (accepted, why) = send_event(&mut writer, &ephemeral).await;
            assert!(accepted && why.starts_with("duplicate:"), "{why}");
            let job = addressed(5050, &me, "", None);
            assert!(send_event(&mut writer, &job).await.0);
            // The public connection gets the job request and never the wrap before it.
            let live = public.next().await;
            assert!(live.contains(&job.id.to_hex()), "{live}");
            // The duplicate was not handed on: a wrap sent after it is the reader's next.
            let wrap = addressed(1059, &me, "kept", None);
            assert!(send_event(&mut writer, &wrap).await.0);
            let live = reader.next().await;
            assert!(live.contains(&wrap.id.to_hex()), "{live}");

            // Later, the ephemeral wrap is not stored; the other is.
            let mut later = connect_with(&store, &hub, no_rate(), pipe, Some(inbox));
            later.say(r#"["REQ","x",{"limit":0}]"#);
            let challenge = challenge_of(&later.next().await);
            assert_eq!(later.next().await, r#"["EOSE","x"]"#);
            later.say(&auth_event(&box_keys, &challenge, URL));
            assert!(ok_of(&later.next().await).0);
            later.say(r#"["REQ","dm",{"kinds":[1059,21059]}]"#);
            let stored = later.next().await;
            assert!(stored.contains(&wrap.id.to_hex()), "{stored}");
            assert_eq!(later.next().await, r#"["EOSE","dm"]"#);
        }

        #[tokio::test]
        async fn a_connection_sending_too_many_events_is_rate_limited() {
            let (dir, store, _, _) = setup();
            let hub = Hub::default();
            let box_keys = Keys::generate();
            let inbox = open_inbox(&dir, &box_keys, InboxLimits::default());
            let limits = Limits {
                events_per_minute: 20,
                event_burst: 3,
                ..Limits::default()
            };
            let pipe = (Duration::ZERO, false);
            let mut c = connect_with(&store, &hub, limits, pipe, Some(inbox.clone()));
            let me = box_keys.public_key();
            for _ in 0..3 {
                assert!(send_event(&mut c, &addressed(5050, &me, "", None)).await.0);
            }
            let (accepted, why) = send_event(&mut c, &addressed(5050, &me, "", None)).await;
            assert!(!accepted && why.starts_with("rate-limited:"), "{why}");
            // Per connection: another one is not limited.
            let mut d = connect_with(&store, &hub, limits, pipe, Some(inbox));
            assert!(send_event(&mut d, &addressed(5050, &me, "", None)).await.0);
        }

        #[test]
        fn the_store_drops_the_events_received_first_when_full_and_old_ones() {
            let dir = tempfile::tempdir().unwrap();
            let box_keys = Keys::generate();
            let me = box_keys.public_key();
            let limits = InboxLimits {
                max_events: 3,
                ..InboxLimits::default()
            };
            let inbox = open_inbox(&dir, &box_keys, limits);
            let now = Timestamp::now();
            // Dated newest first: what is dropped is what came first, not the oldest date.
            let events: Vec<Event> = (0..5)
                .map(|n| addressed(1059, &me, "w", Some(now.as_secs() - n * 60)))
                .collect();
            for event in &events {
                assert_eq!(inbox.accept(event, now).unwrap(), inbox::Accepted::Stored);
            }
            let kept = inbox.query(&Filter::new(), 100, true, now).unwrap();
            let kept: Vec<EventId> = kept.iter().map(|e| e.id).collect();
            assert_eq!(kept, [events[2].id, events[3].id, events[4].id]);
            // Without wraps, nothing.
            assert!(
                inbox
                    .query(&Filter::new(), 100, false, now)
                    .unwrap()
                    .is_empty()
            );

            // A byte cap drops the same way.
            let dir = tempfile::tempdir().unwrap();
            let small = InboxLimits {
                max_bytes: 1500,
                ..InboxLimits::default()
            };
            let inbox = open_inbox(&dir, &box_keys, small);
            for event in &events {
                inbox.accept(event, now).unwrap();
            }
            let kept = inbox.query(&Filter::new(), 100, true, now).unwrap();
            assert!(!kept.is_empty() && kept.len() < 5, "{}", kept.len());
            assert_eq!(kept.last().unwrap().id, events[4].id);

            // Past the retention (by created_at): not served, and pruned when reopened.
            let dir = tempfile::tempdir().unwrap();
            let inbox = open_inbox(&dir, &box_keys, InboxLimits::default());
            let old = addressed(1059, &me, "old", Some(now.as_secs() - 8 * 86_400));
            inbox.accept(&old, now).unwrap();
            let later = Timestamp::from_secs(now.as_secs() + 2 * 86_400);
            assert_eq!(inbox.query(&Filter::new(), 10, true, now).unwrap().len(), 1);
            assert!(
                inbox
                    .query(&Filter::new(), 10, true, later)
                    .unwrap()
                    .is_empty()
            );
            inbox.prune(later).unwrap();
            assert!(
                inbox
                    .query(&Filter::new(), 10, true, now)
                    .unwrap()
                    .is_empty()
            );
        }
    }
}
