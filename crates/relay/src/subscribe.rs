//! Live subscriptions: one `REQ` per relay that stays open after `EOSE` and is sent again on a
//! new connection whenever a relay drops, refuses, floods or sends garbage.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use nostr::prelude::{
    ClientMessage, Event, EventBuilder, Filter, FinalizeEvent, Keys, Kind, SubscriptionId, Tag,
};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::Options;
use crate::conn::{Connection, Frame, parse_url};
use crate::error::{EXCERPT_BYTES, RelayError, Waiting, excerpt};
use crate::fetch::{MAX_NOTICE_BYTES, RawEvent};
use crate::message::{self, Incoming};

/// How many garbage frames in a row a relay may send before its connection counts as lost
/// (and is retried after the backoff). A frame that carries something for this subscription
/// resets the count.
pub const MAX_GARBAGE_IN_A_ROW: usize = 16;

/// The `retry_in` of a [`SubscriptionItem::Down`] that is final: the relay is never tried
/// again (an invalid URL, or a relay beyond [`crate::Options::max_relays`]).
pub const NO_RETRY: Duration = Duration::MAX;

/// The most `AUTH` challenges answered on one connection; later ones are ignored.
const MAX_AUTH_ANSWERS: usize = 4;

/// The shortest delay between two connections to one relay, whatever the options say; also the
/// shortest ping interval and ping timeout.
const MIN_DELAY: Duration = Duration::from_millis(10);

/// How long [`Subscription::close`] waits for the relays to be told goodbye.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// The read deadline of a live subscription: a year, in effect none.
const NO_DEADLINE: Duration = Duration::from_secs(365 * 24 * 3600);

/// The NIP-01 prefix of a `CLOSED` message that asks for NIP-42 authentication.
const AUTH_REQUIRED: &str = "auth-required:";

/// Options of a live subscription.
///
/// Build with struct update syntax: `SubscribeOptions { capacity: 1024,
/// ..SubscribeOptions::default() }`.
#[derive(Debug, Clone)]
pub struct SubscribeOptions {
    /// Per-connection limits: [`Options::connect_timeout`], [`Options::max_message_bytes`]
    /// (a larger message drops the connection, then reconnects after the backoff) and
    /// [`Options::max_relays`]. [`Options::eose_timeout`] bounds sending each message and the
    /// wait for an `AUTH` exchange; it does not end the subscription.
    /// [`Options::max_events_per_relay`] does not apply.
    pub relay: Options,
    /// How many items the channel between the relay tasks and the consumer holds (at least 1).
    /// When it is full, relay tasks wait. Defaults to 256.
    pub capacity: usize,
    /// The delay before the first reconnection (at least 10 ms). Defaults to 250 ms.
    pub min_backoff: Duration,
    /// The longest delay between reconnections; the delay doubles after each lost connection
    /// up to this, and goes back to `min_backoff` after a connection that received `EOSE` and
    /// stayed up at least this long. Defaults to 30 seconds.
    pub max_backoff: Duration,
    /// The keys to answer NIP-42 `AUTH` challenges with. `None` (the default) answers none;
    /// a relay that then closes the subscription with `auth-required:` is retried after the
    /// backoff like any lost connection.
    pub auth: Option<Keys>,
    /// How long a relay may stay silent (no frame of any kind, pings and pongs included)
    /// before it is sent a websocket ping (at least 10 ms). Defaults to 30 seconds.
    pub ping_interval: Duration,
    /// How long after that ping any frame must arrive (a pong, or any message); otherwise the
    /// connection counts as lost ([`RelayError::Timeout`] waiting for [`Waiting::Pong`]) and is
    /// retried after the backoff. Includes sending the ping. At least 10 ms; defaults to 10
    /// seconds.
    pub ping_timeout: Duration,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        Self {
            relay: Options::default(),
            capacity: 256,
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            auth: None,
            ping_interval: Duration::from_secs(30),
            ping_timeout: Duration::from_secs(10),
        }
    }
}

