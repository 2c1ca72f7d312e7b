//! The routes of a signing server, around any model service ([`App`]):
//!
//! | route | answer |
//! |---|---|
//! | `GET /provenance/<request id>` | the event: `200` (with a `Provenance-Nevent` header), `202` while the answer is still being sent, `410` when no event will exist, `404` for an unknown id |
//! | `GET /provenance/metrics` | the signer's counters and timings ([`crate::Metrics::render`]) |
//! | `GET /` with a websocket upgrade | the box's own NIP-01 relay ([`crate::relay_server`]) |
//! | anything else | NIP-98 ([`crate::nip98::AuthLayer`], when configured), then the signing layer, then the model service |

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, header};
use http_body::Body;
use tokio::net::TcpListener;
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_service::Service;

use crate::body::BoxError;
use crate::listen::{self, Limits};
use crate::nip98::AuthLayer;
use crate::relay_server::{self, Hub, Inbox};
use crate::service::ProxyBody;
use crate::store::{Lookup, RequestId};
use crate::{Signer, SigningLayer, reply};

/// The body of the requests [`App`] hands its model service.
pub type ModelRequest = Request<ProxyBody<axum::body::Body>>;

type Routed = BoxCloneSyncService<Request<axum::body::Body>, Response, Infallible>;

/// A signing server's routes around a model service; see the module. Serve it with
/// [`App::serve`].
#[derive(Clone, Debug)]
pub struct App {
    router: Router,
}

/// Configures an [`App`].
#[derive(Debug)]
pub struct AppBuilder {
    signer: Arc<Signer>,
    hub: Hub,
    relay_hints: Vec<String>,
    auth: Option<AuthLayer>,
    inbox: Option<Arc<Inbox>>,
    payments: Option<Arc<crate::server::pay::Payments>>,
}

impl App {
    /// Routes signing with `signer`, whose stored events `hub` hands to the live subscriptions
    /// of the relay at `/` (build the signer with [`crate::SignerBuilder::on_stored`] and
    /// [`Hub::hook`]).
    pub fn builder(signer: Arc<Signer>, hub: Hub) -> AppBuilder {
        AppBuilder {
            signer,
            hub,
            relay_hints: Vec::new(),
            auth: None,
            inbox: None,
            payments: None,
        }
    }

    /// Serves on `listener` until `shutdown`, then lets open connections finish. Each
    /// connection counts its flushes for the signer ([`crate::delivery`]).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.serve_with(listener, Limits::default(), shutdown).await
    }

    /// [`App::serve`] with what one client may hold of the server ([`Limits`]) other than the
    /// defaults.
    pub async fn serve_with(
        self,
        listener: TcpListener,
        limits: Limits,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        listen::serve(listener, self.router, limits, shutdown).await
    }
}

impl AppBuilder {
    /// The relay hints of the `nevent` in the event route's `Provenance-Nevent` header, in
    /// order (the box itself first, then the relays it publishes to). None by default.
    pub fn relay_hints(mut self, hints: Vec<String>) -> Self {
        self.relay_hints = hints;
        self
    }

    /// The relay at `/` takes events addressed to the box into `inbox` and serves them
    /// ([`crate::relay_server`]). None by default: every `EVENT` is refused.
    pub fn inbox(mut self, inbox: Option<Arc<Inbox>>) -> Self {
        self.inbox = inbox;
        self
    }

    /// Charges generations on priced routes ([`crate::server::pay`]). Off by default.
    pub fn payments(mut self, payments: Option<Arc<crate::server::pay::Payments>>) -> Self {
        self.payments = payments;
        self
    }

    /// Requires NIP-98 auth of every request that reaches the model service. Off by default.
    pub fn auth(mut self, layer: AuthLayer) -> Self {
        self.auth = Some(layer);
        self
    }

