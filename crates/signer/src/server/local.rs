//! Asking the model from inside the process, through the same signing path as HTTP callers.
//!
//! A program that runs beside the server and answers people by other means (the Nostr DM
//! bridge, NIP-90 jobs) sends its generation requests through a [`LocalClient`]: the signing
//! layer reads, forwards and signs them exactly as it does a request that arrived over HTTP,
//! they wait for the same upstream slots, and their events go to the same store, outbox and
//! relay. What it skips is the listener and NIP-98: the caller admits its own users.
//!
//! The answer is read whole (at most the signer's response limit), so by the time
//! [`LocalClient::post`] returns, the answer was signed over exactly the bytes it returns, and
//! the event is in the store.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use provenance::Event;
use tower::ServiceExt;

use crate::body::BoxError;
use crate::server::Proxy;
use crate::service::{HEADER_PROMPT_SALT, HEADER_REQUEST_ID};
use crate::store::{Lookup, RequestId};
use crate::{Signer, SigningService};

/// How long [`LocalClient::post`] waits for the event of an answer it has read whole (the
/// store commits it while the last bytes are handed over).
const EVENT_WAIT: Duration = Duration::from_secs(10);

/// Sends generation requests through the signing path in-process; cheap to clone. Made by
/// [`super::Server::local_client`].
#[derive(Clone)]
pub struct LocalClient {
    service: SigningService<Proxy>,
    signer: Arc<Signer>,
    relay_hints: Arc<Vec<String>>,
}

impl std::fmt::Debug for LocalClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalClient")
            .field("relay_hints", &self.relay_hints)
            .finish_non_exhaustive()
    }
}

/// A signed answer.
#[derive(Debug, Clone)]
pub struct SignedAnswer {
    /// The answer's body, exactly as signed.
    pub body: Bytes,
    /// The provenance event over it.
    pub event: Event,
    /// The event as a `nevent` with the server's relay hints (the box first).
    pub nevent: String,
    /// The prompt salt (64 hex characters) that opens the record's prompt commitment together
    /// with the request body.
    pub salt: Option<String>,
}

/// Why [`LocalClient::post`] has no signed answer.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The model server (or the signer) answered with an error status; nothing was signed.
    #[error("the model server answered {status}: {message}")]
    Status {
        /// The status.
        status: StatusCode,
        /// The start of the body.
        message: String,
    },
    /// The answer could not be read whole.
    #[error("the answer could not be read: {0}")]
    Body(BoxError),
    /// The answer was passed on without being signed (a request the signer does not
    /// recognise as a generation, or an answer it could not sign).
    #[error("the answer was not signed: {0}")]
    Unsigned(String),
    /// The event store failed.
    #[error("event store: {0}")]
    Store(crate::store::StoreError),
}

impl LocalClient {
    pub(crate) fn new(
        service: SigningService<Proxy>,
        signer: Arc<Signer>,
        relay_hints: Vec<String>,
    ) -> Self {
        Self {
            service,
            signer,
            relay_hints: Arc::new(relay_hints),
        }
    }

    /// The signer.
    pub fn signer(&self) -> &Arc<Signer> {
        &self.signer
    }

    /// The relay hints of the `nevent`s it returns.
    pub fn relay_hints(&self) -> &[String] {
        &self.relay_hints
    }

    /// Posts `body` (JSON) to `path` of the model server (`/v1/chat/completions`,
    /// `/completion`, `/api/chat`, ...) through the signing layer, reads the answer whole and
    /// returns it with its event.
    pub async fn post(&self, path: &str, body: Vec<u8>) -> Result<SignedAnswer, LocalError> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::HOST, "localhost")
            .body(axum::body::Body::new(Full::new(Bytes::from(body))))
            .map_err(|e| LocalError::Unsigned(format!("request: {e}")))?;
        let response = match self.service.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => {
                let never: Infallible = never;
                match never {}
            }
        };
        let (parts, body) = response.into_parts();
        let limit = self.signer.max_response_bytes;
        let body = Limited::new(body, limit)
            .collect()
            .await
            .map_err(LocalError::Body)?
            .to_bytes();
        if !parts.status.is_success() {
            let message = String::from_utf8_lossy(&body[..body.len().min(300)])
                .trim()
                .replace(['\n', '\r'], " ");
            return Err(LocalError::Status {
                status: parts.status,
                message,
            });
        }
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let Some(id) = header(HEADER_REQUEST_ID).and_then(|v| v.parse::<RequestId>().ok()) else {
            return Err(LocalError::Unsigned(format!(
                "no {HEADER_REQUEST_ID} header: {path} is not a generation route"
            )));
        };
        let salt = header(HEADER_PROMPT_SALT);
        let started = tokio::time::Instant::now();
        let json = loop {
            let signer = self.signer.clone();
            let lookup = tokio::task::spawn_blocking(move || signer.lookup(id))
                .await
                .map_err(|e| LocalError::Unsigned(format!("event lookup: {e}")))?
                .map_err(LocalError::Store)?;
            match lookup {
                Lookup::Done(json) => break json,
                Lookup::InProgress if started.elapsed() < EVENT_WAIT => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Lookup::InProgress => {
                    return Err(LocalError::Unsigned(format!(
                        "no event {}s after the answer ended",
                        EVENT_WAIT.as_secs()
                    )));
                }
                Lookup::Failed(reason) => return Err(LocalError::Unsigned(reason)),
                Lookup::Unknown => {
                    return Err(LocalError::Unsigned("the request id is unknown".to_owned()));
                }
            }
        };
        let event = Event::from_json(&json)
            .map_err(|e| LocalError::Unsigned(format!("stored event: {e}")))?;
        let nevent = provenance::nip19::Nevent {
            id: event.id,
            relays: self.relay_hints.to_vec(),
            author: Some(event.pubkey),
            kind: Some(u32::from(provenance::event::KIND)),
        }
        .encode()
        .map_err(|e| LocalError::Unsigned(format!("nevent: {e}")))?;
        Ok(SignedAnswer {
            body,
            event,
            nevent,
            salt,
        })
    }
}

/// Where programs on the box keep the events they send to people who read them from the
/// box's own relay (the DM agent's gift-wrapped replies, NIP-90 feedback and results):
/// checked ([`crate::relay_server::Inbox::check_own`]), stored in the relay's inbox and handed
/// to its live subscriptions. Gift wraps are still served only to a connection authenticated
/// as their addressee. Cheap to clone. Made by [`super::Server::mailbox`].
#[derive(Clone, Debug)]
pub struct Mailbox {
    inbox: Arc<crate::relay_server::Inbox>,
    hub: crate::relay_server::Hub,
}

impl Mailbox {
    pub(crate) fn new(
        inbox: Arc<crate::relay_server::Inbox>,
        hub: crate::relay_server::Hub,
    ) -> Self {
        Self { inbox, hub }
    }

    /// Keeps `event` for its addressee; `Err` with the reason when the relay will not.
    pub async fn deliver(&self, event: &Event) -> Result<(), String> {
        let now = provenance::Timestamp::now();
        if let Some(why) = self.inbox.check_own(event, now) {
            return Err(why);
        }
        let inbox = self.inbox.clone();
        let kept = event.clone();
        let accepted = tokio::task::spawn_blocking(move || inbox.accept(&kept, now))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        if !matches!(accepted, crate::relay_server::inbox::Accepted::Duplicate) {
            // Stored before it is published, as every event of the relay.
            self.hub.publish(event);
        }
        Ok(())
    }
}
