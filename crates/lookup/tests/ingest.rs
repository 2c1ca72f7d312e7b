//! Ingest: JSON Lines files and relays; forged events are counted and never indexed.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use provenance_fixtures as kit;
use provenance_lookup::ingest::{ingest_from_relays, ingest_jsonl, provenance_filter};
use provenance_lookup::{Error, Index, Ingested, Options, Prepared, Query, TrustList, lookup};
use provenance_relay::testing::{Behaviour, Frame, MockRelay, ScriptedRelay};

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
        assert_eq!(index.schema_version().unwrap(), 2);
        index
            .ingest_json(&kit::lookup_events()[0].as_json())
            .unwrap();
    }
    let index = Index::open(&path).unwrap();
    assert_eq!(index.schema_version().unwrap(), 2);
    assert_eq!(found(&index, kit::LOOKUP_PARAGRAPH), 1);
    drop(index);
    // A migration this version does not know, as a newer version would have recorded it.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("INSERT INTO migrations VALUES (3, 0)", [])
        .unwrap();
    drop(conn);
    match Index::open(&path) {
        Err(Error::SchemaTooNew { found: 3, known: 2 }) => {}
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

/// The fields of a parsed event, to compare a stored event with the one signed.
fn fields(json: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
    v.as_object_mut().unwrap().retain(|k, _| k != "kind");
    v
}

#[test]
fn a_stored_event_reads_back_as_the_event_signed() {
    let mut index = Index::open_in_memory().unwrap();
    for ev in kit::lookup_events() {
        index.ingest_json(&ev.as_json()).unwrap();
        let stored = index.by_id(&ev.id).unwrap().unwrap();
        assert_eq!(fields(&stored.json), fields(&ev.as_json()));
        let back = provenance::event::parse_event(&stored.json, &Default::default()).unwrap();
        assert_eq!(back, ev);
        assert!(provenance::event::verify(&back).holds());
    }
}

/// The schema of migration 1, as version 0.1 wrote it.
const V1_SCHEMA: &str = r"
CREATE TABLE migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);
INSERT INTO migrations VALUES (1, 0);
CREATE TABLE events (seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, author BLOB NOT NULL,
    created_at INTEGER NOT NULL, model TEXT NOT NULL, json TEXT NOT NULL, fp_count INTEGER NOT NULL, fp_max INTEGER);
CREATE TABLE exact (hash BLOB NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (hash, seq)) WITHOUT ROWID;
CREATE TABLE normalized (hash BLOB NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (hash, seq)) WITHOUT ROWID;
CREATE TABLE fingerprints (hash INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (hash, seq)) WITHOUT ROWID;
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO counters VALUES ('indexed', 2), ('duplicate', 0), ('rejected', 1);
";

#[test]
fn an_index_of_version_1_is_migrated_and_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.sqlite");
    let events = kit::lookup_events();
    {
        // Written the way version 1 ingested: the event JSON as received, full hashes.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(V1_SCHEMA).unwrap();
        for ev in &events[..2] {
            let record = provenance::event::verify(ev).record().unwrap().clone();
            let fps = record
                .output
                .fingerprints
                .map(|f| f.hashes)
                .unwrap_or_default();
            conn.execute(
                "INSERT INTO events (id, author, created_at, model, json, fp_count, fp_max) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                rusqlite::params![
                    ev.id.as_bytes().as_slice(),
                    ev.pubkey.to_bytes().as_slice(),
                    ev.created_at.as_secs() as i64,
                    record.model.name,
                    ev.as_json(),
                    fps.len() as i64,
                    fps.iter().max().map(|h| h.as_u64() as i64),
                ],
            )
            .unwrap();
            let seq = conn.last_insert_rowid();
            conn.execute(
                "INSERT INTO exact VALUES (?1, ?2)",
                rusqlite::params![record.output.sha256.as_bytes().as_slice(), seq],
            )
            .unwrap();
            if let Some(n) = &record.output.normalized {
                conn.execute(
                    "INSERT INTO normalized VALUES (?1, ?2)",
                    rusqlite::params![n.sha256.as_bytes().as_slice(), seq],
                )
                .unwrap();
            }
            for h in &fps {
                conn.execute(
                    "INSERT INTO fingerprints VALUES (?1, ?2)",
                    rusqlite::params![h.as_u64() as i64, seq],
                )
                .unwrap();
            }
        }
    }
    let mut index = Index::open(&path).unwrap();
    assert_eq!(index.schema_version().unwrap(), 2);
    let counters = index.counters().unwrap();
    assert_eq!((counters.indexed, counters.rejected), (2, 1));
    for ev in &events[..2] {
        let stored = index.by_id(&ev.id).unwrap().unwrap();
        assert_eq!(fields(&stored.json), fields(&ev.as_json()));
    }
    assert_eq!(found(&index, kit::LOOKUP_PARAGRAPH), 1);
    assert_eq!(found(&index, kit::LOOKUP_ANSWER), 1);
    assert_eq!(
        index.newest_created_at().unwrap(),
        Some(
            events[..2]
                .iter()
                .map(|e| e.created_at.as_secs())
                .max()
                .unwrap()
        )
    );
    // The migrated index takes new events, and knows the old ones.
    let report = ingest_jsonl(
        &mut index,
        format!(
            "{}\n{}\n",
            events[0].as_json(),
            kit::synthetic_event(&kit::golden_keys(), 7).as_json()
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!((report.indexed, report.duplicate), (1, 1));
}

#[test]
fn events_committed_before_a_crash_get_their_keys_when_the_index_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lookup.sqlite");
    let events = kit::lookup_events();
    {
        let mut index = Index::open(&path).unwrap();
        let mut verifier = provenance::event::Verifier::new();
        index
            .in_batch(|index| {
                for ev in &events {
                    index.add(Prepared::verify(&mut verifier, ev).unwrap())?;
                }
                Ok(())
            })
            .unwrap();
        // Committed, keys kept in memory only: not yet found.
        assert_eq!(found(&index, kit::LOOKUP_PARAGRAPH), 0);
        // Dropped without a flush, as a crash would.
    }
    let mut index = Index::open(&path).unwrap();
    assert_eq!(found(&index, kit::LOOKUP_PARAGRAPH), 1);
    assert_eq!(found(&index, kit::LOOKUP_ANSWER), 1);
    // A rerun of the same input completes nothing twice.
    let input: String = events.iter().map(|e| e.as_json() + "\n").collect();
    let report = ingest_jsonl(&mut index, input.as_bytes()).unwrap();
    assert_eq!((report.indexed, report.duplicate), (0, events.len() as u64));
}

