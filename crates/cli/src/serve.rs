//! `provenance serve`: a signing reverse proxy in front of a model server.
//!
//! Glue only: the signing is `provenance_signer`'s layer; this file hashes the model once,
//! asks the upstream what it is, forwards requests with hyper, and serves
//! `GET /provenance/<request id>`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::FromRequestParts;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{HttpConnector, capture_connection};
use hyper_util::rt::TokioExecutor;
use provenance::clock::SystemClock;
use provenance::nostr::nips::nip19::ToBech32;
use provenance::record::{Model, Runtime};
use provenance_gguf::Cache;
use provenance_gguf::resolve::{StoreDirs, resolve};
use provenance_signer::adapter::Api;
use provenance_signer::delivery::{Delivery, DeliveryIo};
use provenance_signer::nip98::{self, Allow, Nip98Verifier};
use provenance_signer::outbox::Outbox;
use provenance_signer::service::ProxyBody;
use provenance_signer::{
    Caller, Durability, Lookup, RequestId, Signer, SigningLayer, SigningService, SqliteStore, nip01,
};
use serde_json::{Map, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::util::BoxCloneSyncService;
use tower::util::MapRequest;
use tower::{Layer, ServiceExt};

use crate::keyfile;

/// Run a signing reverse proxy in front of a model server (llama.cpp, Ollama, OpenAI-compatible)
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The model server, e.g. http://127.0.0.1:8080
    #[arg(long, value_name = "URL", required_unless_present = "config")]
    upstream: Option<String>,
    /// The weights it serves: a GGUF path or ollama:NAME (hashed once at start-up)
    #[arg(
        long,
        value_name = "PATH|ollama:NAME",
        required_unless_present = "config"
    )]
    model: Option<String>,
    /// The name written to records [default: the file name without .gguf, or the Ollama name]
    #[arg(long, value_name = "NAME")]
    model_name: Option<String>,
    /// Secret key file [default: ~/.config/provenance/key.nsec]
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Address to listen on (loopback by default)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8088")]
    listen: SocketAddr,
    /// Event database [default: ~/.local/share/provenance/events.sqlite]
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
    /// Also put the event in the response: a JSON field, or a last SSE / NDJSON message
    #[arg(long)]
    inline: bool,
    /// Publish the output text in the record (off: the record carries hashes only)
    #[arg(long)]
    include_text: bool,
    /// The engine binary, to record its SHA-256
    #[arg(long, value_name = "FILE")]
    engine_binary: Option<PathBuf>,
    /// fsync every event (full, survives power loss) or rely on the OS (process, survives kill -9)
    #[arg(long, value_name = "MODE", default_value = "full", value_parser = ["full", "process"])]
    durability: String,
    /// Largest request body accepted, in bytes
    #[arg(long, value_name = "BYTES", default_value_t = 8 * 1024 * 1024)]
    max_request_bytes: usize,
    /// Also publish every event to this relay (repeatable), through a durable outbox
    #[arg(long = "relay", value_name = "URL")]
    relays: Vec<String>,
    /// Require NIP-98 auth from the keys in FILE (npub or hex, one per line)
    #[arg(long, value_name = "FILE", conflicts_with = "auth_any")]
    auth_allow: Option<PathBuf>,
    /// Require NIP-98 auth from any key (callers are identified, not restricted)
    #[arg(long)]
    auth_any: bool,
    /// Write the authenticated caller's public key into records (off: privacy)
    #[arg(long)]
    record_caller: bool,
    /// The URL clients reach this server at, which NIP-98 events must name [default: http://LISTEN]
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Generation requests sent to the upstream at once; more wait in the proxy, in order of
    /// arrival (0: no limit) [default: one more than llama.cpp's slot count from /props, else
    /// no limit]
    #[arg(long, value_name = "N")]
    upstream_concurrency: Option<usize>,
    /// Read options from FILE: one `name = value` per line (`relay` may repeat; `#` comments);
    /// options given on the command line win
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// The options of a config file as arguments, leaving out those the command line sets.
fn config_args(path: &std::path::Path, command_line: &[String]) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --config {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (name, value) = match line.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (line, None),
        };
        if name.is_empty() || name == "config" || name.starts_with('-') {
            bail!(
                "--config {} line {}: expected `name = value`",
                path.display(),
                n + 1
            );
        }
        let flag = format!("--{name}");
        if command_line
            .iter()
            .any(|a| a == &flag || a.starts_with(&format!("{flag}=")))
        {
            continue;
        }
        out.push(flag);
        out.extend(value.map(str::to_owned));
    }
    Ok(out)
}

