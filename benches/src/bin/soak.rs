//! A soak test's two halves for `provenance serve` (scripts/soak-signer.sh runs them):
//!
//! - `soak upstream --listen ADDR`: a fast canned OpenAI-compatible upstream. `POST
//!   /v1/chat/completions` answers at once: a whole chat completion, an SSE stream (with
//!   `"stream": true`), or, when the user message contains [`BREAK`], a stream that stops
//!   after three messages without its end (the connection is cut, as when an engine dies).
//!   `GET /props` answers as llama.cpp does (a build, default sampling settings, a context
//!   size, `--slots` slots), so the proxy's start-up probe records a llama.cpp engine; `GET
//!   /health` and `/v1/models` answer too, everything else `404`.
//! - `soak load --base URL --seconds N --key FILE`: mixed clients through the proxy, each a
//!   loop that stops at the deadline: whole answers, streamed answers read to the end, broken
//!   streams (the client must see the break), requests without NIP-98 auth (each must get
//!   `401`), and websocket subscribers holding a `REQ` open on the proxy's own relay and
//!   counting the events it pushes. Every request id whose answer a client saw end (whole,
//!   streamed, or broken) is kept; afterwards each one's event URL must answer `200` (a
//!   broken one's event must say `truncated`), and each subscriber must have received every
//!   event the proxy signed meanwhile (`provenance_events_signed_total` of
//!   `/provenance/metrics`, before and after). Prints counts, failures and answers per
//!   second; exits 1 when anything failed.
//!
//! Loopback only by intent: the upstream binds what `--listen` names (the script and the test
//! give 127.0.0.1), and every loop is bounded by the deadline or a timeout.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use provenance::Keys;
use provenance::nostr::nips::nip98::{HttpData, HttpMethod, Sha256Hash};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

/// The words in a user message that make the canned upstream break its stream.
const BREAK: &str = "break mid-way";
/// How long one request may take before it counts as failed (the canned upstream answers in
/// well under a millisecond; this only bounds a hang).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long subscribers may take, after the load, to receive the last events.
const SUBSCRIBER_GRACE: Duration = Duration::from_secs(10);
/// Failures printed in full (all are counted).
const SHOWN_FAILURES: usize = 20;

#[derive(Parser)]
#[command(about = "Soak test halves for `provenance serve`: a canned upstream and a mixed load")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// A fast canned OpenAI-compatible upstream (prints `listening on http://ADDR` first).
    Upstream {
        /// Where to listen (loopback).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// `total_slots` in `/props` (the proxy lets one more request through at once).
        #[arg(long, default_value_t = 16)]
        slots: u64,
        /// Runtime worker threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// Mixed clients through the proxy at `--base` until the deadline, then the checks.
    Load(LoadArgs),
}