#[test]
fn a_key_row_pointing_at_another_event_is_not_an_exact_match() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lookup.sqlite");
    let events = kit::lookup_events();
    {
        let mut index = Index::open(&path).unwrap();
        index.ingest_json(&events[1].as_json()).unwrap();
    }
    // A damaged (or prefix-colliding) key: the paragraph's exact hash leads to another event.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let key = i64::from_be_bytes(
        provenance::digest::sha256(kit::LOOKUP_PARAGRAPH.as_bytes()).as_bytes()[..8]
            .try_into()
            .unwrap(),
    );
    conn.execute("INSERT INTO exact VALUES (?1, 1)", [key])
        .unwrap();
    drop(conn);
    let index = Index::open(&path).unwrap();
    let query = Query::from_hashes(
        Some(provenance::digest::sha256(kit::LOOKUP_PARAGRAPH.as_bytes())),
        None,
        Vec::new(),
    );
    let answer = lookup(&index, &TrustList::default(), &query, &Options::default()).unwrap();
    assert!(answer.matches.is_empty(), "{:?}", answer.matches.len());
}

#[test]
fn many_events_in_several_batches_and_flushes_are_all_found() {
    let keys = kit::golden_keys();
    let n = provenance_lookup::ingest::BATCH as u64 + 3;
    let input: String = (0..n)
        .map(|i| kit::synthetic_event(&keys, i).as_json() + "\n")
        .collect();
    let mut index = Index::open_in_memory().unwrap();
    // A small pending limit: keys are flushed after every batch, then at the end.
    index.set_pending_limit(1);
    let report = ingest_jsonl(&mut index, input.as_bytes()).unwrap();
    assert_eq!(report.indexed, n);
    for i in [0, n / 2, n - 1] {
        assert_eq!(found(&index, &kit::synthetic_output(i)), 1, "output {i}");
    }
}

/// Event JSON with one field replaced.
fn edited(json: &str, field: &str, value: serde_json::Value) -> String {
    let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
    v[field] = value;
    v.to_string()
}

/// `n` synthetic events by one signer, as JSON, with three bad ones: `bad[0]` with a flipped
/// signature bit (id intact), `bad[1]` with the signature of another event, `bad[2]` with its
/// content edited (id mismatch; the signature is still over the claimed id).
fn events_with_bad_ones(n: u64, bad: [usize; 3]) -> Vec<String> {
    let keys = kit::golden_keys();
    let mut lines: Vec<String> = (0..n)
        .map(|i| kit::synthetic_event(&keys, i).as_json())
        .collect();
    let sig = |json: &str| fields(json)["sig"].as_str().unwrap().to_owned();
    let mut flipped = sig(&lines[bad[0]]);
    flipped.replace_range(10..11, if &flipped[10..11] == "0" { "1" } else { "0" });
    lines[bad[0]] = edited(&lines[bad[0]], "sig", flipped.into());
    lines[bad[1]] = edited(&lines[bad[1]], "sig", sig(&lines[0]).into());
    lines[bad[2]] = edited(&lines[bad[2]], "content", "{}".into());
    lines
}