/// `Args` again, with the config file's options before the command line's.
fn with_config(args: Args) -> Result<Args> {
    let Some(path) = &args.config else {
        return Ok(args);
    };
    use clap::{Args as _, FromArgMatches};
    let argv: Vec<String> = std::env::args().collect();
    let after = argv
        .iter()
        .position(|a| a == "serve")
        .map_or(&argv[..0], |i| &argv[i + 1..]);
    let mut merged = vec!["serve".to_owned()];
    merged.extend(config_args(path, after)?);
    merged.extend(after.iter().cloned());
    let command = Args::augment_args(clap::Command::new("serve"));
    let matches = command.try_get_matches_from(merged)?;
    Ok(Args::from_arg_matches(&matches)?)
}

type HttpClient = Client<HttpConnector, ProxyBody<axum::body::Body>>;

/// How long an idle upstream connection is kept for reuse.
const UPSTREAM_IDLE: Duration = Duration::from_secs(2);
type UpstreamBody = Either<Held, Full<Bytes>>;

pub(crate) fn run(args: Args) -> Result<std::process::ExitCode> {
    let args = with_config(args)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(serve(args))?;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn serve(args: Args) -> Result<()> {
    let (Some(upstream), Some(model)) = (&args.upstream, &args.model) else {
        bail!("--upstream and --model are needed (on the command line or in --config)");
    };
    let upstream: Uri = upstream
        .trim_end_matches('/')
        .parse()
        .with_context(|| format!("--upstream {upstream}: not a URL"))?;
    if upstream.scheme_str() != Some("http") {
        bail!("--upstream must be an http:// URL (found {upstream})");
    }
    let key_path = match &args.key {
        Some(path) => path.clone(),
        None => keyfile::default_path()?,
    };
    let keys = keyfile::load(&key_path)?;
    let model = identify(model, args.model_name.as_deref())?;
    let mut client_builder = Client::builder(TokioExecutor::new());
    // Servers close idle keep-alive connections on their own timer, without telling (5 s:
    // llama-server, uvicorn, Node); a request sent just as one closes fails. Reusing only
    // connections idle for less than that keeps clear of it.
    client_builder.pool_idle_timeout(UPSTREAM_IDLE);
    // Streamed answers are many small writes: without TCP_NODELAY, Nagle's algorithm and the
    // peer's delayed ACK hold each one back by up to 40 ms.
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: HttpClient = client_builder.build(connector);
    let (runtime, defaults) = probe(&client, &upstream, args.engine_binary.as_deref()).await?;
    // llama-server works on as many requests as it has slots and reads the requests of only a
    // few more connections; a proxy that opened a connection per waiting client would leave
    // most of them unread while the slots go to others. Waiting here keeps the order. One
    // request more than the slots waits in llama-server's own queue, read and ready, so that a
    // slot that frees up starts on it at once instead of idling while the proxy sends the
    // next one (measured: 3.93-3.95 busy slots of 4 per decode step with the slot count,
    // 3.99 with one more, 4.00 direct). llama-server keeps at least two HTTP threads more
    // than slots, so the extra connection is always read.
    let concurrency = args.upstream_concurrency.or_else(|| {
        runtime
            .params
            .get("slots")
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .map(|n| n + 1)
    });
    let slots = concurrency
        .filter(|n| *n > 0)
        .map(|n| Arc::new(Semaphore::new(n)));
    let store_path = match &args.store {
        Some(path) => path.clone(),
        None => default_store()?,
    };
    if let Some(dir) = store_path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let durability = if args.durability == "process" {
        Durability::Process
    } else {
        Durability::Full
    };
    let store = SqliteStore::open_with(&store_path, durability)
        .with_context(|| format!("cannot open the event store {}", store_path.display()))?
        .publish_to(args.relays.clone());
    let store = Arc::new(store);
    let npub = keys.public_key().to_bech32().unwrap_or_default();
    let mut builder = Signer::builder(keys, model.clone())
        .runtime(runtime.clone())
        .sampling_defaults(defaults)
        .inline(args.inline)
        .include_text(args.include_text)
        .record_caller(args.record_caller)
        .max_request_bytes(args.max_request_bytes);
    // The outbox runs even without --relay: rows queued by an earlier run with relays are
    // still delivered.
    let outbox = Outbox::new(store.clone(), Arc::new(SystemClock));
    // Every stored event wakes the outbox (when --relay queued it somewhere: see
    // `Outbox::waker`) and goes to the live subscriptions of the relay.
    let hub = nip01::Hub::default();
    let (wake, publish) = (outbox.waker(), hub.hook());
    builder = builder.on_stored(Arc::new(move |event| {
        wake(event);
        publish(event);
    }));
    tokio::spawn(outbox.run());
    let signer = Arc::new(builder.build(store));
    let auth = match (&args.auth_allow, args.auth_any) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --auth-allow {}", path.display()))?;
            let allow = Allow::parse_list(&text)
                .with_context(|| format!("--auth-allow {}", path.display()))?;
            Some(allow)
        }
        (None, true) => Some(Allow::Any),
        (None, false) => None,
    };

    let proxy = {
        let client = client.clone();
        let upstream = upstream.clone();
        tower::service_fn(move |request: Request<ProxyBody<axum::body::Body>>| {
            let (client, upstream) = (client.clone(), upstream.clone());
            let generation = request.method() == http::Method::POST
                && Api::route(request.uri().path()).is_some();
            let slots = slots.clone().filter(|_| generation);
            async move {
                let permit = match slots {
                    Some(slots) => slots.acquire_owned().await.ok(),
                    None => None,
                };
                Ok::<_, Infallible>(forward(&client, &upstream, request, permit).await)
            }
        })
    };
    let signing = signing_stack(signer.clone(), proxy);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr()?;
    let signing = match auth {
        Some(allow) => {
            let auth = Arc::new(Auth {
                verifier: Nip98Verifier::new(allow),
                public_url: args
                    .public_url
                    .clone()
                    .unwrap_or_else(|| format!("http://{local}")),
                max_bytes: args.max_request_bytes,
            });
            BoxCloneSyncService::new(
                tower::ServiceBuilder::new()
                    .layer(axum::middleware::from_fn_with_state(auth, authenticate))
                    .service(signing.map_response(IntoResponse::into_response)),
            )
        }
        None => BoxCloneSyncService::new(signing.map_response(IntoResponse::into_response)),
    };
    let public = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    let own_relay = public
        .replacen("https://", "wss://", 1)
        .replacen("http://", "ws://", 1);
    let mut relay_hints = vec![own_relay.trim_end_matches('/').to_owned()];
    relay_hints.extend(args.relays.iter().cloned());
    let app = Router::new()
        .route("/provenance/metrics", get(metrics))
        .route("/provenance/{id}", get(event))
        .route("/", get(root))
        .with_state(AppState {
            signer: signer.clone(),
            proxy: signing.clone(),
            hub,
            relay_hints: Arc::new(relay_hints),
        })
        .fallback_service(signing);

    crate::output::warn(&format!(
        "serving on http://{local}, signing as {npub}, model {} ({}), upstream {upstream} ({} {}), events in {}",
        model.name,
        model
            .sha256
            .map_or_else(|| "digest unknown".to_owned(), |d| format!("sha256 {d}")),
        runtime.engine,
        runtime.version.as_deref().unwrap_or("version unknown"),
        store_path.display(),
    ));
    serve_counted(listener, app, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .context("server failed")
}

