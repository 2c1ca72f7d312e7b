//! `provenance verify` on evidence and on parallel batches: weights (`--model`,
//! `--reference-model`), named trust lists, bad items among thousands of good ones, input
//! order of the output, `--quiet`.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

#[allow(dead_code)] // Each test file uses part of it.
mod common;

use std::path::Path;
use std::process::{Command, Output};

use provenance::clock::SystemClock;
use provenance::{Keys, Model, Output as RecordOutput, Record, event, nip19};
use provenance_fixtures::generate::EventGenerator;
use provenance_gguf::Hasher;
use provenance_gguf::write::{self, TinyLlama};
use serde_json::Value;

use common::Tmp;

fn verify(args: &[&str], stdin: &[u8]) -> (Option<i32>, Vec<Value>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_provenance"));
    command.arg("verify").args(args).env(
        "XDG_CACHE_HOME",
        std::env::temp_dir().join("provenance-verify-batch-cache"),
    );
    // The verifier may stop reading early (an error); that is not this test's concern.
    let (o, _written): (Output, _) = common::output_with_stdin(command, stdin);
    let text = String::from_utf8(o.stdout).unwrap();
    let msgs = if args.contains(&"--json") {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    } else {
        vec![Value::String(text)]
    };
    (o.status.code(), msgs, String::from_utf8(o.stderr).unwrap())
}

fn claim<'a>(verdict: &'a Value, prefix: &str) -> &'a Value {
    verdict["data"]["claims"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} claim in {verdict}"))
}

fn signed_for_model(weights: &[u8], keys: &Keys) -> provenance::Event {
    let id = Hasher::new().hash_bytes(weights).unwrap();
    let record = Record::new(
        RecordOutput::from_text("an answer from the tiny model"),
        Model {
            name: "tiny-llama".into(),
            sha256: Some(id.sha256),
            blake3: Some(id.blake3),
            tensor_root: Some(id.tensor_root),
            ..Model::default()
        },
    );
    event::sign(&record, keys, &SystemClock).unwrap()
}

#[test]
fn model_evidence_proves_weights_and_names_differing_tensors() {
    let t = Tmp::new("model");
    let recorded = write::tiny_llama(&TinyLlama::default()).build();
    let other = write::tiny_llama(&TinyLlama {
        seed: 99,
        ..TinyLlama::default()
    })
    .build();
    let recorded_path = t.write_str("recorded.gguf", &recorded);
    let other_path = t.write_str("other.gguf", &other);
    let ev = t.write_str(
        "event.json",
        signed_for_model(&recorded, &Keys::generate())
            .as_json()
            .as_bytes(),
    );

    let (code, msgs, err) = verify(&[&ev, "--json", "--model", &recorded_path], b"");
    assert_eq!(code, Some(0), "{err}");
    let c = claim(&msgs[0], "model.digest");
    assert_eq!(c["code"], "model.digest.match");
    assert_eq!(c["status"], "proven");
    assert!(c["detail"].as_str().unwrap().contains("tensor_root"), "{c}");

    // Other weights: failed, with a hint; with the reference, the tensors are named.
    let (code, msgs, _) = verify(&[&ev, "--json", "--model", &other_path], b"");
    assert_eq!(code, Some(1));
    let c = claim(&msgs[0], "model.digest");
    assert_eq!(c["code"], "model.digest.mismatch");
    assert!(
        c["detail"].as_str().unwrap().contains("--reference-model"),
        "{c}"
    );
    let (code, msgs, _) = verify(
        &[
            &ev,
            "--json",
            "--no-cache",
            "--model",
            &other_path,
            "--reference-model",
            &recorded_path,
        ],
        b"",
    );
    assert_eq!(code, Some(1));
    let detail = claim(&msgs[0], "model.digest")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        detail.contains("differ from the reference") && detail.contains("token_embd.weight"),
        "{detail}"
    );

    // A reference that is not the recorded model cannot name anything.
    let (_, msgs, _) = verify(
        &[
            &ev,
            "--json",
            "--model",
            &recorded_path,
            "--reference-model",
            &other_path,
        ],
        b"",
    );
    assert_eq!(
        claim(&msgs[0], "model.digest")["code"],
        "model.digest.match"
    );
    let (_, msgs, _) = verify(
        &[
            &ev,
            "--json",
            "--model",
            &other_path,
            "--reference-model",
            &other_path,
        ],
        b"",
    );
    assert!(
        claim(&msgs[0], "model.digest")["detail"]
            .as_str()
            .unwrap()
            .contains("does not have the recorded digests either")
    );

    // Not a GGUF file: a usage error before any event is read.
    let (code, _, err) = verify(&[&ev, "--model", &ev], b"");
    assert_eq!(code, Some(2));
    assert!(err.contains("provenance: --model"), "{err}");
}

#[test]
fn trust_list_names_are_shown_and_pinned() {
    let t = Tmp::new("trust");
    let keys = Keys::generate();
    let ev = t.write_str(
        "event.json",
        event::sign(
            &Record::new(RecordOutput::from_text("hi"), Model::named("m")),
            &keys,
            &SystemClock,
        )
        .unwrap()
        .as_json()
        .as_bytes(),
    );
    let list = format!(
        "# auditors' list\nalice@example.com {}  # pinned\n{}\n",
        nip19::encode_npub(&keys.public_key()),
        Keys::generate().public_key().to_hex()
    );
    let trust = t.write_str("trust.txt", list.as_bytes());
    let (code, msgs, err) = verify(&[&ev, "--json", "--trust", &trust], b"");
    assert_eq!(code, Some(0), "{err}");
    let c = claim(&msgs[0], "signer.trust");
    assert_eq!(c["code"], "signer.trust.listed");
    assert!(
        c["detail"].as_str().unwrap().contains("alice@example.com"),
        "{c}"
    );

    let bad = t.write_str("bad.txt", b"alice@example.com npub1 extra\n");
    let (code, _, err) = verify(&[&ev, "--trust", &bad], b"");
    assert_eq!(code, Some(2));
    assert!(err.contains("bad.txt:1"), "{err}");
}

