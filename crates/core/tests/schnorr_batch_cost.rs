//! Bounded cost: the key cache stays within its limit whatever the calls, and a batch of bad
//! signatures costs about its single checks, counted with [`BatchVerifier::counts`] (how many
//! single checks and batch equations ran), not timed.

use provenance::schnorr;
use provenance::schnorr_batch::fuzzing::Owned;
use provenance::schnorr_batch::{BatchVerifier, CheckCounts, Item, KEY_CACHE_LIMIT};
use secp256k1::{Keypair, Secp256k1, SecretKey};
use sha2::{Digest, Sha256};

const N: usize = 1024;

fn items(batch: &[Owned]) -> Vec<Item<'_>> {
    batch.iter().map(Owned::item).collect()
}

/// `count` valid signatures by distinct signers; `label` varies the messages.
fn signed(count: usize, label: &str) -> Vec<Owned> {
    let secp = Secp256k1::signing_only();
    (0..count)
        .map(|i| {
            let secret: [u8; 32] = Sha256::digest(format!("key {i}")).into();
            let keypair = Keypair::from_secret_key(
                &secp,
                &SecretKey::from_byte_array(&secret).expect("a hash is a valid key"),
            );
            let msg: [u8; 32] = Sha256::digest(format!("{label} {i}")).into();
            Owned {
                pubkey: keypair.x_only_public_key().0.serialize(),
                sig: secp
                    .sign_schnorr_no_aux_rand(&msg, &keypair)
                    .to_byte_array(),
                msg: msg.to_vec(),
            }
        })
        .collect()
}

/// Makes item `i` invalid but well-formed (a flipped bit of the message), so that it costs a
/// full check, as garbage made to slow a verifier down would.
fn spoil(batch: &mut [Owned], i: usize) {
    batch[i].msg[3] ^= 0x10;
}

/// Runs `verify_each` and checks it against single verification; returns the counts of that
/// call alone.
fn run(verifier: &mut BatchVerifier, batch: &[Owned]) -> CheckCounts {
    let before = verifier.counts();
    let got = verifier.verify_each(&items(batch));
    let after = verifier.counts();
    let expected: Vec<bool> = batch
        .iter()
        .map(|o| schnorr::verify(&o.pubkey, &o.msg, &o.sig))
        .collect();
    assert_eq!(got, expected);
    CheckCounts {
        single: after.single - before.single,
        batch: after.batch - before.batch,
        batch_items: after.batch_items - before.batch_items,
    }
}

#[test]
fn key_cache_stays_bounded_across_one_item_calls() {
    // One-item calls never reach the batch path; they used to grow the cache without limit.
    let mut verifier = BatchVerifier::new();
    let sig = [7u8; 64];
    for i in 0..KEY_CACHE_LIMIT + 1500 {
        let pubkey: [u8; 32] = Sha256::digest((i as u64).to_le_bytes()).into();
        let item = Item {
            pubkey: &pubkey,
            msg: b"m",
            sig: &sig,
        };
        assert!(!verifier.verify_all(&[item]));
        assert!(!verifier.verify_each(&[item])[0]);
        assert!(
            verifier.cached_keys() <= KEY_CACHE_LIMIT,
            "{} keys after {} calls",
            verifier.cached_keys(),
            i + 1
        );
    }
    assert!(verifier.cached_keys() <= 1500, "the cache started over");

    // And it still caches: one key seen many times is one entry.
    let mut verifier = BatchVerifier::new();
    let batch = signed(1, "cached");
    for _ in 0..10 {
        assert!(verifier.verify_all(&items(&batch)));
    }
    assert_eq!(verifier.cached_keys(), 1);
}

#[test]
fn key_cache_is_bounded_after_a_large_batch() {
    // A batch holds all of its keys while it is checked; a call that leaves the cache over
    // the limit clears it.
    let mut verifier = BatchVerifier::new();
    let sig = [1u8; 64];
    for i in 0..KEY_CACHE_LIMIT - 10 {
        let pubkey: [u8; 32] = Sha256::digest((i as u64).to_be_bytes()).into();
        let item = Item {
            pubkey: &pubkey,
            msg: b"",
            sig: &sig,
        };
        verifier.verify_all(&[item]);
    }
    assert_eq!(verifier.cached_keys(), KEY_CACHE_LIMIT - 10);
    let batch = signed(40, "large");
    assert!(verifier.verify_all(&items(&batch)));
    assert_eq!(
        verifier.cached_keys(),
        0,
        "40 more keys went over the limit"
    );
    assert!(verifier.verify_all(&items(&batch)));
    assert_eq!(verifier.cached_keys(), 40);
}

