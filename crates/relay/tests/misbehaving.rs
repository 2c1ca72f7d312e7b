//! Relays that send garbage, flood, send oversized frames, stall or hang up: each gets its own
//! named error while a good relay in the same call still delivers.
// Tests fail by panicking; unwrap is how they say so.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use provenance_relay::nostr::prelude::*;
use provenance_relay::testing::{Behaviour, Frame, MockRelay, ScriptedRelay};
use provenance_relay::{
    FetchOutcome, MAX_NOTICE_BYTES, Options, RelayError, StreamItem, Waiting, fetch, publish,
    stream,
};

const KIND: u16 = 1988;

/// Short limits so the timeouts hit quickly.
fn opts() -> Options {
    Options {
        connect_timeout: Duration::from_millis(1500),
        eose_timeout: Duration::from_millis(1500),
        max_message_bytes: 64 * 1024,
        max_events_per_relay: 50,
        max_relays: 8,
    }
}

/// A good relay holding one signed event.
async fn good_relay() -> (MockRelay, Event) {
    let relay = MockRelay::start().await.unwrap();
    let event = EventBuilder::new(Kind::Custom(KIND), "{}")
        .finalize(&Keys::generate())
        .unwrap();
    let reports = publish(&[relay.url().to_owned()], &event, &opts()).await;
    assert!(reports[0].outcome.as_ref().unwrap().accepted);
    (relay, event)
}

/// Fetches from the good relay and the bad one together, checks that the good one delivered,
/// and returns the outcome without the bad relay's report, plus that report's error.
async fn fetch_with_good(bad: &str) -> (FetchOutcome, RelayError) {
    let (good, event) = good_relay().await;
    let relays = vec![good.url().to_owned(), bad.to_owned()];
    let mut outcome = fetch(&relays, &Filter::new().kind(Kind::Custom(KIND)), &opts()).await;
    let delivered = outcome
        .events
        .iter()
        .any(|raw| raw.relay == relays[0] && Event::from_json(&raw.json).unwrap() == event);
    assert!(delivered, "good relay's event missing: {outcome:?}");
    assert!(outcome.relays[0].outcome.as_ref().unwrap().eose);
    let report = outcome.relays.remove(1);
    assert_eq!(report.relay, bad);
    match report.outcome {
        Ok(stats) => panic!("misbehaving relay reported success: {stats:?}"),
        Err(error) => (outcome, error),
    }
}

/// Starts a relay with `behaviour` and runs [`fetch_with_good`] against it.
async fn misbehave(behaviour: Behaviour) -> (ScriptedRelay, FetchOutcome, RelayError) {
    let bad = ScriptedRelay::start(behaviour).await.unwrap();
    let (outcome, error) = fetch_with_good(bad.url()).await;
    (bad, outcome, error)
}

fn events_from(outcome: &FetchOutcome, relay: &str) -> usize {
    outcome
        .events
        .iter()
        .filter(|raw| raw.relay == relay)
        .count()
}

