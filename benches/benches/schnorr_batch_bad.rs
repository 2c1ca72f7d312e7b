//! Bad batches: [`BatchVerifier::verify_each`] against libsecp256k1 checking the same
//! signatures one by one (keys already parsed), on 1,024 signatures of which all, 32 or one are
//! invalid, by distinct signers and by one signer. Invalid signatures are well-formed (a
//! flipped message bit), so each costs a full check, as garbage meant to slow a verifier down
//! would.
//!
//! `verify_each, first bad batch` is a verifier that has the keys cached and has seen no bad
//! batch before (each sample gets a fresh one; making it is not timed); `verify_each, stream`
//! is one verifier checking the same batch again and again, as an ingest fed garbage would.
//!
//! `cargo bench -p provenance-benches --bench schnorr_batch_bad`; figures in
//! `docs/benchmarks.md` ("Batch verification: bad batches").
//!
//! For instruction counts, which a loaded machine does not disturb,
//! `SCHNORR_BATCH_BAD_CALLS=MODE:SIGNERS:INVALID` makes the binary skip criterion and call
//! `verify_each` three times through a function named `measured`, on the batch with INVALID
//! (1024, 32 or 1) bad signatures by SIGNERS (`distinct` or `one`); MODE is `single` (every
//! item checked alone: the single-verification reference, through the same key cache),
//! `first` (a fresh verifier each time, keys cached) or `stream` (one verifier, after one
//! unmeasured call). Run it under
//! `valgrind --tool=callgrind --toggle-collect='*measured*'` and divide by 3 x 1024.

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group};
use provenance::schnorr_batch::{BatchVerifier, Item};
use secp256k1::{Secp256k1, XOnlyPublicKey, schnorr};

const SIZE: usize = 1024;

type Signed = Vec<([u8; 32], [u8; 32], [u8; 64])>;

/// `SIZE` signed 32-byte messages, by one key or by distinct keys; `label` varies them.
fn signed(one_signer: bool, label: &str) -> Signed {
    provenance_benches::signed(SIZE, one_signer, label)
}

fn items(data: &Signed) -> Vec<Item<'_>> {
    data.iter()
        .map(|(pubkey, msg, sig)| Item { pubkey, msg, sig })
        .collect()
}

/// The batch with `invalid` bad signatures, spread out (1,024 / `invalid` apart, from item
/// 613).
fn spoiled(one_signer: bool, invalid: usize) -> Signed {
    let mut data = signed(one_signer, "bad");
    for k in 0..invalid {
        data[(k * (SIZE / invalid) + 613) % SIZE].1[3] ^= 0x10;
    }
    data
}

fn bad(c: &mut Criterion) {
    let secp = Secp256k1::verification_only();
    for (one_signer, signers) in [(false, "distinct signers"), (true, "one signer")] {
        let mut group = c.benchmark_group(format!("schnorr_batch_bad/{signers}"));
        group.throughput(Throughput::Elements(SIZE as u64));
        // Valid signatures by the same keys, to fill a verifier's key cache.
        let warm = signed(one_signer, "warm");
        let warm_items = items(&warm);
        for invalid in [SIZE, 32, 1] {
            let data = spoiled(one_signer, invalid);
            let parsed: Vec<(XOnlyPublicKey, schnorr::Signature)> = data
                .iter()
                .map(|(pk, _, sig)| {
                    let key = XOnlyPublicKey::from_byte_array(pk).expect("valid key");
                    (key, schnorr::Signature::from_byte_array(*sig))
                })
                .collect();
            let bad_items = items(&data);
            let count_invalid = |valid: &[bool]| valid.iter().filter(|v| !**v).count();
            group.bench_with_input(
                BenchmarkId::new("libsecp256k1 single", invalid),
                &invalid,
                |b, _| {
                    b.iter(|| {
                        let bad = parsed
                            .iter()
                            .zip(&data)
                            .filter(|((key, sig), (_, msg, _))| {
                                secp.verify_schnorr(sig, msg, key).is_err()
                            })
                            .count();
                        assert_eq!(bad, invalid);
                    })
                },
            );
            group.bench_with_input(
                BenchmarkId::new("verify_each, first bad batch", invalid),
                &invalid,
                |b, _| {
                    b.iter_batched(
                        || {
                            let mut verifier = BatchVerifier::new();
                            assert!(verifier.verify_all(&warm_items));
                            verifier
                        },
                        |mut verifier| {
                            assert_eq!(count_invalid(&verifier.verify_each(&bad_items)), invalid);
                            verifier
                        },
                        BatchSize::PerIteration,
                    )
                },
            );
            if invalid == SIZE {
                group.bench_with_input(
                    BenchmarkId::new("verify_each, stream", invalid),
                    &invalid,
                    |b, _| {
                        let mut verifier = BatchVerifier::new();
                        b.iter(|| {
                            assert_eq!(count_invalid(&verifier.verify_each(&bad_items)), invalid)
                        })
                    },
                );
            }
        }
        group.finish();
    }
}

/// One measured call: what callgrind counts in the `SCHNORR_BATCH_BAD_CALLS` mode.
#[inline(never)]
fn measured(verifier: &mut BatchVerifier, items: &[Item<'_>]) -> usize {
    verifier.verify_each(items).iter().filter(|v| !**v).count()
}

/// The `SCHNORR_BATCH_BAD_CALLS` mode.
fn calls(spec: &str) {
    let parts: Vec<&str> = spec.split(':').collect();
    let [mode, signers, invalid] = parts[..] else {
        panic!("SCHNORR_BATCH_BAD_CALLS=MODE:SIGNERS:INVALID, not {spec:?}");
    };
    let one_signer = match signers {
        "one" => true,
        "distinct" => false,
        other => panic!("SIGNERS is one or distinct, not {other:?}"),
    };
    let invalid: usize = invalid.parse().expect("INVALID is a number");
    let warm = signed(one_signer, "warm");
    let warm_items = items(&warm);
    let data = spoiled(one_signer, invalid);
    let bad_items = items(&data);
    let warmed = || {
        let mut verifier = BatchVerifier::new();
        assert!(verifier.verify_all(&warm_items));
        verifier
    };
    match mode {
        "single" => {
            let mut verifier = warmed();
            verifier.single_below(usize::MAX);
            for _ in 0..3 {
                assert_eq!(measured(&mut verifier, &bad_items), invalid);
            }
        }
        "first" => {
            for _ in 0..3 {
                let mut verifier = warmed();
                assert_eq!(measured(&mut verifier, &bad_items), invalid);
            }
        }
        "stream" => {
            let mut verifier = warmed();
            verifier.verify_each(&bad_items);
            for _ in 0..3 {
                assert_eq!(measured(&mut verifier, &bad_items), invalid);
            }
        }
        other => panic!("MODE is single, first or stream, not {other:?}"),
    }
}

criterion_group!(benches, bad);

fn main() {
    match std::env::var("SCHNORR_BATCH_BAD_CALLS") {
        Ok(spec) => calls(&spec),
        Err(_) => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}
