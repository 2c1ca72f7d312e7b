//! Stop strings end an answer, so the record commits to them: through `provenance serve` to
//! the real llama-server, the stop strings a request set are in the signed record's
//! `sampling.extra.stop`, for llama.cpp's `/completion` (a list) and OpenAI chat (one string).
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod serve_common;

use std::path::PathBuf;

use serde_json::{Value, json};
use serve_common::{curl, header, llama, serve_model};

fn tiny() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/gguf/valid/tiny-llama-f16.gguf")
}

/// The signed record of one answer.
fn record(base: &str, path: &str, body: &str) -> Value {
    let (status, headers, answer) = curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-d",
        body,
        &format!("{base}{path}"),
    ]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let url = header(&headers, "provenance-event-url");
    let (status, _, event) = curl(&[&format!("{base}{url}")]);
    assert_eq!(status, 200);
    let event: Value = serde_json::from_slice(&event).unwrap();
    serde_json::from_str(event["content"].as_str().unwrap()).unwrap()
}

#[test]
fn stop_strings_are_in_the_signed_sampling() {
    let llama = llama(&tiny());
    let dir = tempfile::tempdir().unwrap();
    let server = serve_model(dir.path(), &llama.url(), &tiny(), &[]);
    let native = record(
        &server.base,
        "/completion",
        r#"{"prompt":"Hi","n_predict":4,"stop":["\n\n","END"]}"#,
    );
    assert_eq!(native["sampling"]["extra"]["stop"], json!(["\n\n", "END"]));
    let chat = record(
        &server.base,
        "/v1/chat/completions",
        r#"{"messages":[{"role":"user","content":"Hi"}],"max_tokens":4,"stop":"END"}"#,
    );
    assert_eq!(chat["sampling"]["extra"]["stop"], json!(["END"]));
    // Without stop strings, none are recorded.
    let plain = record(
        &server.base,
        "/completion",
        r#"{"prompt":"Hi","n_predict":4}"#,
    );
    assert_eq!(plain["sampling"]["extra"].get("stop"), None);
}
