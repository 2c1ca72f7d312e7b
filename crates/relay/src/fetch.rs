//! Queries: one `REQ` per relay, all relays at once, until `EOSE`, `CLOSED`, an error or the
//! deadline.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::stream::{self, Stream, StreamExt};
use nostr::prelude::{ClientMessage, Filter, SubscriptionId};
use tokio::time::Instant;

use crate::Options;
use crate::conn::Connection;
use crate::error::{EXCERPT_BYTES, RelayError, Waiting, excerpt};
use crate::message::{self, Incoming};

/// The most `NOTICE` messages kept per relay; later ones are dropped.
pub const MAX_NOTICES: usize = 16;

/// The longest `NOTICE` or `CLOSED` text kept, in bytes (cut at a character boundary).
pub const MAX_NOTICE_BYTES: usize = 512;

/// One event exactly as a relay sent it. Nothing about it has been checked: not the id, not
/// the signature, not even that it is a well-formed event beyond being a JSON object with a
/// string `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    /// The relay URL it came from, as given by the caller.
    pub relay: String,
    /// The event object's JSON text, byte for byte as it appeared in the relay's `EVENT`
    /// message (surrounding whitespace excluded).
    pub json: String,
}

/// How the query went on one relay.
#[derive(Debug)]
pub struct RelayReport {
    /// The relay URL, as given by the caller.
    pub relay: String,
    /// What the relay did, or why the client gave up on it. Events received before an error
    /// were still delivered.
    pub outcome: Result<RelayStats, RelayError>,
}

/// A relay that answered the query to its end.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Events received from this relay (before de-duplication across relays).
    pub events: usize,
    /// Whether the relay sent `EOSE`: it claims to have sent every stored event that matches.
    /// `false` means it ended the subscription with `CLOSED` instead (see `closed`).
    pub eose: bool,
    /// The message of the relay's `CLOSED`, when it ended the subscription itself (NIP-01:
    /// a machine-readable prefix such as `auth-required:`, `restricted:` or `error:`).
    pub closed: Option<String>,
    /// `NOTICE` messages received, at most [`MAX_NOTICES`] of at most [`MAX_NOTICE_BYTES`]
    /// each.
    pub notices: Vec<String>,
}

/// Everything [`fetch`] gathered.
#[derive(Debug)]
pub struct FetchOutcome {
    /// Events from all relays, de-duplicated by their `id` string (the first copy to arrive
    /// wins), in arrival order.
    pub events: Vec<RawEvent>,
    /// One report per relay given, in the order given.
    pub relays: Vec<RelayReport>,
}

/// What [`stream()`] yields.
#[derive(Debug)]
pub enum StreamItem {
    /// An event, as soon as it arrived. Not de-duplicated across relays.
    Event(RawEvent),
    /// A relay is done: after this, no more events come from it. Exactly one per relay given.
    End(RelayReport),
}

/// Queries every relay in parallel with one filter and gathers the events.
///
/// Each relay gets its own subscription, ends at its `EOSE` or `CLOSED` (after which the client
/// sends `CLOSE` and closes the websocket), at an error, or at [`Options::eose_timeout`]. One
/// relay failing never affects the others. Events are de-duplicated across relays by the `id`
/// string as sent (not by recomputing it: that is the verifier's job), keeping the first copy;
/// relays that send the same id with different content are therefore hidden here, which is
/// fine for a verifier that rejects any event whose id does not match its content. Use
/// [`stream()`] to see every copy, or to process more events than fit in memory.
///
/// Memory is bounded by `relays × max_events_per_relay × max_message_bytes`.
pub async fn fetch(relays: &[String], filter: &Filter, opts: &Options) -> FetchOutcome {
    let mut events = Vec::new();
    let mut seen = HashSet::new();
    let mut reports: Vec<Option<RelayReport>> = relays.iter().map(|_| None).collect();
    let mut items = merged(relays, filter, opts);
    while let Some((index, item)) = items.next().await {
        match item {
            Item::Event { id, event } => {
                if seen.insert(id) {
                    events.push(event);
                }
            }
            Item::End(report) => reports[index] = Some(report),
        }
    }
    let relays = reports
        .into_iter()
        .zip(relays)
        .map(|(report, relay)| {
            // Every per-relay stream ends with exactly one `Item::End`; this fallback is never
            // expected to be used but keeps the invariant out of reach of a panic.
            report.unwrap_or_else(|| RelayReport {
                relay: relay.clone(),
                outcome: Err(RelayError::Closed {
                    reason: "query ended without a report".to_owned(),
                }),
            })
        })
        .collect();
    FetchOutcome { events, relays }
}

/// Queries every relay in parallel and yields events as they arrive, then one
/// [`StreamItem::End`] per relay.
///
/// Same per-relay rules as [`fetch`], without de-duplication and without holding events: a
/// verifier can consume millions this way (raise [`Options::max_events_per_relay`] and
/// [`Options::eose_timeout`] for that; the deadline is wall-clock time since the `REQ`,
/// including time the consumer spends between polls). Relays are read only while the stream
/// is polled, so a slow consumer slows the relays down instead of buffering.
///
/// The stream owns copies of its arguments and needs a tokio runtime when polled.
pub fn stream(
    relays: &[String],
    filter: &Filter,
    opts: &Options,
) -> impl Stream<Item = StreamItem> + Send + use<> {
    merged(relays, filter, opts).map(|(_, item)| match item {
        Item::Event { event, .. } => StreamItem::Event(event),
        Item::End(report) => StreamItem::End(report),
    })
}

/// An item of one relay's stream.
enum Item {
    Event { id: String, event: RawEvent },
    End(RelayReport),
}

