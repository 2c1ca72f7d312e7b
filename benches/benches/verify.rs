//! Event verification: parse + verify per event (JSON parsing, id recomputation, BIP-340
//! check, record and tags), with a reused [`Verifier`], with a fresh one, and for the whole
//! set at once ([`Verifier::verify_many`], signatures by batch verification, as
//! `provenance verify` does with its batches of 256), against the raw libsecp256k1 signature
//! check alone.
//!
//! `cargo bench -p provenance-benches --bench verify`. The end-to-end batch figures (1M events,
//! all cores, against nostr-tools) come from `scripts/bench-verify.sh`; see
//! `docs/benchmarks.md`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use provenance::event::{self, Expect, Limits, Verifier};
use provenance_fixtures::generate::EventGenerator;

const EVENTS: u64 = 256;

fn verify(c: &mut Criterion) {
    let generator = EventGenerator::new();
    let lines: Vec<String> = (0..EVENTS).map(|i| generator.event(i).as_json()).collect();
    let limits = Limits::default();
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(EVENTS));

    group.bench_function("parse+verify (reused Verifier)", |b| {
        let mut verifier = Verifier::new();
        b.iter(|| {
            for line in &lines {
                let ev = event::parse_event(line, &limits).expect("generated events parse");
                assert!(verifier.verify_expected(&ev, &Expect::default()).holds());
            }
        })
    });
    group.bench_function("parse+verify (fresh)", |b| {
        b.iter(|| {
            for line in &lines {
                let ev = event::parse_event(line, &limits).expect("generated events parse");
                assert!(event::verify(&ev).holds());
            }
        })
    });
    group.bench_function("parse+verify_many (one batch)", |b| {
        let mut verifier = Verifier::new();
        let none = Expect::default();
        b.iter(|| {
            let events: Vec<_> = lines
                .iter()
                .map(|line| event::parse_event(line, &limits).expect("generated events parse"))
                .collect();
            let slice: Vec<_> = events.iter().map(|ev| (ev, &none)).collect();
            assert!(verifier.verify_many(&slice).iter().all(|v| v.holds()));
        })
    });
    group.bench_function("parse only", |b| {
        b.iter(|| {
            for line in &lines {
                std::hint::black_box(event::parse_event(line, &limits).expect("parses"));
            }
        })
    });
    let events: Vec<_> = lines
        .iter()
        .map(|l| event::parse_event(l, &limits).expect("parses"))
        .collect();
    group.bench_function("raw BIP-340 (schnorr::verify)", |b| {
        b.iter(|| {
            for ev in &events {
                assert!(provenance::schnorr::verify(
                    ev.pubkey.as_bytes(),
                    ev.id.as_bytes(),
                    ev.sig.as_bytes()
                ));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
