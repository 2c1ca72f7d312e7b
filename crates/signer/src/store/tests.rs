//! The store's tests, over its rooms together.

use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use provenance::clock::FixedClock;
use provenance::nostr::prelude::{Kind, Timestamp};
use provenance::{Keys, Model, Output, Record};

use rusqlite::Connection;

use super::writer::{Checkpoints, Job, Write, Writer, write_queued};
use super::*;

fn event(text: &str, at: u64) -> Event {
    let record = Record::new(Output::from_text(text), Model::named("m"));
    provenance::event::sign(
        &record,
        &Keys::generate(),
        &FixedClock(Timestamp::from_secs(at)),
    )
    .unwrap()
}

/// Events in the database file itself, leaving the log aside (`immutable=1` reads the
/// main file only): what checkpoints have copied so far. An error means "not yet": until
/// the first checkpoint even the schema is only in the log ("no such table"), and a read
/// can meet a page a checkpoint is writing at that moment.
fn checkpointed(path: &Path) -> rusqlite::Result<i64> {
    let uri = format!("file:{}?immutable=1", path.display());
    let conn = Connection::open_with_flags(
        uri,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
}

#[test]
fn the_checkpointer_copies_commits_into_the_database_file() {
    for durability in [Durability::Full, Durability::Process] {
        checkpointer_copies_commits(durability);
    }
}

fn checkpointer_copies_commits(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.sqlite");
    let store = SqliteStore::open_with(&path, durability).unwrap();
    // Fewer pages than SQLite's automatic checkpoint (1,000): only the checkpointer
    // copies these.
    for n in 0..20 {
        store
            .put(RequestId::generate(), &event(&format!("{n}"), 1_000))
            .unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let copied = checkpointed(&path);
        if matches!(copied, Ok(n) if n >= 20) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{durability:?}: the file holds {copied:?} of 20 events after 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // And every event is still there, through the log or the file.
    assert_eq!(store.query(&Filter::new(), 100).unwrap().len(), 20);
}

#[test]
fn checkpoints_stay_small_and_process_durability_runs_them_more_often() {
    // Longer pauses made bigger checkpoints and the one-client tail (module docs).
    assert!(Durability::Full.checkpoint_pause() <= Duration::from_millis(5));
    // Its checkpoints also write back the log, so more often (Durability docs).
    assert!(Durability::Process.checkpoint_pause() < Durability::Full.checkpoint_pause());
}

/// The log's checkpoint sequence number (bytes 12..16 of its header): SQLite adds one
/// each time the log starts over.
fn log_restarts(path: &Path) -> u32 {
    let wal = std::fs::read(format!("{}-wal", path.display())).unwrap();
    u32::from_be_bytes(wal[12..16].try_into().unwrap())
}

/// A write job for event `n`, and where its outcome arrives.
fn write_job(n: u64) -> (Write, mpsc::Receiver<bool>) {
    let event = event(&format!("{n}"), 1_000);
    let (tx, rx) = mpsc::channel();
    let write = Write {
        request_id: RequestId::generate().to_string(),
        event_id: event.id.to_hex(),
        created_at: 1_000,
        json: event.as_json(),
        relays: Arc::from([]),
        event,
        done: Box::new(move |_, outcome| tx.send(outcome.is_ok()).unwrap()),
    };
    (write, rx)
}

#[test]
fn the_writer_thread_finishes_a_checkpoint_so_the_log_starts_over_under_steady_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.sqlite");
    // The schema, then a store driven by hand: no checkpointer (the test says what it
    // copied) and no writer thread (the test runs its loop).
    drop(SqliteStore::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    let (kick, _kicks) = mpsc::sync_channel(1);
    let copied = Arc::new(AtomicI64::new(0));
    let writer = Arc::new(Writer {
        conn: Mutex::new(conn),
        queued: AtomicUsize::new(0),
        checkpoints: Checkpoints {
            kick,
            copied: copied.clone(),
        },
    });
    let (jobs, queue) = mpsc::channel();
    let store = SqliteStore {
        conn: Mutex::new(Connection::open(&path).unwrap()),
        lookups: Mutex::new(Connection::open(&path).unwrap()),
        queries: Mutex::new(Connection::open(&path).unwrap()),
        relays: Arc::from([]),
        writer: writer.clone(),
        jobs: jobs.clone(),
        unreadable: std::sync::atomic::AtomicU64::new(0),
    };
    // The store is idle: each commit is made on the caller's thread.
    let inline = |n: u64| {
        let done = submit_and_watch(&store, RequestId::generate(), event(&format!("{n}"), 1_000));
        assert_eq!(
            done.try_recv().unwrap(),
            (std::thread::current().id(), true)
        );
    };
    // A commit made by the writer thread's own hand, outside its loop.
    let by_hand = |n: u64| {
        let (write, done) = write_job(n);
        assert!(!writer.commit(writer.lock(), vec![write]));
        assert!(done.recv().unwrap());
    };
    // The writer thread's loop over `jobs` (ended by dropping every sender).
    let send = |jobs: &mpsc::Sender<Job>, n: u64| {
        let (write, done) = write_job(n);
        writer.queued.fetch_add(1, Ordering::AcqRel);
        jobs.send(Job::Write(write)).unwrap();
        done
    };
    inline(0);
    inline(1);
    let before = log_restarts(&path);
    inline(2);
    assert_eq!(
        log_restarts(&path),
        before,
        "nothing copied: the log goes on"
    );
    assert!(queue.try_recv().is_err(), "nothing for the writer thread");

    // The checkpointer has just copied enough. The next commit, on the caller's thread,
    // takes the count and hands the checkpoint to the writer thread without running it.
    copied.store(WAL_RESTART_FRAMES, Ordering::Relaxed);
    inline(3);
    assert_eq!(
        copied.load(Ordering::Relaxed),
        0,
        "the commit took the count"
    );
    inline(4);
    assert_eq!(
        log_restarts(&path),
        before,
        "the caller did not copy the rest of the log"
    );
    // The writer thread takes the checkpoint (after the event waiting with it); the commit
    // after that starts the log over.
    let done = send(&jobs, 5);
    drop((store, jobs));
    write_queued(&writer, &queue);
    assert!(done.recv().unwrap());
    assert_eq!(writer.queued.load(Ordering::Acquire), 0);
    by_hand(6);
    assert_eq!(log_restarts(&path), before + 1);

    // Under load the commit that takes the count is the writer thread's own: it runs the
    // checkpoint itself, after answering.
    by_hand(7);
    copied.store(WAL_RESTART_FRAMES, Ordering::Relaxed);
    let (jobs, queue) = mpsc::channel();
    let done = send(&jobs, 8);
    drop(jobs);
    write_queued(&writer, &queue);
    assert!(done.recv().unwrap());
    assert_eq!(
        copied.load(Ordering::Relaxed),
        0,
        "the commit took the count"
    );
    by_hand(9);
    assert_eq!(log_restarts(&path), before + 2);
}

#[test]
fn events_survive_reopening_and_answer_filters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite");
    let (a, b) = (RequestId::generate(), RequestId::generate());
    let (ea, eb) = (event("one", 1_000), event("two", 2_000));
    {
        let store = SqliteStore::open(&path).unwrap();
        store.put(a, &ea).unwrap();
        store.put(b, &eb).unwrap();
        // The same request id twice is refused: an event is never replaced.
        assert!(store.put(a, &eb).is_err());
    }
    let store = SqliteStore::open_with(&path, Durability::Process).unwrap();
    assert_eq!(store.get(a).unwrap(), Some(ea.as_json()));
    assert_eq!(store.get(RequestId::generate()).unwrap(), None);
    let kind = Filter::new().kind(Kind::Custom(provenance::event::KIND));
    assert_eq!(
        store.query(&kind, 10).unwrap(),
        vec![eb.clone(), ea.clone()]
    );
    assert_eq!(store.query(&kind, 1).unwrap(), vec![eb.clone()]);
    assert_eq!(store.query(&kind, 0).unwrap(), vec![]);
    let by_id = Filter::new().id(ea.id);
    assert_eq!(store.query(&by_id, 10).unwrap(), vec![ea.clone()]);
    let since = kind.clone().since(Timestamp::from_secs(1_500));
    assert_eq!(store.query(&since, 10).unwrap(), vec![eb.clone()]);
    let output = provenance::digest::sha256(b"one").to_hex();
    let by_x = Filter::new().custom_tag(
        provenance::nostr::prelude::SingleLetterTag::from_char('x').unwrap(),
        output,
    );
    assert_eq!(store.query(&by_x, 10).unwrap(), vec![ea]);
}

#[test]
fn an_unreadable_row_is_left_out_of_queries_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite");
    let (ea, eb, ec) = (
        event("one", 1_000),
        event("two", 2_000),
        event("three", 3_000),
    );
    let store = SqliteStore::open(&path).unwrap();
    for e in [&ea, &eb, &ec] {
        store.put(RequestId::generate(), e).unwrap();
    }
    // Damaged by hand: one row's event is not JSON, another's is not even text.
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE events SET json = '{not json' WHERE event_id = ?1",
        [eb.id.to_hex()],
    )
    .unwrap();
    conn.execute(
        "UPDATE events SET json = x'00ff' WHERE event_id = ?1",
        [ec.id.to_hex()],
    )
    .unwrap();
    let kind = Filter::new().kind(Kind::Custom(provenance::event::KIND));
    assert_eq!(store.query(&kind, 10).unwrap(), vec![ea.clone()]);
    assert_eq!(store.unreadable_rows(), 2);
    let by_id = Filter::new().ids([eb.id, ea.id]);
    assert_eq!(store.query(&by_id, 10).unwrap(), vec![ea]);
    assert_eq!(store.unreadable_rows(), 3);
}

