//! The recorded exchanges under fixtures/traffic/ are well-formed: every file the index names
//! is there, each raw response parses as HTTP/1.1 and decodes to the stored body, JSON bodies
//! parse, SSE streams end the way each API ends them, and NDJSON streams are one JSON object
//! per line ending with `"done": true` (the `ollama` client fails on anything else).

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::fs;
use std::path::{Path, PathBuf};

use provenance_harness::http::parse_response;
use serde_json::Value;

fn traffic(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/traffic")
        .join(dir)
}

fn index(dir: &Path) -> Vec<Value> {
    let text = fs::read_to_string(dir.join("index.json")).unwrap();
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Checks one exchange's three files against each other; returns the decoded body.
fn exchange(dir: &Path, entry: &Value) -> (Vec<(String, String)>, Vec<u8>) {
    let name = entry["name"].as_str().unwrap();
    let request = fs::read(dir.join(format!("{name}.request.http"))).unwrap();
    let first_line = format!(
        "{} {} HTTP/1.1\r\n",
        entry["method"].as_str().unwrap(),
        entry["path"].as_str().unwrap()
    );
    assert!(request.starts_with(first_line.as_bytes()), "{name}");
    let raw = fs::read(dir.join(format!("{name}.response.http"))).unwrap();
    let (status, headers, body) = parse_response(&raw).unwrap();
    assert_eq!(status, 200, "{name}");
    let stored = fs::read(dir.join(format!("{name}.response.body"))).unwrap();
    assert_eq!(
        body, stored,
        "{name}: decoded body differs from the stored one"
    );
    (headers, body)
}

fn content_type(headers: &[(String, String)]) -> &str {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

#[test]
fn llama_cpp_recordings_are_complete_and_consistent() {
    let dir = traffic("llama.cpp");
    let entries = index(&dir);
    let names: Vec<&str> = entries.iter().filter_map(|e| e["name"].as_str()).collect();
    for expected in [
        "openai-chat",
        "openai-chat-stream",
        "openai-completions",
        "openai-completions-stream",
        "completion",
        "completion-stream",
        "completion-probs",
        "tokenize",
        "detokenize",
        "apply-template",
        "props",
        "models",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from the index"
        );
    }
    for entry in &entries {
        let name = entry["name"].as_str().unwrap();
        let (headers, body) = exchange(&dir, entry);
        let text = String::from_utf8(body).unwrap();
        if entry["stream"].as_bool().unwrap() {
            assert!(
                content_type(&headers).starts_with("text/event-stream"),
                "{name}"
            );
            let events: Vec<&str> = text
                .split("\n\n")
                .filter(|e| !e.is_empty())
                .map(|e| {
                    e.strip_prefix("data: ")
                        .unwrap_or_else(|| panic!("{name}: {e}"))
                })
                .collect();
            let (last, data) = events.split_last().unwrap();
            if name.starts_with("openai") {
                assert_eq!(*last, "[DONE]", "{name}");
                // With include_usage the last chunk before [DONE] carries the usage.
                let usage: Value = serde_json::from_str(data.last().unwrap()).unwrap();
                assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0);
            } else {
                let last: Value = serde_json::from_str(last).unwrap();
                assert_eq!(last["stop"], true, "{name}");
            }
            for event in data {
                serde_json::from_str::<Value>(event).unwrap();
            }
        } else {
            assert!(
                content_type(&headers).starts_with("application/json"),
                "{name}"
            );
            serde_json::from_str::<Value>(&text).unwrap();
        }
    }
    // The recordings name the model by file name and alias, never by a path on a machine.
    let props = fs::read_to_string(dir.join("props.response.body")).unwrap();
    let props: Value = serde_json::from_str(&props).unwrap();
    assert!(!props["model_path"].as_str().unwrap().contains('/'));
    let probs = fs::read_to_string(dir.join("completion-probs.response.body")).unwrap();
    let probs: Value = serde_json::from_str(&probs).unwrap();
    assert_eq!(
        probs["completion_probabilities"].as_array().unwrap().len(),
        4
    );
}

#[test]
fn ollama_exchanges_follow_the_documented_shapes() {
    let dir = traffic("ollama");
    let entries = index(&dir);
    assert_eq!(entries.len(), 7);
    for entry in &entries {
        let name = entry["name"].as_str().unwrap();
        let (headers, body) = exchange(&dir, entry);
        if entry["stream"].as_bool().unwrap() {
            assert_eq!(content_type(&headers), "application/x-ndjson", "{name}");
            let text = String::from_utf8(body).unwrap();
            assert!(text.ends_with('\n'));
            let objects: Vec<Value> = text
                .lines()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect();
            let (last, rest) = objects.split_last().unwrap();
            assert_eq!(last["done"], true, "{name}");
            assert!(rest.iter().all(|o| o["done"] == false), "{name}");
        } else {
            assert_eq!(
                content_type(&headers),
                "application/json; charset=utf-8",
                "{name}"
            );
            let value: Value = serde_json::from_slice(&body).unwrap();
            if entry["path"] == "/api/generate" || entry["path"] == "/api/chat" {
                assert_eq!(value["done"], true, "{name}");
            }
        }
    }
}
