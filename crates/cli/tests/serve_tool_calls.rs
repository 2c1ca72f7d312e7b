//! A tool call is what the model produced, so the event covers it: an OpenAI chat answer
//! whose message has `content: null` and `tool_calls`, through `provenance serve`. The small
//! model makes no tool calls, so the upstream is canned: it answers in the shape OpenAI's API
//! reference publishes for a chat completion with a function call (whole, and streamed as
//! chunks). `provenance verify --output` checks the canonical form docs/event-format.md
//! defines, and the empty text no longer verifies.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod serve_common;

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use serve_common::{canned_upstream, curl, header, read_request, serve};

const ARGUMENTS: &str = r#"{"location":"Paris, France"}"#;

fn answer(mut stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    while let Some((_, body)) = read_request(&mut reader) {
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let response = if body["stream"] == Value::Bool(true) {
            let chunk = |delta: Value, finish: Value| {
                json!({"id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190,
                       "model": "gpt-4o-mini", "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
            };
            let (a, b) = ARGUMENTS.split_at(12);
            let events = [
                chunk(
                    json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": "call_abc123", "type": "function", "function": {"name": "get_current_weather", "arguments": ""}}]}),
                    Value::Null,
                ),
                chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": a}}]}),
                    Value::Null,
                ),
                chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": b}}]}),
                    Value::Null,
                ),
                chunk(json!({}), json!("tool_calls")),
            ];
            let mut out = String::from(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
            );
            let mut messages: Vec<String> =
                events.iter().map(|e| format!("data: {e}\n\n")).collect();
            messages.push("data: [DONE]\n\n".to_owned());
            for message in messages {
                out.push_str(&format!("{:x}\r\n{message}\r\n", message.len()));
            }
            out.push_str("0\r\n\r\n");
            out
        } else {
            let whole = json!({
                "id": "chatcmpl-abc123", "object": "chat.completion", "created": 1699896916, "model": "gpt-4o-mini",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_abc123", "type": "function", "function": {"name": "get_current_weather", "arguments": ARGUMENTS}}
                ]}, "logprobs": null, "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99}
            })
            .to_string();
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{whole}",
                whole.len()
            )
        };
        if stream.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn verify_output(dir: &Path, base: &str, headers: &[(String, String)], output: &str) -> bool {
    let url = header(headers, "provenance-event-url");
    let (status, _, event) = curl(&[&format!("{base}{url}")]);
    assert_eq!(status, 200);
    std::fs::write(dir.join("event.json"), &event).unwrap();
    std::fs::write(dir.join("output"), output).unwrap();
    Command::new(env!("CARGO_BIN_EXE_provenance"))
        .arg("verify")
        .arg(dir.join("event.json"))
        .arg("--output")
        .arg(dir.join("output"))
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn a_tool_call_is_signed_and_verify_checks_it() {
    let port = canned_upstream(answer);
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &format!("http://127.0.0.1:{port}"), &[]);
    let canonical = format!(
        r#"[{{"index":0,"content":"","tool_calls":[{{"name":"get_current_weather","arguments":{}}}]}}]"#,
        serde_json::to_string(ARGUMENTS).unwrap()
    );
    for stream in [false, true] {
        let body = json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": "Weather in Paris?"}],
                          "tools": [{"type": "function", "function": {"name": "get_current_weather", "parameters": {"type": "object"}}}]})
        .to_string();
        let (status, headers, _) = curl(&[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            &body,
            &format!("{}/v1/chat/completions", server.base),
        ]);
        assert_eq!(status, 200);
        assert!(
            verify_output(dir.path(), &server.base, &headers, &canonical),
            "stream {stream}: the canonical form does not verify"
        );
        assert!(
            !verify_output(dir.path(), &server.base, &headers, ""),
            "stream {stream}: the empty output verifies"
        );
    }
}
