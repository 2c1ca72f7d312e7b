//! The box's own relay server: a read-only NIP-01 relay over the signer's own events, with live
//! subscriptions.
//!
//! The signer's box can then be the relay hint of its events' `nevent`s, and a client can
//! watch the events it signs. [`run`] serves one client connection:
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
//! - `EVENT`: refused (`OK false`, `blocked:`): the relay serves only its signer's events.
//! - anything else: a `NOTICE`.
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
//! hands [`run`] a [`Transport`] that receives and sends text messages.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use provenance::nostr::filter::MatchEventOptions;
use provenance::nostr::prelude::{
    ClientMessage, Event, EventId, Filter, RelayMessage, SubscriptionId,
};
use tokio::sync::broadcast;

use crate::OnStored;
use crate::store::{Store, StoreError};

/// Most events sent for one filter of the stored answer to a `REQ`, and the default when the
/// filter sets no `limit`.
pub const MAX_LIMIT: usize = 500;

/// Largest client message read, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

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
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_subscriptions: 20,
            send_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
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

/// Serves one client connection until it closes, fails, or falls too far behind.
pub async fn run<T: Transport>(mut transport: T, store: Arc<dyn Store>, hub: Hub, limits: Limits) {
    let mut connection = Connection {
        store,
        hub: hub.clone(),
        limits,
        subscriptions: HashMap::new(),
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

/// The state of one connection.
struct Connection {
    store: Arc<dyn Store>,
    hub: Hub,
    limits: Limits,
    subscriptions: HashMap<SubscriptionId, Subscription>,
}

impl Connection {
    /// The messages a new event (number `seq`) gives: one per subscription it matches.
    fn live(&mut self, seq: u64, event: &Event) -> Vec<String> {
        let mut out = Vec::new();
        for (id, subscription) in &mut self.subscriptions {
            if subscription.wants(seq, event) {
                out.push(RelayMessage::event(id.clone(), event.clone()).as_json());
            }
        }
        out
    }

    /// The answer to one client message.
    async fn message(&mut self, text: &str) -> Vec<String> {
        if text.len() > MAX_MESSAGE_BYTES {
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
                match self.query(vec![filter.into_owned()]).await {
                    Ok(events) => vec![RelayMessage::count(id, events.len()).as_json()],
                    Err(_) => vec![closed(id, "error: the store failed")],
                }
            }
            ClientMessage::Event(event) => vec![
                RelayMessage::ok(
                    event.id,
                    false,
                    "blocked: this relay only serves the events its signer made",
                )
                .as_json(),
            ],
            ClientMessage::Close(id) => {
                self.subscriptions.remove(id.as_ref());
                Vec::new()
            }
            _ => vec![notice("unsupported: only REQ, COUNT and CLOSE")],
        }
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
        let answered_through = self.hub.last();
        let events = match self.query(filters.clone()).await {
            Ok(events) => events,
            Err(_) => return vec![closed(id, "error: the store failed")],
        };
        let recent_through = self.hub.last();
        let mut out = Vec::with_capacity(events.len() + 1);
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

    /// The stored events matching any of `filters`, each once, on a blocking thread.
    async fn query(&self, filters: Vec<Filter>) -> Result<Vec<Event>, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || stored(store.as_ref(), &filters))
            .await
            .map_err(|e| StoreError::Thread(e.to_string()))?
    }
}

/// The stored events matching any of `filters` (newest first per filter, at most
/// [`MAX_LIMIT`] each), each once.
fn stored(store: &dyn Store, filters: &[Filter]) -> Result<Vec<Event>, StoreError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for filter in filters {
        let limit = filter.limit.unwrap_or(MAX_LIMIT).min(MAX_LIMIT);
        for event in store.query(filter, limit)? {
            if seen.insert(event.id) {
                out.push(event);
            }
        }
    }
    Ok(out)
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
        let (to_relay, incoming) = mpsc::unbounded_channel();
        let (outgoing, from_relay) = mpsc::unbounded_channel();
        let transport = Pipe {
            incoming,
            outgoing,
            delay: pipe.0,
            stuck: pipe.1,
        };
        let done = tokio::spawn(run(transport, store.clone(), hub.clone(), limits));
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
}
