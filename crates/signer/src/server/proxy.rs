//! The reverse proxy to the model server: the inner service of the signing layer in
//! `provenance serve`.
//!
//! [`Proxy`] forwards every request to the upstream under the same path and query, without
//! the hop-by-hop headers (RFC 9110 section 7.6.1: the fixed ones and those the `Connection`
//! header names, both ways), and passes the answer back as it comes,
//! streamed or not. An upstream it cannot reach is a `502` with the reason.
//!
//! **Upstream slots.** Generation requests (a `POST` to a route of [`crate::adapter::Api`])
//! may be limited to a number sent at once ([`Proxy::limit`]); more wait in the proxy, in
//! order of arrival, and each answer holds its place until its body ends ([`UpstreamBody`]).
//! llama-server works on as many requests as it has slots and reads the requests of only a
//! few more connections; a proxy that opened a connection per waiting client would leave most
//! of them unread while the slots go to others. Waiting here keeps the order.
//!
//! **Connections.** An idle upstream connection is reused for [`UPSTREAM_IDLE`] only, and one
//! that carried a streamed answer not at all (see [`Proxy::new`]).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri, header};
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{HttpConnector, capture_connection};
use hyper_util::rt::TokioExecutor;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_service::Service;

use crate::adapter::Api;
use crate::reply;
use crate::service::ProxyBody;

/// The request body the proxy forwards: what the signing layer hands its inner service.
pub type ForwardBody = ProxyBody<axum::body::Body>;

pub(crate) type HttpClient = Client<HttpConnector, ForwardBody>;

/// How long an idle upstream connection is kept for reuse.
pub const UPSTREAM_IDLE: Duration = Duration::from_secs(2);

/// Headers that belong to one connection, not to the message (RFC 9110 section 7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
];

/// Removes the headers of one connection: those of [`HOP_BY_HOP`] and those the `Connection`
/// header names (RFC 9110 section 7.6.1), which a client could otherwise use to pass what it
/// likes to the next hop.
fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    let named: Vec<http::HeaderName> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| http::HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

/// Forwards requests to the model server; see the module. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Proxy {
    client: HttpClient,
    upstream: Arc<Uri>,
    slots: Option<Arc<Semaphore>>,
}

impl Proxy {
    /// A proxy to `upstream` (`http://host:port`, maybe with a path prefix), without a limit.
    pub fn new(upstream: Uri) -> Self {
        let mut builder = Client::builder(TokioExecutor::new());
        // Servers close idle keep-alive connections on their own timer, without telling (5 s:
        // llama-server, uvicorn, Node); a request sent just as one closes fails. Reusing only
        // connections idle for less than that keeps clear of it.
        builder.pool_idle_timeout(UPSTREAM_IDLE);
        // Streamed answers are many small writes: without TCP_NODELAY, Nagle's algorithm and
        // the peer's delayed ACK hold each one back by up to 40 ms.
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self {
            client: builder.build(connector),
            upstream: Arc::new(upstream),
            slots: None,
        }
    }

    /// At most `concurrency` generation requests at the upstream at once (`None` or `0`: no
    /// limit); see the module.
    pub fn limit(mut self, concurrency: Option<usize>) -> Self {
        self.slots = concurrency
            .filter(|n| *n > 0)
            .map(|n| Arc::new(Semaphore::new(n)));
        self
    }

    /// The upstream.
    pub fn upstream(&self) -> &Uri {
        &self.upstream
    }

