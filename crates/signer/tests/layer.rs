//! The layer over canned upstream answers shaped like llama.cpp's and Ollama's (their
//! published formats), without sockets: every API and mode gives an event that verifies, whose
//! output hash is the hash of the text the client read, and whose response hash covers the
//! exact bytes the client received.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod common;

use common::Frames;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use provenance::Keys;
use provenance::clock::FixedClock;
use provenance::commitment::Salt;
use provenance::digest::sha256;
use provenance::event::{Limits, parse_event, verify};
use provenance::record::Model;
use provenance::verdict::Status;
use provenance::{Record, Timestamp};
use provenance_signer::service::{HEADER_EVENT_URL, HEADER_PROMPT_SALT, HEADER_REQUEST_ID};
use provenance_signer::{Lookup, RequestId, Signer, SigningLayer, SqliteStore};
use serde_json::Value;
use tower::{Layer, ServiceExt, service_fn};

#[derive(Clone)]
struct Canned {
    content_type: &'static str,
    chunks: Vec<&'static str>,
    fail: bool,
    says_end: bool,
    status: StatusCode,
}

fn canned(content_type: &'static str, chunks: Vec<&'static str>) -> Canned {
    Canned {
        content_type,
        chunks,
        fail: false,
        says_end: false,
        status: StatusCode::OK,
    }
}

struct Setup {
    signer: Arc<Signer>,
    _dir: tempfile::TempDir,
}

fn setup(inline: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("events.sqlite")).unwrap();
    let signer = Signer::builder(Keys::generate(), Model::named("tiny"))
        .clock(Arc::new(FixedClock(Timestamp::from_secs(1_800_000_000))))
        .inline(inline)
        .build(Arc::new(store));
    Setup {
        signer: Arc::new(signer),
        _dir: dir,
    }
}

struct Exchange {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
    error: bool,
}

async fn exchange(setup: &Setup, path: &str, request: &str, answer: Canned) -> Exchange {
    let upstream = service_fn(move |_req: Request<_>| {
        let answer = answer.clone();
        async move {
            let body = Frames {
                frames: answer.chunks.iter().map(|c| Bytes::from(*c)).collect(),
                fail_at_end: answer.fail,
                stall_at_end: false,
                says_end: answer.says_end,
            };
            Ok::<_, Infallible>(
                Response::builder()
                    .status(answer.status)
                    .header("content-type", answer.content_type)
                    .body(body)
                    .unwrap(),
            )
        }
    });
    let service = SigningLayer::new(setup.signer.clone()).layer(upstream);
    let request = Request::post(path)
        .body(Full::new(Bytes::from(request.to_owned())))
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    let (parts, mut body) = response.into_parts();
    let mut bytes = Vec::new();
    let mut error = false;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    bytes.extend_from_slice(data);
                }
            }
            Err(_) => {
                error = true;
                break;
            }
        }
    }
    Exchange {
        status: parts.status,
        headers: parts.headers,
        body: Bytes::from(bytes),
        error,
    }
}

/// Checks the stored event against what the client received; returns the record.
fn check_event(setup: &Setup, x: &Exchange, request: &str, prompt: &[u8]) -> Record {
    assert_eq!(x.status, StatusCode::OK);
    let id: RequestId = x.headers[HEADER_REQUEST_ID]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        x.headers[HEADER_EVENT_URL].to_str().unwrap(),
        format!("/provenance/{id}")
    );
    let salt: Salt = x.headers[HEADER_PROMPT_SALT]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let Lookup::Done(json) = setup.signer.lookup(id).unwrap() else {
        panic!("no event for {id}");
    };
    let event = parse_event(&json, &Limits::default()).unwrap();
    let verification = verify(&event);
    assert!(verification.holds(), "{:?}", verification.claims());
    let verified = verification.verified().unwrap();
    let text = common::client_text(&x.body);
    assert_eq!(
        verified.check_output(text.as_bytes()).status,
        Status::Proven
    );
    assert_eq!(verified.check_prompt(prompt, &salt).status, Status::Proven);
    let record = verified.record().clone();
    assert_eq!(
        record.request.as_ref().unwrap().sha256,
        Some(sha256(request.as_bytes()))
    );
    assert_eq!(verified.author(), setup.signer.public_key());
    record
}

