//! `provenance verify` against relays: a query by author and time verified as events stream
//! in, misbehaving relays in a query, and NIP-32 audit labels published with
//! `provenance label` and collected by `verify`.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

#[allow(dead_code)] // Each test file uses part of it.
mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use provenance::nostr::prelude::ToBech32;
use provenance::{Event, Keys, nip19};
use provenance_fixtures::generate::{EventGenerator, SIGNERS};
use provenance_relay::testing::{Behaviour, MockRelay, ScriptedRelay};
use serde_json::Value;

use common::Tmp;

fn provenance(args: Vec<String>) -> (Option<i32>, Vec<Value>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_provenance"))
        .args(&args)
        .output()
        .unwrap();
    let msgs = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (o.status.code(), msgs, String::from_utf8(o.stderr).unwrap())
}

async fn run(args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || provenance(args))
        .await
        .unwrap()
}

async fn publish(relay: &str, ev: &Event) {
    let reports = provenance_relay::publish(
        &[relay.to_owned()],
        ev,
        &provenance_relay::Options::default(),
    )
    .await;
    let ack = reports[0].outcome.as_ref().expect("relay answered");
    assert!(ack.accepted, "relay refused: {}", ack.message);
}

fn verdicts(msgs: &[Value]) -> Vec<&Value> {
    msgs.iter().filter(|m| m["type"] == "verdict").collect()
}