/// What [`Subscription::next`] yields.
#[derive(Debug)]
pub enum SubscriptionItem {
    /// An event of the subscription, as the relay sent it (unverified, and not de-duplicated:
    /// see [`subscribe`]).
    Event(RawEvent),
    /// The relay sent all its stored events on the current connection; what follows is live.
    /// Comes again after each reconnection.
    Eose {
        /// The relay URL, as given.
        relay: String,
    },
    /// A relay's `NOTICE`, the message of a `CLOSED` that ended the subscription, or the
    /// message of an `OK` refusing authentication; at most [`MAX_NOTICE_BYTES`] long.
    Notice {
        /// The relay URL, as given.
        relay: String,
        /// The relay's text.
        message: String,
    },
    /// The connection to a relay was lost, refused or given up; the relay is tried again after
    /// `retry_in`, unless that is [`NO_RETRY`].
    Down {
        /// The relay URL, as given.
        relay: String,
        /// What happened. A `CLOSED` from the relay is [`RelayError::Closed`] naming its
        /// message.
        error: RelayError,
        /// The delay before the next connection.
        retry_in: Duration,
    },
}

/// A live subscription on several relays; see [`subscribe`].
///
/// Dropping it aborts the relay tasks, which drops their connections.
pub struct Subscription {
    items: mpsc::Receiver<SubscriptionItem>,
    tasks: JoinSet<()>,
}

impl Subscription {
    /// The next item from any relay, in the order the relay tasks handed them over (per relay,
    /// the order the relay sent them). `None` once every relay task has ended, which happens
    /// only when every relay got a final [`SubscriptionItem::Down`] (or none was given).
    ///
    /// Cancel-safe: usable in `tokio::select!` without losing items.
    pub async fn next(&mut self) -> Option<SubscriptionItem> {
        self.items.recv().await
    }

    /// Ends the subscription politely: each relay task sends `CLOSE` and a close frame, and is
    /// aborted if that takes more than a second in all. Items not yet read are dropped.
    pub async fn close(self) {
        let Self { items, mut tasks } = self;
        // Relay tasks notice that the receiver is gone, in every wait.
        drop(items);
        let _ = timeout(CLOSE_WAIT, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        // Dropping the set aborts whatever is left.
    }
}

impl Stream for Subscription {
    type Item = SubscriptionItem;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.items.poll_recv(cx)
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("relay_tasks", &self.tasks.len())
            .field("items_waiting", &self.items.len())
            .finish()
    }
}