    /// The app, with `model` answering what the signing layer passes on.
    pub fn service<S, RB>(self, model: S) -> App
    where
        S: Service<ModelRequest, Response = http::Response<RB>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        RB: Body<Data = Bytes> + Send + 'static,
        RB::Error: Into<BoxError>,
    {
        let signing = ServiceBuilder::new()
            .layer(SigningLayer::new(self.signer.clone()))
            .service(model);
        let signing: Routed =
            BoxCloneSyncService::new(signing.map_response(IntoResponse::into_response));
        // Payment before signing (an unpaid request is never forwarded), after NIP-98 (whose
        // caller may be the account that pays).
        let payments_state = self.payments.clone();
        let signing: Routed = match self.payments {
            Some(payments) => BoxCloneSyncService::new(crate::server::pay::PayService {
                inner: signing,
                payments,
            }),
            None => signing,
        };
        let signing: Routed = match self.auth {
            Some(auth) => BoxCloneSyncService::new(
                auth.layer(signing)
                    .map_response(IntoResponse::into_response),
            ),
            None => signing,
        };
        let router = Router::new()
            .route("/provenance/metrics", get(metrics))
            .route("/provenance/pricing", get(pricing))
            // LNURL-pay for zaps: wallets call these without NIP-98.
            .route("/.well-known/lnurlp/{name}", get(lnurl_pay))
            .route("/lnurlp/{name}/callback", get(lnurl_callback))
            .route("/provenance/{id}", get(event))
            .route("/", get(root))
            .with_state(AppState {
                signer: self.signer,
                signing: signing.clone(),
                hub: self.hub,
                relay_hints: Arc::new(self.relay_hints),
                inbox: self.inbox,
                payments: payments_state,
            })
            .fallback_service(signing);
        App { router }
    }
}

#[derive(Clone)]
struct AppState {
    signer: Arc<Signer>,
    /// Prices, when generations are charged.
    payments: Option<Arc<crate::server::pay::Payments>>,
    signing: Routed,
    /// New events for the live subscriptions of the relay at `/`.
    hub: Hub,
    /// Relay hints of the `Provenance-Nevent` header.
    relay_hints: Arc<Vec<String>>,
    /// Events addressed to the box, taken by the relay at `/`.
    inbox: Option<Arc<Inbox>>,
}