/// Submits `event` and says, through the returned channel, on which thread `done` ran
/// and whether the event was stored.
fn submit_and_watch(
    store: &SqliteStore,
    id: RequestId,
    event: Event,
) -> mpsc::Receiver<(std::thread::ThreadId, bool)> {
    let (tx, rx) = mpsc::channel();
    store.submit(
        id,
        event,
        Box::new(move |_, outcome| {
            tx.send((std::thread::current().id(), outcome.is_ok()))
                .unwrap();
        }),
    );
    rx
}

#[test]
fn an_idle_store_commits_on_the_callers_thread_before_submit_returns() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("e.sqlite")).unwrap();
    let id = RequestId::generate();
    let done = submit_and_watch(&store, id, event("idle", 1_000));
    // Already answered, here: no hand-off to the writer thread and back.
    assert_eq!(
        done.try_recv().unwrap(),
        (std::thread::current().id(), true)
    );
    assert!(store.get(id).unwrap().is_some());
}

#[test]
fn a_busy_store_hands_events_to_the_writer_thread() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("e.sqlite")).unwrap();
    // A commit in progress: the write connection is taken.
    let busy = store.writer.lock();
    let ids: Vec<RequestId> = (0..3).map(|_| RequestId::generate()).collect();
    let watches: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| submit_and_watch(&store, *id, event(&format!("busy-{n}"), 1_000)))
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    for watch in &watches {
        assert!(
            watch.try_recv().is_err(),
            "not answered while the connection is taken"
        );
    }
    drop(busy);
    let mut threads = std::collections::HashSet::new();
    for watch in watches {
        let (thread, stored) = watch.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(stored);
        threads.insert(thread);
    }
    assert_eq!(threads.len(), 1, "one writer thread answered them all");
    assert!(!threads.contains(&std::thread::current().id()));
    for id in ids {
        assert!(store.get(id).unwrap().is_some());
    }
    // Once the queue is empty, the store is idle again: the next commit is inline.
    for _ in 0..100 {
        if store.writer.queued.load(Ordering::Acquire) == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let done = submit_and_watch(&store, RequestId::generate(), event("after", 1_000));
    assert_eq!(
        done.try_recv().unwrap(),
        (std::thread::current().id(), true)
    );
}