/// Thousands of events over several chunks, with one bad item of every kind among them:
/// every item gets its own result, in input order, and the batch finishes.
#[test]
fn parallel_batch_keeps_order_and_survives_bad_items() {
    let generator = EventGenerator::new();
    let good = 5000u64;
    let mut input = Vec::new();
    let mut expected = Vec::new(); // (line, what)
    let mut line = 0;
    for i in 0..good {
        line += 1;
        let mut json = generator.event(i).as_json();
        let what = match i {
            100 => {
                json.truncate(json.len() / 2);
                "error"
            }
            2000 => {
                let created = provenance_fixtures::CREATED_AT + 2000;
                json = json.replacen(
                    &format!("\"created_at\":{created}"),
                    &format!("\"created_at\":{}", created + 1),
                    1,
                );
                "failed"
            }
            4500 => {
                input.extend_from_slice(b"{\"id\": \"\xff\xfe\"}\n");
                expected.push((line, "error"));
                line += 1;
                "ok"
            }
            _ => "ok",
        };
        input.extend_from_slice(json.as_bytes());
        input.push(b'\n');
        expected.push((line, what));
        if i == 3000 {
            line += 1;
            input.extend_from_slice(&vec![b'x'; 600 * 1024]);
            input.push(b'\n');
            expected.push((line, "error"));
        }
    }

    let (code, msgs, err) = verify(&["-", "--json", "--jobs", "2"], &input);
    assert_eq!(code, Some(2), "{err}");
    let (summary, items) = msgs.split_last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(items.len(), expected.len());
    for (msg, (line, what)) in items.iter().zip(&expected) {
        assert_eq!(msg["data"]["input"], format!("<stdin>:{line}"), "{msg}");
        let found = match (
            msg["type"].as_str().unwrap(),
            msg["data"]["holds"].as_bool(),
        ) {
            ("error", _) => "error",
            ("verdict", Some(true)) => "ok",
            ("verdict", Some(false)) => "failed",
            other => panic!("{other:?}"),
        };
        assert_eq!(found, *what, "line {line}: {msg}");
    }
    let s = &summary["data"];
    assert_eq!(s["events"], good - 1);
    assert_eq!(s["verified"], good - 2);
    assert_eq!(s["failed"], 1);
    assert_eq!(s["errors"], 3);
    assert_eq!(s["codes"]["event.id.mismatch"], 1);
    assert_eq!(s["codes"]["event.sig.valid"], good - 1);

    // --quiet: only what did not verify, then the summary, same exit status.
    let (code, msgs, _) = verify(&["-", "--json", "--quiet"], &input);
    assert_eq!(code, Some(2));
    let kinds: Vec<&str> = msgs.iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["error", "verdict", "error", "error", "summary"],
        "{msgs:?}"
    );

    // People's output ends with the totals and the failed codes.
    let (code, out, err) = verify(&["-", "--quiet"], &input);
    assert_eq!(code, Some(2));
    let text = out[0].as_str().unwrap();
    assert!(
        text.contains("4999 events: 4998 verified, 1 failed, 3 errors"),
        "{text}"
    );
    assert!(
        text.contains("failed claims: event.id.mismatch x1"),
        "{text}"
    );
    assert_eq!(err.lines().count(), 3, "{err}");
    assert!(
        err.lines().all(|l| l.starts_with("provenance: <stdin>:")),
        "{err}"
    );
}

#[test]
fn a_directory_batch_is_verified_in_file_and_line_order() {
    let t = Tmp::new("dir");
    let generator = EventGenerator::new();
    for (name, range) in [("b.jsonl", 10..20u64), ("a.jsonl", 0..10)] {
        let lines: Vec<String> = range.map(|i| generator.event(i).as_json()).collect();
        t.write_str(name, lines.join("\n").as_bytes());
    }
    let (code, msgs, err) = verify(&[t.dir().to_str().unwrap(), "--json"], b"");
    assert_eq!(code, Some(0), "{err}");
    let created: Vec<u64> = msgs
        .iter()
        .filter(|m| m["type"] == "verdict")
        .map(|m| index_of(m, &generator))
        .collect();
    assert_eq!(created, (0..20).collect::<Vec<_>>());
}

/// The index of a generated event from its id.
fn index_of(msg: &Value, generator: &EventGenerator) -> u64 {
    let id = msg["data"]["id"].as_str().unwrap();
    (0..20)
        .find(|&i| generator.event(i).id.to_hex() == id)
        .unwrap()
}

#[test]
fn generated_keys_are_the_signers() {
    let generator = EventGenerator::new();
    let path: &Path = Path::new("-");
    let lines: Vec<String> = (0..4).map(|i| generator.event(i).as_json()).collect();
    let (code, msgs, err) = verify(
        &[path.to_str().unwrap(), "--json"],
        lines.join("\n").as_bytes(),
    );
    assert_eq!(code, Some(0), "{err}");
    for (i, m) in msgs.iter().filter(|m| m["type"] == "verdict").enumerate() {
        assert_eq!(
            m["data"]["author"],
            generator.keys()[i].public_key().to_hex()
        );
    }
}