const CHAT: &str =
    r#"{"model":"tiny","messages":[{"role":"user","content":"Say hi"}],"max_tokens":4}"#;
/// What a chat request commits to (`chat.v1`): the object of its messages, RFC 8785.
const CHAT_MESSAGES: &[u8] = br#"{"messages":[{"content":"Say hi","role":"user"}]}"#;

#[tokio::test]
async fn openai_chat_whole_and_streamed() {
    let setup = setup(false);
    let body = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Hi there"},"finish_reason":"stop"}],"usage":{"completion_tokens":2,"prompt_tokens":9},"model":"tiny"}"#;
    let x = exchange(
        &setup,
        "/v1/chat/completions",
        CHAT,
        canned("application/json", vec![body]),
    )
    .await;
    assert_eq!(&x.body[..], body.as_bytes());
    assert_eq!(x.headers["content-length"], body.len().to_string().as_str());
    let record = check_event(&setup, &x, CHAT, CHAT_MESSAGES);
    assert_eq!(record.output.finish_reason.as_deref(), Some("stop"));
    assert_eq!(record.output.tokens, Some(2));
    assert_eq!(record.prompt.unwrap().tokens, Some(9));
    assert_eq!(record.sampling.unwrap().max_tokens, Some(4));
    let response = record.response.unwrap();
    assert_eq!(response.sha256, sha256(&x.body));
    assert!(!response.streamed);
    assert!(!record.output.truncated);

    let streamed =
        r#"{"model":"tiny","messages":[{"role":"user","content":"Say hi"}],"stream":true}"#;
    let chunks = vec![
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" th",
        "ere\"}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n",
    ];
    let x = exchange(
        &setup,
        "/v1/chat/completions",
        streamed,
        canned("text/event-stream", chunks.clone()),
    )
    .await;
    assert_eq!(x.body, chunks.concat());
    let record = check_event(&setup, &x, streamed, CHAT_MESSAGES);
    let response = record.response.unwrap();
    assert_eq!(response.sha256, sha256(&x.body));
    assert_eq!(response.bytes, x.body.len() as u64);
    assert!(response.streamed);
    assert!(!record.output.truncated);
}

#[tokio::test]
async fn openai_completions_and_llama_completion() {
    let setup = setup(false);
    let request = r#"{"prompt":"Once upon","max_tokens":3}"#;
    let body = r#"{"choices":[{"index":0,"text":" a time","finish_reason":"length"}]}"#;
    let x = exchange(
        &setup,
        "/v1/completions",
        request,
        canned("application/json", vec![body]),
    )
    .await;
    check_event(&setup, &x, request, b"Once upon");

    let request = r#"{"prompt":"Once upon","n_predict":2,"stream":true}"#;
    let chunks = vec![
        "data: {\"content\":\" a\",\"stop\":false}\n\n",
        "data: {\"content\":\" time\",\"stop\":false}\n\n",
        "data: {\"content\":\"\",\"stop\":true,\"stop_type\":\"limit\",\"tokens_predicted\":2,\"tokens_evaluated\":3,\"generation_settings\":{\"temperature\":0.8,\"top_k\":40,\"seed\":4294967295,\"n_predict\":2}}\n\n",
    ];
    let x = exchange(
        &setup,
        "/completion",
        request,
        canned("text/event-stream", chunks),
    )
    .await;
    let record = check_event(&setup, &x, request, b"Once upon");
    let sampling = record.sampling.unwrap();
    assert_eq!((sampling.top_k, sampling.max_tokens), (Some(40), Some(2)));
    assert_eq!(record.output.finish_reason.as_deref(), Some("limit"));

    let request = r#"{"prompt":"Once upon","n_predict":2}"#;
    let body = r#"{"content":" a time","stop":true,"stop_type":"limit","tokens_predicted":2,"generation_settings":{"temperature":0.8}}"#;
    let x = exchange(
        &setup,
        "/completion",
        request,
        canned("application/json", vec![body]),
    )
    .await;
    let record = check_event(&setup, &x, request, b"Once upon");
    assert_eq!(record.sampling.unwrap().temperature, Some(0.8));
}