#[derive(Parser, Clone)]
struct LoadArgs {
    /// The proxy, as clients reach it (also what NIP-98 events name): `http://127.0.0.1:PORT`.
    #[arg(long)]
    base: String,
    /// How long the clients loop.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// The callers' secret key (nsec or hex), allowed by the proxy's `--auth-allow`.
    #[arg(long)]
    key: std::path::PathBuf,
    /// Clients asking for whole answers.
    #[arg(long, default_value_t = 3)]
    whole: usize,
    /// Clients asking for streamed answers, read to the end.
    #[arg(long, default_value_t = 3)]
    stream: usize,
    /// Clients asking for streams the upstream breaks.
    #[arg(long, default_value_t = 1)]
    broken: usize,
    /// Clients sending requests without NIP-98 auth (each must get 401).
    #[arg(long, default_value_t = 1)]
    unauth: usize,
    /// Websocket subscribers holding a REQ open on the proxy's relay.
    #[arg(long, default_value_t = 2)]
    subscribers: usize,
    /// Each client's pause after every answer, in ms (0: back to back).
    #[arg(long, default_value_t = 0)]
    pause_ms: u64,
    /// The pause of clients without auth after every `401`, in ms (a refusal costs the proxy
    /// little; back to back, they would crowd out the answers).
    #[arg(long, default_value_t = 5)]
    unauth_pause_ms: u64,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

fn main() {
    let cli = Cli::parse();
    let threads = match &cli.mode {
        Mode::Upstream { threads, .. } => *threads,
        Mode::Load(args) => args.threads,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let code = match cli.mode {
        Mode::Upstream { listen, slots, .. } => runtime.block_on(upstream(listen, slots)),
        Mode::Load(args) => runtime.block_on(load(args)),
    };
    std::process::exit(code);
}

// ---------------------------------------------------------------------------------------------
// The canned upstream.

type Body = BoxBody<Bytes, std::io::Error>;

async fn upstream(listen: SocketAddr, slots: u64) -> i32 {
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("soak upstream: cannot listen on {listen}: {e}");
            return 2;
        }
    };
    let address = listener.local_addr().expect("a bound address");
    println!("listening on http://{address}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let props = Arc::new(Bytes::from(
        json!({
            "build_info": "b0-soak",
            "default_generation_settings": {"n_ctx": 1024, "params": {"temperature": 0.8, "top_k": 40}},
            "total_slots": slots,
        })
        .to_string(),
    ));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let props = props.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| answer(request, props.clone()));
            // A connection ends with an error when a broken stream cuts it: that is the point.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(
            Full::new(body.into())
                .map_err(|never: Infallible| match never {})
                .boxed(),
        )
        .expect("a valid response")
}

fn sse(frames: Vec<Result<Frame<Bytes>, std::io::Error>>) -> Response<Body> {
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(BodyExt::boxed(StreamBody::new(
            futures_util::stream::iter(frames).then(|frame| async move {
                // The messages before a break go out first (hyper flushes while the body
                // waits); an error in the same poll would cut the connection before them.
                if frame.is_err() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                frame
            }),
        )))
        .expect("a valid response")
}

async fn answer(
    request: Request<Incoming>,
    props: Arc<Bytes>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return Ok(full(
            StatusCode::BAD_REQUEST,
            "text/plain",
            "unreadable body",
        ));
    };
    Ok(match (parts.method, path.as_str()) {
        (Method::GET, "/props") => full(StatusCode::OK, "application/json", (*props).clone()),
        (Method::GET, "/health") => full(StatusCode::OK, "application/json", r#"{"status":"ok"}"#),
        (Method::GET, "/v1/models") => full(
            StatusCode::OK,
            "application/json",
            r#"{"object":"list","data":[{"id":"soak","object":"model"}]}"#,
        ),
        (Method::POST, "/v1/chat/completions") => chat(&body),
        _ => full(StatusCode::NOT_FOUND, "text/plain", "not found"),
    })
}

/// A chat answer: whole, streamed, or a stream broken after three messages.
fn chat(body: &[u8]) -> Response<Body> {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return full(StatusCode::BAD_REQUEST, "text/plain", "not JSON");
    };
    let prompt = request
        .pointer("/messages/0/content")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // The answer depends on the prompt, so that no two records are alike.
    let words: Vec<String> = ["Soak", " answer", " to", " "]
        .iter()
        .map(|w| (*w).to_owned())
        .chain([prompt.to_owned(), ".".to_owned()])
        .collect();
    if request.get("stream") != Some(&Value::Bool(true)) {
        let answer = json!({
            "id": "chatcmpl-soak",
            "object": "chat.completion",
            "model": "soak",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": words.concat()}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 4, "completion_tokens": words.len()},
        });
        return full(StatusCode::OK, "application/json", answer.to_string());
    }
    let message = |delta: Value, finish: Value| {
        let chunk = json!({
            "id": "chatcmpl-soak",
            "object": "chat.completion.chunk",
            "model": "soak",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        Ok(Frame::data(Bytes::from(format!("data: {chunk}\n\n"))))
    };
    let mut frames: Vec<_> = words
        .iter()
        .map(|w| message(json!({"content": w}), Value::Null))
        .collect();
    if prompt.contains(BREAK) {
        frames.truncate(3);
        frames.push(Err(std::io::Error::other(
            "the canned upstream breaks here",
        )));
    } else {
        frames.push(message(json!({}), json!("stop")));
        frames.push(Ok(Frame::data(Bytes::from_static(b"data: [DONE]\n\n"))));
    }
    sse(frames)
}

// ---------------------------------------------------------------------------------------------
// The load.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Whole,
    Stream,
    Broken,
    Unauth,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Whole => "whole",
            Kind::Stream => "streamed",
            Kind::Broken => "broken",
            Kind::Unauth => "unauthenticated",
        }
    }
}