type RelayStream = Pin<Box<dyn Stream<Item = (usize, Item)> + Send>>;

/// All relays' streams merged, each item tagged with its relay's index.
fn merged(
    relays: &[String],
    filter: &Filter,
    opts: &Options,
) -> impl Stream<Item = (usize, Item)> + Send + use<> {
    let filter = Arc::new(filter.clone());
    let opts = Arc::new(opts.clone());
    let streams: Vec<RelayStream> = relays
        .iter()
        .enumerate()
        .map(|(index, relay)| {
            let items: RelayStream = if index < opts.max_relays {
                let job = Job {
                    relay: relay.clone(),
                    filter: Arc::clone(&filter),
                    opts: Arc::clone(&opts),
                };
                Box::pin(one_relay(job).map(move |item| (index, item)))
            } else {
                let report = RelayReport {
                    relay: relay.clone(),
                    outcome: Err(RelayError::TooManyRelays {
                        max: opts.max_relays,
                    }),
                };
                Box::pin(stream::iter([(index, Item::End(report))]))
            };
            items
        })
        .collect();
    stream::select_all(streams)
}

/// What one relay's query needs.
struct Job {
    relay: String,
    filter: Arc<Filter>,
    opts: Arc<Options>,
}

/// Where one relay's query stands.
enum State {
    Start(Job),
    Open(Box<Open>),
    Done,
}

/// A relay with the `REQ` sent.
struct Open {
    job: Job,
    conn: Connection,
    subscription: SubscriptionId,
    deadline: Instant,
    stats: RelayStats,
}

/// One relay's query as a stream of events ending with exactly one [`Item::End`].
fn one_relay(job: Job) -> impl Stream<Item = Item> + Send {
    stream::unfold(State::Start(job), |state| async move {
        let mut open = match state {
            State::Done => return None,
            State::Open(open) => open,
            State::Start(job) => match start(&job).await {
                Ok((conn, subscription, deadline)) => Box::new(Open {
                    job,
                    conn,
                    subscription,
                    deadline,
                    stats: RelayStats::default(),
                }),
                Err(error) => return Some((end(job.relay, Err(error)), State::Done)),
            },
        };
        match next_event(&mut open).await {
            Ok(Some((id, json))) => {
                let event = RawEvent {
                    relay: open.job.relay.clone(),
                    json,
                };
                Some((Item::Event { id, event }, State::Open(open)))
            }
            Ok(None) => {
                let Open {
                    job,
                    conn,
                    subscription,
                    stats,
                    ..
                } = *open;
                // After CLOSED the subscription is already gone on the relay's side. `as_json`
                // cannot fail here: a CLOSE is an array of two strings.
                let close = stats
                    .eose
                    .then(|| ClientMessage::close(subscription).as_json());
                conn.close(close).await;
                Some((end(job.relay, Ok(stats)), State::Done))
            }
            // A misbehaving connection is dropped, not closed politely.
            Err(error) => Some((end(open.job.relay, Err(error)), State::Done)),
        }
    })
}

fn end(relay: String, outcome: Result<RelayStats, RelayError>) -> Item {
    Item::End(RelayReport { relay, outcome })
}

/// Connects and sends the `REQ`; the query deadline starts once connected.
async fn start(job: &Job) -> Result<(Connection, SubscriptionId, Instant), RelayError> {
    let opts = &job.opts;
    let mut conn = Connection::open(&job.relay, opts).await?;
    let deadline = Instant::now() + opts.eose_timeout;
    let subscription = SubscriptionId::generate();
    // `as_json` panics only if serde_json fails, which it cannot on a REQ: strings, numbers
    // and maps with string keys.
    let req = ClientMessage::req(subscription.clone(), vec![(*job.filter).clone()]).as_json();
    conn.send(req, deadline, Waiting::Eose, opts.eose_timeout)
        .await?;
    Ok((conn, subscription, deadline))
}

/// Reads until the next event of our subscription (`Some((id, json))`) or the end of stored
/// events (`None`, with `stats` updated).
async fn next_event(open: &mut Open) -> Result<Option<(String, String)>, RelayError> {
    let opts = &open.job.opts;
    loop {
        let frame = open
            .conn
            .next_text(open.deadline, Waiting::Eose, opts.eose_timeout)
            .await?;
        match message::parse(&frame)? {
            Incoming::Event {
                subscription,
                id,
                json,
            } => {
                if subscription != open.subscription.as_str() {
                    return Err(RelayError::Garbage {
                        what: "EVENT for a subscription this client did not open",
                        excerpt: excerpt(&frame, EXCERPT_BYTES),
                    });
                }
                if open.stats.events >= opts.max_events_per_relay {
                    return Err(RelayError::TooManyEvents {
                        max: opts.max_events_per_relay,
                    });
                }
                open.stats.events += 1;
                return Ok(Some((id, json.get().to_owned())));
            }
            Incoming::Eose { subscription } if subscription == open.subscription.as_str() => {
                open.stats.eose = true;
                return Ok(None);
            }
            Incoming::Closed {
                subscription,
                message,
            } if subscription == open.subscription.as_str() => {
                open.stats.closed = Some(excerpt(&message, MAX_NOTICE_BYTES));
                return Ok(None);
            }
            Incoming::Notice { message } => {
                if open.stats.notices.len() < MAX_NOTICES {
                    open.stats.notices.push(excerpt(&message, MAX_NOTICE_BYTES));
                }
            }
            // EOSE/CLOSED of another subscription, OK, AUTH and unknown types: nothing to do
            // for a query. The deadline bounds how long a relay can keep us busy with them.
            Incoming::Eose { .. } | Incoming::Closed { .. } | Incoming::Ok { .. } => {}
            Incoming::Other => {}
        }
    }
}
