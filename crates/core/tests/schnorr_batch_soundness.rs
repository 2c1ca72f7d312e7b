//! Forged batches that batch verification must reject, and proof that these tests bite.
//!
//! Every forged batch holds invalid items whose defects `D_i = s_i G - R_i - e_i P_i` cancel
//! in the batch equation `sum a_i D_i = 0` unless the coefficients `a_i` are random and
//! depend on every input:
//!
//! - two or three invalid items whose defects sum to zero (they cancel with equal
//!   coefficients, the first item's included);
//! - `D_1 = -g D_j` for guessed values `g` of `a_j`: 1, 2, 2^64, 2^127 and -1;
//! - an attacker who computes the coefficient `a_j` of a bad item from the batch, then changes
//!   the first item's `s` so that its defect is `-a_j D_j`.
//!
//! Defects are made both by shifting `s` (`D = delta G`) and by publishing the x coordinate of
//! another nonce point (`D = (k - k') G`), so that a batch equation that dropped either term
//! would not cancel them by accident. [`BatchVerifier::verify_all`] must reject each batch and
//! [`BatchVerifier::verify_each`] must say what single verification says, with the default
//! small-batch bound and with every sub-batch through the batch equation.
//!
//! `soundness_tests_fail_with_weak_coefficients` runs the same checks with the coefficients of
//! [`soundness_testing::Weakness`] (all 1, a constant, a seed that ignores the inputs, a seed
//! without the signatures) and asserts that each weakness makes the checks that target it
//! fail: without it, a change that broke the coefficients would leave every test green.
//!
//! Published vectors: no other batch-verification implementation publishes batch-specific test
//! vectors that we could find. libsecp256k1's batch module proposal (bitcoin-core/secp256k1
//! PRs 760 and 1134) tests with random batches in C; secp256k1lab's proposed
//! `bip340_batch_verify` (its PR 14) runs the BIP-340 vectors through batch verification, which
//! `schnorr_batch_vectors.rs` does too; Bitcoin Core's batch-verification work adds a fuzz
//! target, not vectors. BIP-340 itself publishes single-signature vectors only.

use std::collections::BTreeSet;

use k256::elliptic_curve::ff::PrimeField;
use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::point::AffineCoordinates;
use k256::{FieldBytes, ProjectivePoint, Scalar, U256};
use provenance::schnorr;
use provenance::schnorr_batch::fuzzing::Owned;
use provenance::schnorr_batch::soundness_testing::{self, Weakness};
use provenance::schnorr_batch::{BatchVerifier, DEFAULT_SINGLE_BELOW, Item};
use sha2::{Digest, Sha256};

/// Items per forged batch: above [`DEFAULT_SINGLE_BELOW`], so the default path batches too.
const SIZE: usize = 12;

fn items(batch: &[Owned]) -> Vec<Item<'_>> {
    batch.iter().map(Owned::item).collect()
}

/// A deterministic nonzero scalar per label.
fn scalar(label: &str) -> Scalar {
    let digest: [u8; 32] = Sha256::digest(label).into();
    let k = <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(digest));
    assert!(!bool::from(k.is_zero()), "{label}");
    k
}

fn challenge(r: &[u8; 32], pubkey: &[u8; 32], msg: &[u8]) -> Scalar {
    let tag = Sha256::digest(b"BIP0340/challenge");
    let digest: [u8; 32] = Sha256::new()
        .chain_update(tag)
        .chain_update(tag)
        .chain_update(r)
        .chain_update(pubkey)
        .chain_update(msg)
        .finalize()
        .into();
    <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(digest))
}

/// `k` or `-k`, whichever makes `k G` have even y, with the x coordinate of that point.
fn even(k: Scalar) -> (Scalar, [u8; 32]) {
    let point = (ProjectivePoint::GENERATOR * k).to_affine();
    let k = if bool::from(point.y_is_odd()) { -k } else { k };
    (k, point.x().into())
}

/// A signer: its secret (negated as BIP-340 does, so that its point has even y) and key.
struct Signer {
    d: Scalar,
    pubkey: [u8; 32],
}

fn signer(label: &str) -> Signer {
    let (d, pubkey) = even(scalar(label));
    Signer { d, pubkey }
}

/// How an item is made invalid, by a known defect.
#[derive(Clone, Copy, Debug)]
enum Defect {
    /// Valid.
    None,
    /// `s + delta`: `D = delta G`.
    S(Scalar),
    /// `r` of another nonce `k'`, so `D = (k - k') G`: the defect it adds is returned by
    /// [`sign`], as the caller cannot choose it.
    R,
}

