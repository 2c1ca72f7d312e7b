//! A streamed answer longer than `--max-response-bytes` is read only up to the cap: the client
//! still receives every byte, unchanged, but nothing is signed, the event URL answers 410
//! saying why, and the metrics count it; a stream under the cap through the same server is
//! signed as before. The upstream is canned: it streams OpenAI chat chunks, as many as the
//! request's `max_tokens` asks for.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod serve_common;

const UNSIGNED: &str = "provenance_answers_unsigned_total";

use std::io::{BufReader, Write};
use std::net::TcpStream;

use serde_json::{Value, json};
use serve_common::{canned_upstream, curl, header, metric, read_request, serve};

/// The cap under test.
const CAP: usize = 64 * 1024;

/// The text of each chunk: about 1 KiB, so a few hundred chunks pass the cap.
fn piece(i: u64) -> String {
    format!("{i:05} {}", "x".repeat(1000))
}

/// The SSE body of `n` chunks, then `[DONE]`.
fn stream_body(n: u64) -> Vec<String> {
    let mut messages: Vec<String> = (0..n)
        .map(|i| {
            let finish = if i + 1 == n { json!("length") } else { Value::Null };
            let chunk = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                "model": "m", "choices": [{"index": 0, "delta": {"content": piece(i)}, "finish_reason": finish}]});
            format!("data: {chunk}\n\n")
        })
        .collect();
    messages.push("data: [DONE]\n\n".to_owned());
    messages
}

fn answer(mut stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    while let Some((_, body)) = read_request(&mut reader) {
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let n = body["max_tokens"].as_u64().unwrap_or(1);
        let mut out = String::from(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
        );
        for message in stream_body(n) {
            out.push_str(&format!("{:x}\r\n{message}\r\n", message.len()));
        }
        out.push_str("0\r\n\r\n");
        if stream.write_all(out.as_bytes()).is_err() {
            return;
        }
    }
}

/// Streams a chat answer of `n` chunks through the server: the status, headers and body.
fn chat(base: &str, n: u64) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let body = json!({"model": "m", "stream": true, "max_tokens": n,
                      "messages": [{"role": "user", "content": "Say x."}]})
    .to_string();
    curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-d",
        &body,
        &format!("{base}/v1/chat/completions"),
    ])
}

#[test]
fn a_stream_past_the_response_cap_reaches_the_client_whole_and_is_not_signed() {
    let port = canned_upstream(answer);
    let dir = tempfile::tempdir().unwrap();
    let cap = CAP.to_string();
    let server = serve(
        dir.path(),
        &format!("http://127.0.0.1:{port}"),
        &["--max-response-bytes", &cap],
    );
    let before = metric(&server.base, UNSIGNED);

    // Under the cap: signed, as ever.
    let (status, headers, _) = chat(&server.base, 8);
    assert_eq!(status, 200);
    let url = header(&headers, "provenance-event-url").to_owned();
    let (status, _, _) = curl(&[&format!("{}{url}", server.base)]);
    assert_eq!(status, 200, "a stream under the cap is signed");

    // Past it: every byte the upstream sent, in order, and no event.
    let n = 300;
    let (status, headers, body) = chat(&server.base, n);
    assert_eq!(status, 200);
    let sent: String = stream_body(n).concat();
    assert!(sent.len() > 4 * CAP, "the stream is well past the cap");
    assert_eq!(
        String::from_utf8(body).unwrap(),
        sent,
        "the client gets the whole answer, unchanged"
    );
    let url = header(&headers, "provenance-event-url").to_owned();
    let (status, _, reason) = curl(&[&format!("{}{url}", server.base)]);
    let reason = String::from_utf8(reason).unwrap();
    assert_eq!(status, 410, "nothing signed past the cap: {reason}");
    assert!(
        reason.contains("response cap of 65536 bytes"),
        "the 410 says why: {reason}"
    );
    assert_eq!(metric(&server.base, UNSIGNED), before + 1);

    // The server goes on signing answers under the cap.
    let (_, headers, _) = chat(&server.base, 3);
    let url = header(&headers, "provenance-event-url").to_owned();
    let (status, _, _) = curl(&[&format!("{}{url}", server.base)]);
    assert_eq!(status, 200);
}
