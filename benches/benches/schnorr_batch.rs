//! BIP-340 batch verification ([`BatchVerifier::verify_all`]) against libsecp256k1 single
//! verification with keys already parsed (the raw rate of `verify-rate`), per signature, for
//! batches of 1 to 1024 signatures by one signer and by all-distinct signers. A fresh
//! verifier per batch would also lift every key again; the reused one below has them cached,
//! as a verifier of a stream of events does.
//!
//! `cargo bench -p provenance-benches --bench schnorr_batch`; figures in
//! `docs/benchmarks.md` ("BIP-340 batch verification").
//!
//! For repeatable instruction counts, `SCHNORR_BATCH_CALLS=MODE:SIZE` makes the binary skip
//! criterion and call the check 5 times on one batch, MODE being `batch-one`,
//! `batch-distinct`, `single-one` or `single-distinct` (`verify_all` forced through the batch
//! equation, or libsecp256k1 one by one); run it under
//! `valgrind --tool=callgrind --toggle-collect='*verify_all*'` (the single modes go through
//! `verify_all` too, with the small-batch bound above the size) and divide by 5 x SIZE.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use provenance::schnorr_batch::{BatchVerifier, Item};
use provenance_benches::signed;
use secp256k1::{Secp256k1, XOnlyPublicKey, schnorr};

const SIZES: [usize; 5] = [1, 8, 64, 256, 1024];

fn batch(c: &mut Criterion) {
    let secp = Secp256k1::verification_only();
    for (one_signer, name) in [(true, "one signer"), (false, "distinct signers")] {
        let mut group = c.benchmark_group(format!("schnorr_batch/{name}"));
        for size in SIZES {
            let data = signed(size, one_signer, "message");
            group.throughput(Throughput::Elements(size as u64));
            let parsed: Vec<(XOnlyPublicKey, schnorr::Signature)> = data
                .iter()
                .map(|(pk, _, sig)| {
                    let key = XOnlyPublicKey::from_byte_array(pk).expect("valid key");
                    (key, schnorr::Signature::from_byte_array(*sig))
                })
                .collect();
            group.bench_with_input(
                BenchmarkId::new("libsecp256k1 single", size),
                &size,
                |b, _| {
                    b.iter(|| {
                        for ((key, sig), (_, msg, _)) in parsed.iter().zip(&data) {
                            assert!(secp.verify_schnorr(sig, msg, key).is_ok());
                        }
                    })
                },
            );
            let items: Vec<Item<'_>> = data
                .iter()
                .map(|(pubkey, msg, sig)| Item { pubkey, msg, sig })
                .collect();
            group.bench_with_input(BenchmarkId::new("verify_all", size), &size, |b, _| {
                let mut verifier = BatchVerifier::new();
                b.iter(|| assert!(verifier.verify_all(&items)))
            });
            group.bench_with_input(
                BenchmarkId::new("verify_all, batch path forced", size),
                &size,
                |b, _| {
                    let mut verifier = BatchVerifier::new();
                    verifier.single_below(0);
                    b.iter(|| assert!(verifier.verify_all(&items)))
                },
            );
        }
        group.finish();
    }
}

/// The `SCHNORR_BATCH_CALLS` mode: 5 calls of `verify_all` on one batch, nothing else timed.
fn calls(spec: &str) {
    let (mode, size) = spec.split_once(':').expect("SCHNORR_BATCH_CALLS=MODE:SIZE");
    let size: usize = size.parse().expect("SIZE is a number");
    let (single, one_signer) = match mode {
        "batch-one" => (false, true),
        "batch-distinct" => (false, false),
        "single-one" => (true, true),
        "single-distinct" => (true, false),
        other => panic!("unknown mode {other:?}"),
    };
    let data = signed(size, one_signer, "message");
    let items: Vec<Item<'_>> = data
        .iter()
        .map(|(pubkey, msg, sig)| Item { pubkey, msg, sig })
        .collect();
    let mut verifier = BatchVerifier::new();
    verifier.single_below(if single { usize::MAX } else { 0 });
    for _ in 0..5 {
        assert!(std::hint::black_box(&mut verifier).verify_all(&items));
    }
}

criterion_group!(benches, batch);

fn main() {
    match std::env::var("SCHNORR_BATCH_CALLS") {
        Ok(spec) => calls(&spec),
        Err(_) => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}
