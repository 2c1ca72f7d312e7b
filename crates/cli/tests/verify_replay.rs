//! `provenance verify` reports replay as a claim, on the real portable llama-server and the
//! golden fixtures: with `--llama-server` the fixture replays (`generation.replay.match`,
//! exit 0) and a record claiming another seed diverges (`generation.replay.diverged`, exit 1);
//! without it a record with a replay section gets `generation.replay.unknown`; and a replay
//! published with `replay --label` is counted by `verify --labels` as an independent replay.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

#[allow(dead_code)] // Each test file uses part of it.
mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::golden::{Case, text};
use provenance::event::{Limits, parse_event, sign};
use provenance::{Keys, clock::SystemClock};
use provenance_harness::llama_server_path;
use serde_json::{Value, json};

fn case() -> Case {
    Case::new("verify-replay")
}

fn provenance(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_provenance"))
        .args(args)
        .output()
        .unwrap()
}

/// `verify EVENT --model --prompt --salt [--llama-server BIN] EXTRA...`.
fn verify(case: &Case, event: &Path, engine: bool, extra: &[&str]) -> Output {
    let binary = llama_server_path().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_provenance"));
    command
        .arg("verify")
        .arg(event)
        .arg("--model")
        .arg(&case.model)
        .arg("--prompt")
        .arg(&case.prompt)
        .args(["--salt", &case.salt, "--no-cache"]);
    if engine {
        command.arg("--llama-server").arg(binary);
    }
    command.args(extra).output().unwrap()
}

/// The claims of the one verdict in `--json` output.
fn claims(out: &Output) -> Vec<Value> {
    let verdict = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["type"] == "verdict")
        .unwrap_or_else(|| panic!("{}{}", text(&out.stdout), text(&out.stderr)));
    verdict["data"]["claims"].as_array().unwrap().clone()
}

fn claim<'a>(claims: &'a [Value], code: &str) -> &'a Value {
    claims
        .iter()
        .find(|c| c["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {claims:?}"))
}

