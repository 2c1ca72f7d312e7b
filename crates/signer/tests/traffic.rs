//! Every exchange in `fixtures/traffic/` (recorded from a real llama-server; Ollama's from its
//! API documentation) through the layer, the upstream replaying the recorded response body in
//! small pieces: generation routes give an event that verifies, whose output hash is the hash
//! of the text a client reads from the recorded bytes and whose response hash covers exactly
//! those bytes; every other route passes through byte for byte, unsigned.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod common;

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, StreamBody};
use provenance::clock::FixedClock;
use provenance::digest::sha256;
use provenance::event::{Limits, parse_event, verify};
use provenance::verdict::Status;
use provenance::{Keys, Model, Timestamp};
use provenance_signer::adapter::Api;
use provenance_signer::service::HEADER_REQUEST_ID;
use provenance_signer::{Lookup, Signer, SigningLayer, SqliteStore};
use serde_json::Value;
use tower::{Layer, ServiceExt, service_fn};

fn traffic() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/traffic")
}

/// The body of a recorded request (after the blank line).
fn request_body(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let at = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    bytes[at + 4..].to_vec()
}

async fn replay(set: &str) -> usize {
    let dir = traffic().join(set);
    let index: Vec<Value> =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let store_dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&store_dir.path().join("events.sqlite")).unwrap();
    let signer = Arc::new(
        Signer::builder(Keys::generate(), Model::named("recorded"))
            .clock(Arc::new(FixedClock(Timestamp::from_secs(1_800_000_000))))
            .build(Arc::new(store)),
    );
    let mut signed = 0;
    for exchange in &index {
        let name = exchange["name"].as_str().unwrap();
        let path = exchange["path"].as_str().unwrap().to_owned();
        let method = exchange["method"].as_str().unwrap();
        let stream = exchange["stream"].as_bool().unwrap();
        let body = std::fs::read(dir.join(format!("{name}.response.body"))).unwrap();
        let content_type = match (stream, set) {
            (true, "ollama") => "application/x-ndjson",
            (true, _) => "text/event-stream",
            (false, _) => "application/json; charset=utf-8",
        };
        let recorded = Bytes::from(body.clone());
        let upstream = service_fn(move |_req: Request<_>| {
            // Pieces of 7 bytes: messages and UTF-8 characters split across frames.
            let pieces: Vec<Result<http_body::Frame<Bytes>, Infallible>> = recorded
                .chunks(7)
                .map(|c| Ok(http_body::Frame::data(Bytes::copy_from_slice(c))))
                .collect();
            async move {
                Ok::<_, Infallible>(
                    Response::builder()
                        .header("content-type", content_type)
                        .body(StreamBody::new(futures_util::stream::iter(pieces)))
                        .unwrap(),
                )
            }
        });
        let request_bytes = if method == "POST" {
            request_body(&dir.join(format!("{name}.request.http")))
        } else {
            Vec::new()
        };
        let request = Request::builder()
            .method(method)
            .uri(&path)
            .body(Full::new(Bytes::from(request_bytes.clone())))
            .unwrap();
        let response = SigningLayer::new(signer.clone())
            .layer(upstream)
            .oneshot(request)
            .await
            .unwrap();
        let headers = response.headers().clone();
        let served = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            &served[..],
            &body[..],
            "{set}/{name}: the bytes are passed on unchanged"
        );
        let generation = method == "POST" && Api::route(&path).is_some();
        let Some(id) = headers.get(HEADER_REQUEST_ID) else {
            assert!(!generation, "{set}/{name}: a generation must be signed");
            continue;
        };
        assert!(generation, "{set}/{name}: only generations are signed");
        let id = id.to_str().unwrap().parse().unwrap();
        let Lookup::Done(json) = signer.lookup(id).unwrap() else {
            panic!("{set}/{name}: no event");
        };
        let event = parse_event(&json, &Limits::default()).unwrap();
        let verification = verify(&event);
        let verified = verification
            .verified()
            .unwrap_or_else(|| panic!("{set}/{name}: {:?}", verification.claims()));
        let text = common::client_text(&body);
        assert_eq!(
            verified.check_output(text.as_bytes()).status,
            Status::Proven,
            "{set}/{name}"
        );
        let record = verified.record();
        assert!(
            !record.output.truncated,
            "{set}/{name}: the recording is complete"
        );
        // Older examples in Ollama's documentation end with `done` but no `done_reason`.
        if set.starts_with("llama.cpp") || body.windows(11).any(|w| w == b"done_reason") {
            assert!(record.output.finish_reason.is_some(), "{set}/{name}");
        }
        assert_eq!(record.response.as_ref().unwrap().sha256, sha256(&body));
        assert_eq!(
            record.request.as_ref().unwrap().sha256,
            Some(sha256(&request_bytes))
        );
        signed += 1;
    }
    signed
}

#[tokio::test]
async fn recorded_llama_cpp_traffic() {
    // Chat, completions and /completion, each whole and streamed, and /completion with
    // probabilities.
    assert_eq!(replay("llama.cpp").await, 7);
}

#[tokio::test]
async fn recorded_llama_cpp_responses_and_messages_traffic() {
    // OpenAI Responses and Anthropic-style Messages, each whole and streamed (typed SSE
    // events).
    assert_eq!(replay("llama.cpp-apis").await, 4);
}

#[tokio::test]
async fn recorded_ollama_traffic_from_its_api_documentation() {
    // generate (whole, streamed, the long example stream) and chat (whole, streamed).
    assert_eq!(replay("ollama").await, 5);
}