#[test]
fn concurrent_puts_share_transactions_and_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SqliteStore::open(&dir.path().join("e.sqlite")).unwrap());
    let shared = RequestId::generate();
    let threads: Vec<_> = (0..16)
        .map(|n| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                for k in 0..8 {
                    let id = RequestId::generate();
                    store.put(id, &event(&format!("{n}-{k}"), 1_000)).unwrap();
                    ids.push(id);
                }
                // One duplicate request id per thread: refused, without undoing others.
                let duplicate = store.put(shared, &event(&format!("dup-{n}"), 1_000));
                (ids, duplicate.is_ok())
            })
        })
        .collect();
    let mut accepted_duplicates = 0;
    for thread in threads {
        let (ids, duplicate_ok) = thread.join().unwrap();
        accepted_duplicates += usize::from(duplicate_ok);
        for id in ids {
            assert!(store.get(id).unwrap().is_some());
        }
    }
    assert_eq!(
        accepted_duplicates, 1,
        "exactly one put of the shared id wins"
    );
}

#[test]
fn request_ids_round_trip_and_reject_junk() {
    let id = RequestId::generate();
    assert_eq!(id.to_string().parse::<RequestId>().unwrap(), id);
    for junk in ["", "zz", &"a".repeat(31), &"g".repeat(32), &"a".repeat(33)] {
        assert!(junk.parse::<RequestId>().is_err(), "{junk}");
    }
}

