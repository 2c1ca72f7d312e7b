//! What went wrong with one relay.
//!
//! Every failure is scoped to a single relay: [`crate::fetch`], [`crate::stream()`] and
//! [`crate::publish`] report a [`RelayError`] next to that relay's URL and carry on with the
//! others. Nothing a relay sends can make them panic or fail as a whole.

use std::fmt;
use std::time::Duration;

/// Why the client gave up on one relay.
///
/// The relay URL is not repeated here: it sits next to the error in [`crate::RelayReport`] and
/// [`crate::PublishReport`].
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The relay closed the websocket (or the TCP connection) before the query or publication
    /// finished.
    #[error("relay closed the connection before answering: {reason}")]
    Closed {
        /// The reason from the relay's close frame, or a description of how the connection
        /// ended when there was none.
        reason: String,
    },
    /// The TCP connection, TLS session or websocket handshake failed.
    #[error("cannot connect: {0}")]
    Connect(#[source] WebSocketError),
    /// The relay sent something that is not a NIP-01 relay message we can use.
    #[error("relay sent garbage: {what} (frame starts {excerpt:?})")]
    Garbage {
        /// What was wrong, e.g. "not a JSON array" or "EVENT for another subscription".
        what: &'static str,
        /// The first characters of the offending frame (at most 80 bytes, cut at a character
        /// boundary).
        excerpt: String,
    },
    /// The relay URL is unusable: not a URL, or not `ws://` / `wss://`.
    #[error("invalid relay URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// A websocket message (or frame) was larger than [`crate::Options::max_message_bytes`].
    /// The connection is dropped without reading the rest of it.
    #[error("message too large: {size} bytes, the limit is {max}")]
    MessageTooLarge {
        /// The size the relay announced or sent so far, in bytes.
        size: usize,
        /// The configured limit, in bytes.
        max: usize,
    },
    /// A deadline passed.
    #[error("timed out after {after:?} waiting for {waiting_for}")]
    Timeout {
        /// What was still missing.
        waiting_for: Waiting,
        /// The limit that ran out.
        after: Duration,
    },
    /// The relay sent more events than [`crate::Options::max_events_per_relay`] before
    /// `EOSE`.
    #[error("relay sent more than {max} events")]
    TooManyEvents {
        /// The configured limit.
        max: usize,
    },
    /// More relays were given than [`crate::Options::max_relays`]; this one was not
    /// contacted.
    #[error("more than {max} relays given; this one was skipped")]
    TooManyRelays {
        /// The configured limit.
        max: usize,
    },
    /// The relay stopped reading what the client writes (pongs to its pings included) until
    /// the client's write buffer reached its bound; the message is not buffered and the
    /// connection is given up.
    #[error("relay does not read what is sent to it: {max} bytes are waiting to be written")]
    NotReading {
        /// The bound on bytes waiting to be written to one relay.
        max: usize,
    },
    /// The websocket failed after the connection was established (protocol violation, invalid
    /// UTF-8 in a text frame, I/O error).
    #[error("websocket error: {0}")]
    WebSocket(#[source] WebSocketError),
}

/// The step a [`RelayError::Timeout`] interrupted.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// The TCP connection, TLS session and websocket handshake
    /// ([`crate::Options::connect_timeout`]).
    Connect,
    /// The end of stored events: `EOSE` or `CLOSED` ([`crate::Options::eose_timeout`]).
    Eose,
    /// The `OK` answer to an `EVENT` ([`crate::Options::eose_timeout`]).
    Ok,
    /// Any frame from a relay that a live subscription pinged after it was silent for
    /// [`crate::SubscribeOptions::ping_interval`] ([`crate::SubscribeOptions::ping_timeout`]).
    Pong,
}

impl fmt::Display for Waiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "the connection",
            Self::Eose => "EOSE",
            Self::Ok => "OK",
            Self::Pong => "an answer to a keepalive ping",
        })
    }
}

/// An error from the websocket library, kept opaque so that its version is not part of this
/// crate's API. Its `Display` and `source` say what happened.
#[derive(Debug)]
pub struct WebSocketError(pub(crate) tokio_tungstenite::tungstenite::Error);

impl fmt::Display for WebSocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for WebSocketError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// The longest part of a relay's text quoted in an error (a bad frame, a close reason).
pub(crate) const EXCERPT_BYTES: usize = 80;

/// The first `max` bytes of `text`, cut back to a character boundary.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