    /// The upstream URL of `path` (and query).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.upstream.to_string().trim_end_matches('/'))
    }

    pub(crate) fn client(&self) -> &HttpClient {
        &self.client
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl Service<Request<ForwardBody>> for Proxy {
    type Response = Response<UpstreamBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<UpstreamBody>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<ForwardBody>) -> Self::Future {
        let generation =
            request.method() == http::Method::POST && Api::route(request.uri().path()).is_some();
        if generation {
            // The signer parses the answer and hashes what the client receives: both must be
            // the bytes as generated, not a compressed form of them.
            request.headers_mut().insert(
                http::header::ACCEPT_ENCODING,
                http::HeaderValue::from_static("identity"),
            );
        }
        let slots = self.slots.clone().filter(|_| generation);
        let proxy = self.clone();
        Box::pin(async move {
            let permit = match slots {
                Some(slots) => slots.acquire_owned().await.ok(),
                None => None,
            };
            Ok(proxy.forward(request, permit, generation).await)
        })
    }
}

impl Proxy {
    async fn forward(
        &self,
        request: Request<ForwardBody>,
        permit: Option<OwnedSemaphorePermit>,
        generation: bool,
    ) -> Response<UpstreamBody> {
        let (mut parts, body) = request.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let uri = self.url(path);
        match uri.parse() {
            Ok(uri) => parts.uri = uri,
            Err(_) => return bad_gateway(&format!("cannot forward to {uri}")),
        }
        strip_hop_by_hop(&mut parts.headers);
        let mut request = Request::from_parts(parts, body);
        let connection = capture_connection(&mut request);
        match self.client.request(request).await {
            Ok(response) => {
                let encoding = response
                    .headers()
                    .get(http::header::CONTENT_ENCODING)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .filter(|v| !v.trim().eq_ignore_ascii_case("identity"));
                if let Some(encoding) = encoding.filter(|_| generation) {
                    return bad_gateway(&format!(
                        "upstream {} answered a generation with Content-Encoding: {encoding} \
                         although identity was asked for; the answer cannot be signed",
                        self.upstream
                    ));
                }
                if is_stream(&response) {
                    // llama-server closes the connection 5 to 15 ms after the last chunk of a
                    // streamed answer while announcing keep-alive; a request another client
                    // sends on it meanwhile fails. So a connection that carried a stream is
                    // not reused.
                    if let Some(connected) = connection.connection_metadata().as_ref() {
                        connected.poison();
                    }
                }
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                let body = UpstreamBody(Either::Left(Held { body, permit }));
                Response::from_parts(parts, body)
            }
            Err(e) => bad_gateway(&format!(
                "upstream {} unreachable: {}",
                self.upstream,
                chain(&e)
            )),
        }
    }
}

/// The body of an upstream answer (holding its place among the upstream slots until it
/// ends), or of the proxy's own `502`.
#[derive(Debug)]
pub struct UpstreamBody(Either<Held, Full<Bytes>>);

/// An upstream answer's body, holding its slot until it ends.
#[derive(Debug)]
struct Held {
    body: Incoming,
    permit: Option<OwnedSemaphorePermit>,
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match &mut self.0 {
            Either::Left(held) => {
                let frame = std::task::ready!(Pin::new(&mut held.body).poll_frame(cx));
                if !matches!(frame, Some(Ok(_))) {
                    held.permit = None;
                }
                Poll::Ready(frame)
            }
            Either::Right(full) => Pin::new(full)
                .poll_frame(cx)
                .map_err(|never| match never {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Either::Left(held) => held.body.is_end_stream(),
            Either::Right(full) => full.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Either::Left(held) => held.body.size_hint(),
            Either::Right(full) => full.size_hint(),
        }
    }
}

/// Whether an answer is streamed: chunked, or of a stream content type.
fn is_stream<B>(response: &Response<B>) -> bool {
    let headers = response.headers();
    let chunked = headers
        .get(header::TRANSFER_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
    let streamed_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.starts_with("text/event-stream") || t.starts_with("application/x-ndjson")
        });
    chunked || streamed_type
}

/// An error and its sources, one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

fn bad_gateway(reason: &str) -> Response<UpstreamBody> {
    reply::error(StatusCode::BAD_GATEWAY, reason).map(|full| UpstreamBody(Either::Right(full)))
}
