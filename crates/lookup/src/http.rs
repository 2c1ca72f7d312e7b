//! The HTTP API: `POST /v1/lookup`, `GET /v1/events/{id}`, `GET /healthz`.
//!
//! Described in `schemas/lookup.openapi.json`. Every response is JSON, errors included:
//! `{"error": {"code": "...", "message": "..."}}` with a stable `code`. Middleware answers
//! rather than dropping the connection: a body over the limit gets `413 body_too_large`, a
//! client over its rate gets `429 rate_limited` with `Retry-After`.
//!
//! Browser extensions call the API from their own origin (`chrome-extension://<id>`), so CORS
//! allows the origins in [`Config::allowed_origins`] (by default every extension origin); web
//! pages' origins are not allowed unless listed.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use provenance::digest::Sha256Digest;
use provenance::fingerprint::{self, Fingerprints};
pub use provenance_signer::listen::Limits;
use serde::Deserialize;
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::index::Index;
use crate::lookup::{self, Options, Query, VerifiedEvent};
use crate::trust::TrustList;

/// Server settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Largest request body, in bytes. Defaults to 64 KiB (a long article's worth of text).
    pub body_limit: usize,
    /// Requests a client (by IP address) may make in a burst. Defaults to 30.
    pub rate_burst: u32,
    /// Requests per second a client regains, up to the burst. Defaults to 5.
    pub rate_per_second: f64,
    /// Origins allowed by CORS: exact strings, or prefixes ending in `*`. Defaults to
    /// `chrome-extension://*` and `moz-extension://*`.
    pub allowed_origins: Vec<String>,
    /// Lookup tuning; requests may lower `limit` and raise `min_coverage`.
    pub lookup: Options,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            body_limit: 64 * 1024,
            rate_burst: 30,
            rate_per_second: 5.0,
            allowed_origins: vec!["chrome-extension://*".into(), "moz-extension://*".into()],
            lookup: Options::default(),
        }
    }
}

/// Most clients tracked by the rate limiter; past this, clients with full buckets are
/// forgotten (they lose nothing).
const MAX_TRACKED_CLIENTS: usize = 10_000;

/// Most matches a request may ask for.
const MAX_LIMIT: usize = 50;

struct AppState {
    index: Arc<Mutex<Index>>,
    trust: TrustList,
    config: Config,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

/// The API as an axum [`Router`], over a shared index (relay ingest may write to it
/// meanwhile). Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so that rate
/// limits apply per client address; without it every client shares one bucket.
pub fn router(index: Arc<Mutex<Index>>, trust: TrustList, config: Config) -> Router {
    let origins = config.allowed_origins.clone();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin
                .to_str()
                .is_ok_and(|o| origins.iter().any(|p| origin_matches(p, o)))
        }))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE])
        .max_age(std::time::Duration::from_secs(3600));
    let body_limit = config.body_limit;
    let state = Arc::new(AppState {
        index,
        trust,
        config,
        buckets: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/v1/lookup", post(post_lookup))
        .route("/v1/events/{id}", get(get_event))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit))
        .layer(cors)
        .with_state(state)
}

fn origin_matches(pattern: &str, origin: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => origin.starts_with(prefix),
        None => origin == pattern,
    }
}

/// A JSON error response.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "error": { "code": code, "message": message.into() } });
    (status, axum::Json(body)).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// Token bucket per client IP address.
async fn rate_limit(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    // CORS preflights do not cost a token.
    if req.method() == Method::OPTIONS {
        return next.run(req).await;
    }
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let burst = f64::from(state.config.rate_burst);
    let rate = state.config.rate_per_second;
    let now = Instant::now();
    let wait = {
        // A poisoned lock only means another request panicked mid-update; the map is still
        // usable.
        let mut buckets = state.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_TRACKED_CLIENTS && !buckets.contains_key(&ip) {
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
            if buckets.len() >= MAX_TRACKED_CLIENTS {
                buckets.clear();
            }
        }
        let (tokens, at) = buckets.entry(ip).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            None
        } else {
            Some(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
        }
    };
    match wait {
        None => next.run(req).await,
        Some(seconds) => {
            let mut resp = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests from {ip}; retry in {seconds} s"),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            resp
        }
    }
}

/// The body of `POST /v1/lookup`: the text, or keys the client computed from it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupRequest {
    text: Option<String>,
    sha256: Option<Sha256Digest>,
    normalized_sha256: Option<Sha256Digest>,
    fingerprints: Option<Fingerprints>,
    limit: Option<usize>,
    min_coverage: Option<f64>,
}

