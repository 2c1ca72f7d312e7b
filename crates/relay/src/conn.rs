//! One websocket connection to one relay, with size caps and deadlines on every step.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Bytes, Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

use crate::Options;
use crate::error::{EXCERPT_BYTES, RelayError, Waiting, WebSocketError, excerpt};

/// How long closing a finished connection politely may take before it is simply dropped.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// A frame read by [`Connection::next_frame`].
pub(crate) enum Frame {
    /// A text frame: a relay message.
    Text(Utf8Bytes),
    /// A ping or pong: the relay is there, with nothing to say.
    Control,
}

/// A connected relay.
pub(crate) struct Connection {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// [`max_write_buffer`] for this connection's options.
    max_write: usize,
}

/// Checks that `relay` is a `ws://` or `wss://` URL with a host.
pub(crate) fn parse_url(relay: &str) -> Result<Url, RelayError> {
    let invalid = |reason: String| RelayError::InvalidUrl {
        url: relay.to_owned(),
        reason,
    };
    let url = Url::parse(relay).map_err(|e| invalid(e.to_string()))?;
    match url.scheme() {
        "ws" => {}
        "wss" if cfg!(feature = "tls") => {}
        "wss" => {
            return Err(invalid(
                "wss:// needs provenance-relay's `tls` feature".to_owned(),
            ));
        }
        other => {
            return Err(invalid(format!("scheme {other:?} is not ws:// or wss://")));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host".to_owned()));
    }
    Ok(url)
}

impl Connection {
    /// Connects within `opts.connect_timeout`.
    pub(crate) async fn open(relay: &str, opts: &Options) -> Result<Self, RelayError> {
        let url = parse_url(relay)?;
        let max = Some(opts.max_message_bytes);
        let config = WebSocketConfig::default()
            .max_message_size(max)
            .max_frame_size(max)
            .write_buffer_size(WRITE_BUFFER_BYTES)
            .max_write_buffer_size(max_write_buffer(opts));
        let handshake = connect(url.as_str(), config);
        let ws = match timeout(opts.connect_timeout, handshake).await {
            Err(_) => {
                return Err(RelayError::Timeout {
                    waiting_for: Waiting::Connect,
                    after: opts.connect_timeout,
                });
            }
            Ok(Err(e)) => return Err(RelayError::Connect(WebSocketError(e))),
            Ok(Ok(ws)) => ws,
        };
        Ok(Self {
            ws,
            max_write: max_write_buffer(opts),
        })
    }

    /// The error for a websocket failure on this connection.
    fn failed(&self, error: tungstenite::Error) -> RelayError {
        match error {
            tungstenite::Error::WriteBufferFull(_) => RelayError::NotReading {
                max: self.max_write,
            },
            other => read_error(other),
        }
    }

    /// Sends one text message, giving up at `deadline`.
    pub(crate) async fn send(
        &mut self,
        text: String,
        deadline: Instant,
        waiting_for: Waiting,
        after: Duration,
    ) -> Result<(), RelayError> {
        match timeout_at(deadline, self.ws.send(Message::text(text))).await {
            Err(_) => Err(RelayError::Timeout { waiting_for, after }),
            Ok(Err(e)) => Err(self.failed(e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Sends a websocket ping (with an empty payload), giving up at `deadline`.
    pub(crate) async fn ping(
        &mut self,
        deadline: Instant,
        waiting_for: Waiting,
        after: Duration,
    ) -> Result<(), RelayError> {
        match timeout_at(deadline, self.ws.send(Message::Ping(Bytes::new()))).await {
            Err(_) => Err(RelayError::Timeout { waiting_for, after }),
            Ok(Err(e)) => Err(self.failed(e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// The next text frame, skipping pings and pongs, giving up at `deadline`.
    ///
    /// A binary frame is garbage (NIP-01 speaks JSON text); a close frame or the end of the
    /// connection is [`RelayError::Closed`]. Frames over the configured size never reach
    /// memory whole: the websocket layer fails on the announced length.
    pub(crate) async fn next_text(
        &mut self,
        deadline: Instant,
        waiting_for: Waiting,
        after: Duration,
    ) -> Result<Utf8Bytes, RelayError> {
        loop {
            match self.next_frame(deadline, waiting_for, after).await? {
                Frame::Text(text) => return Ok(text),
                Frame::Control => {}
            }
        }
    }

    /// The next frame, giving up at `deadline`: like [`Self::next_text`], but a ping or pong
    /// from the relay is returned as [`Frame::Control`], so that a caller keeping a connection
    /// alive learns that the relay is still there.
    pub(crate) async fn next_frame(
        &mut self,
        deadline: Instant,
        waiting_for: Waiting,
        after: Duration,
    ) -> Result<Frame, RelayError> {
        let message = match timeout_at(deadline, self.ws.next()).await {
            Err(_) => return Err(RelayError::Timeout { waiting_for, after }),
            Ok(None) => {
                return Err(RelayError::Closed {
                    reason: "connection ended".to_owned(),
                });
            }
            Ok(Some(Err(e))) => return Err(self.failed(e)),
            Ok(Some(Ok(message))) => message,
        };
        match message {
            Message::Text(text) => Ok(Frame::Text(text)),
            Message::Binary(bytes) => {
                let head = &bytes[..bytes.len().min(EXCERPT_BYTES)];
                Err(RelayError::Garbage {
                    what: "binary frame",
                    excerpt: String::from_utf8_lossy(head).into_owned(),
                })
            }
            Message::Close(frame) => {
                let reason = match frame {
                    Some(frame) if frame.reason.is_empty() => {
                        format!("close frame with code {}", frame.code)
                    }
                    Some(frame) => format!(
                        "close frame with code {}: {}",
                        frame.code,
                        excerpt(&frame.reason, EXCERPT_BYTES)
                    ),
                    None => "close frame".to_owned(),
                };
                Err(RelayError::Closed { reason })
            }
            // Pongs to pings are queued by the websocket layer and sent on the next read.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Ok(Frame::Control),
        }
    }

    /// Sends `last` (if any) and a close frame, waiting at most [`CLOSE_GRACE`]; errors are
    /// ignored because the outcome for this relay is already decided.
    pub(crate) async fn close(mut self, last: Option<String>) {
        let _ = timeout(CLOSE_GRACE, async {
            if let Some(text) = last {
                self.ws.send(Message::text(text)).await?;
            }
            self.ws.close(None).await
        })
        .await;
    }
}

/// Bytes the websocket layer collects before it writes them out.
const WRITE_BUFFER_BYTES: usize = 128 * 1024;

/// The most bytes waiting to be written to one relay: the write buffer, one message of the
/// largest size we send (an `EVENT` to publish is at most `max_message_bytes`), and room for
/// pongs. Without it a relay that pings without reading grows the client's memory by a pong
/// per ping until the timeout (121 MB in 25 s); with it, once the buffer is full, the
/// websocket layer keeps only the latest pong owed. A message of ours that does not fit is
/// [`RelayError::NotReading`].
fn max_write_buffer(opts: &Options) -> usize {
    WRITE_BUFFER_BYTES + opts.max_message_bytes + 64 * 1024
}

/// Maps a websocket failure after the handshake to the error that names it.
fn read_error(error: tungstenite::Error) -> RelayError {
    match error {
        tungstenite::Error::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            RelayError::MessageTooLarge {
                size,
                max: max_size,
            }
        }
        tungstenite::Error::Utf8(_) => RelayError::Garbage {
            what: "text frame is not valid UTF-8",
            excerpt: String::new(),
        },
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            RelayError::Closed {
                reason: "connection closed".to_owned(),
            }
        }
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            RelayError::Closed {
                reason: "connection reset without a closing handshake".to_owned(),
            }
        }
        other => RelayError::WebSocket(WebSocketError(other)),
    }
}

#[cfg(feature = "tls")]
async fn connect(
    url: &str,
    config: WebSocketConfig,
) -> Result<WebSocketStream<MaybeTlsStream<TcpStream>>, tungstenite::Error> {
    let connector = tokio_tungstenite::Connector::Rustls(tls::config()?);
    let (ws, _response) =
        tokio_tungstenite::connect_async_tls_with_config(url, Some(config), true, Some(connector))
            .await?;
    Ok(ws)
}

#[cfg(not(feature = "tls"))]
async fn connect(
    url: &str,
    config: WebSocketConfig,
) -> Result<WebSocketStream<MaybeTlsStream<TcpStream>>, tungstenite::Error> {
    let (ws, _response) =
        tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
    Ok(ws)
}

/// The rustls client configuration shared by `wss://` relays and NIP-05 lookups.
#[cfg(feature = "tls")]
pub(crate) fn tls_client_config()
-> Result<std::sync::Arc<rustls::ClientConfig>, tokio_tungstenite::tungstenite::Error> {
    tls::config()
}

#[cfg(feature = "tls")]
mod tls {
    //! The rustls client configuration for `wss://`: ring as the crypto provider (chosen
    //! explicitly, so another crate enabling a different rustls provider in the same binary
    //! cannot make the process-wide default ambiguous) and the webpki root certificates.

    use std::sync::{Arc, OnceLock};

    use rustls::ClientConfig;
    use tokio_tungstenite::tungstenite::{self, error::TlsError};

    pub(super) fn config() -> Result<Arc<ClientConfig>, tungstenite::Error> {
        static CONFIG: OnceLock<Result<Arc<ClientConfig>, rustls::Error>> = OnceLock::new();
        CONFIG
            .get_or_init(|| {
                let roots = rustls::RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                };
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let config = ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                Ok(Arc::new(config))
            })
            .clone()
            .map_err(|e| tungstenite::Error::Tls(TlsError::Rustls(Box::new(e))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(parse_url("ws://127.0.0.1:7777").is_ok());
        assert!(parse_url("ws://relay.example/path?x=1").is_ok());
        for bad in [
            "http://relay.example",
            "relay.example",
            "ws://",
            "file:///tmp/x",
            "",
        ] {
            match parse_url(bad) {
                Err(RelayError::InvalidUrl { url, reason }) => {
                    assert_eq!(url, bad);
                    assert!(!reason.is_empty());
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        #[cfg(feature = "tls")]
        assert!(parse_url("wss://relay.example").is_ok());
        #[cfg(not(feature = "tls"))]
        assert!(parse_url("wss://relay.example").is_err());
    }
}