/// What every client adds to.
#[derive(Default)]
struct Tally {
    failures: AtomicU64,
    shown: Mutex<Vec<String>>,
}

impl Tally {
    async fn fail(&self, what: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut shown = self.shown.lock().await;
        if shown.len() < SHOWN_FAILURES {
            shown.push(what);
        }
    }
}

/// What one client saw: the request ids of answers it saw end, and each answer's time.
#[derive(Default)]
struct Seen {
    ids: Vec<String>,
    micros: Vec<u64>,
}

struct Load {
    args: LoadArgs,
    keys: Keys,
    client: Client<HttpConnector, Full<Bytes>>,
    deadline: Instant,
    tally: Tally,
}

async fn load(args: LoadArgs) -> i32 {
    let key = match std::fs::read_to_string(&args.key) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("soak load: cannot read {}: {e}", args.key.display());
            return 2;
        }
    };
    let keys = match Keys::parse(key.trim()) {
        Ok(keys) => keys,
        Err(e) => {
            eprintln!("soak load: {} holds no secret key: {e}", args.key.display());
            return 2;
        }
    };
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(5))
        .build(connector);
    let base = args.base.trim_end_matches('/').to_owned();
    let args = LoadArgs { base, ..args };
    let signed_before = match signed_total(&client, &args.base).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("soak load: {e}");
            return 2;
        }
    };

    // Subscribers first, each past its EOSE before any request goes out.
    let ws = args.base.replacen("http://", "ws://", 1) + "/";
    let stop = Arc::new(tokio::sync::watch::channel(false).0);
    let mut subscribers = Vec::new();
    for n in 0..args.subscribers {
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let counted = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(subscriber(
            ws.clone(),
            n,
            counted.clone(),
            ready_tx,
            stop.subscribe(),
        ));
        match tokio::time::timeout(REQUEST_TIMEOUT, ready_rx).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => {
                eprintln!("soak load: subscriber {n}: {e}");
                return 1;
            }
            _ => {
                eprintln!("soak load: subscriber {n} got no EOSE");
                return 1;
            }
        }
        subscribers.push((counted, task));
    }

    let started = Instant::now();
    let load = Arc::new(Load {
        deadline: started + Duration::from_secs(args.seconds),
        keys,
        client,
        args: args.clone(),
        tally: Tally::default(),
    });
    let mut clients = Vec::new();
    let kinds = [
        (Kind::Whole, args.whole),
        (Kind::Stream, args.stream),
        (Kind::Broken, args.broken),
        (Kind::Unauth, args.unauth),
    ];
    for (kind, count) in kinds {
        for n in 0..count {
            clients.push((kind, tokio::spawn(client_loop(load.clone(), kind, n))));
        }
    }
    let mut seen: Vec<(Kind, Seen)> = Vec::new();
    for (kind, task) in clients {
        match task.await {
            Ok(one) => seen.push((kind, one)),
            Err(e) => {
                load.tally
                    .fail(format!("a {} client panicked: {e}", kind.name()))
                    .await
            }
        }
    }
    let elapsed = started.elapsed();

    let signed_after = match signed_total(&load.client, &args.base).await {
        Ok(n) => n,
        Err(e) => {
            load.tally.fail(e).await;
            signed_before
        }
    };
    let signed = signed_after.saturating_sub(signed_before);
    // Subscribers: every event signed meanwhile, within the grace time.
    let grace = Instant::now() + SUBSCRIBER_GRACE;
    while subscribers
        .iter()
        .any(|(c, _)| c.load(Ordering::Relaxed) < signed)
        && Instant::now() < grace
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(true);
    let mut received = Vec::new();
    for (n, (counted, task)) in subscribers.into_iter().enumerate() {
        match tokio::time::timeout(REQUEST_TIMEOUT, task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => load.tally.fail(format!("subscriber {n}: {e}")).await,
            _ => load.tally.fail(format!("subscriber {n} did not end")).await,
        }
        let count = counted.load(Ordering::Relaxed);
        if count != signed {
            load.tally
                .fail(format!(
                    "subscriber {n} received {count} events; the proxy signed {signed}"
                ))
                .await;
        }
        received.push(count);
    }

    // Every answer a client saw end has its event.
    let mut checked = [0u64; 2];
    for (kind, one) in &seen {
        if matches!(kind, Kind::Whole | Kind::Stream | Kind::Broken) {
            let n = check_events(&load, *kind, &one.ids).await;
            checked[usize::from(*kind == Kind::Broken)] += n;
        }
    }

    let count = |k: Kind| -> usize {
        seen.iter()
            .filter(|(kind, _)| *kind == k)
            .map(|(_, s)| s.micros.len())
            .sum()
    };
    let answers = count(Kind::Whole) + count(Kind::Stream) + count(Kind::Broken);
    println!("soak: {:.1} s of load", elapsed.as_secs_f64());
    for kind in [Kind::Whole, Kind::Stream, Kind::Broken, Kind::Unauth] {
        let mut micros: Vec<u64> = seen
            .iter()
            .filter(|(k, _)| *k == kind)
            .flat_map(|(_, s)| s.micros.iter().copied())
            .collect();
        micros.sort_unstable();
        let quantile = |q: f64| -> f64 {
            if micros.is_empty() {
                return 0.0;
            }
            let i = ((micros.len() as f64 * q).ceil() as usize).clamp(1, micros.len()) - 1;
            micros[i] as f64 / 1000.0
        };
        println!(
            "soak: {} answers {} ({:.1}/s), p50 {:.2} ms, p99 {:.2} ms",
            kind.name(),
            count(kind),
            count(kind) as f64 / elapsed.as_secs_f64(),
            quantile(0.5),
            quantile(0.99)
        );
    }
    println!(
        "soak: signed answers seen to the end {answers} ({:.1}/s); events signed by the proxy meanwhile {signed}",
        answers as f64 / elapsed.as_secs_f64()
    );
    println!(
        "soak: event URLs answering 200: {} of the whole and streamed, {} of the broken (truncated)",
        checked[0], checked[1]
    );
    println!("soak: events each subscriber received: {received:?}");
    let failures = load.tally.failures.load(Ordering::Relaxed);
    println!("soak: failures {failures}");
    for what in load.tally.shown.lock().await.iter() {
        println!("soak: failure: {what}");
    }
    if signed != answers as u64 {
        println!(
            "soak: failure: the proxy signed {signed} events for {answers} answers seen to the end"
        );
        return 1;
    }
    i32::from(failures > 0)
}

