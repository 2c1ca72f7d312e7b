//! `provenance serve` in front of a real `llama-server` (built by `.ci/llama-server.sh`,
//! serving the tiny generated GGUF) on the OpenAI Responses API (`/v1/responses`) and the
//! Anthropic-style Messages API (`/v1/messages`), whole and streamed: each answer carries the
//! provenance headers, its event is fetchable, `provenance verify` proves the text curl
//! received, the disclosed request opens the prompt commitment, and the routes are no longer
//! counted as unsigned. The official `openai` Python package's `responses.create`, whole and
//! streamed (`tests/clients/openai_responses.py`), gets signed answers too.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod serve_common;

const UNSIGNED: &str = "provenance_answers_unsigned_total";

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use serve_common::{curl, header, llama, metric, prompt_opens, serve_model, verify_model};

/// The text a client reads, with code independent of the adapters: a Responses body's
/// `output_text` parts or its stream's `response.output_text.delta` events; a Messages body's
/// `text` blocks or its stream's `text_delta`s.
fn client_text(body: &[u8]) -> String {
    let text = String::from_utf8(body.to_vec()).unwrap();
    let mut out = String::new();
    if let Ok(whole) = serde_json::from_str::<Value>(&text) {
        let items = whole["output"].as_array().cloned().unwrap_or_default();
        let blocks = items
            .iter()
            .filter(|i| i["type"] == "message")
            .flat_map(|i| i["content"].as_array().cloned().unwrap_or_default())
            .filter(|p| p["type"] == "output_text")
            .chain(
                whole["content"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|b| b["type"] == "text"),
            );
        for block in blocks {
            out.push_str(block["text"].as_str().unwrap());
        }
        return out;
    }
    for message in text.split("\n\n") {
        let Some(data) = message.lines().find_map(|l| l.strip_prefix("data: ")) else {
            continue;
        };
        let event: Value = serde_json::from_str(data).unwrap();
        match event["type"].as_str().unwrap_or_default() {
            "response.output_text.delta" => out.push_str(event["delta"].as_str().unwrap()),
            "content_block_delta" if event["delta"]["type"] == "text_delta" => {
                out.push_str(event["delta"]["text"].as_str().unwrap());
            }
            _ => {}
        }
    }
    out
}

#[test]
fn responses_and_messages_whole_and_streamed_are_signed() {
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/gguf/valid/tiny-llama-f16.gguf");
    let llama = llama(&model);
    let dir = tempfile::tempdir().unwrap();
    let server = serve_model(dir.path(), &llama.url(), &model, &[]);
    let base = &server.base;
    for stream in [false, true] {
        let cases = [
            (
                "/v1/responses",
                format!(
                    r#"{{"input":"What colour is the sky?","instructions":"Be brief.","max_output_tokens":8,"temperature":0,"seed":7,"stream":{stream}}}"#
                ),
                r#"{"input":"What colour is the sky?","instructions":"Be brief."}"#,
                "openai.responses",
                "responses.v1",
            ),
            (
                "/v1/messages",
                format!(
                    r#"{{"model":"m","system":"Be brief.","messages":[{{"role":"user","content":"What colour is the sky?"}}],"max_tokens":8,"temperature":0,"seed":7,"stream":{stream}}}"#
                ),
                r#"{"messages":[{"role":"user","content":"What colour is the sky?"}],"system":"Be brief."}"#,
                "anthropic.messages",
                "anthropic.v1",
            ),
        ];
        for (path, request, committed, api, format) in cases {
            let url = format!("{base}{path}");
            let (status, headers, body) =
                curl(&["-H", "content-type: application/json", "-d", &request, &url]);
            assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
            let text = client_text(&body);
            assert!(!text.is_empty(), "{path} stream={stream}: no text");
            verify_model(dir.path(), base, &headers, &text, committed, &model);
            // The whole request body as sent opens the commitment too; the input alone does
            // not (the instructions / system prompt are covered).
            assert!(prompt_opens(dir.path(), base, &headers, &request));
            assert!(!prompt_opens(
                dir.path(),
                base,
                &headers,
                "What colour is the sky?"
            ));
            let (_, _, event) = curl(&[&format!(
                "{base}{}",
                header(&headers, "provenance-event-url")
            )]);
            let event: Value = serde_json::from_slice(&event).unwrap();
            let record: Value = serde_json::from_str(event["content"].as_str().unwrap()).unwrap();
            assert_eq!(record["request"]["api"], api);
            assert_eq!(record["prompt"]["format"], format);
            assert_eq!(record["runtime"]["engine"], "llama.cpp", "{path}");
            assert_eq!(
                record["response"]["streamed"].as_bool().unwrap_or(false),
                stream
            );
            assert!(!record["output"]["truncated"].as_bool().unwrap_or(false));
            assert!(record["output"]["finish_reason"].is_string(), "{record}");
            assert_eq!(record["sampling"]["max_tokens"], 8, "{record}");
        }
    }
    assert_eq!(metric(base, UNSIGNED), 0);
}

#[test]
fn openai_package_responses_whole_and_streamed_are_signed() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let model = repo.join("fixtures/gguf/valid/tiny-llama-f16.gguf");
    let llama = llama(&model);
    let dir = tempfile::tempdir().unwrap();
    let server = serve_model(dir.path(), &llama.url(), &model, &[]);
    let python = provenance_harness::clients_python().unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(python)
        .arg(repo.join("tests/clients/openai_responses.py"))
        .arg(&server.base)
        .args(["--header-prefix", "provenance-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["responses", "responses_stream"] {
        let result = &summary[key];
        let headers: Vec<(String, String)> = result["headers"]
            .as_object()
            .unwrap_or_else(|| panic!("no provenance headers in {result}"))
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        let text = result["text"].as_str().unwrap();
        assert!(!text.is_empty(), "{key}");
        verify_model(
            dir.path(),
            &server.base,
            &headers,
            text,
            r#"{"input":"Name three primary colours."}"#,
            &model,
        );
    }
    assert_eq!(metric(&server.base, UNSIGNED), 0);
}