#[tokio::test]
async fn ollama_generate_and_chat() {
    let setup = setup(false);
    let request = r#"{"model":"gemma3:270m","prompt":"Why is the sky blue?"}"#;
    let chunks = vec![
        "{\"model\":\"gemma3:270m\",\"created_at\":\"2023-08-04T08:52:19.385406455-07:00\",\"response\":\"The\",\"done\":false}\n",
        "{\"model\":\"gemma3:270m\",\"created_at\":\"2023-08-04T08:52:19.385406455-07:00\",\"response\":\" sky\",\"done\":false}\n",
        "{\"model\":\"gemma3:270m\",\"created_at\":\"2023-08-04T19:22:45.499127Z\",\"response\":\"\",\"done\":true,\"done_reason\":\"stop\",\"total_duration\":10706818083,\"prompt_eval_count\":26,\"eval_count\":2}\n",
    ];
    let x = exchange(
        &setup,
        "/api/generate",
        request,
        canned("application/x-ndjson", chunks),
    )
    .await;
    let record = check_event(&setup, &x, request, b"Why is the sky blue?");
    assert_eq!(record.output.tokens, Some(2));

    let request =
        r#"{"model":"gemma3:270m","messages":[{"role":"user","content":"why?"}],"stream":false}"#;
    let body = r#"{"model":"gemma3:270m","created_at":"2023-12-12T14:13:43.416799Z","message":{"role":"assistant","content":"Hello!"},"done":true,"done_reason":"stop","eval_count":2,"prompt_eval_count":5}"#;
    let x = exchange(
        &setup,
        "/api/chat",
        request,
        canned("application/json", vec![body]),
    )
    .await;
    check_event(
        &setup,
        &x,
        request,
        br#"{"messages":[{"content":"why?","role":"user"}]}"#,
    );
}

#[tokio::test]
async fn inline_mode_puts_the_event_in_the_response() {
    let setup = setup(true);
    let body = r#"{"choices":[{"index":0,"message":{"content":"Hi"},"finish_reason":"stop"}]}"#;
    let x = exchange(
        &setup,
        "/v1/chat/completions",
        CHAT,
        canned("application/json", vec![body]),
    )
    .await;
    let json: Value = serde_json::from_slice(&x.body).unwrap();
    let event = serde_json::to_string(&json["provenance"]["event"]).unwrap();
    let event = parse_event(&event, &Limits::default()).unwrap();
    let verification = verify(&event);
    let record = verification.verified().unwrap().record();
    // The hash covers the upstream body, which is the served body minus the inline field.
    assert_eq!(
        record.response.as_ref().unwrap().sha256,
        sha256(body.as_bytes())
    );
    assert_eq!(
        x.headers["content-length"],
        x.body.len().to_string().as_str()
    );

    let chunks = vec![
        "{\"response\":\"Hi\",\"done\":false}\n",
        "{\"response\":\"\",\"done\":true,\"done_reason\":\"stop\"}\n",
    ];
    let x = exchange(
        &setup,
        "/api/generate",
        r#"{"prompt":"p"}"#,
        canned("application/x-ndjson", chunks.clone()),
    )
    .await;
    let text = std::str::from_utf8(&x.body).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let event = serde_json::to_string(&last["provenance"]["event"]).unwrap();
    let event = parse_event(&event, &Limits::default()).unwrap();
    let verification = verify(&event);
    let record = verification.verified().unwrap().record();
    assert_eq!(
        record.response.as_ref().unwrap().sha256,
        sha256(chunks.concat().as_bytes())
    );

    let chunks = vec!["data: {\"content\":\"A\",\"stop\":true}\n\n"];
    let x = exchange(
        &setup,
        "/completion",
        r#"{"prompt":"p","stream":true}"#,
        canned("text/event-stream", chunks),
    )
    .await;
    assert!(std::str::from_utf8(&x.body).unwrap().ends_with("\n\n"));
    assert!(
        std::str::from_utf8(&x.body)
            .unwrap()
            .contains("event: provenance\ndata: {")
    );
}