/// Serves `app` until `shutdown`, each connection counting its flushes for the signer, which
/// [`signing_stack`] hands it.
async fn serve_counted(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        Counted(listener),
        app.into_make_service_with_connect_info::<Flushes>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// The listener: connections without Nagle's delay (streamed answers are small writes), that
/// count their flushes for the signer ([`provenance_signer::delivery`]).
struct Counted(tokio::net::TcpListener);

impl axum::serve::Listener for Counted {
    type Io = DeliveryIo<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (tcp, addr) = axum::serve::Listener::accept(&mut self.0).await;
        let _ = tcp.set_nodelay(true);
        (DeliveryIo::new(tcp), addr)
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A connection's flush count, as axum's connect info.
#[derive(Clone)]
struct Flushes(Delivery);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Counted>> for Flushes {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Counted>) -> Self {
        Self(stream.io().delivery())
    }
}

/// The signing layer over `proxy`, each request carrying its connection's flush count.
fn signing_stack<S>(signer: Arc<Signer>, proxy: S) -> MapRequest<SigningService<S>, Delivered> {
    MapRequest::new(SigningLayer::new(signer).layer(proxy), delivered)
}

type Delivered = fn(Request<axum::body::Body>) -> Request<axum::body::Body>;

/// Hands the connection's flush count to the signer, so that an answer that breaks
/// mid-stream reaches the client whole up to the break.
fn delivered(mut request: Request<axum::body::Body>) -> Request<axum::body::Body> {
    let flushes = request
        .extensions()
        .get::<axum::extract::ConnectInfo<Flushes>>()
        .map(|info| info.0.0.clone());
    if let Some(delivery) = flushes {
        request.extensions_mut().insert(delivery);
    }
    request
}

type Proxy = BoxCloneSyncService<Request<axum::body::Body>, Response, Infallible>;

#[derive(Clone)]
struct AppState {
    signer: Arc<Signer>,
    proxy: Proxy,
    /// New events for the live subscriptions of the relay at `/`.
    hub: nip01::Hub,
    /// Relay hints of the `Provenance-Nevent` header: the box itself, then `--relay`s.
    relay_hints: Arc<Vec<String>>,
}

struct Auth {
    verifier: Nip98Verifier,
    public_url: String,
    max_bytes: usize,
}

/// NIP-98: the `Authorization: Nostr ...` header must be an event by an allowed key for this
/// method, URL and body; else 401 with the reason. The header is ours: it is not forwarded.
async fn authenticate(
    State(auth): State<Arc<Auth>>,
    request: Request<axum::body::Body>,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, auth.max_bytes).await else {
        return json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large or unreadable",
        );
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = nip98::request_url(&auth.public_url, path);
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let checked = auth.verifier.check(
        header,
        parts.method.as_str(),
        &url,
        Some(&bytes),
        provenance::Timestamp::now(),
    );
    match checked {
        Ok(key) => {
            parts.headers.remove(header::AUTHORIZATION);
            parts.extensions.insert(Caller(key));
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        Err(reason) => {
            let mut response = json_error(StatusCode::UNAUTHORIZED, &reason.to_string());
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Nostr"));
            response
        }
    }
}

/// `/`: a websocket upgrade is a NIP-01 client of the box's own relay; anything else goes to
/// the upstream like every other route.
async fn root(State(state): State<AppState>, request: Request<axum::body::Body>) -> Response {
    let upgrade = request
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if !upgrade {
        return match state.proxy.oneshot(request).await {
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
    ws.max_message_size(nip01::MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| {
            nip01::run(Socket(socket), store, state.hub, nip01::Limits::default())
        })
}

/// The websocket as the relay's [`nip01::Transport`].
struct Socket(WebSocket);

impl nip01::Transport for Socket {
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

/// `GET /provenance/metrics`: the signer's counters and timings in the Prometheus text format.
async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.signer.metrics().render(),
    )
        .into_response()
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
            crate::output::warn(&format!("{e}"));
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
    let body = serde_json::json!({ "error": { "message": message, "type": "provenance" } });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

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

async fn forward(
    client: &HttpClient,
    upstream: &Uri,
    request: Request<ProxyBody<axum::body::Body>>,
    permit: Option<OwnedSemaphorePermit>,
) -> http::Response<UpstreamBody> {
    let (mut parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let uri = format!("{}{path}", base(upstream));
    match uri.parse() {
        Ok(uri) => parts.uri = uri,
        Err(_) => return bad_gateway(&format!("cannot forward to {uri}")),
    }
    for name in HOP_BY_HOP {
        parts.headers.remove(*name);
    }
    let mut request = Request::from_parts(parts, body);
    let connection = capture_connection(&mut request);
    match client.request(request).await {
        Ok(response) => {
            if is_stream(&response) {
                // llama-server closes the connection 5 to 15 ms after the last chunk of a
                // streamed answer while announcing keep-alive; a request another client sends
                // on it meanwhile fails. So a connection that carried a stream is not reused.
                if let Some(connected) = connection.connection_metadata().as_ref() {
                    connected.poison();
                }
            }
            let (mut parts, body) = response.into_parts();
            for name in HOP_BY_HOP {
                parts.headers.remove(*name);
            }
            http::Response::from_parts(parts, Either::Left(Held { body, permit }))
        }
        Err(e) => bad_gateway(&format!("upstream {upstream} unreachable: {}", chain(&e))),
    }
}

/// An upstream answer's body, holding its place in `--upstream-concurrency` until it ends.
struct Held {
    body: Incoming,
    permit: Option<OwnedSemaphorePermit>,
}

impl hyper::body::Body for Held {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = std::task::ready!(Pin::new(&mut self.body).poll_frame(cx));
        if !matches!(frame, Some(Ok(_))) {
            self.permit = None;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Whether an answer is streamed: chunked, or of a stream content type.
fn is_stream<B>(response: &http::Response<B>) -> bool {
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

/// The upstream URL without a trailing slash (`Uri` writes `http://host:port/`).
fn base(upstream: &Uri) -> String {
    upstream.to_string().trim_end_matches('/').to_owned()
}

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

fn bad_gateway(reason: &str) -> http::Response<UpstreamBody> {
    let body = serde_json::json!({ "error": { "message": reason, "type": "provenance" } });
    let mut response = http::Response::new(Either::Right(Full::new(Bytes::from(body.to_string()))));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Hashes the weights once (through the digest cache) into the record's model identity.
fn identify(model: &str, name: Option<&str>) -> Result<Model> {
    let resolved = resolve(model, &StoreDirs::from_env())?;
    let cache = Cache::new(
        Cache::default_dir().unwrap_or_else(|| std::env::temp_dir().join("provenance-gguf")),
    );
    let identity = cache
        .digest_file(&resolved.path)
        .with_context(|| format!("cannot hash {}", resolved.path.display()))?;
    if let Some(expected) = resolved.expected_sha256 {
        if expected != identity.sha256 {
            bail!(
                "{model}: the store names the file sha256 {expected} but it hashes to {}",
                identity.sha256
            );
        }
    }
    let default_name = match model.strip_prefix("ollama:") {
        Some(rest) => rest.to_owned(),
        None => resolved
            .path
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".gguf").to_owned())
            .unwrap_or_else(|| model.to_owned()),
    };
    let summary = &identity.summary;
    Ok(Model {
        name: name.map_or(default_name, str::to_owned),
        sha256: Some(identity.sha256),
        blake3: Some(identity.blake3),
        tensor_root: Some(identity.tensor_root),
        bytes: Some(identity.size),
        architecture: summary.architecture.clone(),
        quantization: summary.file_type_name.clone(),
        parameters: Some(summary.parameter_count),
        tokenizer_sha256: summary.vocabulary,
        chat_template_sha256: summary.chat_template,
    })
}

/// Asks the upstream what it is: llama.cpp answers `/props` (build and default generation
/// settings), Ollama `/api/version`. An upstream that answers neither is an OpenAI-compatible
/// server of unknown make.
async fn probe(
    client: &HttpClient,
    upstream: &Uri,
    binary: Option<&std::path::Path>,
) -> Result<(Runtime, Map<String, Value>)> {
    let mut runtime = Runtime {
        engine: "openai-compatible".to_owned(),
        ..Runtime::default()
    };
    let mut defaults = Map::new();
    if let Some(props) = get_json(client, upstream, "/props").await {
        runtime.engine = "llama.cpp".to_owned();
        runtime.version = props
            .get("build_info")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(settings) = props.get("default_generation_settings") {
            // Newer builds nest the sampling settings under `params`.
            let settings = settings.get("params").unwrap_or(settings);
            if let Some(map) = settings.as_object() {
                defaults = map.clone();
            }
            if let Some(ctx) = props["default_generation_settings"].get("n_ctx") {
                runtime.params.insert("ctx".to_owned(), ctx.clone());
            }
        }
        if let Some(slots) = props.get("total_slots") {
            runtime.params.insert("slots".to_owned(), slots.clone());
        }
    } else if let Some(version) = get_json(client, upstream, "/api/version").await {
        runtime.engine = "ollama".to_owned();
        runtime.version = version
            .get("version")
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    if let Some(binary) = binary {
        let bytes = std::fs::read(binary)
            .with_context(|| format!("cannot read --engine-binary {}", binary.display()))?;
        runtime.binary_sha256 = Some(provenance::digest::sha256(&bytes));
    }
    Ok((runtime, defaults))
}

async fn get_json(client: &HttpClient, upstream: &Uri, path: &str) -> Option<Value> {
    let uri: Uri = format!("{}{path}", base(upstream)).parse().ok()?;
    let request = Request::get(uri)
        .body(Either::Left(Full::new(Bytes::new())))
        .ok()?;
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .ok()?
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let body = response.into_body().collect().await.ok()?.to_bytes();
    serde_json::from_slice(&body).ok()
}

fn default_store() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".local").join("share"),
            None => bail!("neither XDG_DATA_HOME nor HOME is set; pass --store FILE"),
        },
    };
    Ok(base.join("provenance").join("events.sqlite"))
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Each request through the signing stack carries its own connection's flush count: the
    /// second request on a connection sees the flush of the first answer.
    #[tokio::test]
    async fn signed_requests_carry_their_connections_flush_count() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // The upstream: answers with the flush count the request carries.
        let probe = tower::service_fn(|request: Request<ProxyBody<axum::body::Body>>| async move {
            let flushes = request
                .extensions()
                .get::<Delivery>()
                .map(Delivery::flushes);
            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(format!(
                "{flushes:?}"
            )))))
        });
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("events.sqlite")).unwrap();
        let signer = Signer::builder(provenance::Keys::generate(), Model::named("tiny"))
            .build(Arc::new(store));
        let app = Router::new().fallback_service(
            signing_stack(Arc::new(signer), probe).map_response(IntoResponse::into_response),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_counted(listener, app, async {
            let _ = stopped.await;
        }));

        let mut tcp = tokio::net::TcpStream::connect(address).await.unwrap();
        let mut counts = Vec::new();
        for _ in 0..2 {
            tcp.write_all(b"GET /v1/models HTTP/1.1\r\nhost: box\r\n\r\n")
                .await
                .unwrap();
            counts.push(read_body(&mut tcp).await);
        }
        let parse = |body: &str| -> u64 {
            let count = body.strip_prefix("Some(").and_then(|b| b.strip_suffix(')'));
            count
                .unwrap_or_else(|| panic!("no flush count in the request: {body}"))
                .parse()
                .unwrap()
        };
        assert!(parse(&counts[1]) > parse(&counts[0]), "{counts:?}");
        stop.send(()).unwrap();
        drop(tcp);
        server.await.unwrap().unwrap();
    }

    /// One response with a `content-length` body, read from a kept-alive connection.
    async fn read_body(tcp: &mut tokio::net::TcpStream) -> String {
        let mut bytes = Vec::new();
        let mut buf = [0; 1024];
        loop {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "the connection closed mid-response");
            bytes.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .unwrap()
                    .parse()
                    .unwrap();
                if body.len() >= length {
                    return body[..length].to_owned();
                }
            }
        }
    }

    #[test]
    fn config_files_become_arguments_and_the_command_line_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.conf");
        std::fs::write(
            &path,
            "# the box\nupstream = http://127.0.0.1:8080\nmodel = \"m.gguf\"\nrelay = ws://a\nrelay = ws://b\ninline\nlisten = 0.0.0.0:1\n",
        )
        .unwrap();
        let args = config_args(&path, &["--listen".into(), "127.0.0.1:9".into()]).unwrap();
        assert_eq!(
            args,
            [
                "--upstream",
                "http://127.0.0.1:8080",
                "--model",
                "m.gguf",
                "--relay",
                "ws://a",
                "--relay",
                "ws://b",
                "--inline"
            ]
        );
        std::fs::write(&path, "--upstream x\n").unwrap();
        assert!(config_args(&path, &[]).is_err());
    }
}
