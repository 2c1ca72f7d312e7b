//! End to end against nostr-relay-builder's in-process relay: publish signed events, then find
//! them again by id, author, kind and `#x` tag, byte for byte.
// Tests fail by panicking; unwrap is how they say so.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures_util::StreamExt;
use provenance_relay::nostr::prelude::*;
use provenance_relay::testing::MockRelay;
use provenance_relay::testing::nostr_relay_builder::RelayBuilder;
use provenance_relay::{Options, RelayError, StreamItem, fetch, publish, stream};

const KIND: u16 = 1988;

fn opts() -> Options {
    Options {
        connect_timeout: Duration::from_secs(5),
        eose_timeout: Duration::from_secs(5),
        ..Options::default()
    }
}

/// A signed kind-1988 event with an `x` tag, as the signer will publish them.
fn claim(keys: &Keys, output_hash: &str) -> Event {
    EventBuilder::new(Kind::Custom(KIND), r#"{"output":{"sha256":"..."}}"#)
        .tag(Tag::parse(["x", output_hash]).unwrap())
        .tag(Tag::parse(["alt", "AI output provenance record"]).unwrap())
        .finalize(keys)
        .unwrap()
}

fn x_tag() -> SingleLetterTag {
    SingleLetterTag::LOWERCASE_X
}

#[tokio::test]
async fn publish_then_fetch_by_id_author_kind_and_tag() {
    let relay = MockRelay::start().await.unwrap();
    let relays = vec![relay.url().to_owned()];
    let keys = Keys::generate();
    let hash = "5".repeat(64);
    let event = claim(&keys, &hash);
    // Noise the filters must leave out: another author, another kind, another hash.
    let other = claim(&Keys::generate(), &"6".repeat(64));
    let note = EventBuilder::new(Kind::TextNote, "hello")
        .finalize(&keys)
        .unwrap();

    for published in [&event, &other, &note] {
        let reports = publish(&relays, published, &opts()).await;
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].relay, relays[0]);
        let ack = reports[0].outcome.as_ref().unwrap();
        assert!(ack.accepted, "{ack:?}");
    }

    let filters = [
        ("id", Filter::new().id(event.id)),
        (
            "author + kind",
            Filter::new()
                .author(keys.public_key())
                .kind(Kind::Custom(KIND)),
        ),
        ("#x", Filter::new().custom_tag(x_tag(), hash.clone())),
        (
            "kind + #x",
            Filter::new()
                .kind(Kind::Custom(KIND))
                .custom_tag(x_tag(), hash.clone()),
        ),
    ];
    for (name, filter) in filters {
        let outcome = fetch(&relays, &filter, &opts()).await;
        assert_eq!(outcome.events.len(), 1, "{name}");
        let raw = &outcome.events[0];
        assert_eq!(raw.relay, relays[0]);
        // The JSON is handed over untouched: it parses and verifies as the event we signed.
        let received = Event::from_json(&raw.json).unwrap();
        received.verify().unwrap();
        assert_eq!(received, event, "{name}");
        let stats = outcome.relays[0].outcome.as_ref().unwrap();
        assert_eq!(stats.events, 1, "{name}");
        assert!(stats.eose, "{name}");
        assert_eq!(stats.closed, None);
    }

    let by_kind = fetch(&relays, &Filter::new().kind(Kind::Custom(KIND)), &opts()).await;
    assert_eq!(by_kind.events.len(), 2);
    let by_author = fetch(&relays, &Filter::new().author(keys.public_key()), &opts()).await;
    assert_eq!(by_author.events.len(), 2);
    let nothing = fetch(
        &relays,
        &Filter::new().custom_tag(x_tag(), "7".repeat(64)),
        &opts(),
    )
    .await;
    assert!(nothing.events.is_empty());
    assert!(nothing.relays[0].outcome.as_ref().unwrap().eose);
}