#[tokio::test]
async fn upstream_dying_mid_stream_signs_a_truncated_event_over_the_served_bytes() {
    let setup = setup(false);
    let request = r#"{"prompt":"p","stream":true}"#;
    let mut answer = canned(
        "text/event-stream",
        vec![
            "data: {\"content\":\"par\",\"stop\":false}\n\n",
            "data: {\"content\":\"tial\",\"stop\":false}\n\n",
        ],
    );
    answer.fail = true;
    let x = exchange(&setup, "/completion", request, answer).await;
    assert!(x.error, "the client must see the stream break");
    let id: RequestId = x.headers[HEADER_REQUEST_ID]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let Lookup::Done(json) = setup.signer.lookup(id).unwrap() else {
        panic!()
    };
    let event = parse_event(&json, &Limits::default()).unwrap();
    let verification = verify(&event);
    let verified = verification.verified().unwrap();
    let record = verified.record();
    assert!(record.output.truncated);
    assert_eq!(verified.check_output(b"partial").status, Status::Proven);
    assert_eq!(record.response.as_ref().unwrap().sha256, sha256(&x.body));

    // A stream that ends without the engine saying it finished is truncated too.
    let answer = canned(
        "text/event-stream",
        vec!["data: {\"content\":\"par\",\"stop\":false}\n\n"],
    );
    let x = exchange(&setup, "/completion", request, answer).await;
    assert!(!x.error);
    let record = check_event(&setup, &x, request, b"p");
    assert!(record.output.truncated);
}

