//! Ingest: JSON Lines files and relays; forged events are counted and never indexed.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use provenance_lookup::ingest::{ingest_from_relays, ingest_jsonl, provenance_filter};
use provenance_lookup::{Error, Index, Ingested, Options, Query, TrustList, lookup};
use provenance_relay::testing::{Behaviour, Frame, MockRelay, ScriptedRelay};
use provenance_testkit as kit;

fn found(index: &Index, text: &str) -> usize {
    let answer = lookup(
        index,
        &TrustList::default(),
        &Query::from_text(text),
        &Options::default(),
    );
    answer.unwrap().matches.len()
}

#[test]
fn jsonl_ingest_indexes_valid_events_and_counts_the_rest() {
    let events = kit::lookup_events();
    let valid = events[0].as_json();
    let input = format!(
        "{valid}\n\n{}\nnot json\n{valid}\n{}\n",
        kit::lookup_forged_json(),
        events[1].as_json()
    );
    let mut index = Index::open_in_memory().unwrap();
    let report = ingest_jsonl(&mut index, input.as_bytes()).unwrap();
    assert_eq!(
        (report.indexed, report.duplicate, report.rejected),
        (2, 1, 2)
    );
    assert!(
        report
            .reasons
            .iter()
            .any(|r| r.contains("event.id.mismatch")),
        "{:?}",
        report.reasons
    );
    let counters = index.counters().unwrap();
    assert_eq!(
        (counters.indexed, counters.duplicate, counters.rejected),
        (2, 1, 2)
    );
    assert_eq!(found(&index, kit::LOOKUP_FORGED), 0);
    assert_eq!(found(&index, kit::LOOKUP_ANSWER), 1);
}

#[test]
fn overlong_lines_are_rejected_without_stopping_the_batch() {
    let long = "x".repeat(provenance_lookup::ingest::MAX_LINE_BYTES + 10);
    let input = format!("{long}\n{}\n", kit::lookup_events()[1].as_json());
    let mut index = Index::open_in_memory().unwrap();
    let report = ingest_jsonl(&mut index, input.as_bytes()).unwrap();
    assert_eq!((report.indexed, report.rejected), (1, 1));
}

#[test]
fn migrations_run_once_and_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lookup.sqlite");
    {
        let mut index = Index::open(&path).unwrap();
        assert_eq!(index.schema_version().unwrap(), 1);
        index
            .ingest_json(&kit::lookup_events()[0].as_json())
            .unwrap();
    }
    let index = Index::open(&path).unwrap();
    assert_eq!(index.schema_version().unwrap(), 1);
    assert_eq!(found(&index, kit::LOOKUP_PARAGRAPH), 1);
    drop(index);
    // A migration this version does not know, as a newer version would have recorded it.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("INSERT INTO migrations VALUES (2, 0)", [])
        .unwrap();
    drop(conn);
    match Index::open(&path) {
        Err(Error::SchemaTooNew { found: 2, known: 1 }) => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
}

#[tokio::test]
async fn a_forged_event_on_a_relay_is_rejected_and_the_valid_one_indexed() {
    let events = kit::lookup_events();
    let frames = vec![
        Frame::Text(format!(r#"["EVENT","$SUB",{}]"#, kit::lookup_forged_json())),
        Frame::Text(format!(r#"["EVENT","$SUB",{}]"#, events[0].as_json())),
        Frame::Text(r#"["EOSE","$SUB"]"#.to_owned()),
    ];
    let relay = ScriptedRelay::start(Behaviour::Script(frames))
        .await
        .unwrap();
    let index = Arc::new(Mutex::new(Index::open_in_memory().unwrap()));
    let opts = provenance_relay::Options {
        eose_timeout: Duration::from_secs(5),
        ..provenance_relay::Options::default()
    };
    let (report, relays) = ingest_from_relays(
        index.clone(),
        &[relay.url().to_owned()],
        &provenance_filter(&[], None),
        &opts,
    )
    .await
    .unwrap();
    assert_eq!((report.indexed, report.rejected), (1, 1), "{report:?}");
    assert!(relays[0].outcome.is_ok(), "{:?}", relays[0].outcome);
    let index = index.lock().unwrap();
    assert_eq!(found(&index, kit::LOOKUP_FORGED), 0);
    assert_eq!(found(&index, kit::LOOKUP_PARAGRAPH), 1);
}

#[tokio::test]
async fn events_published_to_a_relay_are_ingested_by_author() {
    let relay = MockRelay::start().await.unwrap();
    let urls = vec![relay.url().to_owned()];
    for ev in kit::lookup_events() {
        let reports =
            provenance_relay::publish(&urls, &ev, &provenance_relay::Options::default()).await;
        assert!(reports[0].outcome.is_ok(), "{:?}", reports[0].outcome);
    }
    let index = Arc::new(Mutex::new(Index::open_in_memory().unwrap()));
    let author = kit::golden_keys().public_key();
    let (report, _) = ingest_from_relays(
        index.clone(),
        &urls,
        &provenance_filter(&[author], None),
        &provenance_relay::Options::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.indexed, 1);
    let mut index = index.lock().unwrap();
    assert_eq!(index.newest_created_at().unwrap(), Some(kit::CREATED_AT));
    assert_eq!(found(&index, kit::LOOKUP_OTHER), 0);
    assert_eq!(
        index
            .ingest_json(&kit::lookup_events()[0].as_json())
            .unwrap(),
        Ingested::Duplicate
    );
}