/// Subscribes to `filter` on every relay, live: stored events, `EOSE`, then new events as they
/// are published, reconnecting with backoff after any failure.
///
/// One task per relay runs on the caller's tokio runtime. Each task connects,
/// sends the `REQ`, and hands everything over through one bounded channel that
/// [`Subscription::next`] reads: the stored events, `EOSE`, then every matching event the
/// relay receives afterwards, for as long as the [`Subscription`] lives.
///
/// What it guarantees:
///
/// - one relay failing never affects the others: each relay has its own task, connection,
///   backoff and error, reported as [`SubscriptionItem::Down`] with the delay before the next
///   try;
/// - no busy loop: every reconnection waits, starting at [`SubscribeOptions::min_backoff`] and
///   doubling up to [`SubscribeOptions::max_backoff`]; the delay goes back to the minimum only
///   after a connection that received `EOSE` and stayed up for at least `max_backoff`, so a
///   relay that answers and then hangs up at once is not hammered. A garbage frame (not JSON,
///   not a NIP-01 message, a binary frame, an `EVENT` for a subscription this client did not
///   open) is skipped, but [`MAX_GARBAGE_IN_A_ROW`] of them in a row count as a lost connection;
/// - bounded memory: the channel holds at most [`SubscribeOptions::capacity`] items, and a
///   relay task whose item does not fit waits, without reading its websocket, until the
///   consumer makes room (backpressure reaches the relay through TCP). Memory is bounded by
///   `capacity` items of at most [`crate::Options::max_message_bytes`] each, plus, per relay,
///   the item waiting for room, the message being read and the websocket's bounded buffers;
/// - NIP-42: with [`SubscribeOptions::auth`] set, an `AUTH` challenge is answered with a signed
///   kind 22242 event (tags `relay` and `challenge`), at most four times per connection, and a
///   subscription the relay closed with `auth-required:` is requested again once the relay
///   accepts the authentication (once per connection);
/// - dropping the [`Subscription`] aborts every task and drops every connection at once;
///   [`Subscription::close`] first sends `CLOSE` and a close frame to each relay;
/// - a connection that goes silent without closing (a NAT mapping that expired, a half-open
///   TCP connection, a relay process that hangs) is noticed: after
///   [`SubscribeOptions::ping_interval`] without any frame from the relay it is sent a
///   websocket ping, and when no frame at all (a pong or any message) follows within
///   [`SubscribeOptions::ping_timeout`] it is reported as [`SubscriptionItem::Down`] with
///   [`RelayError::Timeout`] waiting for [`Waiting::Pong`], then reconnected after the
///   backoff. A silent connection is thus lost at most `ping_interval + ping_timeout` after
///   its last frame was read. A quiet relay that answers pings stays connected. The clock
///   runs only while the task reads: time spent waiting for the consumer to make room does
///   not count as silence.
///
/// What is the consumer's job:
///
/// - verification. Events are [`RawEvent`]s, exactly as the relay sent them: nothing is checked.
/// - duplicates. The same event comes once per relay that has it, and again after every
///   reconnection, because the same filter is sent again and the relay replays its stored
///   events (narrow the filter with `since` when creating a new subscription to limit that).
///   De-duplicate by the event id once the event is verified.
/// - gaps. Events published while a relay was down (which includes the time, at most
///   `ping_interval + ping_timeout`, before a silent connection is noticed) come back with the
///   stored events of the next `REQ` if the relay stores them; ephemeral events (kinds 20000
///   to 29999, such as 21059) published meanwhile are lost on that relay. Subscribing to
///   several relays narrows the gap.
/// - ending it. Nothing ends a live subscription on its own, except for relays that can never
///   work (an invalid URL, more than [`crate::Options::max_relays`]): those get one final
///   [`SubscriptionItem::Down`] with `retry_in` [`NO_RETRY`]. [`crate::Options::eose_timeout`]
///   and [`crate::Options::max_events_per_relay`] do not end it; `eose_timeout` bounds only
///   the sending of each message and the wait for an `AUTH` exchange the relay asked for. Drop
///   the [`Subscription`] or call [`Subscription::close`].
///
/// # Panics
///
/// Outside a tokio runtime (the relay tasks are spawned on the current one).
pub fn subscribe(relays: &[String], filter: Filter, opts: SubscribeOptions) -> Subscription {
    let (sender, items) = mpsc::channel(opts.capacity.max(1));
    let filter = Arc::new(filter);
    let opts = Arc::new(opts);
    let mut tasks = JoinSet::new();
    for (index, relay) in relays.iter().enumerate() {
        let task = Task {
            relay: relay.clone(),
            filter: Arc::clone(&filter),
            opts: Arc::clone(&opts),
            sender: sender.clone(),
        };
        tasks.spawn(task.run(index));
    }
    Subscription { items, tasks }
}

/// One relay's share of a subscription.
struct Task {
    relay: String,
    filter: Arc<Filter>,
    opts: Arc<SubscribeOptions>,
    sender: mpsc::Sender<SubscriptionItem>,
}

/// How one connection ended.
enum Ended {
    /// The consumer is gone.
    Stopped,
    /// The connection is lost; `stable` when it received `EOSE` and stayed up at least
    /// `max_backoff`.
    Lost { error: RelayError, stable: bool },
}

/// Where one connection stands.
struct Live {
    conn: Connection,
    subscription: SubscriptionId,
    eose: bool,
    garbage: usize,
    auth: AuthState,
}

/// NIP-42 on one connection.
#[derive(Default)]
struct AuthState {
    /// `AUTH` challenges answered.
    answers: usize,
    /// The id of the last `AUTH` event sent, until its `OK` arrives.
    pending: Option<String>,
    /// The relay accepted an `AUTH` event.
    accepted: bool,
    /// The relay closed the subscription with `auth-required:`; the `REQ` is re-sent once an
    /// `AUTH` is accepted, and the connection is given up at this deadline otherwise.
    resend_by: Option<Instant>,
    /// The `REQ` was re-sent after authentication (done at most once per connection).
    resent: bool,
}

