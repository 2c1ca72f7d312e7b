//! The outbox against a real in-process relay: events queued while the relay is down stay
//! queued across a restart of the store, and are delivered once the relay is back; a stored
//! event wakes the worker at once instead of waiting for its timer; a backlog of several
//! batches drains without waiting for the timer between batches.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::sync::Arc;

use provenance::clock::SystemClock;
use provenance::nostr::prelude::{Filter, Kind};
use provenance::{Keys, Model, Output, Record};
use provenance_relay::testing::MockRelay;
use provenance_relay::testing::nostr_relay_builder::RelayBuilder;
use provenance_relay::{Options, fetch};
use provenance_signer::outbox::Outbox;
use provenance_signer::{Clock, RequestId, SqliteStore, Store};

/// A clock far enough ahead that every backoff has passed.
struct Later;

impl Clock for Later {
    fn now_ms(&self) -> u64 {
        SystemClock.now_ms() + 3_600_000
    }
}

#[tokio::test]
async fn events_wait_while_the_relay_is_down_and_arrive_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}");
    let options = Options {
        connect_timeout: std::time::Duration::from_secs(2),
        eose_timeout: std::time::Duration::from_secs(2),
        ..Options::default()
    };
    let keys = Keys::generate();
    let mut ids = Vec::new();
    {
        let store = Arc::new(
            SqliteStore::open(&path)
                .unwrap()
                .publish_to(vec![url.clone()]),
        );
        for text in ["one", "two", "three"] {
            let record = Record::new(Output::from_text(text), Model::named("m"));
            let event = provenance::event::sign(&record, &keys, &SystemClock).unwrap();
            ids.push(event.id);
            store.put(RequestId::generate(), &event).unwrap();
        }
        let outbox = Outbox::new(store.clone(), Arc::new(SystemClock)).options(options.clone());
        // Nothing listens: every attempt fails and the rows stay.
        assert_eq!(outbox.round().await.unwrap(), 0);
        assert_eq!(store.outbox_len().unwrap(), 3);
        // Backing off: not due again at once.
        assert_eq!(outbox.round().await.unwrap(), 0);
    }
    // The signer restarts; the relay comes back on the same address.
    let relay = MockRelay::start_with(RelayBuilder::default().port(port))
        .await
        .unwrap();
    assert_eq!(relay.url().trim_end_matches('/'), url);
    let store = Arc::new(
        SqliteStore::open(&path)
            .unwrap()
            .publish_to(vec![url.clone()]),
    );
    assert_eq!(store.outbox_len().unwrap(), 3);
    let outbox = Outbox::new(store.clone(), Arc::new(Later)).options(options.clone());
    assert_eq!(outbox.round().await.unwrap(), 3);
    assert_eq!(store.outbox_len().unwrap(), 0);
    let filter = Filter::new().kind(Kind::Custom(provenance::event::KIND));
    let found = fetch(&[url], &filter, &options).await;
    let mut got: Vec<_> = found
        .events
        .iter()
        .map(|e| {
            provenance::event::parse_event(&e.json, &Default::default())
                .unwrap()
                .id
        })
        .collect();
    got.sort();
    ids.sort();
    assert_eq!(got, ids);
}

#[tokio::test]
async fn a_stored_event_wakes_the_outbox_before_its_timer() {
    let relay = MockRelay::start().await.unwrap();
    let url = relay.url().trim_end_matches('/').to_owned();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("events.sqlite"))
            .unwrap()
            .publish_to(vec![url.clone()]),
    );
    let outbox = Outbox::new(store.clone(), Arc::new(SystemClock));
    let wake = outbox.waker();
    let worker = tokio::spawn(outbox.run());
    // Its first round finds nothing; then it waits for a wake or its timer.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let record = Record::new(Output::from_text("woken"), Model::named("m"));
    let event = provenance::event::sign(&record, &Keys::generate(), &SystemClock).unwrap();
    store.put(RequestId::generate(), &event).unwrap();
    let stored = std::time::Instant::now();
    wake(&event);
    // The timer would fire about 0.9 s from now: delivery within half of it is the wake's.
    while store.outbox_len().unwrap() > 0 {
        assert!(
            stored.elapsed() < Outbox::FIRST_DELAY / 2,
            "not delivered within half the outbox's own timer: the wake did nothing"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    worker.abort();
}

#[tokio::test]
async fn a_backlog_of_several_batches_drains_without_waiting_for_the_timer() {
    let relay = MockRelay::start().await.unwrap();
    let url = relay.url().trim_end_matches('/').to_owned();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("events.sqlite"))
            .unwrap()
            .publish_to(vec![url.clone()]),
    );
    // Three whole batches of the worker (64 rows each) and one row more, queued while no
    // worker runs (a relay that was down, or a load faster than the relay).
    let keys = Keys::generate();
    for n in 0..3 * 64 + 1 {
        let record = Record::new(
            Output::from_text(&format!("backlog {n}")),
            Model::named("m"),
        );
        let event = provenance::event::sign(&record, &keys, &SystemClock).unwrap();
        store.put(RequestId::generate(), &event).unwrap();
    }
    let started = std::time::Instant::now();
    let worker = tokio::spawn(Outbox::new(store.clone(), Arc::new(SystemClock)).run());
    // Waiting for the timer after each full batch takes three timer periods at least; back to
    // back, 193 publications to a loopback relay take a fraction of that.
    while store.outbox_len().unwrap() > 0 {
        assert!(
            started.elapsed() < Outbox::FIRST_DELAY * 2,
            "{} rows left after {:?}: the worker waits for its timer between full batches",
            store.outbox_len().unwrap(),
            started.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    worker.abort();
}