/// `provenance_events_signed_total` from the proxy's metrics.
async fn signed_total(
    client: &Client<HttpConnector, Full<Bytes>>,
    base: &str,
) -> Result<u64, String> {
    let uri = format!("{base}/provenance/metrics");
    let (status, body) = get(client, &uri).await?;
    if status != StatusCode::OK {
        return Err(format!("{uri} answered {status}"));
    }
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|line| line.strip_prefix("provenance_events_signed_total "))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("{uri} has no provenance_events_signed_total"))
}

async fn get(
    client: &Client<HttpConnector, Full<Bytes>>,
    uri: &str,
) -> Result<(StatusCode, Bytes), String> {
    let request = Request::get(uri)
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("GET {uri}: no answer in {REQUEST_TIMEOUT:?}"))?
}

/// One client: requests of one kind, one at a time, until the deadline.
async fn client_loop(load: Arc<Load>, kind: Kind, n: usize) -> Seen {
    let mut seen = Seen::default();
    let mut i = 0u64;
    while Instant::now() < load.deadline {
        i += 1;
        let started = Instant::now();
        match tokio::time::timeout(REQUEST_TIMEOUT, one_request(&load, kind, n, i)).await {
            Ok(Ok(id)) => {
                seen.micros.push(started.elapsed().as_micros() as u64);
                if let Some(id) = id {
                    seen.ids.push(id);
                }
            }
            Ok(Err(e)) => {
                load.tally
                    .fail(format!("{} #{n}.{i}: {e}", kind.name()))
                    .await
            }
            Err(_) => {
                load.tally
                    .fail(format!(
                        "{} #{n}.{i}: no end in {REQUEST_TIMEOUT:?}",
                        kind.name()
                    ))
                    .await;
            }
        }
        let pause = match kind {
            Kind::Unauth => load.args.unauth_pause_ms,
            _ => load.args.pause_ms,
        };
        if pause > 0 {
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }
    seen
}

/// One request of `kind`; the request id of a signed answer whose end the client saw.
async fn one_request(load: &Load, kind: Kind, n: usize, i: u64) -> Result<Option<String>, String> {
    let url = format!("{}/v1/chat/completions", load.args.base);
    let prompt = match kind {
        Kind::Broken => format!("client {n} request {i}, {BREAK}"),
        _ => format!("{} client {n} request {i}", kind.name()),
    };
    let body = json!({
        "model": "soak",
        "messages": [{"role": "user", "content": prompt}],
        "stream": kind != Kind::Whole,
    })
    .to_string();
    let mut request = Request::post(&url).header("content-type", "application/json");
    if kind != Kind::Unauth {
        // Each body is unique, so each auth event is too (same-second replays are refused).
        let token = HttpData::new(
            url.parse().map_err(|e| format!("{url}: {e}"))?,
            HttpMethod::POST,
        )
        .payload(Sha256Hash::from_byte_array(
            *provenance::digest::sha256(body.as_bytes()).as_bytes(),
        ))
        .to_authorization(&load.keys)
        .await
        .map_err(|e| format!("NIP-98: {e}"))?;
        request = request.header("authorization", token);
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let response = load
        .client
        .request(request)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status();
    if kind == Kind::Unauth {
        let _ = response.into_body().collect().await;
        return if status == StatusCode::UNAUTHORIZED {
            Ok(None)
        } else {
            Err(format!("without auth: {status}, not 401"))
        };
    }
    if status != StatusCode::OK {
        let body = response.into_body().collect().await.map(|b| b.to_bytes());
        return Err(format!(
            "{status}: {}",
            body.map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        ));
    }
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let id = header("provenance-request-id").ok_or("no provenance-request-id")?;
    if header("provenance-event-url").as_deref() != Some(&format!("/provenance/{id}")) {
        return Err(format!(
            "event URL {:?} for {id}",
            header("provenance-event-url")
        ));
    }
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    let ended = loop {
        match body.frame().await {
            None => break Ok(()),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    bytes.extend_from_slice(&data);
                }
            }
            Some(Err(e)) => break Err(e),
        }
    };
    match (kind, ended) {
        (Kind::Broken, Err(_)) => Ok(Some(id)),
        (Kind::Broken, Ok(())) => Err(format!("{id}: a broken stream ended cleanly")),
        (_, Err(e)) => Err(format!("{id}: the answer broke: {e}")),
        (Kind::Stream, Ok(())) if !bytes.ends_with(b"data: [DONE]\n\n") => {
            Err(format!("{id}: the stream did not end with [DONE]"))
        }
        (Kind::Whole, Ok(())) if serde_json::from_slice::<Value>(&bytes).is_err() => {
            Err(format!("{id}: the answer is not JSON"))
        }
        _ => Ok(Some(id)),
    }
}

