//! `provenance attest verify nevent1... | note1... | <hex id>`: the attestation event fetched
//! from real relays (the in-process mock relay and nostr-rs-relay), then verified like a file.
//! The event is synthetic, made under the test root of `fixtures/attest/test-root/`.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::path::PathBuf;
use std::process::{Command, Output};

use nostr::prelude::{Event, Keys, Timestamp};
use provenance::nip19;
use provenance_attest::binding;
use provenance_attest::bundle::{Evidence, Platform};
use provenance_attest::testing::{MEASUREMENT, SyntheticReport, TestChain};
use provenance_relay::testing::{Behaviour, Frame, MockRelay, NostrRsRelay, ScriptedRelay};
use serde_json::Value;

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/attest")
        .join(rel)
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

/// An attestation event over a synthetic report binding a new key, taken a minute ago.
fn attestation() -> Event {
    let chain = TestChain::load(&fixture("test-root")).unwrap();
    let keys = Keys::generate();
    let nonce = [0x55; 32];
    let r = SyntheticReport {
        report_data: binding::report_data(&keys.public_key().to_bytes(), &nonce),
        ..SyntheticReport::default()
    };
    let mut ev = Evidence::new(Platform::SevSnp, &r.sign(&chain.key), &nonce);
    ev.vcek = Some(hex::encode(&chain.vcek_der));
    let now = Timestamp::now().as_secs();
    provenance_attest::event::sign(&ev, &keys, Timestamp::from(now - 60)).unwrap()
}

fn nevent(ev: &Event, relays: &[&str]) -> String {
    nip19::Nevent {
        id: ev.id,
        relays: relays.iter().map(|r| (*r).to_owned()).collect(),
        author: Some(ev.pubkey),
        kind: Some(1989),
    }
    .encode()
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

/// `attest verify` under the test root, with the synthetic measurement expected.
fn verify(args: &[&str]) -> Output {
    let (ark, ask) = (fixture("test-root/ark.pem"), fixture("test-root/ask.pem"));
    let m = hex::encode(MEASUREMENT);
    let timeout: &[&str] = if args.contains(&"--timeout") {
        &[]
    } else {
        &["--timeout", "5"]
    };
    Command::new(env!("CARGO_BIN_EXE_provenance"))
        .args(["attest", "verify"])
        .args(timeout)
        .args(["--snp-root", ark.to_str().unwrap()])
        .args(["--snp-ask", ask.to_str().unwrap()])
        .args(["--measurement", &m])
        .args(args)
        .output()
        .unwrap()
}

async fn verify_in_background(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        verify(&args)
    })
    .await
    .unwrap()
}

fn verdict(o: &Output) -> String {
    text(&o.stdout)
        .trim_end()
        .lines()
        .last()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nevent_is_fetched_from_its_relay_hint_and_verified_like_a_file() {
    let relay = MockRelay::start().await.unwrap();
    let ev = attestation();
    publish(relay.url(), &ev).await;
    let input = nevent(&ev, &[relay.url()]);
    let o = verify_in_background(vec![input.clone()]).await;
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    assert!(
        out.contains(&format!("proven   event       attestation event {}", ev.id)),
        "{out}"
    );
    assert!(
        verdict(&o).starts_with(&format!("{input} (from {}): TEE claim proven", relay.url())),
        "{out}"
    );

    // The same through a hex id and --relay, in JSON: the summary names the relay.
    let o = verify_in_background(vec![
        "--json".into(),
        "--relay".into(),
        relay.url().into(),
        ev.id.to_hex(),
    ])
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let last: Value = serde_json::from_str(&verdict(&o)).unwrap();
    assert_eq!(last["type"], "summary");
    assert_eq!(last["data"]["status"], "proven");
    assert_eq!(
        last["data"]["input"],
        format!("{} (from {})", ev.id.to_hex(), relay.url())
    );

    // Not there: exit 2, one line naming the relay asked.
    let missing = attestation();
    let o = verify_in_background(vec![nevent(&missing, &[relay.url()])]).await;
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "attestation event {} not found on 1 relay: {}",
            missing.id,
            relay.url()
        )),
        "{err}"
    );
    assert!(text(&o.stdout).is_empty());
}

#[test]
fn a_note_is_fetched_from_nostr_rs_relay() {
    let relay = NostrRsRelay::start().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ev = attestation();
    rt.block_on(publish(relay.url(), &ev));
    let note = nip19::encode_note(&ev.id);
    let o = verify(&["--relay", relay.url(), &note]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    assert!(out.contains("proven   binding"), "{out}");
    assert!(
        verdict(&o).contains(&format!("(from {}): TEE claim proven", relay.url())),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_serving_a_forgery_cannot_hide_the_real_attestation() {
    let good = MockRelay::start().await.unwrap();
    let ev = attestation();
    publish(good.url(), &ev).await;
    // The liar answers first with an event that claims the same id but was altered.
    let mut forged: Value = serde_json::from_str(&serde_json::to_string(&ev).unwrap()).unwrap();
    forged["created_at"] = Value::from(ev.created_at.as_secs() + 1);
    let liar = ScriptedRelay::start(Behaviour::Script(vec![
        Frame::Text(format!(r#"["EVENT","$SUB",{forged}]"#)),
        Frame::Text(r#"["EOSE","$SUB"]"#.to_owned()),
    ]))
    .await
    .unwrap();
    let o = verify_in_background(vec![nevent(&ev, &[liar.url(), good.url()])]).await;
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    assert!(
        verdict(&o).contains(&format!("(from {}): TEE claim proven", good.url())),
        "{out}"
    );

    // Only the liar: the forgery is verified and fails its event step (exit 1).
    let o = verify_in_background(vec![
        "--relay".into(),
        liar.url().into(),
        nip19::encode_note(&ev.id),
    ])
    .await;
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}{}", text(&o.stderr));
    assert!(
        out.lines().any(|l| l.starts_with("failed   event")),
        "{out}"
    );
    assert!(
        verdict(&o).contains("TEE claim not proven (sev-snp): event failed"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetched_event_that_does_not_hold_exits_1_as_a_file_would() {
    let relay = MockRelay::start().await.unwrap();
    let ev = attestation();
    publish(relay.url(), &ev).await;
    // A challenge the event's nonce is not: fetched, verified, the freshness step fails.
    let o = verify_in_background(vec![
        "--challenge".into(),
        "00".repeat(32),
        nevent(&ev, &[relay.url()]),
    ])
    .await;
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}{}", text(&o.stderr));
    assert!(
        out.contains("failed   freshness   evidence.nonce:"),
        "{out}"
    );
    assert!(out.contains("proven   binding"), "{out}");
}

#[test]
fn no_relay_to_ask_and_a_bad_nevent_are_errors_on_one_line() {
    let ev = attestation();
    for input in [nip19::encode_note(&ev.id), ev.id.to_hex()] {
        let o = verify(&[&input]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("no relay to ask"), "{err}");
    }
    let o = verify(&["nevent1qqqqqqqq"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("provenance: nevent1qqqqqqqq: "), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_relay_is_named_not_a_hang() {
    let silent = ScriptedRelay::start(Behaviour::Silent).await.unwrap();
    let ev = attestation();
    let started = std::time::Instant::now();
    let o = verify_in_background(vec![
        "--timeout".into(),
        "1".into(),
        "--relay".into(),
        silent.url().into(),
        nip19::encode_note(&ev.id),
    ])
    .await;
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("{} (", silent.url())), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}