#[test]
fn bad_events_in_the_middle_of_a_batch_are_rejected_alone() {
    // 300 events in one chunk: batches of 75 on two threads (150 on one), so the bad ones sit
    // inside batches whose signatures are checked together.
    let n = 300;
    let bad = [100, 101, 200];
    let lines = events_with_bad_ones(n, bad);
    let mut index = Index::open_in_memory().unwrap();
    let report = ingest_jsonl(&mut index, (lines.join("\n") + "\n").as_bytes()).unwrap();
    assert_eq!(
        (report.indexed, report.duplicate, report.rejected),
        (n - 3, 0, 3),
        "{:?}",
        report.reasons
    );
    // The reasons are those of one check each, in input order.
    let mut verifier = provenance::event::Verifier::new();
    let alone: Vec<String> = bad
        .iter()
        .map(|&i| Prepared::verify_json(&mut verifier, &lines[i]).unwrap_err())
        .collect();
    assert_eq!(report.reasons, alone);
    assert!(alone[0].ends_with(": event.sig.invalid"), "{}", alone[0]);
    assert!(alone[1].ends_with(": event.sig.invalid"), "{}", alone[1]);
    assert!(alone[2].contains("event.id.mismatch"), "{}", alone[2]);
    for (i, line) in lines.iter().enumerate() {
        let id = provenance::event::parse_event(line, &Default::default())
            .unwrap()
            .id;
        let stored = index.by_id(&id).unwrap();
        assert_eq!(stored.is_some(), !bad.contains(&i), "event {i}");
    }
    assert_eq!(found(&index, &kit::synthetic_output(99)), 1);
    assert_eq!(found(&index, &kit::synthetic_output(101)), 0);
}

#[test]
fn verify_many_json_gives_what_verify_json_gives() {
    let mut inputs: Vec<Result<String, String>> = events_with_bad_ones(90, [3, 40, 89])
        .into_iter()
        .map(Ok)
        .collect();
    inputs.insert(10, Ok("not json".into()));
    inputs.insert(20, Err("line is not UTF-8".into()));
    inputs.insert(30, Ok(kit::lookup_forged_json()));
    inputs.push(Ok(kit::lookup_events()[0].as_json()));
    let mut verifier = provenance::event::Verifier::new();
    let many = Prepared::verify_many_json(&mut verifier, inputs.clone());
    assert_eq!(many.len(), inputs.len());
    let mut rejected = 0;
    for (i, (many, input)) in many.iter().zip(&inputs).enumerate() {
        let alone = input
            .clone()
            .and_then(|json| Prepared::verify_json(&mut provenance::event::Verifier::new(), &json));
        rejected += usize::from(alone.is_err());
        assert_eq!(format!("{many:?}"), format!("{alone:?}"), "input {i}");
    }
    assert_eq!(rejected, 6);
}

#[test]
fn a_capped_fingerprint_set_is_compared_below_its_largest() {
    use provenance::fingerprint::MAX_HASHES;
    use provenance::{Model, Output, Record};

    let text: String = (0..80)
        .map(kit::synthetic_output)
        .collect::<Vec<_>>()
        .join(" ");
    let record = Record::new(
        Output::from_text(&text).with_fingerprints(&text),
        Model::named("m"),
    );
    let hashes = record.output.fingerprints.as_ref().unwrap().hashes.clone();
    assert_eq!(hashes.len(), MAX_HASHES, "the set must be capped");
    let ev = provenance::event::sign(
        &record,
        &kit::golden_keys(),
        &provenance::clock::SystemClock,
    )
    .unwrap();
    let mut index = Index::open_in_memory().unwrap();
    index.ingest_json(&ev.as_json()).unwrap();
    let stored = index.by_id(&ev.id).unwrap().unwrap();
    assert_eq!(stored.fingerprint_max, hashes.iter().max().copied());
    // Query fingerprints above the record's largest are not counted against it.
    let words: Vec<&str> = text.split(' ').collect();
    let excerpt = words[2000..2100].join(" ");
    let answer = lookup(
        &index,
        &TrustList::default(),
        &Query::from_text(&excerpt),
        &Options::default(),
    )
    .unwrap();
    let coverage = &answer.matches[0].coverage;
    assert_eq!(coverage.fraction, 1.0);
    assert!(coverage.total < answer.query.fingerprints, "{coverage:?}");
}