#[tokio::test]
async fn garbage_frames_are_named() {
    let valid_then_bad = |bad: &str| {
        Behaviour::Script(vec![
            Frame::Text(
                r#"["EVENT","$SUB",{"id":"00","kind":1988,"content":"made up"}]"#.to_owned(),
            ),
            Frame::Text(bad.to_owned()),
        ])
    };
    let cases = [
        (
            Behaviour::Script(vec![Frame::Text("this is not json".to_owned())]),
            "not a JSON array",
            0,
        ),
        (
            Behaviour::Script(vec![Frame::Binary(vec![0xff, 0x00, 0x13])]),
            "binary frame",
            0,
        ),
        (
            Behaviour::Script(vec![Frame::Text(r#"[42,"$SUB"]"#.to_owned())]),
            "message type is not a plain JSON string",
            0,
        ),
        (
            Behaviour::Script(vec![Frame::Text(
                r#"["EVENT","someone-else",{"id":"00"}]"#.to_owned(),
            )]),
            "EVENT for a subscription this client did not open",
            0,
        ),
        (
            valid_then_bad(r#"["EVENT","$SUB","not an object"]"#),
            "EVENT payload is not a JSON object",
            1,
        ),
        (
            valid_then_bad(r#"["EVENT","$SUB",{"content":"no id"}]"#),
            "EVENT payload has no single string id",
            1,
        ),
    ];
    for (behaviour, expected, delivered) in cases {
        let (bad, outcome, error) = misbehave(behaviour).await;
        match error {
            RelayError::Garbage { what, .. } => assert_eq!(what, expected),
            other => panic!("{expected}: {other:?}"),
        }
        // Events that arrived before the garbage are still handed over (unverified, as always).
        assert_eq!(events_from(&outcome, bad.url()), delivered, "{expected}");
    }
}

#[tokio::test]
async fn garbage_error_quotes_the_frame() {
    let (_bad, _, error) = misbehave(Behaviour::Script(vec![Frame::Text(
        "<html>502 Bad Gateway</html>".to_owned(),
    )]))
    .await;
    let message = error.to_string();
    assert_eq!(
        message,
        "relay sent garbage: not a JSON array (frame starts \"<html>502 Bad Gateway</html>\")"
    );
}

#[tokio::test]
async fn flood_stops_at_the_event_cap() {
    let (bad, outcome, error) = misbehave(Behaviour::Flood { events: 5_000 }).await;
    assert!(
        matches!(error, RelayError::TooManyEvents { max: 50 }),
        "{error:?}"
    );
    assert_eq!(events_from(&outcome, bad.url()), 50);
}

#[tokio::test]
async fn flood_under_the_cap_is_fine() {
    let bad = ScriptedRelay::start(Behaviour::Flood { events: 50 })
        .await
        .unwrap();
    let outcome = fetch(&[bad.url().to_owned()], &Filter::new(), &opts()).await;
    let stats = outcome.relays[0].outcome.as_ref().unwrap();
    assert_eq!((stats.events, stats.eose), (50, true));
    assert_eq!(outcome.events.len(), 50);
}

#[tokio::test]
async fn stalled_relays_time_out_fast() {
    let cases = [
        // Completes the handshake, then never answers the REQ.
        (Behaviour::Silent, Waiting::Eose, opts().eose_timeout),
        // Accepts TCP, never answers the websocket handshake.
        (
            Behaviour::NoHandshake,
            Waiting::Connect,
            opts().connect_timeout,
        ),
    ];
    for (behaviour, waiting, limit) in cases {
        let started = Instant::now();
        let (_bad, _, error) = misbehave(behaviour).await;
        assert!(
            matches!(
                error,
                RelayError::Timeout { waiting_for, after } if waiting_for == waiting && after == limit
            ),
            "{error:?}"
        );
        assert!(started.elapsed() < limit + Duration::from_secs(2));
    }
}

#[tokio::test]
async fn oversized_frame_is_refused() {
    let (_bad, _, error) = misbehave(Behaviour::Oversize { bytes: 200_000 }).await;
    match error {
        RelayError::MessageTooLarge { size, max } => {
            assert_eq!(max, 64 * 1024);
            assert!(size > max, "{size}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn frame_at_the_limit_is_accepted() {
    // A NOTICE frame of exactly max_message_bytes passes; its text is kept truncated.
    let limit = opts().max_message_bytes;
    let notice = format!(r#"["NOTICE","{}"]"#, "x".repeat(limit - 13));
    assert_eq!(notice.len(), limit);
    let relay = ScriptedRelay::start(Behaviour::Script(vec![
        Frame::Text(notice),
        Frame::Text(r#"["EOSE","$SUB"]"#.to_owned()),
    ]))
    .await
    .unwrap();
    let outcome = fetch(&[relay.url().to_owned()], &Filter::new(), &opts()).await;
    let stats = outcome.relays[0].outcome.as_ref().unwrap();
    assert!(stats.eose);
    assert_eq!(stats.notices.len(), 1);
    assert_eq!(stats.notices[0].len(), MAX_NOTICE_BYTES);
}

#[tokio::test]
async fn close_mid_query_is_named() {
    let (bad, outcome, error) = misbehave(Behaviour::CloseAfter { events: 3 }).await;
    match error {
        RelayError::Closed { reason } => {
            assert!(reason.contains("going away"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(events_from(&outcome, bad.url()), 3);
}

#[tokio::test]
async fn dropped_connection_mid_query_is_named() {
    let (bad, outcome, error) = misbehave(Behaviour::DropAfter { events: 2 }).await;
    assert!(matches!(error, RelayError::Closed { .. }), "{error:?}");
    assert_eq!(events_from(&outcome, bad.url()), 2);
}

#[tokio::test]
async fn refused_connection_is_a_connect_error() {
    // A port that was free a moment ago: nothing listens there now.
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_, error) = fetch_with_good(&format!("ws://127.0.0.1:{port}")).await;
    assert!(matches!(error, RelayError::Connect(_)), "{error:?}");
}

/// `wss://` goes through rustls: against a relay that does not speak TLS the handshake fails
/// cleanly as a connection error.
#[cfg(feature = "tls")]
#[tokio::test]
async fn wss_to_a_plain_relay_is_a_connect_error() {
    let plain = ScriptedRelay::start(Behaviour::Silent).await.unwrap();
    let wss = plain.url().replacen("ws://", "wss://", 1);
    let (_, error) = fetch_with_good(&wss).await;
    assert!(matches!(error, RelayError::Connect(_)), "{error:?}");
}

#[tokio::test]
async fn closed_message_ends_the_query_with_its_reason() {
    let relay = ScriptedRelay::start(Behaviour::Script(vec![
        Frame::Text(r#"["NOTICE","hello"]"#.to_owned()),
        Frame::Text(r#"["CLOSED","$SUB","auth-required: sign in first"]"#.to_owned()),
    ]))
    .await
    .unwrap();
    let outcome = fetch(&[relay.url().to_owned()], &Filter::new(), &opts()).await;
    let stats = outcome.relays[0].outcome.as_ref().unwrap();
    assert!(!stats.eose);
    assert_eq!(
        stats.closed.as_deref(),
        Some("auth-required: sign in first")
    );
    assert_eq!(stats.notices, ["hello"]);
}

#[tokio::test]
async fn stream_yields_events_before_the_relay_ends() {
    let relay = ScriptedRelay::start(Behaviour::Flood { events: 20 })
        .await
        .unwrap();
    let silent = ScriptedRelay::start(Behaviour::Silent).await.unwrap();
    let relays = vec![relay.url().to_owned(), silent.url().to_owned()];
    let mut items = Box::pin(stream(&relays, &Filter::new(), &opts()));
    let started = Instant::now();
    // The first event comes long before the silent relay's deadline.
    match items.next().await {
        Some(StreamItem::Event(raw)) => assert_eq!(raw.relay, relays[0]),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < opts().eose_timeout);
    let rest: Vec<StreamItem> = items.collect().await;
    let events = rest
        .iter()
        .filter(|item| matches!(item, StreamItem::Event(_)))
        .count();
    assert_eq!(events, 19);
    let ends: Vec<_> = rest
        .iter()
        .filter_map(|item| match item {
            StreamItem::End(report) => Some(report),
            StreamItem::Event(_) => None,
        })
        .collect();
    assert_eq!(ends.len(), 2);
    assert_eq!(ends[0].relay, relays[0]);
    assert!(ends[0].outcome.is_ok());
    assert!(matches!(ends[1].outcome, Err(RelayError::Timeout { .. })));
}

#[tokio::test]
async fn publish_to_misbehaving_relays() {
    let (good, _) = good_relay().await;
    let event = EventBuilder::new(Kind::Custom(KIND), "{}")
        .finalize(&Keys::generate())
        .unwrap();
    let id = event.id.to_hex();
    let silent = ScriptedRelay::start(Behaviour::Silent).await.unwrap();
    let garbage = ScriptedRelay::start(Behaviour::Script(vec![Frame::Text("nope".to_owned())]))
        .await
        .unwrap();
    let hangup = ScriptedRelay::start(Behaviour::CloseAfter { events: 0 })
        .await
        .unwrap();
    // An OK for some other event first, then a refusal of ours.
    let refuses = ScriptedRelay::start(Behaviour::Script(vec![
        Frame::Text(format!(r#"["OK","{}",true,""]"#, "0".repeat(64))),
        Frame::Text(format!(r#"["OK","{id}",false,"blocked: not here"]"#)),
    ]))
    .await
    .unwrap();
    let relays: Vec<String> = [
        good.url(),
        silent.url(),
        garbage.url(),
        hangup.url(),
        refuses.url(),
    ]
    .map(str::to_owned)
    .into();
    let reports = publish(&relays, &event, &opts()).await;
    assert!(reports[0].outcome.as_ref().unwrap().accepted);
    assert!(matches!(
        reports[1].outcome,
        Err(RelayError::Timeout {
            waiting_for: Waiting::Ok,
            ..
        })
    ));
    assert!(matches!(
        reports[2].outcome,
        Err(RelayError::Garbage {
            what: "not a JSON array",
            ..
        })
    ));
    assert!(matches!(reports[3].outcome, Err(RelayError::Closed { .. })));
    let refused = reports[4].outcome.as_ref().unwrap();
    assert!(!refused.accepted);
    assert_eq!(refused.message, "blocked: not here");
}
