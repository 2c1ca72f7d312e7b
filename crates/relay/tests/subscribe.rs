//! Live subscriptions end to end: stored events, `EOSE`, then live events, against the
//! in-process relay and nostr-rs-relay; reconnection with backoff after drops, garbage and
//! oversized frames; isolation between relays; backpressure; NIP-42; keepalive pings that
//! notice a silent connection; and stopping.
// Tests fail by panicking; unwrap is how they say so.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, TcpListener as StdListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use provenance_relay::nostr::prelude::*;
use provenance_relay::testing::nostr_relay_builder::RelayBuilder;
use provenance_relay::testing::nostr_relay_builder::builder::{
    RelayBuilderNip42, RelayBuilderNip42Mode,
};
use provenance_relay::testing::{Behaviour, Frame, MockRelay, NostrRsRelay, ScriptedRelay};
use provenance_relay::{
    MAX_GARBAGE_IN_A_ROW, NO_RETRY, Options, RelayError, SubscribeOptions, Subscription,
    SubscriptionItem, Waiting, publish, subscribe,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

const KIND: u16 = 1988;

/// How long any single expected item may take.
const WITHIN: Duration = Duration::from_secs(10);

/// Short backoff so that reconnections happen quickly.
fn opts() -> SubscribeOptions {
    SubscribeOptions {
        relay: Options {
            connect_timeout: Duration::from_secs(2),
            eose_timeout: Duration::from_secs(2),
            max_message_bytes: 64 * 1024,
            ..Options::default()
        },
        capacity: 64,
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
        auth: None,
        ping_interval: Duration::from_secs(30),
        ping_timeout: Duration::from_secs(10),
    }
}

fn event(keys: &Keys, content: &str) -> Event {
    EventBuilder::new(Kind::Custom(KIND), content)
        .finalize(keys)
        .unwrap()
}

fn filter(keys: &Keys) -> Filter {
    Filter::new()
        .author(keys.public_key())
        .kind(Kind::Custom(KIND))
}

async fn publish_to(relay: &str, event: &Event) {
    let reports = publish(&[relay.to_owned()], event, &Options::default()).await;
    let ack = reports[0].outcome.as_ref().unwrap();
    assert!(ack.accepted, "{relay}: {ack:?}");
}

/// The next item, failing the test after [`WITHIN`] or if the subscription ended.
async fn next(sub: &mut Subscription) -> SubscriptionItem {
    match tokio::time::timeout(WITHIN, sub.next()).await {
        Ok(Some(item)) => item,
        Ok(None) => panic!("subscription ended"),
        Err(_) => panic!("no item within {WITHIN:?}"),
    }
}

/// Reads items until `wanted` matches one, which is returned with the items before it.
async fn until(
    sub: &mut Subscription,
    wanted: impl Fn(&SubscriptionItem) -> bool,
) -> (SubscriptionItem, Vec<SubscriptionItem>) {
    let mut before = Vec::new();
    let deadline = Instant::now() + WITHIN;
    loop {
        assert!(
            Instant::now() < deadline,
            "not seen within {WITHIN:?}; got {before:?}"
        );
        let item = next(sub).await;
        if wanted(&item) {
            return (item, before);
        }
        before.push(item);
    }
}

fn is_event(item: &SubscriptionItem, relay: &str, expected: &Event) -> bool {
    matches!(item, SubscriptionItem::Event(raw)
        if raw.relay == relay && Event::from_json(&raw.json).unwrap() == *expected)
}

fn is_eose(item: &SubscriptionItem, relay: &str) -> bool {
    matches!(item, SubscriptionItem::Eose { relay: r } if r == relay)
}

fn is_down(item: &SubscriptionItem) -> bool {
    matches!(item, SubscriptionItem::Down { .. })
}

/// A loopback port with nothing listening on it.
fn free_port() -> u16 {
    StdListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Stored event, `EOSE`, live event, in that order, with nothing else in between.
async fn stored_then_live(relay: &str) {
    let keys = Keys::generate();
    let stored = event(&keys, "stored");
    publish_to(relay, &stored).await;
    let mut sub = subscribe(&[relay.to_owned()], filter(&keys), opts());
    assert!(is_event(&next(&mut sub).await, relay, &stored));
    assert!(is_eose(&next(&mut sub).await, relay));
    let live = event(&keys, "live");
    publish_to(relay, &live).await;
    let item = next(&mut sub).await;
    assert!(is_event(&item, relay, &live), "{item:?}");
    // And it stays open: a second live event arrives too.
    let later = event(&keys, "later");
    publish_to(relay, &later).await;
    let item = next(&mut sub).await;
    assert!(is_event(&item, relay, &later), "{item:?}");
}

#[tokio::test]
async fn stored_events_then_eose_then_live_events_on_mock_relay() {
    let relay = MockRelay::start().await.unwrap();
    stored_then_live(relay.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_events_then_eose_then_live_events_on_nostr_rs_relay() {
    let relay = NostrRsRelay::start().unwrap_or_else(|error| panic!("{error}"));
    stored_then_live(relay.url()).await;
}

/// Starts a mock relay on `port`, waiting for the previous one on that port to let it go.
async fn mock_on(port: u16) -> MockRelay {
    let mut tries = 0;
    loop {
        match MockRelay::start_with(RelayBuilder::default().port(port)).await {
            Ok(relay) => return relay,
            // The previous relay's listener may not be closed yet.
            Err(_) if tries < 50 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("{error}"),
        }
    }
}

#[tokio::test]
async fn a_relay_that_goes_away_is_reconnected_and_the_req_sent_again() {
    let port = free_port();
    let first = mock_on(port).await;
    let url = first.url().to_owned();
    let keys = Keys::generate();
    let mut sub = subscribe(std::slice::from_ref(&url), filter(&keys), opts());
    let (_, before) = until(&mut sub, |item| is_eose(item, &url)).await;
    assert!(before.is_empty(), "{before:?}");
    let one = event(&keys, "one");
    publish_to(&url, &one).await;
    assert!(is_event(&next(&mut sub).await, &url, &one));

    // The relay stops: the connection is lost and reported with the first backoff.
    drop(first);
    match next(&mut sub).await {
        SubscriptionItem::Down {
            relay, retry_in, ..
        } => {
            assert_eq!(relay, url);
            assert_eq!(retry_in, Duration::from_millis(50));
        }
        other => panic!("{other:?}"),
    }

    // A new relay (empty: the old one kept its events in memory) on the same address. The
    // subscription comes back by itself, sends its REQ again and gets the new relay's EOSE.
    let second = mock_on(port).await;
    assert_eq!(second.url(), url);
    let (_, before) = until(&mut sub, |item| is_eose(item, &url)).await;
    assert!(before.iter().all(is_down), "{before:?}");
    let two = event(&keys, "two");
    publish_to(&url, &two).await;
    let item = next(&mut sub).await;
    assert!(is_event(&item, &url, &two), "{item:?}");
}

#[tokio::test]
async fn backoff_doubles_while_a_relay_keeps_dropping() {
    // Every connection gets one event, after the REQ, and is then dropped.
    let relay = ScriptedRelay::start(Behaviour::DropAfter { events: 1 })
        .await
        .unwrap();
    let url = relay.url().to_owned();
    let started = Instant::now();
    let mut sub = subscribe(std::slice::from_ref(&url), Filter::new(), opts());
    let mut delays = Vec::new();
    while delays.len() < 5 {
        // Each connection first delivers its event: the REQ was sent again.
        match next(&mut sub).await {
            SubscriptionItem::Event(raw) => assert_eq!(raw.relay, url),
            other => panic!("expected the event first, got {other:?}"),
        }
        match next(&mut sub).await {
            SubscriptionItem::Down {
                relay,
                error,
                retry_in,
            } => {
                assert_eq!(relay, url);
                assert!(
                    matches!(error, RelayError::Closed { .. } | RelayError::WebSocket(_)),
                    "{error:?}"
                );
                delays.push(retry_in.as_millis());
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(delays, [50, 100, 200, 400, 400]);
    // The first four delays were waited out before the fifth connection.
    assert!(started.elapsed() >= Duration::from_millis(750));
}

#[tokio::test]
async fn garbage_frames_are_skipped_and_the_subscription_carries_on() {
    let garbage = [
        Frame::Text("this is not json".to_owned()),
        Frame::Binary(vec![0xff, 0x00, 0x13]),
        Frame::Text(r#"["EVENT","someone-else",{"id":"00"}]"#.to_owned()),
        Frame::Text(r#"[42,"$SUB"]"#.to_owned()),
        Frame::Text(r#"["EVENT","$SUB","not an object"]"#.to_owned()),
    ];
    // One short of the limit in a row, then a good event; then the limit again minus one,
    // then EOSE.
    let mut script: Vec<Frame> = garbage
        .iter()
        .cycle()
        .take(MAX_GARBAGE_IN_A_ROW - 1)
        .cloned()
        .collect();
    script.push(Frame::Text(
        r#"["EVENT","$SUB",{"id":"01","kind":1988,"content":"made up"}]"#.to_owned(),
    ));
    script.extend(
        garbage
            .iter()
            .cycle()
            .take(MAX_GARBAGE_IN_A_ROW - 1)
            .cloned(),
    );
    script.push(Frame::Text(r#"["EOSE","$SUB"]"#.to_owned()));
    let relay = ScriptedRelay::start(Behaviour::Script(script))
        .await
        .unwrap();
    let url = relay.url().to_owned();
    let mut sub = subscribe(std::slice::from_ref(&url), Filter::new(), opts());
    match next(&mut sub).await {
        SubscriptionItem::Event(raw) => {
            assert_eq!(raw.json, r#"{"id":"01","kind":1988,"content":"made up"}"#);
        }
        other => panic!("{other:?}"),
    }
    assert!(is_eose(&next(&mut sub).await, &url));
    // Still connected, nothing more to say.
    let quiet = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
    assert!(quiet.is_err(), "{quiet:?}");
}

#[tokio::test]
async fn a_relay_sending_only_garbage_is_dropped_and_retried_with_backoff() {
    let script = vec![Frame::Text("<html>502 Bad Gateway</html>".to_owned()); 40];
    let relay = ScriptedRelay::start(Behaviour::Script(script))
        .await
        .unwrap();
    let url = relay.url().to_owned();
    let mut sub = subscribe(std::slice::from_ref(&url), Filter::new(), opts());
    let started = Instant::now();
    let mut delays = Vec::new();
    while started.elapsed() < Duration::from_millis(1500) {
        let Ok(item) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await else {
            continue;
        };
        match item.unwrap() {
            SubscriptionItem::Down {
                error, retry_in, ..
            } => {
                match error {
                    RelayError::Garbage { what, excerpt } => {
                        assert_eq!(what, "not a JSON array");
                        assert_eq!(excerpt, "<html>502 Bad Gateway</html>");
                    }
                    other => panic!("{other:?}"),
                }
                delays.push(retry_in.as_millis());
            }
            other => panic!("{other:?}"),
        }
    }
    // Lost connection n comes after waiting 50, 100, 200, 400, 400 ms... in all: at 0, 50,
    // 150, 350, 750, 1150 and 1550 ms at the earliest, so at most six within 1.5 s.
    // At least one loss even on a loaded machine; the first two delays, when seen, double.
    assert!((1..=6).contains(&delays.len()), "{delays:?}");
    assert_eq!(delays[0], 50);
    if delays.len() > 1 {
        assert_eq!(delays[1], 100);
    }
}

#[tokio::test]
async fn an_oversized_message_drops_the_connection_and_is_retried_with_backoff() {
    let relay = ScriptedRelay::start(Behaviour::Oversize { bytes: 200_000 })
        .await
        .unwrap();
    let url = relay.url().to_owned();
    let mut sub = subscribe(std::slice::from_ref(&url), Filter::new(), opts());
    for expected in [50, 100] {
        match next(&mut sub).await {
            SubscriptionItem::Down {
                error, retry_in, ..
            } => {
                assert!(
                    matches!(error, RelayError::MessageTooLarge { max: 65_536, .. }),
                    "{error:?}"
                );
                assert_eq!(retry_in.as_millis(), expected);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn a_dead_relay_does_not_affect_a_good_one() {
    let good = MockRelay::start().await.unwrap();
    let good_url = good.url().to_owned();
    let dead = format!("ws://127.0.0.1:{}", free_port());
    let keys = Keys::generate();
    let stored = event(&keys, "stored");
    publish_to(&good_url, &stored).await;
    let relays = vec![dead.clone(), good_url.clone()];
    let mut sub = subscribe(&relays, filter(&keys), opts());
    let (_, before) = until(&mut sub, |item| is_event(item, &good_url, &stored)).await;
    assert!(before.iter().all(is_down), "{before:?}");
    until(&mut sub, |item| is_eose(item, &good_url)).await;
    let live = event(&keys, "live");
    publish_to(&good_url, &live).await;
    let (_, before) = until(&mut sub, |item| is_event(item, &good_url, &live)).await;
    // Meanwhile the dead relay is retried, each time refused.
    for item in &before {
        match item {
            SubscriptionItem::Down { relay, error, .. } => {
                assert_eq!(relay, &dead);
                assert!(matches!(error, RelayError::Connect(_)), "{error:?}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn relays_that_can_never_work_get_one_final_down() {
    let relays = vec![
        "http://relay.example".to_owned(),
        "ws://127.0.0.1:1".to_owned(),
    ];
    let opts = SubscribeOptions {
        relay: Options {
            max_relays: 1,
            ..Options::default()
        },
        ..opts()
    };
    // Read as a `Stream`, which ends once both tasks have ended.
    let sub = subscribe(&relays, Filter::new(), opts);
    let items: Vec<SubscriptionItem> = tokio::time::timeout(WITHIN, sub.collect()).await.unwrap();
    let mut downs = Vec::new();
    for item in items {
        match item {
            SubscriptionItem::Down {
                relay,
                error,
                retry_in,
            } => {
                assert_eq!(retry_in, NO_RETRY);
                downs.push((relay, error));
            }
            other => panic!("{other:?}"),
        }
    }
    downs.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        matches!(downs[0].1, RelayError::InvalidUrl { .. }),
        "{downs:?}"
    );
    assert!(
        matches!(downs[1].1, RelayError::TooManyRelays { max: 1 }),
        "{downs:?}"
    );
    assert_eq!(downs.len(), 2);
}

/// A fake event of about 16 KiB with the id `index` (as 64 hex digits).
fn big_event(subscription: &str, index: usize) -> String {
    let zeros = "0".repeat(64);
    let content = "x".repeat(16 * 1024);
    format!(
        r#"["EVENT",{subscription:?},{{"id":"{index:064x}","pubkey":"{zeros}","created_at":0,"kind":1988,"tags":[],"content":"{content}","sig":"{zeros}{zeros}"}}]"#
    )
}

#[tokio::test]
async fn a_consumer_that_does_not_read_holds_the_relay_back() {
    // 4096 events of 16 KiB: 64 MiB, more than the socket buffers on both sides hold.
    const EVENTS: usize = 4096;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&sent);
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
        let Some(Ok(Message::Text(req))) = ws.next().await else {
            panic!("no REQ");
        };
        let req: Vec<serde_json::Value> = serde_json::from_str(&req).unwrap();
        let subscription = req[1].as_str().unwrap().to_owned();
        for index in 0..EVENTS {
            ws.send(Message::text(big_event(&subscription, index)))
                .await
                .unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
        }
        let eose = format!(r#"["EOSE",{subscription:?}]"#);
        ws.send(Message::text(eose)).await.unwrap();
        while let Some(Ok(_)) = ws.next().await {}
    });
    let opts = SubscribeOptions {
        capacity: 1,
        ..opts()
    };
    let mut sub = subscribe(std::slice::from_ref(&url), Filter::new(), opts);

    // Without reading, wait until the relay cannot send any more (no progress for a second).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = usize::MAX;
    loop {
        let now = sent.load(Ordering::SeqCst);
        if now == last {
            break;
        }
        last = now;
        assert!(Instant::now() < deadline, "the relay never stopped sending");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(
        last < EVENTS / 2,
        "the relay sent {last} of {EVENTS} events to a consumer that does not read"
    );

    // Reading again: every event arrives, in the order sent, then EOSE.
    for expected in 0..EVENTS {
        match next(&mut sub).await {
            SubscriptionItem::Event(raw) => {
                let json: serde_json::Value = serde_json::from_str(&raw.json).unwrap();
                assert_eq!(json["id"], format!("{expected:064x}"));
            }
            other => panic!("event {expected}: {other:?}"),
        }
    }
    assert!(is_eose(&next(&mut sub).await, &url));
    assert_eq!(sent.load(Ordering::SeqCst), EVENTS);
}

async fn auth_relay() -> MockRelay {
    let nip42 = RelayBuilderNip42 {
        mode: RelayBuilderNip42Mode::Read,
    };
    MockRelay::start_with(RelayBuilder::default().nip42(nip42))
        .await
        .unwrap()
}

#[tokio::test]
async fn with_keys_a_relay_requiring_auth_is_answered_and_delivers() {
    let relay = auth_relay().await;
    let url = relay.url().to_owned();
    let keys = Keys::generate();
    let stored = event(&keys, "stored");
    publish_to(&url, &stored).await;
    let opts = SubscribeOptions {
        auth: Some(Keys::generate()),
        ..opts()
    };
    let mut sub = subscribe(std::slice::from_ref(&url), filter(&keys), opts);
    let item = next(&mut sub).await;
    assert!(is_event(&item, &url, &stored), "{item:?}");
    assert!(is_eose(&next(&mut sub).await, &url));
    let live = event(&keys, "live");
    publish_to(&url, &live).await;
    let item = next(&mut sub).await;
    assert!(is_event(&item, &url, &live), "{item:?}");
}

#[tokio::test]
async fn without_keys_auth_required_is_a_notice_and_a_retry_with_backoff() {
    let relay = auth_relay().await;
    let url = relay.url().to_owned();
    let mut sub = subscribe(std::slice::from_ref(&url), Filter::new(), opts());
    let started = Instant::now();
    for expected in [50, 100, 200] {
        match next(&mut sub).await {
            SubscriptionItem::Notice { relay, message } => {
                assert_eq!(relay, url);
                assert!(message.starts_with("auth-required:"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        match next(&mut sub).await {
            SubscriptionItem::Down {
                error, retry_in, ..
            } => {
                let RelayError::Closed { reason } = error else {
                    panic!("{error:?}");
                };
                assert!(
                    reason.starts_with("the relay closed the subscription: auth-required:"),
                    "{reason}"
                );
                assert_eq!(retry_in.as_millis(), expected);
            }
            other => panic!("{other:?}"),
        }
    }
    // Three refusals took the first two delays.
    assert!(started.elapsed() >= Duration::from_millis(150));
}

/// What a hand-written relay saw on one connection after answering the REQ with EOSE.
#[derive(Debug)]
struct Seen {
    texts: Vec<String>,
    close_frame: bool,
    pings: usize,
}

/// A relay that answers every REQ with EOSE, counts connections and reports, per connection,
/// what the client sent afterwards and how the connection ended.
async fn watching_relay() -> (String, Arc<AtomicUsize>, mpsc::UnboundedReceiver<Seen>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    let (report, seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let report = report.clone();
            tokio::spawn(async move {
                let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
                let Some(Ok(Message::Text(req))) = ws.next().await else {
                    return;
                };
                let req: Vec<serde_json::Value> = serde_json::from_str(&req).unwrap();
                let eose = format!(r#"["EOSE",{}]"#, req[1]);
                ws.send(Message::text(eose)).await.unwrap();
                let mut seen = Seen {
                    texts: Vec::new(),
                    close_frame: false,
                    pings: 0,
                };
                while let Some(Ok(message)) = ws.next().await {
                    match message {
                        Message::Text(text) => seen.texts.push(text.to_string()),
                        Message::Close(_) => seen.close_frame = true,
                        // Answered by the websocket layer on the next read.
                        Message::Ping(_) => seen.pings += 1,
                        _ => {}
                    }
                }
                let _ = report.send(seen);
            });
        }
    });
    (url, connections, seen)
}

#[tokio::test]
async fn dropping_the_subscription_closes_its_connections_and_stops_its_tasks() {
    let (url, connections, mut seen) = watching_relay().await;
    let mut sub = subscribe(std::slice::from_ref(&url), Filter::new(), opts());
    assert!(is_eose(&next(&mut sub).await, &url));
    drop(sub);
    let ended = tokio::time::timeout(WITHIN, seen.recv())
        .await
        .unwrap()
        .unwrap();
    // Aborted: the connection is simply dropped.
    assert!(ended.texts.is_empty() && !ended.close_frame, "{ended:?}");
    // No reconnection after several backoff periods.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn close_sends_close_and_a_close_frame() {
    let (url, connections, mut seen) = watching_relay().await;
    let mut sub = subscribe(std::slice::from_ref(&url), Filter::new(), opts());
    assert!(is_eose(&next(&mut sub).await, &url));
    let started = Instant::now();
    sub.close().await;
    assert!(started.elapsed() < Duration::from_secs(2));
    let ended = tokio::time::timeout(WITHIN, seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.texts.len(), 1, "{ended:?}");
    let close: Vec<String> = serde_json::from_str(&ended.texts[0]).unwrap();
    assert_eq!(close[0], "CLOSE");
    assert!(ended.close_frame, "{ended:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

/// Keepalive in test time: a ping after 200 ms without any frame, 200 ms to answer it.
/// Pings after 200 ms of silence; a pong may take a second (a loaded test machine answers
/// later than an idle one, and a false loss would fail the tests that expect none).
fn keepalive() -> SubscribeOptions {
    SubscribeOptions {
        ping_interval: Duration::from_millis(200),
        ping_timeout: Duration::from_millis(1000),
        ..opts()
    }
}

/// A relay that accepts the websocket, answers the REQ with EOSE, then neither reads nor sends
/// anything, so it never answers a ping: a hung relay process, or a NAT mapping that expired.
/// Each connection is held open (handed to the test) rather than closed.
async fn hanging_relay() -> (
    String,
    Arc<AtomicUsize>,
    mpsc::UnboundedReceiver<WebSocketStream<TcpStream>>,
) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    let (hold, held) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
            let Some(Ok(Message::Text(req))) = ws.next().await else {
                panic!("no REQ");
            };
            let req: Vec<serde_json::Value> = serde_json::from_str(&req).unwrap();
            let eose = format!(r#"["EOSE",{}]"#, req[1]);
            ws.send(Message::text(eose)).await.unwrap();
            // From here on nothing reads this socket: no pong is ever sent.
            if hold.send(ws).is_err() {
                return;
            }
        }
    });
    (url, connections, held)
}

#[tokio::test]
async fn a_relay_that_goes_silent_without_closing_is_detected_and_reconnected() {
    let (url, connections, _held) = hanging_relay().await;
    // Connections last less than `max_backoff`, so the delay doubles as after any loss.
    let opts = SubscribeOptions {
        max_backoff: Duration::from_secs(2),
        ..keepalive()
    };
    let mut sub = subscribe(std::slice::from_ref(&url), Filter::new(), opts);
    for (connection, backoff) in [(1, 50), (2, 100)] {
        assert!(is_eose(&next(&mut sub).await, &url));
        assert_eq!(connections.load(Ordering::SeqCst), connection);
        let silent_since = Instant::now();
        match next(&mut sub).await {
            SubscriptionItem::Down {
                relay,
                error,
                retry_in,
            } => {
                let took = silent_since.elapsed();
                assert_eq!(relay, url);
                assert_eq!(
                    error.to_string(),
                    "timed out after 1s waiting for an answer to a keepalive ping"
                );
                assert!(
                    matches!(
                        error,
                        RelayError::Timeout {
                            waiting_for: Waiting::Pong,
                            after,
                        } if after == Duration::from_millis(1000)
                    ),
                    "{error:?}"
                );
                assert_eq!(retry_in.as_millis(), backoff);
                // Lost at ping_interval + ping_timeout after the last frame: not at the
                // first silence. The upper bound leaves room for a loaded test machine; that
                // a quiet but healthy relay is not given up on is the next test's.
                assert!(
                    took >= Duration::from_millis(1150) && took < Duration::from_secs(5),
                    "lost after {took:?}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    // The subscription came back by itself: a third connection, its REQ answered again.
    assert!(is_eose(&next(&mut sub).await, &url));
    assert_eq!(connections.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_quiet_relay_that_answers_pings_stays_connected() {
    let relay = MockRelay::start().await.unwrap();
    let url = relay.url().to_owned();
    let keys = Keys::generate();
    let mut sub = subscribe(std::slice::from_ref(&url), filter(&keys), keepalive());
    assert!(is_eose(&next(&mut sub).await, &url));
    // Six ping intervals in which the relay says nothing but answers every ping.
    let quiet = tokio::time::timeout(Duration::from_millis(1200), sub.next()).await;
    assert!(quiet.is_err(), "{quiet:?}");
    // Still the same connection: a live event published now arrives, with no EOSE or Down
    // before it.
    let live = event(&keys, "live");
    publish_to(&url, &live).await;
    let item = next(&mut sub).await;
    assert!(is_event(&item, &url, &live), "{item:?}");
}

#[tokio::test]
async fn a_quiet_relay_is_pinged_once_per_interval() {
    let (url, connections, mut seen) = watching_relay().await;
    let mut sub = subscribe(std::slice::from_ref(&url), Filter::new(), keepalive());
    assert!(is_eose(&next(&mut sub).await, &url));
    let quiet = tokio::time::timeout(Duration::from_millis(1000), sub.next()).await;
    assert!(quiet.is_err(), "{quiet:?}");
    drop(sub);
    let ended = tokio::time::timeout(WITHIN, seen.recv())
        .await
        .unwrap()
        .unwrap();
    // A ping after each 200 ms of silence, each answered: about five in a second, never more
    // (fewer on a loaded machine, whose pongs come later).
    assert!((2..=5).contains(&ended.pings), "{ended:?}");
    assert!(ended.texts.is_empty(), "{ended:?}");
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}
