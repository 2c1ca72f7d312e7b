//! The signing [`Service`]: recognises generation requests, forwards them, and wraps the
//! answer so that it is signed.
//!
//! For a `POST` to a route of [`crate::adapter::Api`]:
//!
//! 1. the request body is read whole (at most [`crate::SignerBuilder::max_request_bytes`];
//!    over it: `413`), hashed and parsed; a body the adapter cannot read is forwarded and
//!    answered unsigned;
//! 2. the inner service answers; anything but a 2xx is passed back unsigned;
//! 3. a request id and a fresh prompt salt are made, and the response gets the headers
//!    [`HEADER_REQUEST_ID`], [`HEADER_EVENT_URL`] and [`HEADER_PROMPT_SALT`];
//! 4. a streamed answer (`text/event-stream`, `application/x-ndjson`) flows through a
//!    [`SigningBody`] that signs at end of stream; any other answer is read whole (at most
//!    [`crate::SignerBuilder::max_response_bytes`]), signed and stored, then sent.
//!
//! Every other request passes through untouched and unsigned.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::Body;
use http_body_util::{BodyExt, Either, Full, Limited};
use provenance::commitment::Salt;
use provenance::digest::sha256;
use tower_service::Service;

use crate::adapter::{self, Api, Generation};
use crate::body::{BoxError, NoEvent, Pending, SigningBody};
use crate::delivery::Delivery;
use crate::metrics::Metrics;
use crate::store::RequestId;
use crate::{Caller, Signer};

/// Response header: the request id, the key of the event in the store.
pub const HEADER_REQUEST_ID: &str = "provenance-request-id";
/// Response header: where the signed event can be fetched once the response has ended
/// (`/provenance/<request id>`, relative to the server).
pub const HEADER_EVENT_URL: &str = "provenance-event-url";
/// Response header: the prompt salt (64 hex characters), for this caller only.
pub const HEADER_PROMPT_SALT: &str = "provenance-prompt-salt";
/// Response header: the signer's public key (64 hex characters).
pub const HEADER_SIGNER: &str = "provenance-signer";

/// The request body type handed to the inner service: the re-assembled body of a request
/// the signer read, or the untouched body of one it did not.
pub type ProxyBody<B> = Either<Full<Bytes>, B>;

/// The signing service; made by [`crate::SigningLayer`].
#[derive(Clone, Debug)]
pub struct SigningService<S> {
    inner: S,
    signer: Arc<Signer>,
}

impl<S> SigningService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, signer: Arc<Signer>) -> Self {
        Self { inner, signer }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B, RB> Service<Request<B>> for SigningService<S>
where
    S: Service<Request<ProxyBody<B>>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    RB: Body<Data = Bytes> + Send + 'static,
    RB::Error: Into<BoxError>,
{
    type Response = Response<SigningBody<RB>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let api = match *request.method() {
            Method::POST => Api::route(request.uri().path()),
            _ => None,
        };
        // The clone is not ready; the ready service is the one to call (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Some(api) = api else {
            let path = request.uri().path();
            let unsigned = (request.method() == Method::POST && Api::unsigned_generation(path))
                .then(|| path.trim_end_matches('/').to_owned());
            let signer = self.signer.clone();
            let future = inner.call(request.map(Either::Right));
            return Box::pin(async move {
                let response = future.await?;
                if let Some(path) = unsigned
                    && response.status().is_success()
                {
                    signer.metrics().unsigned_route(&path);
                }
                Ok(response.map(SigningBody::passthrough))
            });
        };
        let signer = self.signer.clone();
        Box::pin(async move {
            match sign_exchange(api, signer, inner, request).await {
                Ok(response) => Ok(response),
                Err(Reply::Inner(e)) => Err(e),
                Err(Reply::Local(status, message)) => Ok(local(status, message)),
            }
        })
    }
}

/// Ways an exchange ends early.
enum Reply<E> {
    /// The inner service failed.
    Inner(E),
    /// The signer answers itself.
    Local(StatusCode, String),
}

