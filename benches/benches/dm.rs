//! Direct messages: opening and checking a gift wrap (`provenance_dm::gift::unwrap`: two
//! BIP-340 verifications, two ECDH, two NIP-44 decryptions, the rumor's id), and making one
//! (`wrap`: a one-time key, two signatures, two ECDH, two encryptions), for a short message
//! and a 64 KiB one (which takes NIP-44's 6-byte length prefix in both layers).
//!
//! `cargo bench -p provenance-benches --bench dm`. Reported per message (elements/s).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use provenance::{Keys, Timestamp};
use provenance_dm::gift::{self, WrapKind};

const SIZES: [usize; 2] = [100, 64 * 1024];

fn dm(c: &mut Criterion) {
    let alice = Keys::generate();
    let bob = Keys::generate();
    let now = Timestamp::from_secs(1_800_000_000);
    let mut group = c.benchmark_group("dm");
    group.throughput(Throughput::Elements(1));
    for size in SIZES {
        let text = "x".repeat(size);
        let rumor = gift::message(&alice.public_key(), &bob.public_key(), &text, now);
        let wrapped = gift::wrap(
            &alice,
            &bob.public_key(),
            rumor.clone(),
            WrapKind::Stored,
            now,
        )
        .expect("wraps");
        group.bench_with_input(BenchmarkId::new("unwrap", size), &wrapped, |b, wrapped| {
            b.iter(|| gift::unwrap(&bob, wrapped, now).expect("unwraps"))
        });
        group.bench_with_input(BenchmarkId::new("wrap", size), &rumor, |b, rumor| {
            b.iter(|| {
                gift::wrap(
                    &alice,
                    &bob.public_key(),
                    rumor.clone(),
                    WrapKind::Stored,
                    now,
                )
                .expect("wraps")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, dm);
criterion_main!(benches);