impl Live {
    /// Counts one garbage frame; the error once there were too many in a row.
    fn garbage(&mut self, error: RelayError) -> Result<(), RelayError> {
        self.garbage += 1;
        if self.garbage >= MAX_GARBAGE_IN_A_ROW {
            Err(error)
        } else {
            Ok(())
        }
    }
}

impl Task {
    async fn run(self, index: usize) {
        if index >= self.opts.relay.max_relays {
            let error = RelayError::TooManyRelays {
                max: self.opts.relay.max_relays,
            };
            self.down(error, NO_RETRY).await;
            return;
        }
        if let Err(error) = parse_url(&self.relay) {
            self.down(error, NO_RETRY).await;
            return;
        }
        let min = self.opts.min_backoff.max(MIN_DELAY);
        let max = self.opts.max_backoff.max(min);
        let mut delay = min;
        loop {
            let error = match self.connection(max).await {
                Ended::Stopped => return,
                Ended::Lost { error, stable } => {
                    if stable {
                        delay = min;
                    }
                    error
                }
            };
            if !self.down(error, delay).await {
                return;
            }
            tokio::select! {
                () = sleep(delay) => {}
                () = self.sender.closed() => return,
            }
            delay = delay.saturating_mul(2).min(max);
        }
    }

    /// Hands `item` to the consumer, waiting for room; `false` when the consumer is gone.
    async fn emit(&self, item: SubscriptionItem) -> bool {
        self.sender.send(item).await.is_ok()
    }

    async fn down(&self, error: RelayError, retry_in: Duration) -> bool {
        self.emit(SubscriptionItem::Down {
            relay: self.relay.clone(),
            error,
            retry_in,
        })
        .await
    }

    async fn notice(&self, message: &str) -> bool {
        self.emit(SubscriptionItem::Notice {
            relay: self.relay.clone(),
            message: excerpt(message, MAX_NOTICE_BYTES),
        })
        .await
    }

    /// One connection, from connecting to its loss or the consumer leaving.
    async fn connection(&self, stable_after: Duration) -> Ended {
        let opened = tokio::select! {
            opened = Connection::open(&self.relay, &self.opts.relay) => opened,
            () = self.sender.closed() => return Ended::Stopped,
        };
        let conn = match opened {
            Ok(conn) => conn,
            Err(error) => {
                return Ended::Lost {
                    error,
                    stable: false,
                };
            }
        };
        let up = Instant::now();
        let mut live = Live {
            conn,
            subscription: SubscriptionId::generate(),
            eose: false,
            garbage: 0,
            auth: AuthState::default(),
        };
        match self.serve(&mut live).await {
            Ok(()) => {
                // `as_json` cannot fail on a CLOSE: an array of two strings.
                let close = ClientMessage::close(live.subscription).as_json();
                live.conn.close(Some(close)).await;
                Ended::Stopped
            }
            // A lost or misbehaving connection is dropped, not closed politely.
            Err(error) => Ended::Lost {
                error,
                stable: live.eose && up.elapsed() >= stable_after,
            },
        }
    }

    /// Sends a message within [`Options::eose_timeout`].
    async fn send(
        &self,
        live: &mut Live,
        text: String,
        waiting_for: Waiting,
    ) -> Result<(), RelayError> {
        let after = self.opts.relay.eose_timeout;
        live.conn
            .send(text, Instant::now() + after, waiting_for, after)
            .await
    }

    async fn send_req(&self, live: &mut Live) -> Result<(), RelayError> {
        // `as_json` cannot fail on a REQ: strings, numbers and maps with string keys.
        let req =
            ClientMessage::req(live.subscription.clone(), vec![(*self.filter).clone()]).as_json();
        self.send(live, req, Waiting::Eose).await
    }

