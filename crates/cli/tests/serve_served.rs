//! A client that read a stream up to the engine's last message and closed at once finds its
//! event: the official `openai` Python client stops at `data: [DONE]` and closes the
//! connection before the chunked terminator. Raw sockets that close right after the last
//! message (`[DONE]` for OpenAI chat, the `stop: true` message of llama.cpp's `/completion`),
//! and the real `openai` package (installed by `.ci/python-clients.sh`), in loops against the
//! real llama-server through `provenance serve`: every event URL answers `200` in the end,
//! never `410`.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod serve_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use serve_common::{llama, serve_model};

fn tiny() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/gguf/valid/tiny-llama-f16.gguf")
}

fn address(base: &str) -> SocketAddr {
    base.trim_start_matches("http://").parse().unwrap()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The payload of the complete chunks in `raw` (a chunked body, possibly cut short).
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = find(raw, b"\r\n") {
        let size = std::str::from_utf8(&raw[..end]).unwrap();
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        let start = end + 2;
        if size == 0 || raw.len() < start + size + 2 {
            break;
        }
        out.extend_from_slice(&raw[start..start + size]);
        raw = &raw[start + size + 2..];
    }
    out
}

/// Whether the SSE payload holds the engine's last message, whole.
fn has_last_message(payload: &[u8]) -> bool {
    let text = String::from_utf8_lossy(payload);
    let mut events: Vec<&str> = text.split("\n\n").collect();
    events.pop(); // Not yet ended by a blank line.
    events.iter().any(|event| {
        let Some(data) = event.trim_start().strip_prefix("data: ") else {
            return false;
        };
        data == "[DONE]"
            || serde_json::from_str::<Value>(data).is_ok_and(|v| v["stop"] == Value::Bool(true))
    })
}

/// Posts a streamed request, reads up to and including the last message, closes at once;
/// returns the request id.
fn read_to_last_message_and_close(server: SocketAddr, path: &str, body: &str) -> String {
    let mut socket = TcpStream::connect(server).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    write!(
        socket,
        "POST {path} HTTP/1.1\r\nHost: {server}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0; 8192];
    loop {
        let n = socket.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "the stream ended before its last message: {}",
            String::from_utf8_lossy(&raw)
        );
        raw.extend_from_slice(&buf[..n]);
        if let Some(head_end) = find(&raw, b"\r\n\r\n")
            && has_last_message(&dechunk(&raw[head_end + 4..]))
        {
            let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
            drop(socket);
            return head
                .lines()
                .find_map(|l| l.strip_prefix("provenance-request-id:"))
                .unwrap_or_else(|| panic!("no request id in {head}"))
                .trim()
                .to_owned();
        }
    }
}

/// Polls the event URL until it leaves `202`; returns the final status.
fn event_status(server: SocketAddr, id: &str) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = provenance_harness::http::get(server, &format!("/provenance/{id}")).unwrap();
        if got.status != 202 || Instant::now() > deadline {
            return (got.status, got.text());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Checks that every id's event is stored; panics with the count of those that are not.
fn assert_all_signed(server: SocketAddr, ids: &[String]) {
    let unsigned: Vec<(u16, String)> = ids
        .iter()
        .map(|id| event_status(server, id))
        .filter(|(status, _)| *status != 200)
        .collect();
    assert!(
        unsigned.is_empty(),
        "{} of {} answers read to their last message unsigned, first: {:?}",
        unsigned.len(),
        ids.len(),
        unsigned.first()
    );
}

const ROUNDS: usize = 200;

#[test]
fn raw_sockets_that_close_after_the_last_message_are_all_signed() {
    let llama = llama(&tiny());
    let dir = tempfile::tempdir().unwrap();
    let server = serve_model(dir.path(), &llama.url(), &tiny(), &[]);
    let at = address(&server.base);
    let chat = r#"{"messages":[{"role":"user","content":"Hi"}],"max_tokens":4,"stream":true}"#;
    let completion = r#"{"prompt":"Hi","n_predict":4,"stream":true}"#;
    let mut ids = Vec::new();
    for round in 0..ROUNDS {
        let (path, body) = if round % 2 == 0 {
            ("/v1/chat/completions", chat)
        } else {
            ("/completion", completion)
        };
        ids.push(read_to_last_message_and_close(at, path, body));
    }
    assert_all_signed(at, &ids);
}

/// The `openai` package streams chat answers and reads each to its end, as its users do
/// (`for chunk in stream`), printing each answer's request id.
const OPENAI_LOOP: &str = r#"
import sys, openai
client = openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key="none", max_retries=0)
for _ in range(int(sys.argv[2])):
    raw = client.chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": "Hi"}], max_tokens=4, stream=True)
    for chunk in raw.parse():
        pass
    print(raw.headers["provenance-request-id"], flush=True)
"#;

const OPENAI_ROUNDS: usize = 200;

#[test]
fn the_openai_python_client_streaming_in_a_loop_gets_every_answer_signed() {
    let python = provenance_harness::clients_python().unwrap_or_else(|e| panic!("{e}"));
    let llama = llama(&tiny());
    let dir = tempfile::tempdir().unwrap();
    let server = serve_model(dir.path(), &llama.url(), &tiny(), &[]);
    let out = Command::new(python)
        .args(["-c", OPENAI_LOOP, &server.base, &OPENAI_ROUNDS.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(ids.len(), OPENAI_ROUNDS);
    assert_all_signed(address(&server.base), &ids);
}
