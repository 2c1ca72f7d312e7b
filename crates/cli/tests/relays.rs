//! End to end through real relays: publish an event, then `provenance verify nevent1...`
//! fetches it by the nevent's relay hint and verifies it.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::process::Command;

use provenance::clock::SystemClock;
use provenance::{Keys, Model, Output, Record, event, nip19};
use provenance_relay::testing::{Behaviour, Frame, MockRelay, NostrRsRelay, ScriptedRelay};
use serde_json::Value;

fn verify(args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_provenance"))
        .arg("verify")
        .arg("--json")
        .arg("--timeout")
        .arg("5")
        .args(args)
        .output()
        .unwrap();
    let msgs = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (o.status.code(), msgs, String::from_utf8(o.stderr).unwrap())
}

fn signed(text: &str) -> provenance::Event {
    let record = Record::new(Output::from_text(text), Model::named("gemma3:270m"));
    event::sign(&record, &Keys::generate(), &SystemClock).unwrap()
}

fn nevent(ev: &provenance::Event, relay: &str) -> String {
    nip19::Nevent {
        id: ev.id,
        relays: vec![relay.to_owned()],
        author: Some(ev.pubkey),
        kind: Some(1988),
    }
    .encode()
    .unwrap()
}

async fn publish(relay: &str, ev: &provenance::Event) {
    let reports = provenance_relay::publish(
        &[relay.to_owned()],
        ev,
        &provenance_relay::Options::default(),
    )
    .await;
    let ack = reports[0].outcome.as_ref().expect("relay answered");
    assert!(ack.accepted, "relay refused: {}", ack.message);
}

async fn verify_in_background(args: Vec<String>) -> (Option<i32>, Vec<Value>, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        verify(&args)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_nevent_from_mock_relay() {
    let relay = MockRelay::start().await.unwrap();
    let ev = signed("fetched from the in-process relay");
    publish(relay.url(), &ev).await;
    let (code, msgs, err) = verify_in_background(vec![nevent(&ev, relay.url())]).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(msgs[0]["type"], "verdict");
    assert_eq!(msgs[0]["data"]["id"], ev.id.to_hex());
    let codes: Vec<&str> = msgs[0]["data"]["claims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&"event.id.requested") && codes.contains(&"event.author.requested"),
        "{codes:?}"
    );

    // Not there: an error (exit 2), never a verdict.
    let missing = signed("never published");
    let (code, msgs, _) = verify_in_background(vec![nevent(&missing, relay.url())]).await;
    assert_eq!(code, Some(2));
    assert_eq!(msgs[0]["type"], "error");
    assert!(
        msgs[0]["data"]["message"]
            .as_str()
            .unwrap()
            .contains("not found"),
        "{msgs:?}"
    );
}

#[test]
fn verify_nevent_from_nostr_rs_relay() {
    let relay = NostrRsRelay::start().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ev = signed("fetched from nostr-rs-relay");
    rt.block_on(publish(relay.url(), &ev));
    let note = nip19::encode_note(&ev.id);
    let (code, msgs, err) = verify(&["--relay", relay.url(), &note]);
    assert_eq!(code, Some(0), "{err} {msgs:?}");
    assert_eq!(msgs[0]["data"]["holds"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_serving_a_forgery_cannot_hide_the_real_event() {
    let good = MockRelay::start().await.unwrap();
    let ev = signed("genuine");
    publish(good.url(), &ev).await;
    // The liar answers the REQ with an event that claims the same id but was altered.
    let mut forged: Value = serde_json::from_str(&ev.as_json()).unwrap();
    forged["created_at"] = Value::from(ev.created_at.as_secs() + 1);
    let liar = ScriptedRelay::start(Behaviour::Script(vec![
        Frame::Text(format!(r#"["EVENT","$SUB",{forged}]"#)),
        Frame::Text(r#"["EOSE","$SUB"]"#.to_owned()),
    ]))
    .await
    .unwrap();
    let (code, msgs, err) = verify_in_background(vec![
        "--relay".into(),
        liar.url().into(),
        "--relay".into(),
        good.url().into(),
        nip19::encode_note(&ev.id),
    ])
    .await;
    assert_eq!(code, Some(0), "{err} {msgs:?}");
    assert_eq!(msgs[0]["data"]["holds"], true);

    // Only the liar: the forgery is reported as failing, exit 1.
    let (code, msgs, _) = verify_in_background(vec![
        "--relay".into(),
        liar.url().into(),
        nip19::encode_note(&ev.id),
    ])
    .await;
    assert_eq!(code, Some(1), "{msgs:?}");
    let failed: Vec<&str> = msgs[0]["data"]["claims"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "failed")
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert!(
        failed.contains(&"event.id.mismatch") && failed.contains(&"event.id.unrequested"),
        "{failed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_relay_is_an_error_not_a_hang() {
    let silent = ScriptedRelay::start(Behaviour::Silent).await.unwrap();
    let ev = signed("x");
    let started = std::time::Instant::now();
    let (code, _, err) = verify_in_background(vec![
        "--timeout".into(),
        "1".into(),
        "--relay".into(),
        silent.url().into(),
        nip19::encode_note(&ev.id),
    ])
    .await;
    assert_eq!(code, Some(2), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert!(
        err.contains("timed out") || err.contains("timeout"),
        "{err}"
    );
}