async fn post_lookup(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "request bodies are limited to {} bytes",
                    state.config.body_limit
                ),
            );
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_body", e.body_text()),
    };
    let req: LookupRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_json",
                format!("not a lookup request: {e}"),
            );
        }
    };
    let query = match build_query(
        req.text.as_deref(),
        req.sha256,
        req.normalized_sha256,
        req.fingerprints,
    ) {
        Ok(q) => q,
        Err(Unprocessable { code, message }) => {
            return error(StatusCode::UNPROCESSABLE_ENTITY, code, message);
        }
    };
    let mut opts = state.config.lookup.clone();
    if let Some(limit) = req.limit {
        opts.limit = limit.clamp(1, MAX_LIMIT.min(opts.limit.max(1)));
    }
    if let Some(min) = req.min_coverage.filter(|m| m.is_finite()) {
        opts.min_coverage = min.clamp(opts.min_coverage, 1.0);
    }
    let state2 = state.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let index = state2.index.lock().unwrap_or_else(|e| e.into_inner());
        lookup::lookup(&index, &state2.trust, &query, &opts)
    })
    .await;
    match answer {
        Ok(Ok(answer)) => axum::Json(answer).into_response(),
        Ok(Err(e)) => internal(&e),
        Err(e) => internal(&e),
    }
}

/// A request that parses but cannot be answered (422).
struct Unprocessable {
    code: &'static str,
    message: String,
}

impl Unprocessable {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

fn build_query(
    text: Option<&str>,
    sha256: Option<Sha256Digest>,
    normalized_sha256: Option<Sha256Digest>,
    fingerprints: Option<Fingerprints>,
) -> Result<Query, Unprocessable> {
    let has_keys = sha256.is_some() || normalized_sha256.is_some() || fingerprints.is_some();
    match (text, has_keys) {
        (Some(_), true) => Err(Unprocessable::new(
            "text_and_hashes",
            "send either \"text\" or the hashes computed from it, not both",
        )),
        (None, false) => Err(Unprocessable::new(
            "empty_query",
            "send \"text\", or at least one of \"sha256\", \"normalized_sha256\", \"fingerprints\"",
        )),
        (Some(text), false) => Ok(Query::from_text(text)),
        (None, true) => {
            let hashes = match fingerprints {
                None => Vec::new(),
                Some(f) => {
                    let k = fingerprint::K as u32;
                    let w = fingerprint::W as u32;
                    if f.rule != fingerprint::RULE || f.k != k || f.w != w {
                        return Err(Unprocessable::new(
                            "unsupported_fingerprint_rule",
                            format!(
                                "expected rule {} with k = {k}, w = {w}; found {} with k = {}, w = {}",
                                fingerprint::RULE,
                                f.rule,
                                f.k,
                                f.w
                            ),
                        ));
                    }
                    if f.hashes.len() > fingerprint::MAX_HASHES {
                        return Err(Unprocessable::new(
                            "too_many_fingerprints",
                            format!(
                                "at most {} fingerprints, found {}",
                                fingerprint::MAX_HASHES,
                                f.hashes.len()
                            ),
                        ));
                    }
                    f.hashes
                }
            };
            Ok(Query::from_hashes(sha256, normalized_sha256, hashes))
        }
    }
}

async fn get_event(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let Ok(id) = provenance::event::parse_event_id(&id) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_id",
            "an event id is 64 hex characters",
        );
    };
    let state2 = state.clone();
    let found = tokio::task::spawn_blocking(move || {
        let index = state2.index.lock().unwrap_or_else(|e| e.into_inner());
        index.by_id(&id)
    })
    .await;
    let stored = match found {
        Ok(Ok(Some(stored))) => stored,
        Ok(Ok(None)) => {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such event in the index",
            );
        }
        Ok(Err(e)) => return internal(&e),
        Err(e) => return internal(&e),
    };
    match VerifiedEvent::check(&stored.json, &state.trust, None) {
        Some(v) => axum::Json(v.into_value()).into_response(),
        // The index holds only verified events; one that no longer verifies was altered.
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "the indexed event no longer verifies",
        ),
    }
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let state2 = state.clone();
    let counters = tokio::task::spawn_blocking(move || {
        let index = state2.index.lock().unwrap_or_else(|e| e.into_inner());
        Ok::<_, crate::Error>((index.schema_version()?, index.counters()?))
    })
    .await;
    match counters {
        Ok(Ok((schema_version, counters))) => axum::Json(json!({
            "status": "ok",
            "schema_version": schema_version,
            "counters": counters,
        }))
        .into_response(),
        Ok(Err(e)) => internal(&e),
        Err(e) => internal(&e),
    }
}

/// An internal error: logged on stderr, not leaked to the client.
fn internal(e: &dyn std::fmt::Display) -> Response {
    eprintln!("provenance-lookup: {e}");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error; see the server log",
    )
}

/// Serves `app` on `listener` until the process ends, with each client's address available
/// to the rate limiter, under the default [`Limits`].
pub async fn serve(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<()> {
    serve_with(listener, app, Limits::default()).await
}

/// [`serve`] with what one client may hold of the server (connections, header and body
/// timeouts: [`Limits`], whose fields state their defaults) other than the defaults.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: Limits,
) -> std::io::Result<()> {
    provenance_signer::listen::serve(listener, app, limits, std::future::pending()).await
}