async fn sign_exchange<S, B, RB>(
    api: Api,
    signer: Arc<Signer>,
    mut inner: S,
    request: Request<B>,
) -> Result<Response<SigningBody<RB>>, Reply<S::Error>>
where
    S: Service<Request<ProxyBody<B>>, Response = Response<RB>>,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
    RB: Body<Data = Bytes> + Send + 'static,
    RB::Error: Into<BoxError>,
{
    let received = Instant::now();
    let start_ms = signer.clock.now_ms();
    let caller = request.extensions().get::<Caller>().map(|c| c.0);
    let payment = request
        .extensions()
        .get::<crate::PaymentNote>()
        .map(|p| p.0.clone());
    // HTTP/1 only: hyper's HTTP/1 server flushes after every poll of the body, its HTTP/2
    // server only when it has frames to write, so a wait for the next flush could last
    // forever there.
    let delivery = match request.version() {
        Version::HTTP_09 | Version::HTTP_10 | Version::HTTP_11 => {
            request.extensions().get::<Delivery>().cloned()
        }
        _ => None,
    };
    let (parts, body) = request.into_parts();
    let bytes = match Limited::new(body, signer.max_request_bytes).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(Reply::Local(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body over {} bytes", signer.max_request_bytes),
            ));
        }
        Err(e) => {
            return Err(Reply::Local(
                StatusCode::BAD_REQUEST,
                format!("request body could not be read: {e}"),
            ));
        }
    };
    let request_sha256 = sha256(&bytes);
    let info = adapter::parse_request(api, &bytes);
    let (parts, bytes) = replayable(&signer, api, parts, bytes);
    let forwarded = Request::from_parts(parts, Either::Left(Full::new(bytes)));
    let request_work = received.elapsed();
    let response = inner.call(forwarded).await.map_err(Reply::Inner)?;
    let Ok(info) = info else {
        // Not a request the adapter can describe: answered, never signed.
        Metrics::bump(&signer.metrics().unsigned);
        return Ok(response.map(SigningBody::passthrough));
    };
    if !response.status().is_success() {
        Metrics::bump(&signer.metrics().unsigned);
        return Ok(response.map(SigningBody::passthrough));
    }
    let id = RequestId::generate();
    let salt = Salt::random();
    let (mut parts, body) = response.into_parts();
    let streamed = match parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        Some(t) if t.starts_with("text/event-stream") || t.starts_with("application/x-ndjson") => {
            true
        }
        Some(t) if t.starts_with("application/json") => false,
        _ => info.stream,
    };
    let headers = &mut parts.headers;
    for (name, value) in [
        (HEADER_REQUEST_ID, id.to_string()),
        (HEADER_EVENT_URL, signer.event_url(id)),
        (HEADER_PROMPT_SALT, salt.to_string()),
        (HEADER_SIGNER, signer.keys.public_key().to_hex()),
    ] {
        // Hex and a configured path prefix: always valid header values.
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    // The signer may add to the body (inline mode) and streams it chunked.
    headers.remove(CONTENT_LENGTH);
    let pending = Pending {
        signer: signer.clone(),
        id,
        info,
        request_sha256,
        salt,
        caller,
        payment,
        start_ms,
        streamed,
        request_work,
        delivery,
    };
    signer.registry.start(id);
    if streamed {
        return Ok(Response::from_parts(
            parts,
            SigningBody::streaming(body, pending),
        ));
    }
    let collected = Limited::new(body, signer.max_response_bytes)
        .collect()
        .await;
    let bytes = match collected {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let reason = format!("upstream response could not be read: {e}");
            signer.registry.fail(id, reason.clone());
            Metrics::bump(&signer.metrics().failed);
            return Err(Reply::Local(StatusCode::BAD_GATEWAY, reason));
        }
    };
    let mut generation = Generation::default();
    generation.apply_body(pending.info.api, &bytes);
    let finished = pending
        .finish(&generation, sha256(&bytes), bytes.len() as u64, false)
        .await;
    let event = match finished {
        Ok(event) => event,
        // An answer the signer cannot read is still the upstream's success: served as it
        // came, unsigned (the event URL answers 410 with the reason).
        Err(NoEvent::Unreadable(_)) => None,
        Err(reason) => {
            return Err(Reply::Local(
                StatusCode::INTERNAL_SERVER_ERROR,
                reason.to_string(),
            ));
        }
    };
    let body = match (signer.inline, event) {
        (true, Some(inline)) => splice_inline(&bytes, &inline),
        _ => bytes,
    };
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    Ok(Response::from_parts(parts, SigningBody::full(body)))
}

/// Inline mode for a whole JSON body: `,"provenance":{...}` spliced in before the final `}`,
/// so that removing it gives back the exact bytes the event's `response.sha256` covers. A body
/// that is not a JSON object is left as it is.
fn splice_inline(body: &Bytes, inline: &str) -> Bytes {
    let trimmed = body.trim_ascii_end();
    let Some(without_brace) = trimmed.strip_suffix(b"}") else {
        return body.clone();
    };
    if !body.trim_ascii_start().starts_with(b"{") {
        return body.clone();
    }
    let empty = without_brace.trim_ascii() == b"{";
    let mut out = Vec::with_capacity(body.len() + inline.len() + 16);
    out.extend_from_slice(without_brace);
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(b"\"provenance\":");
    out.extend_from_slice(inline.as_bytes());
    out.push(b'}');
    out.extend_from_slice(&body[trimmed.len()..]);
    Bytes::from(out)
}

fn local<RB>(status: StatusCode, message: String) -> Response<SigningBody<RB>> {
    crate::reply::error_as(status, &message, SigningBody::full)
}

/// With [`SignerBuilder::replayable`](crate::SignerBuilder::replayable), a llama.cpp
/// `/completion` body as forwarded: prompt cache off, token ids asked for.
fn replayable(
    signer: &Signer,
    api: Api,
    mut parts: http::request::Parts,
    bytes: Bytes,
) -> (http::request::Parts, Bytes) {
    if !signer.replayable || api != Api::LlamaCompletion {
        return (parts, bytes);
    }
    match adapter::make_replayable(&bytes) {
        Some(rewritten) => {
            parts.headers.remove(http::header::CONTENT_LENGTH);
            (parts, Bytes::from(rewritten))
        }
        None => (parts, bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_splice_is_removable() {
        let body = Bytes::from_static(b"{\"a\":1}\n");
        let out = splice_inline(&body, "{\"x\":2}");
        assert_eq!(&out[..], b"{\"a\":1,\"provenance\":{\"x\":2}}\n");
        assert_eq!(
            &splice_inline(&Bytes::from_static(b"{ }"), "1")[..],
            b"{ \"provenance\":1}"
        );
        assert_eq!(&splice_inline(&Bytes::from_static(b"[1]"), "1")[..], b"[1]");
    }
}
