//! Publication: one `EVENT` per relay, all relays at once, each waiting for its `OK`.

use futures_util::future;
use nostr::prelude::{ClientMessage, Event};
use tokio::time::Instant;

use crate::Options;
use crate::conn::Connection;
use crate::error::{RelayError, Waiting};
use crate::fetch::MAX_NOTICE_BYTES;
use crate::message::{self, Incoming};

/// How publishing went on one relay.
#[derive(Debug)]
pub struct PublishReport {
    /// The relay URL, as given by the caller.
    pub relay: String,
    /// The relay's `OK` answer, or why there was none.
    pub outcome: Result<PublishAck, RelayError>,
}

/// A relay's `OK` answer to an `EVENT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishAck {
    /// `true` when the relay stored (or already had) the event.
    pub accepted: bool,
    /// The relay's message, empty or with a NIP-01 machine-readable prefix (`duplicate:`,
    /// `pow:`, `blocked:`, `rate-limited:`, `invalid:`, `restricted:`, `error:`, ...), at most
    /// [`crate::MAX_NOTICE_BYTES`] long.
    pub message: String,
}

/// Sends `event` to every relay in parallel and waits for each relay's `OK`, within
/// [`Options::connect_timeout`] to connect and [`Options::eose_timeout`] from the `EVENT` to
/// the `OK`. Returns one report per relay, in the order given. `NOTICE`s and other messages
/// that arrive before the `OK` are skipped.
pub async fn publish(relays: &[String], event: &Event, opts: &Options) -> Vec<PublishReport> {
    // `as_json` panics only if serde_json fails, which it cannot on an EVENT: strings,
    // numbers and arrays of strings.
    let text = ClientMessage::event(event.clone()).as_json();
    let id = event.id.to_hex();
    let jobs = relays.iter().enumerate().map(|(index, relay)| {
        let (text, id) = (&text, &id);
        async move {
            let outcome = if index < opts.max_relays {
                publish_one(relay, text, id, opts).await
            } else {
                Err(RelayError::TooManyRelays {
                    max: opts.max_relays,
                })
            };
            PublishReport {
                relay: relay.clone(),
                outcome,
            }
        }
    });
    future::join_all(jobs).await
}

async fn publish_one(
    relay: &str,
    text: &str,
    id: &str,
    opts: &Options,
) -> Result<PublishAck, RelayError> {
    let mut conn = Connection::open(relay, opts).await?;
    let deadline = Instant::now() + opts.eose_timeout;
    conn.send(text.to_owned(), deadline, Waiting::Ok, opts.eose_timeout)
        .await?;
    loop {
        let frame = conn
            .next_text(deadline, Waiting::Ok, opts.eose_timeout)
            .await?;
        if let Incoming::Ok {
            id: acked,
            accepted,
            message,
        } = message::parse(&frame)?
        {
            if acked == id {
                let message = crate::error::excerpt(&message, MAX_NOTICE_BYTES);
                conn.close(None).await;
                return Ok(PublishAck { accepted, message });
            }
        }
    }
}
