//! A chat request with `"n": 2` through `provenance serve` to the real llama-server (which
//! answers two choices): the client gets the upstream's success, not a 500, and the event
//! covers both choices in the form docs/event-format.md defines, which `provenance verify
//! --output` checks.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod serve_common;

use std::path::PathBuf;

use serde_json::Value;
use serve_common::{curl, llama, serve_model, verify_model};

fn tiny() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/gguf/valid/tiny-llama-f16.gguf")
}

#[test]
fn two_choices_are_served_and_both_signed() {
    let llama = llama(&tiny());
    let dir = tempfile::tempdir().unwrap();
    let server = serve_model(dir.path(), &llama.url(), &tiny(), &[]);
    let messages = r#"{"messages":[{"content":"Hi","role":"user"}]}"#;
    let body = r#"{"messages":[{"role":"user","content":"Hi"}],"n":2,"max_tokens":6}"#;
    let (status, headers, answer) = curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-d",
        body,
        &format!("{}/v1/chat/completions", server.base),
    ]);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(status, 200, "{answer}");
    let choices = answer["choices"].as_array().unwrap();
    assert_eq!(
        choices.len(),
        2,
        "llama-server answers two choices: {answer}"
    );
    // The canonical form: one object per choice in index order, written compactly.
    let mut covered: Vec<(u64, String)> = choices
        .iter()
        .map(|c| {
            let content = serde_json::to_string(&c["message"]["content"]).unwrap();
            let index = c["index"].as_u64().unwrap();
            (index, format!(r#"{{"index":{index},"content":{content}}}"#))
        })
        .collect();
    covered.sort();
    let covered: Vec<String> = covered.into_iter().map(|(_, c)| c).collect();
    let covered = format!("[{}]", covered.join(","));
    verify_model(
        dir.path(),
        &server.base,
        &headers,
        &covered,
        messages,
        &tiny(),
    );
    // Choice 0 alone is not what the event covers.
    let first = choices[0]["message"]["content"].as_str().unwrap();
    let event_url = serve_common::header(&headers, "provenance-event-url");
    let (_, _, event) = curl(&[&format!("{}{event_url}", server.base)]);
    let event: Value = serde_json::from_slice(&event).unwrap();
    let record: Value = serde_json::from_str(event["content"].as_str().unwrap()).unwrap();
    assert_eq!(record["output"]["mime"], "application/json");
    assert_ne!(
        record["output"]["sha256"].as_str().unwrap(),
        provenance::digest::sha256(first.as_bytes()).to_string()
    );
}