#[test]
fn verify_replays_the_golden_answer_and_catches_a_claimed_other_seed() {
    let case = case();
    let event = case.tmp.write("event.json", case.event.as_bytes());

    // Without an engine: not replayed, said so, and the event still holds.
    let out = verify(&case, &event, false, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let found = claims(&out);
    let unknown = claim(&found, "generation.replay.unknown");
    assert_eq!(unknown["status"], "unknown");
    assert_eq!(
        unknown["detail"],
        "not replayed here; run provenance replay or verify --llama-server"
    );

    // With the recorded engine: replayed here, token for token.
    let out = verify(&case, &event, true, &["--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let found = claims(&out);
    let matched = claim(&found, "generation.replay.match");
    assert_eq!(matched["status"], "proven");
    let detail = matched["detail"].as_str().unwrap();
    assert!(detail.contains("32 output token ids identical"), "{detail}");
    assert!(
        !found
            .iter()
            .any(|c| c["code"] == "generation.replay.unknown"),
        "{found:?}"
    );
    // The text report has the claim's line: status, code, detail.
    let out = verify(&case, &event, true, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.lines().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.starts_with(&[
                "proven",
                "generation.replay.match",
                "replayed",
                "here:",
                "32",
            ])
        }),
        "{stdout}"
    );

    // The record claims seed 43; the answer came from 42.
    let other = case.resigned("other-seed.json", |r| {
        r.replay
            .as_mut()
            .unwrap()
            .settings
            .insert("seed".into(), json!(43));
    });
    let out = verify(&case, &other, true, &["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let found = claims(&out);
    let diverged = claim(&found, "generation.replay.diverged");
    assert_eq!(diverged["status"], "failed");
    let detail = diverged["detail"].as_str().unwrap();
    assert!(
        detail.contains("; position ")
            && detail.contains(", recorded ")
            && detail.contains(", replayed "),
        "{detail}"
    );

    // Another engine binary (one more byte): refused, never replayed as if recorded.
    let binary = std::fs::read(llama_server_path().unwrap()).unwrap();
    let changed = case.tmp.path("llama-server-other");
    std::fs::write(&changed, [binary.as_slice(), b"\0"].concat()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&changed, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_provenance"))
        .arg("verify")
        .arg(&event)
        .arg("--model")
        .arg(&case.model)
        .arg("--prompt")
        .arg(&case.prompt)
        .args(["--salt", &case.salt, "--json", "--llama-server"])
        .arg(&changed)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let found = claims(&out);
    let refused = claim(&found, "generation.replay.refused");
    assert_eq!(refused["status"], "unknown");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("is not the recorded"),
        "{refused}"
    );

    // --llama-server without the prompt: one clear line from the argument parser.
    let out = provenance(&[
        "verify",
        event.to_str().unwrap(),
        "--llama-server",
        "llama-server",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--model"),
        "{}",
        text(&out.stderr)
    );
}

/// A key file in the case's directory holding `keys`, mode 0600.
fn key_file(case: &Case, name: &str, keys: &Keys) -> String {
    use provenance::nostr::prelude::ToBech32;
    let path = case
        .tmp
        .write_str(name, keys.secret_key().to_bech32().unwrap().as_bytes());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

/// `replay EVENT --model --prompt --salt --llama-server BIN --label EXTRA...`, on a blocking
/// thread (the relay runs on this test's runtime).
async fn replay_label(case: &Case, event: &Path, extra: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_provenance"));
    command
        .arg("replay")
        .arg(event)
        .arg("--model")
        .arg(&case.model)
        .arg("--prompt")
        .arg(&case.prompt)
        .args(["--salt", &case.salt, "--label", "--llama-server"])
        .arg(llama_server_path().unwrap())
        .args(extra);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// `replay --label` signs a `replay.match` label naming the engine binary, printed or
/// published; `verify --labels` counts the replays of labellers other than the author, once
/// per labeller, and says how many of the author's own it left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_replay_label_is_counted_as_an_independent_replay() {
    use provenance_relay::testing::MockRelay;

    let case = case();
    let relay = MockRelay::start().await.unwrap();
    // The golden record signed by a key this test holds, so that its author can label it too.
    let author = Keys::generate();
    let event = parse_event(case.event.trim(), &Limits::default()).unwrap();
    let record = provenance::event::verify(&event).record().unwrap().clone();
    let event = sign(&record, &author, &SystemClock).unwrap();
    let event_file = case.tmp.write("event.json", event.as_json().as_bytes());

    // An auditor replays and publishes the label to the relay (--json: the label is in the
    // report, with the relay's answer).
    let auditor = key_file(&case, "auditor.nsec", &Keys::generate());
    let out = replay_label(
        &case,
        &event_file,
        &["--key", &auditor, "--relay", relay.url(), "--json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let label = &report["label"];
    assert_eq!(label["relays"][0]["accepted"], true, "{report}");
    assert_eq!(label["event"]["kind"], 1985);
    let tags = label["event"]["tags"].to_string();
    assert!(
        tags.contains(r#"["l","replay.match","provenance.audit"]"#)
            && tags.contains(&format!(r#"["e","{}""#, event.id.to_hex()))
            && tags.contains(&format!(r#"["p","{}"]"#, event.pubkey.to_hex())),
        "{tags}"
    );
    let engine = report["engine"]["binary_sha256"].as_str().unwrap();
    let content = label["event"]["content"].as_str().unwrap();
    assert!(
        content.contains(&format!("llama-server binary sha256 {engine}"))
            && content.contains("32 output token ids identical"),
        "{content}"
    );

    // Another auditor replays without a relay: the label is the last line of stdout, a
    // genuine label event about the answer, published here by hand.
    let second = key_file(&case, "second.nsec", &Keys::generate());
    let out = replay_label(&case, &event_file, &["--key", &second]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("replay MATCH"), "{stdout}");
    let line = stdout.trim_end().lines().last().unwrap();
    let printed = parse_event(line, &Limits::default()).unwrap();
    provenance::label::verify_label(&printed, &event.id, &mut Default::default()).unwrap();
    let reports = provenance_relay::publish(
        &[relay.url().to_owned()],
        &printed,
        &provenance_relay::Options::default(),
    )
    .await;
    assert!(reports[0].outcome.as_ref().unwrap().accepted);
    // The same auditor again, and the author: neither adds an independent replay.
    let out = replay_label(
        &case,
        &event_file,
        &["--key", &second, "--relay", relay.url()],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let own = key_file(&case, "author.nsec", &author);
    let out = replay_label(&case, &event_file, &["--key", &own, "--relay", relay.url()]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let url = relay.url().to_owned();
    let file = event_file.clone();
    let out = tokio::task::spawn_blocking(move || {
        provenance(&[
            "verify",
            file.to_str().unwrap(),
            "--labels",
            "--relay",
            &url,
            "--json",
        ])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let found = claims(&out);
    let counted = claim(&found, "label.replay.independent");
    assert_eq!(counted["status"], "unknown");
    assert_eq!(
        counted["detail"],
        "2 independent replays by labellers other than the author: 2 replay.match \
         (0 by trusted labellers); 1 replay label by the event's author not counted"
    );
    // Each label is still reported on its own.
    let each = found
        .iter()
        .filter(|c| c["code"] == "label.audit.untrusted")
        .count();
    assert_eq!(each, 4, "{found:?}");
}