/// Signs `msg` with a nonce drawn from `label`, applying `defect`; returns the item and its
/// defect as a multiple of G.
fn sign(signer: &Signer, label: &str, defect: Defect) -> (Owned, Scalar) {
    let msg: Vec<u8> = Sha256::digest(format!("message {label}")).to_vec();
    let (k, r) = even(scalar(&format!("nonce {label}")));
    let (k, r, delta) = match defect {
        Defect::R => {
            let (other, r_other) = even(scalar(&format!("other nonce {label}")));
            (k, r_other, k - other)
        }
        _ => (k, r, Scalar::ZERO),
    };
    let s = k + challenge(&r, &signer.pubkey, &msg) * signer.d;
    let (s, delta) = match defect {
        Defect::S(shift) => (s + shift, shift),
        _ => (s, delta),
    };
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r);
    sig[32..].copy_from_slice(&s.to_bytes());
    (
        Owned {
            pubkey: signer.pubkey,
            msg,
            sig,
        },
        delta,
    )
}

/// Adds `delta` to the `s` of `item`, adding `delta G` to its defect.
fn shift_s(item: &mut Owned, delta: Scalar) {
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(&item.sig[32..]);
    let s = Option::<Scalar>::from(Scalar::from_repr(FieldBytes::from(bytes))).expect("s < n");
    item.sig[32..].copy_from_slice(&(s + delta).to_bytes());
}

/// A valid batch of [`SIZE`] items by three signers (so keys are shared and distinct).
fn valid_batch(name: &str) -> Vec<Owned> {
    let signers = [signer("alice"), signer("bob"), signer("carol")];
    (0..SIZE)
        .map(|i| sign(&signers[i % 3], &format!("{name} {i}"), Defect::None).0)
        .collect()
}

/// One forged batch.
struct Case {
    name: String,
    batch: Vec<Owned>,
}

/// `D_1 = -g D_j`: item 0 carries `-g` times the defect of item `j`, made by `defect`.
fn guessed(name: &str, g: Scalar, j: usize, defect: Defect) -> Case {
    let mut batch = valid_batch(name);
    let (bad, delta) = sign(&signer("dave"), name, defect);
    batch[j] = bad;
    shift_s(&mut batch[0], -(g * delta));
    Case {
        name: name.to_string(),
        batch,
    }
}

/// Every forged batch. The attacker's batch depends on the coefficients under test
/// (`weakness`): the attacker computes them from the batch, as anyone can.
fn cases(weakness: Option<Weakness>) -> Vec<Case> {
    let mut cases = Vec::new();

    // Defects that sum to zero: a pair with the first item, a pair without it, a triple.
    for (name, positions) in [
        ("pair with the first item", &[0usize, 5][..]),
        ("pair", &[3, 10][..]),
        ("triple", &[2, 6, 9][..]),
    ] {
        let mut batch = valid_batch(name);
        let (bad, delta) = sign(&signer("erin"), name, Defect::R);
        let last = positions.len() - 1;
        batch[positions[last]] = bad;
        // The other items share out -delta.
        let mut rest = -delta;
        for (k, &i) in positions[..last].iter().enumerate() {
            let part = if k + 1 == last {
                rest
            } else {
                scalar(&format!("{name} share {k}"))
            };
            shift_s(&mut batch[i], part);
            rest -= part;
        }
        cases.push(Case {
            name: name.to_string(),
            batch,
        });
    }

    // Guessed coefficients.
    let two_64 = Scalar::from(1u128 << 64);
    let two_127 = Scalar::from(1u128 << 127);
    for (label, g) in [
        ("1", Scalar::ONE),
        ("2", Scalar::from(2u64)),
        ("2^64", two_64),
        ("2^127", two_127),
        ("-1", -Scalar::ONE),
    ] {
        cases.push(guessed(
            &format!("g = {label}, s defect"),
            g,
            7,
            Defect::S(scalar(label)),
        ));
        cases.push(guessed(&format!("g = {label}, r defect"), g, 1, Defect::R));
    }

    // The attacker: a bad item at 4, then the first item's s changed by -a_4 times its defect.
    for (name, defect) in [
        ("attacker, s defect", Defect::S(scalar("attack"))),
        ("attacker, r defect", Defect::R),
    ] {
        let mut batch = valid_batch(name);
        let (bad, delta) = sign(&signer("frank"), name, defect);
        batch[4] = bad;
        let a = soundness_testing::coefficients(weakness, &items(&batch)).expect("all parse");
        let a4 = Option::<Scalar>::from(Scalar::from_repr(FieldBytes::from(a[4]))).expect("< n");
        shift_s(&mut batch[0], -(a4 * delta));
        cases.push(Case {
            name: name.to_string(),
            batch,
        });
    }
    cases
}

