//! A paragraph copied out of a real signed answer is found by `provenance lookup`: one answer
//! signed by `provenance serve` (in front of a canned OpenAI-shaped upstream, so that the
//! answer is long prose) and one signed by `provenance sign`, both ingested, each found by a
//! paragraph copied out of it, not by generated fixtures. With `--no-fingerprints` the record
//! carries none and the paragraph finds nothing.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod serve_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use serve_common::{canned_upstream, curl, header, key_file, read_request, serve};

const BIN: &str = env!("CARGO_BIN_EXE_provenance");

const SERVED: &str = "Rivers carve valleys over thousands of years, carrying sediment from the \
mountains down to the plains.\n\nWhere a river slows near the sea it drops its load, and the \
delta that grows there is some of the most fertile land on the planet, farmed since the first \
cities were built.\n\nFloods renew that soil every spring.";
const SERVED_PARAGRAPH: &str = "Where a river slows near the sea it drops its load, and the \
delta that grows there is some of the most fertile land on the planet, farmed since the first \
cities were built.";

const SIGNED: &str = "Bread rises because yeast eats sugar and breathes out carbon dioxide.\n\n\
The gluten network of a kneaded dough traps those bubbles, so the loaf swells in the warm \
oven until the crumb sets around them and the crust turns brown.\n\nSalt slows the yeast down.";
const SIGNED_PARAGRAPH: &str = "The gluten network of a kneaded dough traps those bubbles, so \
the loaf swells in the warm oven until the crumb sets around them and the crust turns brown.";

/// Answers every chat request with [`SERVED`], in the published OpenAI shape.
fn answer(mut stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    while read_request(&mut reader).is_some() {
        let body = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": SERVED}, "finish_reason": "stop"}]})
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

/// One chat answer through `provenance serve` with `extra`; its signed event.
fn served_event(dir: &Path, extra: &[&str]) -> Value {
    let port = canned_upstream(answer);
    let server = serve(dir, &format!("http://127.0.0.1:{port}"), extra);
    let (status, headers, _) = curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"messages":[{"role":"user","content":"Rivers?"}]}"#,
        &format!("{}/v1/chat/completions", server.base),
    ]);
    assert_eq!(status, 200);
    let url = header(&headers, "provenance-event-url");
    let (status, _, event) = curl(&[&format!("{}{url}", server.base)]);
    assert_eq!(status, 200);
    serde_json::from_slice(&event).unwrap()
}

fn run(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The lookup server, killed (by its own PID) when dropped.
struct Lookup(Child, String);

impl Drop for Lookup {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Lookup {
    fn start(db: &Path) -> Self {
        let mut child = Command::new(BIN)
            .args(["lookup", "serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let addr = first
            .trim()
            .strip_prefix("listening on http://")
            .unwrap()
            .to_owned();
        Self(child, addr)
    }

    /// The ids of the events a text matches, with their kind of match.
    fn find(&self, text: &str) -> Vec<(String, String)> {
        let body = json!({ "text": text }).to_string();
        let mut s = TcpStream::connect(&self.1).unwrap();
        write!(
            s,
            "POST /v1/lookup HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.1,
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        let (_, body) = response.split_once("\r\n\r\n").unwrap();
        let v: Value = serde_json::from_str(body).unwrap();
        v["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let id = m["event"]["id"]
                    .as_str()
                    .or_else(|| m["event_id"].as_str())
                    .or_else(|| m["id"].as_str())
                    .unwrap_or_default();
                (
                    id.to_owned(),
                    m["match"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

#[test]
fn paragraphs_copied_out_of_served_and_signed_answers_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let served = served_event(dir.path(), &[]);
    let record: Value = serde_json::from_str(served["content"].as_str().unwrap()).unwrap();
    assert_eq!(record["output"]["fingerprints"]["rule"], "wk-v1");

    std::fs::write(dir.path().join("answer.txt"), SIGNED).unwrap();
    let signed = run(&[
        "sign".as_ref(),
        "--model-name".as_ref(),
        "m".as_ref(),
        "--key".as_ref(),
        key_file(dir.path()).as_os_str(),
        "--output-file".as_ref(),
        dir.path().join("answer.txt").as_os_str(),
    ]);
    let signed: Value = serde_json::from_str(signed.trim()).unwrap();
    std::fs::write(dir.path().join("signed.jsonl"), format!("{signed}\n")).unwrap();

    let db = dir.path().join("lookup.sqlite");
    run(&[
        "lookup".as_ref(),
        "ingest".as_ref(),
        "--db".as_ref(),
        db.as_os_str(),
        "--signer-db".as_ref(),
        dir.path().join("events.sqlite").as_os_str(),
    ]);
    run(&[
        "lookup".as_ref(),
        "ingest".as_ref(),
        "--db".as_ref(),
        db.as_os_str(),
        dir.path().join("signed.jsonl").as_os_str(),
    ]);
    let lookup = Lookup::start(&db);
    for (paragraph, event) in [(SERVED_PARAGRAPH, &served), (SIGNED_PARAGRAPH, &signed)] {
        let found = lookup.find(paragraph);
        assert_eq!(
            found,
            vec![(
                event["id"].as_str().unwrap().to_owned(),
                "partial".to_owned()
            )],
            "{paragraph}"
        );
    }
}

#[test]
fn no_fingerprints_leaves_them_out() {
    let dir = tempfile::tempdir().unwrap();
    let served = served_event(dir.path(), &["--no-fingerprints"]);
    let record: Value = serde_json::from_str(served["content"].as_str().unwrap()).unwrap();
    assert_eq!(record["output"].get("fingerprints"), None);
}
