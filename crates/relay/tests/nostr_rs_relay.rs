//! End to end against an independent relay implementation, nostr-rs-relay 0.8.12, run as a
//! child process on loopback. Build it first with `.ci/nostr-rs-relay.sh`; without the binary
//! this test fails and says so (it is never skipped).

// Tests fail by panicking; unwrap is how they say so.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures_util::StreamExt;
use provenance_relay::nostr::prelude::*;
use provenance_relay::testing::{MockRelay, NostrRsRelay};
use provenance_relay::{Options, StreamItem, fetch, publish, stream};

const KIND: u16 = 1988;

fn opts() -> Options {
    Options {
        connect_timeout: Duration::from_secs(5),
        eose_timeout: Duration::from_secs(10),
        ..Options::default()
    }
}

fn start() -> NostrRsRelay {
    NostrRsRelay::start().unwrap_or_else(|error| panic!("{error}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_fetch_on_nostr_rs_relay_and_mock_relay() {
    let independent = start();
    let mock = MockRelay::start().await.unwrap();
    let relays = vec![independent.url().to_owned(), mock.url().to_owned()];
    let keys = Keys::generate();
    let hash = "c".repeat(64);
    let event = EventBuilder::new(Kind::Custom(KIND), r#"{"output":{}}"#)
        .tag(Tag::parse(["x", hash.as_str()]).unwrap())
        .finalize(&keys)
        .unwrap();

    let reports = publish(&relays, &event, &opts()).await;
    for report in &reports {
        let ack = report.outcome.as_ref().unwrap();
        assert!(ack.accepted, "{}: {ack:?}", report.relay);
    }
    // Publishing again: both still say OK true (NIP-01 "duplicate:").
    for report in publish(&relays, &event, &opts()).await {
        let ack = report.outcome.unwrap();
        assert!(ack.accepted, "{}: {ack:?}", report.relay);
    }

    let filters = [
        Filter::new().id(event.id),
        Filter::new()
            .author(keys.public_key())
            .kind(Kind::Custom(KIND)),
        Filter::new()
            .kind(Kind::Custom(KIND))
            .custom_tag(SingleLetterTag::LOWERCASE_X, hash.clone()),
    ];
    for filter in filters {
        let outcome = fetch(&relays, &filter, &opts()).await;
        // Both relays have it; fetch keeps one copy.
        assert_eq!(outcome.events.len(), 1, "{filter:?}");
        let received = Event::from_json(&outcome.events[0].json).unwrap();
        received.verify().unwrap();
        assert_eq!(received, event);
        for report in &outcome.relays {
            let stats = report.outcome.as_ref().unwrap();
            assert_eq!((stats.events, stats.eose), (1, true), "{}", report.relay);
        }
        // The stream shows both copies, each byte-identical to what its relay sent and each
        // parsing to the same event.
        let copies: Vec<String> = stream(&relays, &filter, &opts())
            .filter_map(|item| async move {
                match item {
                    StreamItem::Event(raw) => Some(raw.relay),
                    StreamItem::End(_) => None,
                }
            })
            .collect()
            .await;
        assert_eq!(copies.len(), 2);
        assert!(copies.contains(&relays[0]) && copies.contains(&relays[1]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nostr_rs_relay_refuses_a_tampered_event() {
    let independent = start();
    let relays = vec![independent.url().to_owned()];
    let event = EventBuilder::new(Kind::Custom(KIND), "original")
        .finalize(&Keys::generate())
        .unwrap();
    // Same id and signature, different content: the id no longer matches.
    let mut json: serde_json::Value = serde_json::from_str(&event.as_json()).unwrap();
    json["content"] = "edited".into();
    let tampered = Event::from_json(json.to_string()).unwrap();
    assert!(tampered.verify().is_err());

    let reports = publish(&relays, &tampered, &opts()).await;
    let ack = reports[0].outcome.as_ref().unwrap();
    assert!(!ack.accepted, "{ack:?}");
    assert!(ack.message.starts_with("invalid:"), "{ack:?}");
    let outcome = fetch(&relays, &Filter::new().id(event.id), &opts()).await;
    assert!(outcome.events.is_empty());
}

#[test]
fn nostr_rs_relay_process_is_killed_on_drop() {
    let relay = start();
    let port = relay
        .url()
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap();
    let address: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let proc_dir = std::path::PathBuf::from(format!("/proc/{}", relay.pid()));
    assert!(std::net::TcpStream::connect(address).is_ok());
    let linux = cfg!(target_os = "linux");
    assert!(!linux || proc_dir.exists());
    drop(relay);
    // Killed and reaped: nothing listens any more, and on Linux the PID is gone.
    assert!(std::net::TcpStream::connect(address).is_err());
    assert!(!linux || !proc_dir.exists());
}
