//! Bulk ingest cuts its batches by bytes as well as by count, whatever the source: a file, a
//! signer's store or a relay. Large events must not make one batch hold thousands of them.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::sync::{Arc, Mutex};

use provenance_fixtures as kit;
use provenance_lookup::Index;
use provenance_lookup::ingest::{
    BATCH, BATCH_BYTES, BatchLimits, ingest_from_relays_with, ingest_jsonl, ingest_jsonl_with,
    ingest_signer_db_with, provenance_filter,
};
use provenance_relay::testing::MockRelay;
use provenance_signer::store::{RequestId, SqliteStore, Store};

/// `n` valid events by one signer, as JSON.
fn events(n: u64) -> Vec<String> {
    let keys = kit::golden_keys();
    (0..n)
        .map(|i| kit::synthetic_event(&keys, i).as_json())
        .collect()
}

/// How many batches `lens` make when a batch ends once it holds `cap` bytes.
fn expected_batches(lens: &[usize], cap: usize) -> u64 {
    let (mut batches, mut held) = (0, 0);
    for len in lens {
        if held == 0 {
            batches += 1;
        }
        held += len;
        if held >= cap {
            held = 0;
        }
    }
    batches
}

#[test]
fn the_default_caps_are_4096_events_and_16_mib() {
    let limits = BatchLimits::default();
    assert_eq!((limits.events, limits.bytes), (BATCH, BATCH_BYTES));
    assert_eq!((BATCH, BATCH_BYTES), (4096, 16 << 20));
}

#[test]
fn a_jsonl_batch_ends_at_the_byte_cap() {
    let lines = events(12);
    let input = lines.join("\n") + "\n";
    let lens: Vec<usize> = lines.iter().map(String::len).collect();
    // About three events a batch.
    let cap = lens[0] * 3;
    let mut index = Index::open_in_memory().unwrap();
    let limits = BatchLimits {
        events: BATCH,
        bytes: cap,
    };
    let report = ingest_jsonl_with(&mut index, input.as_bytes(), limits).unwrap();
    assert_eq!(report.indexed, 12);
    let expected = expected_batches(&lens, cap);
    assert!((4..=6).contains(&expected), "{expected}");
    assert_eq!(report.batches, expected, "{report:?}");

    // One event larger than the cap is a batch of its own.
    let mut index = Index::open_in_memory().unwrap();
    let tiny = BatchLimits {
        events: BATCH,
        bytes: 1,
    };
    let report = ingest_jsonl_with(&mut index, input.as_bytes(), tiny).unwrap();
    assert_eq!((report.indexed, report.batches), (12, 12));

    // The defaults take them all in one.
    let mut index = Index::open_in_memory().unwrap();
    let report = ingest_jsonl(&mut index, input.as_bytes()).unwrap();
    assert_eq!((report.indexed, report.batches), (12, 1));
}

#[test]
fn the_count_cap_still_holds() {
    let input = events(7).join("\n");
    let mut index = Index::open_in_memory().unwrap();
    let limits = BatchLimits {
        events: 2,
        bytes: usize::MAX,
    };
    let report = ingest_jsonl_with(&mut index, input.as_bytes(), limits).unwrap();
    assert_eq!((report.indexed, report.batches), (7, 4));
}

#[test]
fn a_signer_store_is_read_in_batches_cut_at_the_byte_cap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    let keys = kit::golden_keys();
    let mut lens = Vec::new();
    for i in 0..10 {
        let event = kit::synthetic_event(&keys, i);
        lens.push(event.as_json().len());
        store.put(RequestId::generate(), &event).unwrap();
    }
    let cap = lens[0] * 2;
    let limits = BatchLimits {
        events: BATCH,
        bytes: cap,
    };
    let mut index = Index::open_in_memory().unwrap();
    let report = ingest_signer_db_with(&mut index, &path, limits).unwrap();
    assert_eq!(report.indexed, 10);
    let expected = expected_batches(&lens, cap);
    assert!(expected >= 4, "{expected}");
    assert_eq!(report.batches, expected, "{report:?}");
    // Where it stopped was committed with the last batch: nothing is read again.
    let again = ingest_signer_db_with(&mut index, &path, limits).unwrap();
    assert_eq!((again.indexed, again.duplicate, again.batches), (0, 0, 0));
}

#[tokio::test]
async fn events_from_a_relay_are_committed_in_batches_cut_at_the_byte_cap() {
    let relay = MockRelay::start().await.unwrap();
    let urls = vec![relay.url().to_owned()];
    let keys = kit::golden_keys();
    for i in 0..6 {
        let event = kit::synthetic_event(&keys, i);
        let reports =
            provenance_relay::publish(&urls, &event, &provenance_relay::Options::default()).await;
        assert!(reports[0].outcome.is_ok(), "{:?}", reports[0].outcome);
    }
    let index = Arc::new(Mutex::new(Index::open_in_memory().unwrap()));
    let limits = BatchLimits {
        events: BATCH,
        bytes: 1,
    };
    let (report, _) = ingest_from_relays_with(
        index,
        &urls,
        &provenance_filter(&[], None),
        &provenance_relay::Options::default(),
        limits,
    )
    .await
    .unwrap();
    assert_eq!((report.indexed, report.batches), (6, 6), "{report:?}");
}
