//! `provenance lookup ingest` and `provenance lookup serve`, run as the real binary.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use provenance_testkit as kit;

const BIN: &str = env!("CARGO_BIN_EXE_provenance");

/// The server process, killed (by its own PID) when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn post(addr: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    let body = resp.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

#[test]
fn ingest_counts_the_forged_event_and_serve_finds_a_copied_paragraph() {
    let dir = tempfile::tempdir().unwrap();
    kit::write_lookup_demo(dir.path()).unwrap();
    let events = dir.path().join("events.jsonl");
    let db = dir.path().join("lookup.sqlite");
    let out = Command::new(BIN)
        .args(["lookup", "ingest", "--db"])
        .arg(&db)
        .arg(&events)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("2 indexed, 0 already indexed, 1 rejected"),
        "{stdout}"
    );
    assert!(stderr.contains("event.id.mismatch"), "{stderr}");

    let mut child = Command::new(BIN)
        .args(["lookup", "serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let _server = Server(child);
    let addr = first
        .trim()
        .strip_prefix("listening on http://")
        .unwrap()
        .to_owned();
    let body = serde_json::json!({ "text": kit::LOOKUP_PARAGRAPH }).to_string();
    let (status, answer) = post(&addr, "/v1/lookup", &body);
    assert_eq!(status, 200, "{answer}");
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(v["matches"][0]["match"], "partial");
    assert_eq!(v["matches"][0]["coverage"]["fraction"], 1.0);
    assert_eq!(
        v["matches"][0]["signer"]["trusted"],
        serde_json::Value::Null
    );
}