#[tokio::test]
async fn errors_and_unknown_routes_pass_through_unsigned() {
    let setup = setup(false);
    let mut answer = canned("application/json", vec![r#"{"error":"bad"}"#]);
    answer.status = StatusCode::BAD_REQUEST;
    let x = exchange(&setup, "/v1/chat/completions", CHAT, answer).await;
    assert_eq!(x.status, StatusCode::BAD_REQUEST);
    assert!(x.headers.get(HEADER_REQUEST_ID).is_none());

    let x = exchange(
        &setup,
        "/tokenize",
        r#"{"content":"hi"}"#,
        canned("application/json", vec![r#"{"tokens":[1]}"#]),
    )
    .await;
    assert_eq!(&x.body[..], br#"{"tokens":[1]}"#);
    assert!(x.headers.get(HEADER_REQUEST_ID).is_none());

    // A body the adapter cannot read is forwarded, answered, not signed.
    let x = exchange(
        &setup,
        "/v1/chat/completions",
        "not json",
        canned("application/json", vec!["{}"]),
    )
    .await;
    assert_eq!(x.status, StatusCode::OK);
    assert!(x.headers.get(HEADER_REQUEST_ID).is_none());

    // An answer that cannot be read is served and not signed; its id says why.
    let x = exchange(
        &setup,
        "/completion",
        r#"{"prompt":"p","stream":true}"#,
        canned("text/event-stream", vec!["data: {nope\n\n"]),
    )
    .await;
    assert!(x.error, "an unsigned end is never released");
    let id: RequestId = x.headers[HEADER_REQUEST_ID]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(matches!(
        setup.signer.lookup(id).unwrap(),
        Lookup::Failed(_)
    ));
    assert_eq!(
        setup.signer.lookup(RequestId::generate()).unwrap(),
        Lookup::Unknown
    );
}

#[tokio::test]
async fn oversized_requests_get_413() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("e.sqlite")).unwrap();
    let signer = Signer::builder(Keys::generate(), Model::named("m"))
        .max_request_bytes(16)
        .build(Arc::new(store));
    let setup = Setup {
        signer: Arc::new(signer),
        _dir: dir,
    };
    let x = exchange(
        &setup,
        "/v1/chat/completions",
        CHAT,
        canned("application/json", vec!["{}"]),
    )
    .await;
    assert_eq!(x.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_body_that_says_it_has_ended_is_signed_without_another_poll() {
    let setup = setup(false);
    let request = r#"{"prompt":"p","stream":true}"#;
    let mut answer = canned(
        "text/event-stream",
        vec!["data: {\"content\":\"done\",\"stop\":true,\"stop_type\":\"eos\"}\n\n"],
    );
    answer.says_end = true;
    let x = exchange(&setup, "/completion", request, answer).await;
    assert!(!x.error);
    let record = check_event(&setup, &x, request, b"p");
    assert!(!record.output.truncated);
    assert_eq!(record.output.finish_reason.as_deref(), Some("eos"));
}

#[tokio::test]
async fn metrics_count_every_outcome_and_time_every_signed_answer() {
    use std::sync::atomic::Ordering::Relaxed;
    let setup = setup(false);
    let stream = r#"{"prompt":"p","stream":true}"#;
    // Signed: one whole, one streamed and cut short.
    let whole = canned(
        "application/json",
        vec![
            r#"{"choices":[{"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#,
        ],
    );
    exchange(&setup, "/v1/chat/completions", CHAT, whole).await;
    let cut = canned(
        "text/event-stream",
        vec!["data: {\"content\":\"par\",\"stop\":false}\n\n"],
    );
    exchange(&setup, "/completion", stream, cut).await;
    // Unsigned: the upstream said no; a request the adapter cannot read.
    let mut refused = canned("application/json", vec![r#"{"error":"bad"}"#]);
    refused.status = StatusCode::BAD_REQUEST;
    exchange(&setup, "/v1/chat/completions", CHAT, refused).await;
    let any = canned("application/json", vec!["{}"]);
    exchange(&setup, "/v1/chat/completions", "not json", any).await;
    // Failed: an answer that cannot be read is never signed.
    let unreadable = canned("text/event-stream", vec!["data: {nope\n\n"]);
    exchange(&setup, "/completion", stream, unreadable).await;
    // Passed through: not counted at all.
    let tokens = canned("application/json", vec![r#"{"tokens":[1]}"#]);
    exchange(&setup, "/tokenize", r#"{"content":"hi"}"#, tokens).await;

    let m = setup.signer.metrics();
    assert_eq!(m.signed.load(Relaxed), 2);
    assert_eq!(m.truncated.load(Relaxed), 1);
    assert_eq!(m.unsigned.load(Relaxed), 2);
    assert_eq!(m.failed.load(Relaxed), 1);
    assert_eq!(m.abandoned.load(Relaxed), 0);
    assert_eq!(m.added.count(), 2, "one timing per signed answer");
    assert_eq!(m.store_commit.count(), 2);
    let text = m.render();
    assert!(
        text.contains("\nprovenance_events_signed_total 2\n"),
        "{text}"
    );
    assert!(
        text.contains("\nprovenance_answers_unsigned_total 2\n"),
        "{text}"
    );
    assert!(
        text.contains("\nprovenance_signer_added_seconds_count 2\n"),
        "{text}"
    );
}

#[tokio::test]
async fn a_client_leaving_mid_stream_is_counted_and_nothing_is_signed() {
    use std::sync::atomic::Ordering::Relaxed;
    let setup = setup(false);
    let upstream = service_fn(|_req: Request<_>| async {
        let first = Bytes::from_static(b"data: {\"content\":\"par\",\"stop\":false}\n\n");
        Ok::<_, Infallible>(
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Frames {
                    frames: VecDeque::from([first]),
                    fail_at_end: false,
                    stall_at_end: true,
                    says_end: false,
                })
                .unwrap(),
        )
    });
    let service = SigningLayer::new(setup.signer.clone()).layer(upstream);
    let request = Request::post("/completion")
        .body(Full::new(Bytes::from_static(
            br#"{"prompt":"p","stream":true}"#,
        )))
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    let id: RequestId = response.headers()[HEADER_REQUEST_ID]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut body = response.into_body();
    assert!(body.frame().await.unwrap().unwrap().is_data());
    drop(body); // The client goes away.

    let m = setup.signer.metrics();
    assert_eq!(m.abandoned.load(Relaxed), 1);
    assert_eq!(m.signed.load(Relaxed), 0);
    assert_eq!(m.added.count(), 0);
    assert!(matches!(
        setup.signer.lookup(id).unwrap(),
        Lookup::Failed(_)
    ));
}