/// Whether each id's event URL answers `200` with an event (a truncated one for broken
/// streams); failures go to the tally. Returns how many did.
async fn check_events(load: &Load, kind: Kind, ids: &[String]) -> u64 {
    const AT_ONCE: usize = 8;
    let good = AtomicU64::new(0);
    futures_util::stream::iter(ids)
        .for_each_concurrent(AT_ONCE, |id| {
            let good = &good;
            async move {
                let uri = format!("{}/provenance/{id}", load.args.base);
                match get(&load.client, &uri).await {
                    Ok((StatusCode::OK, body)) => {
                        let truncated = serde_json::from_slice::<Value>(&body)
                            .ok()
                            .and_then(|e| e.get("content")?.as_str().map(str::to_owned))
                            .and_then(|c| serde_json::from_str::<Value>(&c).ok())
                            // `truncated` is left out when false.
                            .map(|r| r.pointer("/output/truncated") == Some(&Value::Bool(true)));
                        match (kind == Kind::Broken, truncated) {
                            (broken, Some(t)) if t == broken => {
                                good.fetch_add(1, Ordering::Relaxed);
                            }
                            (_, t) => {
                                load.tally
                                    .fail(format!(
                                        "{} answer {id}: event has truncated = {t:?}",
                                        kind.name()
                                    ))
                                    .await;
                            }
                        }
                    }
                    Ok((status, body)) => {
                        load.tally
                            .fail(format!(
                                "{} answer {id}: event URL answered {status}: {}",
                                kind.name(),
                                String::from_utf8_lossy(&body)
                            ))
                            .await;
                    }
                    Err(e) => {
                        load.tally
                            .fail(format!("{} answer {id}: {e}", kind.name()))
                            .await
                    }
                }
            }
        })
        .await;
    good.into_inner()
}