/// A key file in `t` holding `keys`, mode 0600.
fn key_file(t: &Tmp, name: &str, keys: &Keys) -> String {
    let path = t.write_str(name, keys.secret_key().to_bech32().unwrap().as_bytes());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_by_author_and_time_verifies_what_the_relays_send() {
    let relay = MockRelay::start().await.unwrap();
    let generator = EventGenerator::new();
    // Events 0, 16, 32, ... are by signer 0; the rest by others.
    for i in 0..(4 * SIGNERS) {
        publish(relay.url(), &generator.event(i)).await;
    }
    let author = nip19::encode_npub(&generator.keys()[0].public_key());
    let (code, msgs, err) = run(&[
        "verify",
        "--json",
        "--relay",
        relay.url(),
        "--author",
        &author,
    ])
    .await;
    assert_eq!(code, Some(0), "{err}");
    let found = verdicts(&msgs);
    assert_eq!(found.len(), 4, "{msgs:?}");
    assert!(found.iter().all(|v| v["data"]["holds"] == true));
    assert_eq!(msgs.last().unwrap()["data"]["verified"], 4);

    // --since/--until narrow it (created_at of event i is CREATED_AT + i).
    let since = (provenance_fixtures::CREATED_AT + SIGNERS).to_string();
    let until = (provenance_fixtures::CREATED_AT + 2 * SIGNERS).to_string();
    let (code, msgs, _) = run(&[
        "verify",
        "--json",
        "--relay",
        relay.url(),
        "--author",
        &author,
        "--since",
        &since,
        "--until",
        &until,
    ])
    .await;
    assert_eq!(code, Some(0));
    assert_eq!(verdicts(&msgs).len(), 2, "{msgs:?}");

    // The same event from two relays is reported once.
    let (code, msgs, _) = run(&[
        "verify",
        "--json",
        "--relay",
        relay.url(),
        "--relay",
        relay.url(),
        "--author",
        &author,
    ])
    .await;
    assert_eq!(code, Some(0));
    assert_eq!(verdicts(&msgs).len(), 4);

    // --author without --relay is a usage error.
    let (code, _, _) = run(&["verify", "--author", &author]).await;
    assert_eq!(code, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flooding_and_stalling_relays_in_a_query_are_item_errors() {
    let good = MockRelay::start().await.unwrap();
    let generator = EventGenerator::new();
    publish(good.url(), &generator.event(0)).await;
    let flood = ScriptedRelay::start(Behaviour::Flood { events: 50 })
        .await
        .unwrap();
    let silent = ScriptedRelay::start(Behaviour::Silent).await.unwrap();
    let author = generator.keys()[0].public_key().to_hex();
    let (code, msgs, err) = run(&[
        "verify",
        "--json",
        "--timeout",
        "2",
        "--relay",
        good.url(),
        "--relay",
        flood.url(),
        "--relay",
        silent.url(),
        "--author",
        &author,
    ])
    .await;
    // The flood's made-up events fail, the silent relay is an error: errors win.
    assert_eq!(code, Some(2), "{err}");
    let s = &msgs.last().unwrap()["data"];
    assert_eq!(s["verified"], 1, "{msgs:?}");
    assert_eq!(s["failed"], 50);
    assert_eq!(s["errors"], 1);
    let error = msgs.iter().find(|m| m["type"] == "error").unwrap();
    assert_eq!(error["data"]["input"], silent.url());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_are_published_and_reported_by_trust() {
    let t = Tmp::new("labels");
    let relay = MockRelay::start().await.unwrap();
    let ev = EventGenerator::new().event(7);
    publish(relay.url(), &ev).await;
    let event_file = t.write_str("event.json", ev.as_json().as_bytes());
    let auditor = Keys::generate();
    let stranger = Keys::generate();
    let auditor_key = key_file(&t, "auditor.nsec", &auditor);
    let stranger_key = key_file(&t, "stranger.nsec", &stranger);

    let (code, msgs, err) = run(&[
        "label",
        &event_file,
        "--label",
        "weights.match",
        "--detail",
        "sha256 and tensor root recomputed from the published GGUF",
        "--key",
        &auditor_key,
        "--relay",
        relay.url(),
        "--json",
    ])
    .await;
    assert_eq!(code, Some(0), "{err}");
    let label = &msgs[0]["data"];
    assert_eq!(label["relays"][0]["accepted"], true);
    assert_eq!(label["event"]["kind"], 1985);
    let tags = label["event"]["tags"].to_string();
    assert!(
        tags.contains(r#"["l","weights.match","provenance.audit"]"#),
        "{tags}"
    );
    assert!(
        tags.contains(&format!(r#"["p","{}"]"#, ev.pubkey.to_hex())),
        "{tags}"
    );

    // A label by someone else, about the event by nevent.
    let nevent = nip19::Nevent {
        id: ev.id,
        relays: vec![relay.url().to_owned()],
        author: None,
        kind: None,
    }
    .encode()
    .unwrap();
    let (code, _, err) = run(&[
        "label",
        &nevent,
        "--label",
        "replay.mismatch",
        "--key",
        &stranger_key,
        "--relay",
        relay.url(),
    ])
    .await;
    assert_eq!(code, Some(0), "{err}");

    let trusted = t.write_str(
        "labellers.txt",
        format!(
            "auditor@example.org {}\n",
            nip19::encode_npub(&auditor.public_key())
        )
        .as_bytes(),
    );
    let (code, msgs, err) = run(&[
        "verify",
        &event_file,
        "--json",
        "--relay",
        relay.url(),
        "--trust-labellers",
        &trusted,
    ])
    .await;
    assert_eq!(code, Some(0), "{err}");
    let claims = msgs[0]["data"]["claims"].as_array().unwrap();
    let trusted_claim = claims
        .iter()
        .find(|c| c["code"] == "label.audit.trusted")
        .unwrap_or_else(|| panic!("{claims:?}"));
    assert_eq!(trusted_claim["status"], "asserted");
    let detail = trusted_claim["detail"].as_str().unwrap();
    assert!(
        detail.contains("auditor@example.org") && detail.contains("weights.match"),
        "{detail}"
    );
    let untrusted = claims
        .iter()
        .find(|c| c["code"] == "label.audit.untrusted")
        .unwrap();
    assert_eq!(untrusted["status"], "unknown");
    assert!(
        untrusted["detail"]
            .as_str()
            .unwrap()
            .contains("replay.mismatch")
    );
    // A third party's "mismatch" is not a failed check of ours.
    assert_eq!(msgs[0]["data"]["holds"], true);

    // Without --labels, no label claims.
    let (_, msgs, _) = run(&["verify", &event_file, "--json", "--relay", relay.url()]).await;
    assert!(!msgs[0].to_string().contains("label.audit"));

    // A tampered event file is refused as a label target.
    let mut forged: Value = serde_json::from_str(&ev.as_json()).unwrap();
    forged["content"] = Value::from("{}");
    let forged_file = t.write_str("forged.json", forged.to_string().as_bytes());
    let (code, _, err) = run(&[
        "label",
        &forged_file,
        "--label",
        "weights.match",
        "--key",
        &auditor_key,
    ])
    .await;
    assert_eq!(code, Some(2));
    assert!(err.contains("does not verify"), "{err}");
    // So is a bad label value.
    let (code, _, err) = run(&[
        "label",
        &event_file,
        "--label",
        "Weights Match",
        "--key",
        &auditor_key,
    ])
    .await;
    assert_eq!(code, Some(2));
    assert!(err.contains("label value"), "{err}");
}
