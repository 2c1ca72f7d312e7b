//! `provenance serve --attest`: at start the server takes evidence binding its key through
//! configfs-tsm (here a fake tree in a temporary directory: no machine these tests run on
//! has a TEE), writes the attestation event, and every signed record references it.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod serve_common;

use std::fs;
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;

use provenance_attest::binding;
use provenance_attest::bundle::Evidence;
use provenance_attest::testing::{MEASUREMENT, SyntheticReport, TestChain};
use serde_json::{Value, json};
use serve_common::{canned_upstream, curl, header, read_request, serve};

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/attest")
        .join(rel)
}

/// Answers every chat request with one short answer, in the published OpenAI shape.
fn answer(mut stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    while read_request(&mut reader).is_some() {
        let body = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello."}, "finish_reason": "stop"}]})
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

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn serve_attest_binds_its_key_at_start_and_every_record_references_the_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let chain = TestChain::load(&fixture("test-root")).unwrap();
    // The fake configfs-tsm entry: the kernel would write a report over inblob; a canned
    // synthetic one (signed by the test VCEK, binding no key) stands in.
    let tsm = dir.path().join("tsm");
    let entry = tsm.join("provenance");
    fs::create_dir_all(&entry).unwrap();
    fs::write(entry.join("provider"), "sev_guest\n").unwrap();
    fs::write(entry.join("generation"), "1\n").unwrap();
    let canned = SyntheticReport::default().sign(&chain.key);
    fs::write(entry.join("outblob"), &canned).unwrap();
    let vcek = dir.path().join("vcek.der");
    fs::write(&vcek, &chain.vcek_der).unwrap();
    let att_path = dir.path().join("attestation.json");

    let port = canned_upstream(answer);
    let server = serve(
        dir.path(),
        &format!("http://127.0.0.1:{port}"),
        &[
            "--attest",
            "sev-snp",
            "--attest-tsm",
            s(&tsm),
            "--attest-vcek",
            s(&vcek),
            "--attest-out",
            s(&att_path),
        ],
    );
    let (status, headers, _) = curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"messages":[{"role":"user","content":"Hi"}]}"#,
        &format!("{}/v1/chat/completions", server.base),
    ]);
    assert_eq!(status, 200);
    let url = header(&headers, "provenance-event-url");
    let (status, _, event) = curl(&[&format!("{}{url}", server.base)]);
    assert_eq!(status, 200);
    let event: Value = serde_json::from_slice(&event).unwrap();
    let record: Value = serde_json::from_str(event["content"].as_str().unwrap()).unwrap();

    // The attestation event: kind 1989, by the server's key, carrying the report and VCEK.
    let att: Value = serde_json::from_slice(&fs::read(&att_path).unwrap()).unwrap();
    assert_eq!(att["kind"], 1989);
    assert_eq!(att["pubkey"], event["pubkey"]);
    let ev: Evidence = serde_json::from_str(att["content"].as_str().unwrap()).unwrap();
    assert_eq!(hex::decode(&ev.evidence).unwrap(), canned);
    assert_eq!(
        ev.vcek.as_deref(),
        Some(hex::encode(&chain.vcek_der).as_str())
    );
    // What the server wrote to inblob is the binding of its key and the event's nonce.
    let pubkey: [u8; 32] = hex::decode(event["pubkey"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let nonce: [u8; 32] = hex::decode(&ev.nonce).unwrap().try_into().unwrap();
    assert_eq!(
        fs::read(entry.join("inblob")).unwrap(),
        binding::report_data(&pubkey, &nonce)
    );
    // The record references the evidence by digest and the attestation event by id.
    let refs = record["attestations"].as_array().unwrap();
    assert_eq!(refs.len(), 1, "{record}");
    assert_eq!(refs[0]["kind"], "sev-snp");
    assert_eq!(
        refs[0]["sha256"],
        provenance::digest::sha256(&canned).to_string()
    );
    let note = refs[0]["uri"]
        .as_str()
        .unwrap()
        .trim_start_matches("nostr:");
    let id = provenance::nip19::decode_note(note).unwrap();
    assert_eq!(id.to_hex(), att["id"].as_str().unwrap());

    // Verified with the bundle: every step but the binding holds (the canned report binds no
    // key), so the TEE claim fails there; a real TEE would have written the binding.
    let record_path = dir.path().join("record.json");
    fs::write(&record_path, event.to_string()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_provenance"))
        .args([
            "verify",
            s(&record_path),
            "--json",
            "--attestation",
            s(&att_path),
            "--attest-snp-root",
            s(&fixture("test-root/ark.pem")),
            "--attest-snp-ask",
            s(&fixture("test-root/ask.pem")),
            "--attest-measurement",
            &hex::encode(MEASUREMENT),
        ])
        .output()
        .unwrap();
    let out = String::from_utf8(o.stdout).unwrap();
    let claim = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["type"] == "verdict")
        .unwrap()["data"]["claims"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"].as_str().unwrap().starts_with("attestation."))
        .cloned()
        .unwrap();
    assert_eq!(claim["code"], "attestation.evidence.failed", "{out}");
    assert!(
        claim["detail"].as_str().unwrap().contains("binding failed"),
        "{claim}"
    );
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn serve_attest_refuses_to_start_without_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let o = serve_common::serve_command(
        dir.path(),
        "http://127.0.0.1:9",
        &serve_common::model(),
        &[
            "--attest",
            "tdx",
            "--attest-tsm",
            s(&dir.path().join("none")),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(err.contains("--attest"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