#[test]
fn valid_batch_is_one_batch_equation() {
    let batch = signed(N, "valid");
    let counts = run(&mut BatchVerifier::new(), &batch);
    assert_eq!(
        counts,
        CheckCounts {
            single: 0,
            batch: 1,
            batch_items: N as u64
        }
    );
}

#[test]
fn garbage_costs_its_single_checks() {
    let mut garbage = signed(N, "garbage");
    for i in 0..N {
        spoil(&mut garbage, i);
    }
    let mut verifier = BatchVerifier::new();

    // First garbage batch: one batch equation finds it bad, 16 probes find bad ones,
    // and every item is checked alone (the probes twice). Bisection used to run about seven
    // batch equations' worth of items before the single checks.
    let first = run(&mut verifier, &garbage);
    assert_eq!(first.batch, 1, "{first:?}");
    assert_eq!(first.batch_items, N as u64, "{first:?}");
    assert!(first.single <= N as u64 + 16, "{first:?}");

    // The next one: no batch equation at all.
    let second = run(&mut verifier, &garbage);
    assert_eq!(
        second,
        CheckCounts {
            single: N as u64,
            batch: 0,
            batch_items: 0
        }
    );

    // A valid batch after garbage: 16 single checks, then the rest as one batch.
    let valid = signed(N, "after garbage");
    let third = run(&mut verifier, &valid);
    assert_eq!(
        third,
        CheckCounts {
            single: 16,
            batch: 1,
            batch_items: N as u64 - 16
        }
    );
    // And the verifier is back to batching first.
    let fourth = run(&mut verifier, &signed(N, "valid again"));
    assert_eq!(fourth.single, 0);
    assert_eq!(fourth.batch, 1);
}

#[test]
fn garbage_behind_valid_items_is_caught_by_the_probe() {
    // A verifier marked by garbage, then a batch whose first 16 items are valid and the rest
    // garbage: the first 16 pass alone, the rest fails as a batch and the probe sends it to
    // single checks.
    let mut verifier = BatchVerifier::new();
    let mut garbage = signed(N, "mark");
    for i in 0..N {
        spoil(&mut garbage, i);
    }
    run(&mut verifier, &garbage);
    let mut batch = signed(N, "head valid");
    for i in 16..N {
        spoil(&mut batch, i);
    }
    let counts = run(&mut verifier, &batch);
    assert_eq!(counts.batch, 1, "{counts:?}");
    assert!(counts.single <= N as u64 + 16, "{counts:?}");
}

#[test]
fn one_bad_item_is_located_by_bisection() {
    let mut batch = signed(N, "one bad");
    spoil(&mut batch, 613);
    let mut verifier = BatchVerifier::new();
    let counts = run(&mut verifier, &batch);
    // 16 probes, one leaf of fewer than 8 checked alone; the sub-batches on the way down
    // (each half, and the sibling of each half that failed) cost less than two more passes
    // over the batch.
    assert!(counts.single <= 16 + 8, "{counts:?}");
    assert!(counts.batch_items <= 3 * N as u64, "{counts:?}");
    // One bad item does not mark the verifier.
    let next = run(&mut verifier, &signed(N, "after one bad"));
    assert_eq!(next.single, 0);
}

#[test]
fn bisection_is_bounded_when_the_probe_misses() {
    // A few bad items, spread out: the probe most likely finds at most one, and bisection
    // takes over, within two more passes of batch equations; what it cannot decide within
    // that is checked alone.
    for bad in [2usize, 5, 12, 40] {
        let mut batch = signed(N, &format!("{bad} bad"));
        for k in 0..bad {
            spoil(&mut batch, (k * 997 + 13) % N);
        }
        let mut verifier = BatchVerifier::new();
        let counts = run(&mut verifier, &batch);
        assert!(counts.batch_items <= 3 * N as u64, "{bad} bad: {counts:?}");
        assert!(counts.single <= N as u64 + 16, "{bad} bad: {counts:?}");
    }
}

#[test]
fn a_short_good_call_clears_the_mark() {
    // Marked by garbage, then 20 valid items: 16 probes and 4 left, too few to batch, all
    // good; the call after that batches at once.
    let mut verifier = BatchVerifier::new();
    let mut garbage = signed(64, "short mark");
    for i in 0..64 {
        spoil(&mut garbage, i);
    }
    run(&mut verifier, &garbage);
    run(&mut verifier, &garbage);
    let short = run(&mut verifier, &signed(20, "short"));
    assert_eq!(short.single, 20);
    let next = run(&mut verifier, &signed(64, "after short"));
    assert_eq!((next.single, next.batch), (0, 1), "{next:?}");
}
