//! `provenance lookup ingest` and `provenance lookup serve`, run as the real binary; a signer's
//! own event store (written by `provenance-signer`'s store code) as a source.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use provenance_fixtures as kit;
use provenance_signer::{RequestId, SqliteStore, Store};

const BIN: &str = env!("CARGO_BIN_EXE_provenance");

/// The server process, killed (by its own PID) when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `lookup serve --listen 127.0.0.1:0 --db ARGS...`; returns it and its address.
fn serve(args: &[&std::ffi::OsStr]) -> (Server, String) {
    serve_with(args, true)
}

/// [`serve`], and unless `keep_reading`, closes the server's standard output once it has said
/// where it listens (as a supervisor that only wanted that line would).
fn serve_with(args: &[&std::ffi::OsStr], keep_reading: bool) -> (Server, String) {
    let mut child = Command::new(BIN)
        .args(["lookup", "serve", "--listen", "127.0.0.1:0", "--db"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut first).unwrap();
    if keep_reading {
        // The server reports each poll on its standard output.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    } else {
        drop(stdout);
    }
    let addr = first
        .trim()
        .strip_prefix("listening on http://")
        .unwrap()
        .to_owned();
    (Server(child), addr)
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

    let (_server, addr) = serve(&[db.as_os_str()]);
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

fn ingest(db: &Path, store: &Path) -> (Option<i32>, String, String) {
    let out: Output = Command::new(BIN)
        .args(["lookup", "ingest", "--db"])
        .arg(db)
        .arg("--signer-db")
        .arg(store)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `ingest --signer-db` and checks its exit code and report line; returns its stderr.
fn ingest_reports(db: &Path, store: &Path, code: i32, report: &str) -> String {
    let (got, stdout, stderr) = ingest(db, store);
    assert_eq!(got, Some(code), "{stdout}{stderr}");
    assert!(stdout.contains(report), "{stdout}");
    stderr
}

fn lookup(addr: &str, text: &str) -> serde_json::Value {
    let body = serde_json::json!({ "text": text }).to_string();
    let (status, answer) = post(addr, "/v1/lookup", &body);
    assert_eq!(status, 200, "{answer}");
    serde_json::from_str(&answer).unwrap()
}

#[test]
fn ingest_reads_a_signer_store_once_and_then_only_its_new_events() {
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("events.sqlite");
    let db = dir.path().join("lookup.sqlite");
    let store = SqliteStore::open(&store_path).unwrap();
    for ev in kit::lookup_events() {
        store.put(RequestId::generate(), &ev).unwrap();
    }
    // A store holds what it was given: an event whose signature is another's is refused.
    let keys = kit::golden_keys();
    let mut forged: serde_json::Value =
        serde_json::from_str(&kit::synthetic_event(&keys, 5).as_json()).unwrap();
    forged["sig"] = serde_json::Value::String(kit::synthetic_event(&keys, 6).sig.to_string());
    let forged = provenance::event::parse_event(&forged.to_string(), &Default::default()).unwrap();
    store.put(RequestId::generate(), &forged).unwrap();

    let stderr = ingest_reports(
        &db,
        &store_path,
        1,
        "2 indexed, 0 already indexed, 1 rejected",
    );
    assert!(stderr.contains("event.sig.invalid"), "{stderr}");

    // Only the rows stored since are read on the next run.
    ingest_reports(
        &db,
        &store_path,
        0,
        "0 indexed, 0 already indexed, 0 rejected",
    );
    store
        .put(
            RequestId::generate(),
            &kit::synthetic_event(&kit::golden_keys(), 3),
        )
        .unwrap();
    ingest_reports(
        &db,
        &store_path,
        0,
        "1 indexed, 0 already indexed, 0 rejected",
    );

    // A new, smaller store under the same path is read from its start.
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", store_path.display()));
    }
    let store = SqliteStore::open(&store_path).unwrap();
    store
        .put(RequestId::generate(), &kit::lookup_events()[0])
        .unwrap();
    ingest_reports(
        &db,
        &store_path,
        0,
        "0 indexed, 1 already indexed, 0 rejected",
    );
}

#[test]
fn a_file_that_is_no_signer_store_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_store = dir.path().join("notes.txt");
    std::fs::write(&not_a_store, "not a database, just text\n".repeat(200)).unwrap();
    // An SQLite file with an `events` table of another shape: a lookup index.
    let other_db = dir.path().join("other.sqlite");
    provenance_lookup::Index::open(&other_db).unwrap();
    for path in [not_a_store, other_db, dir.path().join("missing.sqlite")] {
        let (code, stdout, stderr) = ingest(&dir.path().join("lookup.sqlite"), &path);
        assert_eq!(code, Some(2), "{stdout}{stderr}");
        assert!(
            stderr.contains("is not a readable provenance signer store"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn serve_follows_a_signer_store() {
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("events.sqlite");
    let store = SqliteStore::open(&store_path).unwrap();
    let db = dir.path().join("lookup.sqlite");
    // Nobody reads the server's reports: a closed standard output must not stop it.
    let (mut server, addr) = serve_with(
        &[
            db.as_os_str(),
            "--signer-db".as_ref(),
            store_path.as_os_str(),
            "--poll".as_ref(),
            "1".as_ref(),
        ],
        false,
    );
    assert_eq!(
        lookup(&addr, kit::LOOKUP_PARAGRAPH)["matches"],
        serde_json::json!([])
    );
    // Signed after the server started, one at a time: each is found at a later poll (the
    // second shows that following went on after the first poll that found something).
    for (ev, text) in kit::lookup_events()
        .into_iter()
        .zip([kit::LOOKUP_PARAGRAPH, kit::LOOKUP_OTHER])
    {
        store.put(RequestId::generate(), &ev).unwrap();
        let started = Instant::now();
        loop {
            let v = lookup(&addr, text);
            if v["matches"].as_array().is_some_and(|m| !m.is_empty()) {
                assert_eq!(v["matches"][0]["coverage"]["fraction"], 1.0);
                break;
            }
            assert!(
                server.0.try_wait().unwrap().is_none(),
                "the server stopped while following the store"
            );
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "never found: {v}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