    /// Sends the `REQ` and relays what comes back until the connection fails (`Err`) or the
    /// consumer leaves (`Ok`).
    async fn serve(&self, live: &mut Live) -> Result<(), RelayError> {
        let wait_auth = self.opts.relay.eose_timeout;
        let ours = live.subscription.as_str().to_owned();
        let ours = |subscription: &str| subscription == ours;
        self.send_req(live).await?;
        loop {
            let deadline = live
                .auth
                .resend_by
                .unwrap_or_else(|| Instant::now() + NO_DEADLINE);
            let frame = match self.next_text(live, deadline, wait_auth).await {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(()),
                // A binary frame or invalid UTF-8: the connection itself is still usable.
                Err(error @ RelayError::Garbage { .. }) => {
                    live.garbage(error)?;
                    continue;
                }
                Err(error) => return Err(error),
            };
            let incoming = match message::parse(&frame) {
                Ok(incoming) => incoming,
                Err(error) => {
                    live.garbage(error)?;
                    continue;
                }
            };
            match incoming {
                Incoming::Event {
                    subscription, json, ..
                } => {
                    if !ours(&subscription) {
                        live.garbage(RelayError::Garbage {
                            what: "EVENT for a subscription this client did not open",
                            excerpt: excerpt(&frame, EXCERPT_BYTES),
                        })?;
                        continue;
                    }
                    live.garbage = 0;
                    let event = RawEvent {
                        relay: self.relay.clone(),
                        json: json.get().to_owned(),
                    };
                    if !self.emit(SubscriptionItem::Event(event)).await {
                        return Ok(());
                    }
                }
                Incoming::Eose { subscription } if ours(&subscription) => {
                    live.garbage = 0;
                    live.eose = true;
                    let relay = self.relay.clone();
                    if !self.emit(SubscriptionItem::Eose { relay }).await {
                        return Ok(());
                    }
                }
                Incoming::Closed {
                    subscription,
                    message,
                } if ours(&subscription) => {
                    live.garbage = 0;
                    let auth_required = message.starts_with(AUTH_REQUIRED);
                    if auth_required && self.opts.auth.is_some() && !live.auth.resent {
                        if live.auth.accepted {
                            live.auth.resent = true;
                            self.send_req(live).await?;
                        } else {
                            live.auth.resend_by = Some(Instant::now() + wait_auth);
                        }
                        continue;
                    }
                    if !self.notice(&message).await {
                        return Ok(());
                    }
                    return Err(RelayError::Closed {
                        reason: format!(
                            "the relay closed the subscription: {}",
                            excerpt(&message, MAX_NOTICE_BYTES)
                        ),
                    });
                }
                Incoming::Notice { message } => {
                    live.garbage = 0;
                    if !self.notice(&message).await {
                        return Ok(());
                    }
                }
                Incoming::Ok {
                    id,
                    accepted,
                    message,
                } if live.auth.pending.as_deref() == Some(id.as_str()) => {
                    live.garbage = 0;
                    live.auth.pending = None;
                    if accepted {
                        live.auth.accepted = true;
                        if live.auth.resend_by.take().is_some() {
                            live.auth.resent = true;
                            self.send_req(live).await?;
                        }
                    } else {
                        if !self.notice(&message).await {
                            return Ok(());
                        }
                        if live.auth.resend_by.is_some() {
                            return Err(RelayError::Closed {
                                reason: format!(
                                    "the relay refused authentication: {}",
                                    excerpt(&message, MAX_NOTICE_BYTES)
                                ),
                            });
                        }
                    }
                }
                Incoming::Other => {
                    if let Some(challenge) = auth_challenge(&frame) {
                        self.answer_auth(live, &challenge).await?;
                    }
                }
                // EOSE/CLOSED of another subscription, OK of another event: nothing to do.
                Incoming::Eose { .. } | Incoming::Closed { .. } | Incoming::Ok { .. } => {}
            }
        }
    }

