//! The signer's store: the time from handing one signed event to the store until its
//! transaction is committed (what every signed answer waits for before its last byte), one
//! event at a time on an otherwise idle store, which commits it on the calling thread, for
//! both durability modes. `full` waits for the log to reach the disk (an fsync per commit);
//! `process` only for the write.
//!
//! `cargo bench -p provenance-benches --bench signer_store`. Figures and the machine they were
//! taken on: `docs/benchmarks.md` ("Signing proxy").

use criterion::{Criterion, criterion_group, criterion_main};
use provenance_fixtures::generate::EventGenerator;
use provenance_signer::{Durability, RequestId, SqliteStore, Store};

fn commit(c: &mut Criterion) {
    let generator = EventGenerator::new();
    let mut group = c.benchmark_group("store commit (one event)");
    for (name, durability) in [("full", Durability::Full), ("process", Durability::Process)] {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = SqliteStore::open_with(&dir.path().join("events.sqlite"), durability)
            .expect("a new store opens");
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                let event = generator.event(i);
                i += 1;
                store
                    .put(RequestId::generate(), &event)
                    .expect("the event is stored");
            })
        });
    }
    group.finish();
}

criterion_group!(benches, commit);
criterion_main!(benches);