#[test]
fn generated_ids_start_with_the_time_and_differ() {
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let ids: Vec<RequestId> = (0..1_000).map(|_| RequestId::generate()).collect();
    let after = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let millis = |id: &RequestId| u128::from_str_radix(&id.to_string()[..12], 16).unwrap();
    for id in &ids {
        assert!((before..=after).contains(&millis(id)), "{id}");
    }
    // Made one after another: their text sorts in the order they were made, to the
    // millisecond.
    assert!(ids.windows(2).all(|w| millis(&w[0]) <= millis(&w[1])));
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len());
    // The random part differs even within one millisecond.
    let tails: std::collections::HashSet<_> = ids
        .iter()
        .map(|id| id.to_string()[12..].to_owned())
        .collect();
    assert_eq!(tails.len(), ids.len());
}

#[test]
fn registry_remembers_failures_and_forgets_done() {
    let registry = Registry::default();
    let (a, b) = (RequestId::generate(), RequestId::generate());
    registry.start(a);
    registry.start(b);
    assert_eq!(registry.state(a), Some(Lookup::InProgress));
    registry.done(a);
    registry.fail(b, "upstream broke".into());
    assert_eq!(registry.state(a), None);
    assert_eq!(
        registry.state(b),
        Some(Lookup::Failed("upstream broke".into()))
    );
}

#[test]
fn an_event_read_does_not_wait_for_a_relay_query() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("e.sqlite")).unwrap());
    let (id, ev) = (RequestId::generate(), event("one", 1_000));
    store.put(id, &ev).unwrap();
    // A relay query in progress: it holds the query connection for as long as it scans.
    let held = super::sqlite::lock(&store.queries);
    let (tx, rx) = mpsc::channel();
    let reader = store.clone();
    std::thread::spawn(move || tx.send(reader.get(id).map_err(|e| e.to_string())));
    let got = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the event read waited for the relay query");
    assert_eq!(got.unwrap(), Some(ev.as_json()));
    // The outbox does not wait for it either.
    let (tx, rx) = mpsc::channel();
    let outbox = store.clone();
    std::thread::spawn(move || tx.send(outbox.outbox_len().is_ok()));
    assert!(rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap());
    // Another query does wait: the connection is what a scan holds.
    let (tx, rx) = mpsc::channel();
    let querier = store.clone();
    std::thread::spawn(move || tx.send(querier.query(&Filter::new(), 10).map(|e| e.len()).ok()));
    assert!(
        rx.recv_timeout(std::time::Duration::from_millis(200))
            .is_err()
    );
    drop(held);
    assert_eq!(
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap(),
        Some(1)
    );
}

