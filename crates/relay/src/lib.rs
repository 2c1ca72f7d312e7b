//! A small Nostr relay client that trusts no relay.
//!
//! Speaks the client side of [NIP-01] over websockets (`REQ`, `EVENT`, `CLOSE` out; `EVENT`,
//! `OK`, `EOSE`, `CLOSED`, `NOTICE` in) to several relays at once, each with its own deadlines
//! and size caps, and reports per relay what happened.
//!
//! For most cases:
//!
//! - [`fetch`]: run one filter on many relays and collect the events (de-duplicated by id);
//! - [`stream()`]: the same, yielding events as they arrive, for queries too large to hold;
//! - [`publish`]: send one signed event to many relays and collect their `OK` answers;
//! - [`subscribe`]: a live subscription that stays open after `EOSE`, reconnects with backoff
//!   and answers NIP-42 `AUTH` challenges, for programs that receive events as they are
//!   published;
//! - [`nip05::resolve`]: a NIP-05 name to a public key, with the same distrust.
//!
//! What it deliberately does **not** do:
//!
//! - verify events. Every event comes back as a [`RawEvent`]: the relay URL and the event's JSON
//!   text exactly as the relay sent it. Recomputing the id, checking the signature and applying
//!   the event-level size limits is the verifier's job (the `provenance` crate), on those very
//!   bytes; nothing here is "verified".
//! - trust relays. A relay that sends garbage, floods, sends oversized frames, stalls or hangs
//!   up gets a named [`RelayError`] in its report while the other relays carry on. Nothing a
//!   relay sends can panic this crate, and memory per relay is bounded by
//!   [`Options::max_message_bytes`] (and, in [`fetch`], [`Options::max_events_per_relay`]).
//! - keep connections, retry, reconnect or authenticate in [`fetch`], [`stream()`] and
//!   [`publish`]: each call opens one connection per relay and closes it when done, and NIP-42
//!   `AUTH` challenges are ignored. [`subscribe`] is the exception: it keeps its connections,
//!   reconnects with backoff and, given keys, authenticates.
//!
//! Relay URLs are `ws://` or, with the default `tls` feature, `wss://` (rustls with the ring
//! provider and the webpki root certificates); anything else is [`RelayError::InvalidUrl`].
//!
//! # Example
//!
//! ```no_run
//! use provenance_relay::{Options, fetch};
//! use provenance_relay::nostr::prelude::{Filter, Kind};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let relays = vec!["wss://relay.example".to_owned(), "ws://127.0.0.1:7777".to_owned()];
//! let filter = Filter::new().kind(Kind::Custom(1988)).limit(10);
//! let outcome = fetch(&relays, &filter, &Options::default()).await;
//! for event in &outcome.events {
//!     println!("{}: {}", event.relay, event.json); // still unverified
//! }
//! for report in &outcome.relays {
//!     if let Err(error) = &report.outcome {
//!         eprintln!("{}: {error}", report.relay);
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }
//! ```
//!
//! # Features
//!
//! - `tls` (default): `wss://` support.
//! - `testing`: [`testing`], throwaway relays on loopback for end-to-end tests (an in-process
//!   mock relay, `nostr-rs-relay` as a child process, scripted misbehaving relays). For
//!   `[dev-dependencies]` only.
//!
//! [NIP-01]: https://github.com/nostr-protocol/nips/blob/master/01.md
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::time::Duration;

mod conn;
mod error;
mod fetch;
mod message;
pub mod nip05;
mod publish;
mod subscribe;
#[cfg(feature = "testing")]
pub mod testing;

pub use nostr;

pub use crate::error::{RelayError, Waiting, WebSocketError};
pub use crate::fetch::{
    FetchOutcome, MAX_NOTICE_BYTES, MAX_NOTICES, RawEvent, RelayReport, RelayStats, StreamItem,
    fetch, stream,
};
pub use crate::publish::{PublishAck, PublishReport, publish};
pub use crate::subscribe::{
    MAX_GARBAGE_IN_A_ROW, NO_RETRY, SubscribeOptions, Subscription, SubscriptionItem, subscribe,
};

/// Limits that apply to each relay separately.
///
/// Build with struct update syntax: `Options { eose_timeout: Duration::from_secs(30),
/// ..Options::default() }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// How long the TCP connection, TLS session and websocket handshake may take together.
    /// Defaults to 5 seconds.
    pub connect_timeout: Duration,
    /// How long a relay has, from the `REQ` (or `EVENT`) being sent, to finish its answer:
    /// `EOSE`/`CLOSED` for queries, `OK` for publication. A whole-query deadline, not an idle
    /// timeout: a relay that trickles events still stops here. Defaults to 10 seconds.
    pub eose_timeout: Duration,
    /// The largest websocket message (and frame) accepted, in bytes. A relay that sends a
    /// larger one gets [`RelayError::MessageTooLarge`] and is disconnected before the rest is
    /// read. Defaults to 512 KiB, four times the 128 KiB events that common relays accept.
    pub max_message_bytes: usize,
    /// The most events accepted from one relay for one query; one more is
    /// [`RelayError::TooManyEvents`]. Defaults to 10,000.
    pub max_events_per_relay: usize,
    /// The most relays contacted by one call; the rest get [`RelayError::TooManyRelays`]
    /// without being contacted. Defaults to 32.
    pub max_relays: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            eose_timeout: Duration::from_secs(10),
            max_message_bytes: 512 * 1024,
            max_events_per_relay: 10_000,
            max_relays: 32,
        }
    }
}
