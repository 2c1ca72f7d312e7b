//! `verify --trust` with NIP-05 names written without a key: looked up (here from an HTTP
//! server on loopback) when the run starts, and said so in the signer claim.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

#[allow(dead_code)] // Each test file uses part of it.
mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};

use common::Tmp;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_provenance");
/// A valid key that did not sign the golden events.
const OTHER: &str = "b0635d6a9851d3aed0cd6c495b282167acf761729078d975fc341b22650b07b9";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The golden minimal event, as a file, and its author's hex key.
fn golden_event(t: &Tmp) -> (String, String) {
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("fixtures/events/valid/minimal.json")).unwrap(),
    )
    .unwrap();
    let event = &fixture["event"];
    let path = t.write_str("event.json", event.to_string().as_bytes());
    (path, event["pubkey"].as_str().unwrap().to_owned())
}

/// Serves `body` as `nostr.json` to each of `connections` requests on loopback, in a thread;
/// returns the address.
fn nostr_json_server(body: String, connections: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let mut stream = stream.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

fn verify(args: &[&str]) -> Output {
    Command::new(BIN).arg("verify").args(args).output().unwrap()
}

#[test]
fn a_nip05_name_in_the_trust_list_is_looked_up_and_said_so() {
    let t = Tmp::new("nip05");
    let (event, author) = golden_event(&t);
    let addr = nostr_json_server(
        format!(r#"{{"names":{{"operator":"{author}","other":"{OTHER}"}}}}"#),
        2,
    );
    let trust = t.write_str(
        "trust.txt",
        format!("operator@{addr}  # our box\n").as_bytes(),
    );
    let o = verify(&["--json", &event, "--trust", &trust]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let verdict: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let claim = verdict["data"]["claims"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "signer.trust.listed")
        .unwrap_or_else(|| panic!("no signer.trust.listed claim: {out}"));
    let detail = claim["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("operator@{addr}")) && detail.contains("looked up over NIP-05"),
        "{detail}"
    );

    // The domain names somebody else: the signer is not on the list.
    let trust = t.write_str("other.txt", format!("other@{addr}\n").as_bytes());
    let o = verify(&[&event, "--trust", &trust]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("signer.trust.unlisted"));
}

#[test]
fn a_name_that_does_not_resolve_is_an_error_naming_the_line() {
    let t = Tmp::new("nip05-missing");
    let (event, author) = golden_event(&t);
    let addr = nostr_json_server(format!(r#"{{"names":{{"operator":"{author}"}}}}"#), 1);
    let trust = t.write_str("trust.txt", format!("{author}\nnobody@{addr}\n").as_bytes());
    let o = verify(&[&event, "--trust", &trust]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("trust.txt:2:") && err.contains("has no key for \"nobody\""),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
