//! A proxy started before its upstream probes it again once it answers, and never signs with
//! a guessed engine: records carry no runtime until the probe succeeds, then the engine the
//! upstream reports (`llama.cpp` here), never the `openai-compatible` guess. The upstream is
//! canned: it comes up on a port chosen in advance, which llama-server's test harness does
//! not offer; it answers `/props` and `/completion` in llama.cpp's shapes.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod serve_common;

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use serve_common::{curl, header, read_request, serve};

fn answer(mut stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    while let Some((head, _)) = read_request(&mut reader) {
        let body = if head.starts_with("GET /props") {
            json!({"build_info": "b6000-abcdef0", "total_slots": 1,
                   "default_generation_settings": {"n_ctx": 1024, "params": {"temperature": 0.8, "top_k": 40}}})
        } else {
            json!({"content": "Hello there.", "stop": true, "stop_type": "eos", "tokens_predicted": 3,
                   "tokens_evaluated": 2, "generation_settings": {"temperature": 0.8}})
        }
        .to_string();
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// The `runtime.engine` of the record of one answer (`None`: no runtime).
fn engine_of(base: &str) -> Option<String> {
    let (status, headers, body) = curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"prompt":"Hi","n_predict":3}"#,
        &format!("{base}/completion"),
    ]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let url = header(&headers, "provenance-event-url");
    let (status, _, event) = curl(&[&format!("{base}{url}")]);
    assert_eq!(status, 200);
    let event: Value = serde_json::from_slice(&event).unwrap();
    let record: Value = serde_json::from_str(event["content"].as_str().unwrap()).unwrap();
    record["runtime"]["engine"].as_str().map(str::to_owned)
}

#[test]
fn an_upstream_down_at_start_up_is_probed_again_and_no_engine_is_guessed() {
    // A port nothing listens on yet.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &format!("http://127.0.0.1:{port}"), &[]);
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || answer(stream));
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let engine = engine_of(&server.base);
        assert_ne!(
            engine.as_deref(),
            Some("openai-compatible"),
            "a guessed engine"
        );
        if engine.as_deref() == Some("llama.cpp") {
            break;
        }
        assert!(Instant::now() < deadline, "never probed again");
        std::thread::sleep(Duration::from_millis(100));
    }
}