#[tokio::test]
async fn fetch_deduplicates_across_relays_and_stream_does_not() {
    let first = MockRelay::start().await.unwrap();
    let second = MockRelay::start().await.unwrap();
    let relays = vec![first.url().to_owned(), second.url().to_owned()];
    let event = claim(&Keys::generate(), &"8".repeat(64));
    for report in publish(&relays, &event, &opts()).await {
        assert!(report.outcome.unwrap().accepted);
    }
    let filter = Filter::new().id(event.id);

    let outcome = fetch(&relays, &filter, &opts()).await;
    assert_eq!(outcome.events.len(), 1);
    assert_eq!(outcome.relays.len(), 2);
    for (report, relay) in outcome.relays.iter().zip(&relays) {
        assert_eq!(&report.relay, relay);
        assert_eq!(report.outcome.as_ref().unwrap().events, 1);
    }

    let items: Vec<StreamItem> = stream(&relays, &filter, &opts()).collect().await;
    let mut from: Vec<&str> = items
        .iter()
        .filter_map(|item| match item {
            StreamItem::Event(raw) => Some(raw.relay.as_str()),
            StreamItem::End(_) => None,
        })
        .collect();
    from.sort_unstable();
    let mut expected: Vec<&str> = relays.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(from, expected);
    let ends = items
        .iter()
        .filter(|item| matches!(item, StreamItem::End(report) if report.outcome.is_ok()))
        .count();
    assert_eq!(ends, 2);
    // Each relay's end report comes after its events.
    assert!(matches!(items.last(), Some(StreamItem::End(_))));
}

#[tokio::test]
async fn ok_false_is_reported_not_raised() {
    // Demands 24 bits of proof of work, which a fresh event lacks (odds 2^-24).
    let strict = MockRelay::start_with(RelayBuilder::default().min_pow(24))
        .await
        .unwrap();
    let open = MockRelay::start().await.unwrap();
    let relays = vec![strict.url().to_owned(), open.url().to_owned()];
    let event = claim(&Keys::generate(), &"9".repeat(64));

    let reports = publish(&relays, &event, &opts()).await;
    let refused = reports[0].outcome.as_ref().unwrap();
    assert!(!refused.accepted);
    assert!(refused.message.starts_with("pow:"), "{refused:?}");
    let accepted = reports[1].outcome.as_ref().unwrap();
    assert!(accepted.accepted, "{accepted:?}");

    // The refusing relay really did not store it; the other did.
    let outcome = fetch(&relays, &Filter::new().id(event.id), &opts()).await;
    assert_eq!(outcome.events.len(), 1);
    assert_eq!(outcome.events[0].relay, relays[1]);
    assert_eq!(outcome.relays[0].outcome.as_ref().unwrap().events, 0);

    // Publishing again is accepted as a duplicate.
    let again = publish(&relays[1..], &event, &opts()).await;
    let ack = again[0].outcome.as_ref().unwrap();
    assert!(ack.accepted, "{ack:?}");
}

#[tokio::test]
async fn bad_urls_and_too_many_relays_are_named_per_relay() {
    let relay = MockRelay::start().await.unwrap();
    let relays = vec![
        "http://relay.example".to_owned(),
        "not a url".to_owned(),
        relay.url().to_owned(),
        relay.url().to_owned(),
    ];
    let opts = Options {
        max_relays: 3,
        ..opts()
    };
    let outcome = fetch(&relays, &Filter::new().kind(Kind::Custom(KIND)), &opts).await;
    assert_eq!(outcome.relays.len(), 4);
    for (index, report) in outcome.relays.iter().enumerate() {
        assert_eq!(report.relay, relays[index]);
        match (index, &report.outcome) {
            (0 | 1, Err(RelayError::InvalidUrl { url, .. })) => assert_eq!(url, &relays[index]),
            (2, Ok(stats)) => assert!(stats.eose),
            (3, Err(RelayError::TooManyRelays { max: 3 })) => {}
            (_, other) => panic!("relay {index}: {other:?}"),
        }
    }
    let message = outcome.relays[0].outcome.as_ref().unwrap_err().to_string();
    assert!(message.contains("http://relay.example"), "{message}");
    assert!(message.contains("\"http\""), "{message}");

    let event = claim(&Keys::generate(), &"a".repeat(64));
    let reports = publish(&relays, &event, &opts).await;
    assert!(matches!(
        reports[0].outcome,
        Err(RelayError::InvalidUrl { .. })
    ));
    assert!(reports[2].outcome.as_ref().unwrap().accepted);
    assert!(matches!(
        reports[3].outcome,
        Err(RelayError::TooManyRelays { max: 3 })
    ));
}