/// The names of the cases that `weakness` (`None`: the real verifier) gets wrong, each with
/// what went wrong.
fn failures(weakness: Option<Weakness>) -> Vec<(String, String)> {
    let mut failures = Vec::new();
    for case in cases(weakness) {
        let items = items(&case.batch);
        let expected: Vec<bool> = case
            .batch
            .iter()
            .map(|o| schnorr::verify(&o.pubkey, &o.msg, &o.sig))
            .collect();
        assert!(
            expected.iter().filter(|v| !**v).count() >= 2,
            "{}: a forged batch holds at least two invalid items",
            case.name
        );
        for single_below in [DEFAULT_SINGLE_BELOW, 0] {
            let (all, each) = match weakness {
                None => {
                    let mut verifier = BatchVerifier::new();
                    verifier.single_below(single_below);
                    (verifier.verify_all(&items), verifier.verify_each(&items))
                }
                Some(_) => (
                    soundness_testing::verify_all(weakness, single_below, &items),
                    soundness_testing::verify_each(weakness, single_below, &items),
                ),
            };
            if all {
                failures.push((
                    case.name.clone(),
                    format!("verify_all accepts (single_below {single_below})"),
                ));
            }
            if each != expected {
                let what = format!(
                    "verify_each says {each:?}, single verification {expected:?} \
                     (single_below {single_below})"
                );
                failures.push((case.name.clone(), what));
            }
        }
    }
    failures
}

#[test]
fn forged_batches_are_rejected() {
    let failures = failures(None);
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn soundness_tests_fail_with_weak_coefficients() {
    let constant = |magnitude: u128, negative: bool| Weakness::Constant {
        magnitude,
        negative,
    };
    let attacker = ["attacker, s defect", "attacker, r defect"];
    let guessed = |g: &str| [format!("g = {g}, s defect"), format!("g = {g}, r defect")];
    // Each weakness and the cases that must catch it (others may too).
    let expectations: Vec<(Weakness, Vec<String>)> = vec![
        (
            Weakness::AllOne,
            ["pair with the first item", "pair", "triple"]
                .iter()
                .chain(&attacker)
                .map(|s| s.to_string())
                .chain(guessed("1"))
                .collect(),
        ),
        (constant(2, false), guessed("2").into()),
        (constant(1 << 64, false), guessed("2^64").into()),
        (constant(1 << 127, false), guessed("2^127").into()),
        (constant(1, true), guessed("-1").into()),
        (Weakness::IgnoreInputs, attacker.map(String::from).into()),
        (
            Weakness::SeedWithoutSignatures,
            attacker.map(String::from).into(),
        ),
    ];
    for (weakness, must_fail) in expectations {
        let failed: BTreeSet<String> = failures(Some(weakness))
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        for name in &must_fail {
            assert!(
                failed.contains(name),
                "{weakness:?}: the case {name:?} passes, so it would not notice this weakness \
                 (failed: {failed:?})"
            );
        }
        // Any constant coefficient cancels a pair that leaves out the first item.
        if let Weakness::Constant { .. } = weakness {
            assert!(failed.contains("pair"), "{weakness:?}: {failed:?}");
        }
    }
}

/// An edit to one item.
type Change<'a> = Box<dyn Fn(&mut Owned) + 'a>;

#[test]
fn coefficients_depend_on_every_input() {
    // Changing any one field of any one item changes every coefficient but the first, which
    // is 1.
    let batch = valid_batch("dependence");
    let base = soundness_testing::coefficients(None, &items(&batch)).expect("all parse");
    let mut one = [0u8; 32];
    one[31] = 1;
    assert_eq!(base[0], one);
    let distinct: BTreeSet<[u8; 32]> = base.iter().copied().collect();
    assert_eq!(distinct.len(), SIZE, "coefficients are distinct");
    let other_key = signer("grace");
    for i in 0..SIZE {
        let changes: [(&str, Change<'_>); 4] = [
            ("key", Box::new(|o: &mut Owned| o.pubkey = other_key.pubkey)),
            (
                "r",
                Box::new(|o: &mut Owned| o.sig[..32].copy_from_slice(&even(scalar("r")).1)),
            ),
            ("s", Box::new(|o: &mut Owned| shift_s(o, Scalar::ONE))),
            ("message", Box::new(|o: &mut Owned| o.msg[0] ^= 1)),
        ];
        for (field, change) in changes {
            let mut changed = batch.clone();
            change(&mut changed[i]);
            let after = soundness_testing::coefficients(None, &items(&changed)).expect("parse");
            assert_eq!(after[0], one);
            for t in 1..SIZE {
                assert_ne!(
                    after[t], base[t],
                    "item {i}'s {field}: coefficient {t} unchanged"
                );
            }
        }
    }
}

#[test]
fn weak_coefficients_still_accept_valid_batches() {
    // The weakened verifiers differ from the real one only in what they accept wrongly.
    let batch = valid_batch("valid");
    let items = items(&batch);
    for weakness in [
        None,
        Some(Weakness::AllOne),
        Some(Weakness::Constant {
            magnitude: 1,
            negative: true,
        }),
        Some(Weakness::IgnoreInputs),
        Some(Weakness::SeedWithoutSignatures),
    ] {
        assert!(
            soundness_testing::verify_all(weakness, 0, &items),
            "{weakness:?}"
        );
        assert!(
            soundness_testing::verify_each(weakness, 0, &items)
                .iter()
                .all(|v| *v),
            "{weakness:?}"
        );
    }
}