#[test]
fn event_reads_are_answered_while_relay_queries_hammer_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("e.sqlite")).unwrap());
    let mut ids = Vec::new();
    for n in 0..300u64 {
        let (id, ev) = (RequestId::generate(), event(&n.to_string(), 1_000 + n));
        store.put(id, &ev).unwrap();
        ids.push((id, ev.as_json()));
    }
    let stranger = Keys::generate().public_key();
    // Filters that match nothing, as the clients that slowed event reads sent them.
    let filters = [
        Filter::new().author(stranger),
        Filter::new().kind(Kind::Custom(1)),
        Filter::new().custom_tag(
            provenance::nostr::prelude::SingleLetterTag::from_char('x').unwrap(),
            "00".repeat(32),
        ),
        Filter::new().until(Timestamp::from_secs(10)),
    ];
    let hammers: Vec<_> = (0..4)
        .map(|t| {
            let (store, filter) = (store.clone(), filters[t].clone());
            std::thread::spawn(move || {
                for _ in 0..200 {
                    assert!(store.query(&filter, 500).unwrap().is_empty());
                }
            })
        })
        .collect();
    for (id, json) in &ids {
        assert_eq!(store.get(*id).unwrap().as_deref(), Some(json.as_str()));
    }
    for hammer in hammers {
        hammer.join().unwrap();
    }
    // Filters that match still find their events through the indexes (each event here has
    // an author of its own).
    let kind = Filter::new().kind(Kind::Custom(provenance::event::KIND));
    assert_eq!(store.query(&kind, 1_000).unwrap().len(), 300);
    let newest = store.query(&kind, 1).unwrap().remove(0);
    let author = kind.author(newest.pubkey);
    assert_eq!(store.query(&author, 1_000).unwrap(), vec![newest]);
}

/// What SQLite plans for the scan of `filter`, one line a step.
fn plan(store: &SqliteStore, filter: &Filter) -> String {
    let (sql, bound) = super::sqlite::scan(filter);
    let conn = super::sqlite::lock(&store.queries);
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    for (n, value) in bound {
        stmt.raw_bind_parameter(n, value).unwrap();
    }
    let mut rows = stmt.raw_query();
    let mut steps = Vec::new();
    while let Some(r) = rows.next().unwrap() {
        steps.push(r.get::<_, String>(3).unwrap());
    }
    steps.join("\n")
}

#[test]
fn filters_on_authors_kinds_and_x_read_through_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("e.sqlite")).unwrap();
    let author = Filter::new().author(Keys::generate().public_key());
    assert!(
        plan(&store, &author).contains("events_pubkey"),
        "{}",
        plan(&store, &author)
    );
    let kind = Filter::new().kind(Kind::Custom(1));
    assert!(
        plan(&store, &kind).contains("events_kind"),
        "{}",
        plan(&store, &kind)
    );
    let x = Filter::new().custom_tag(
        provenance::nostr::prelude::SingleLetterTag::from_char('x').unwrap(),
        "00".repeat(32),
    );
    assert!(plan(&store, &x).contains("event_x"), "{}", plan(&store, &x));
    let time = Filter::new().since(Timestamp::from_secs(5));
    assert!(
        plan(&store, &time).contains("events_created_at"),
        "{}",
        plan(&store, &time)
    );
}

#[test]
fn a_store_written_before_the_filter_indexes_gets_them_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite");
    let (ea, eb) = (event("one", 1_000), event("two", 2_000));
    {
        // The schema as it was, with one event and one damaged row.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE events (
                request_id TEXT PRIMARY KEY,
                event_id TEXT NOT NULL UNIQUE,
                created_at INTEGER NOT NULL,
                json TEXT NOT NULL
            );
            CREATE INDEX events_created_at ON events (created_at);",
        )
        .unwrap();
        let insert = "INSERT INTO events VALUES (?1, ?2, ?3, ?4)";
        conn.execute(
            insert,
            rusqlite::params![
                RequestId::generate().to_string(),
                ea.id.to_hex(),
                1_000,
                ea.as_json()
            ],
        )
        .unwrap();
        conn.execute(
            insert,
            rusqlite::params![
                RequestId::generate().to_string(),
                eb.id.to_hex(),
                2_000,
                "{not json"
            ],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let by_author = Filter::new().author(ea.pubkey);
    assert_eq!(store.query(&by_author, 10).unwrap(), vec![ea.clone()]);
    let by_kind = Filter::new().kind(ea.kind);
    assert_eq!(store.query(&by_kind, 10).unwrap(), vec![ea.clone()]);
    let by_x = Filter::new().custom_tag(
        provenance::nostr::prelude::SingleLetterTag::from_char('x').unwrap(),
        provenance::digest::sha256(b"one").to_hex(),
    );
    assert_eq!(store.query(&by_x, 10).unwrap(), vec![ea.clone()]);
    drop(store);
    // Opened again: nothing to add.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.query(&by_x, 10).unwrap(), vec![ea]);
}