/// `GET /provenance/<id>`: 200 the event (and its `nevent` in a header), 202 while the
/// response is still going, 410 when no event will exist, 404 for an unknown id.
async fn event(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let signer = state.signer;
    let hints = state.relay_hints;
    let Ok(id) = id.parse::<RequestId>() else {
        return json_error(StatusCode::NOT_FOUND, "not a request id");
    };
    let lookup = tokio::task::spawn_blocking(move || signer.lookup(id)).await;
    match lookup {
        Ok(Ok(Lookup::Done(json))) => {
            let mut response =
                ([(header::CONTENT_TYPE, "application/json")], json.clone()).into_response();
            if let Some(nevent) = nevent(&json, &hints) {
                if let Ok(value) = HeaderValue::from_str(&nevent) {
                    response.headers_mut().insert("provenance-nevent", value);
                }
            }
            response
        }
        Ok(Ok(Lookup::InProgress)) => {
            let mut response = json_error(
                StatusCode::ACCEPTED,
                "the response is still being sent; the event exists once it ends",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        Ok(Ok(Lookup::Failed(reason))) => json_error(StatusCode::GONE, &reason),
        Ok(Ok(Lookup::Unknown)) => json_error(StatusCode::NOT_FOUND, "no event for this id"),
        Ok(Err(e)) => {
            eprintln!("provenance: {e}");
            json_error(StatusCode::INTERNAL_SERVER_ERROR, "event store failed")
        }
        Err(_) => json_error(StatusCode::INTERNAL_SERVER_ERROR, "event store failed"),
    }
}

/// The `nevent` of a stored event, with the relay hints.
fn nevent(json: &str, hints: &[String]) -> Option<String> {
    let event = provenance::Event::from_json(json).ok()?;
    provenance::nip19::Nevent {
        id: event.id,
        relays: hints.to_vec(),
        author: Some(event.pubkey),
        kind: Some(u32::from(provenance::event::KIND)),
    }
    .encode()
    .ok()
}

fn json_error(status: StatusCode, message: &str) -> Response {
    reply::error(status, message).into_response()
}

/// `GET /provenance/pricing`: what generations cost ([`crate::server::pay::Payments::pricing`]),
/// or `404` when nothing is charged.
async fn pricing(State(state): State<AppState>) -> Response {
    match &state.payments {
        Some(payments) => (
            [(header::CONTENT_TYPE, "application/json")],
            payments.pricing().to_string(),
        )
            .into_response(),
        None => json_error(StatusCode::NOT_FOUND, "this server charges nothing"),
    }
}

fn lightning_of(state: &AppState) -> Option<Arc<crate::server::lightning::Lightning>> {
    state.payments.as_ref().and_then(|p| p.lightning.clone())
}

/// `GET /.well-known/lnurlp/{name}`: the zap endpoint (NIP-57, LUD-06).
async fn lnurl_pay(
    State(state): State<AppState>,
    axum::extract::Path(name): axum::extract::Path<String>,
    headers: http::HeaderMap,
) -> Response {
    match lightning_of(&state) {
        Some(lightning) => {
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
            lightning.pay_request(&name, host)
        }
        None => json_error(StatusCode::NOT_FOUND, "no Lightning rail here"),
    }
}

/// `GET /lnurlp/{name}/callback`: an invoice for a zap request.
async fn lnurl_callback(
    State(state): State<AppState>,
    axum::extract::Path(name): axum::extract::Path<String>,
    uri: http::Uri,
) -> Response {
    match lightning_of(&state) {
        Some(lightning) => {
            lightning
                .zap_invoice(&name, uri.query().unwrap_or_default())
                .await
        }
        None => json_error(StatusCode::NOT_FOUND, "no Lightning rail here"),
    }
}

/// `GET /provenance/metrics`: the signer's counters and timings in the Prometheus text format.
async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.signer.metrics().render(),
    )
        .into_response()
}

/// `/`: a websocket upgrade is a NIP-01 client of the box's own relay; anything else goes to
/// the model service like every other route.
async fn root(State(state): State<AppState>, request: Request<axum::body::Body>) -> Response {
    let upgrade = request
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if !upgrade {
        return match state.signing.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
    }
    let (mut parts, _) = request.into_parts();
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let store = state.signer.store().clone();
    // Frames too: a frame is buffered whole before the message cap applies (16 MiB by
    // default), as the relay client caps them. With an inbox, gift wraps may be larger than
    // other messages (the relay applies the smaller cap to everything but `EVENT`).
    let cap = if state.inbox.is_some() {
        relay_server::MAX_WEBSOCKET_MESSAGE_BYTES
    } else {
        relay_server::MAX_MESSAGE_BYTES
    };
    ws.max_message_size(cap)
        .max_frame_size(cap)
        .on_upgrade(move |socket| {
            relay_server::run_with(
                Socket(socket),
                store,
                state.hub,
                relay_server::Limits::default(),
                state.inbox,
            )
        })
}

/// The websocket as the relay's [`relay_server::Transport`].
struct Socket(WebSocket);

impl relay_server::Transport for Socket {
    async fn recv(&mut self) -> Option<String> {
        loop {
            match self.0.recv().await? {
                Ok(Message::Text(text)) => return Some(text.to_string()),
                Ok(Message::Close(_)) | Err(_) => return None,
                // Pings are answered by the websocket layer; binary is not NIP-01.
                Ok(_) => {}
            }
        }
    }

    async fn send(&mut self, text: String) -> bool {
        self.0.send(Message::Text(text.into())).await.is_ok()
    }
}