/// A websocket subscriber on the proxy's relay: `REQ` for new kind-1988 events (`limit: 0`:
/// nothing stored), counting the distinct events pushed after `EOSE` until told to stop.
async fn subscriber(
    url: String,
    n: usize,
    counted: Arc<AtomicU64>,
    ready: tokio::sync::oneshot::Sender<Result<(), String>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), String> {
    let (mut socket, _) = match tokio_tungstenite::connect_async(url.as_str()).await {
        Ok(socket) => socket,
        Err(e) => {
            let e = format!("{url}: {e}");
            let _ = ready.send(Err(e.clone()));
            return Err(e);
        }
    };
    let sub = format!("soak-{n}");
    let req = json!(["REQ", sub, {"kinds": [provenance::event::KIND], "limit": 0}]).to_string();
    socket
        .send(Message::text(req))
        .await
        .map_err(|e| e.to_string())?;
    let mut ready = Some(ready);
    let mut ids = std::collections::HashSet::new();
    loop {
        let message = tokio::select! {
            message = socket.next() => message,
            _ = stop.changed() => break,
        };
        let text = match message {
            None => return Err("the relay closed the connection".to_owned()),
            Some(Err(e)) => return Err(e.to_string()),
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) => return Err("the relay closed the websocket".to_owned()),
            Some(Ok(_)) => continue,
        };
        let Ok(Value::Array(parts)) = serde_json::from_str::<Value>(text.as_str()) else {
            return Err(format!("not a NIP-01 message: {text}"));
        };
        match parts.first().and_then(Value::as_str) {
            Some("EOSE") => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(Ok(()));
                }
            }
            Some("EVENT") => {
                let id = parts
                    .get(2)
                    .and_then(|e| e.get("id"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("an EVENT without an id: {text}"))?;
                if !ids.insert(id.to_owned()) {
                    return Err(format!("event {id} pushed twice"));
                }
                counted.store(ids.len() as u64, Ordering::Relaxed);
            }
            _ => return Err(format!("unexpected: {text}")),
        }
    }
    let close = json!(["CLOSE", sub]).to_string();
    let _ = socket.send(Message::text(close)).await;
    let _ = socket.close(None).await;
    Ok(())
}