    /// The next text frame (`None` once the consumer is gone), giving up at `deadline` (the
    /// `AUTH` wait) and pinging the relay when it stays silent: after `ping_interval` without
    /// any frame a ping is sent, and without any frame `ping_timeout` later the connection is
    /// lost. Pings and pongs from the relay count as frames but are not returned.
    async fn next_text(
        &self,
        live: &mut Live,
        deadline: Instant,
        after: Duration,
    ) -> Result<Option<Utf8Bytes>, RelayError> {
        let interval = self.opts.ping_interval.max(MIN_DELAY);
        let ping_timeout = self.opts.ping_timeout.max(MIN_DELAY);
        let mut silent_until = Instant::now() + interval;
        let mut pinged = false;
        loop {
            tokio::select! {
                // Checked in this order: the consumer leaving, then what the relay sent, then
                // the silence, so that a frame already received is never taken for silence.
                biased;
                () = self.sender.closed() => return Ok(None),
                read = live.conn.next_frame(deadline, Waiting::Ok, after) => match read? {
                    Frame::Text(text) => return Ok(Some(text)),
                    Frame::Control => {
                        silent_until = Instant::now() + interval;
                        pinged = false;
                    }
                },
                () = sleep_until(silent_until) => {
                    if pinged {
                        return Err(RelayError::Timeout {
                            waiting_for: Waiting::Pong,
                            after: ping_timeout,
                        });
                    }
                    silent_until = Instant::now() + ping_timeout;
                    pinged = true;
                    live.conn
                        .ping(silent_until, Waiting::Pong, ping_timeout)
                        .await?;
                }
            }
        }
    }

    /// Answers a NIP-42 challenge when keys are set and the per-connection limit allows.
    async fn answer_auth(&self, live: &mut Live, challenge: &str) -> Result<(), RelayError> {
        let Some(keys) = &self.opts.auth else {
            return Ok(());
        };
        if live.auth.answers >= MAX_AUTH_ANSWERS {
            return Ok(());
        }
        live.auth.answers += 1;
        live.garbage = 0;
        // Signing with local keys fails only on a broken random number generator; the
        // challenge then goes unanswered, and a relay waiting for it ends the connection (or
        // `resend_by` does).
        let Some(event) = auth_event(keys, &self.relay, challenge) else {
            return Ok(());
        };
        live.auth.pending = Some(event.id.to_hex());
        // `as_json` cannot fail on an AUTH: an array with a string-keyed event object.
        let text = ClientMessage::auth(event).as_json();
        self.send(live, text, Waiting::Ok).await
    }
}

/// The challenge of a NIP-42 `["AUTH", <challenge>]` message, if `frame` is one.
fn auth_challenge(frame: &str) -> Option<String> {
    let (kind, challenge): (String, String) = serde_json::from_str(frame).ok()?;
    (kind == "AUTH").then_some(challenge)
}

/// A kind 22242 event answering `challenge` from `relay`, signed with `keys`.
fn auth_event(keys: &Keys, relay: &str, challenge: &str) -> Option<Event> {
    let relay = Tag::parse(["relay", relay]).ok()?;
    let challenge = Tag::parse(["challenge", challenge]).ok()?;
    EventBuilder::new(Kind::Authentication, "")
        .tag(relay)
        .tag(challenge)
        .finalize(keys)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_challenges() {
        assert_eq!(auth_challenge(r#"["AUTH","abc"]"#).as_deref(), Some("abc"));
        assert_eq!(
            auth_challenge(r#"["AUTH","a\"b"]"#).as_deref(),
            Some("a\"b")
        );
        for other in [
            r#"["NOTICE","abc"]"#,
            r#"["AUTH"]"#,
            r#"["AUTH",1]"#,
            "AUTH",
        ] {
            assert_eq!(auth_challenge(other), None, "{other}");
        }
    }

    #[test]
    fn auth_event_is_nip42() {
        let keys = Keys::generate();
        let Some(event) = auth_event(&keys, "ws://127.0.0.1:7777", "c-1") else {
            panic!("not signed");
        };
        assert!(event.verify().is_ok());
        assert_eq!(event.kind, Kind::Authentication);
        assert_eq!(event.pubkey, keys.public_key());
        let tags: Vec<Vec<String>> = event.tags.iter().map(|t| t.as_slice().to_vec()).collect();
        assert_eq!(
            tags,
            [
                vec!["relay".to_owned(), "ws://127.0.0.1:7777".to_owned()],
                vec!["challenge".to_owned(), "c-1".to_owned()],
            ]
        );
    }
}
