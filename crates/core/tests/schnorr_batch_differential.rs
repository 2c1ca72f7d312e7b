//! Batch verification against single verification, item by item.
//!
//! Seeded random batches (0 to 300 items, one signer or several, keys and signatures made with
//! libsecp256k1) get random corruptions of every kind single verification rejects: a flipped
//! bit in `r`, `s`, the message or the key, signatures swapped between items, `s >= n`,
//! `r >= p`, an `r` or a key that is no curve point, a nonce point or a key with odd y, and the
//! same item twice. [`BatchVerifier::verify_each`] must then say exactly what
//! [`provenance::schnorr::verify`] says for each item, and [`BatchVerifier::verify_all`] their
//! AND, both with the default small-batch bound and with every batch (down to one item) going
//! through the batch equation.

use k256::elliptic_curve::ff::PrimeField;
use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::point::AffineCoordinates;
use k256::{FieldBytes, ProjectivePoint, Scalar, U256};
use provenance::schnorr;
use provenance::schnorr_batch::fuzzing::{N, Owned, P};
use provenance::schnorr_batch::{BatchVerifier, Item};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secp256k1::{Keypair, Secp256k1, SecretKey, SignOnly};
use sha2::{Digest, Sha256};

struct Signer {
    secret: [u8; 32],
    keypair: Keypair,
    pubkey: [u8; 32],
}

fn signer(secp: &Secp256k1<SignOnly>, rng: &mut StdRng) -> Signer {
    loop {
        let secret: [u8; 32] = rng.random();
        if let Ok(key) = SecretKey::from_byte_array(&secret) {
            let keypair = Keypair::from_secret_key(secp, &key);
            let pubkey = keypair.x_only_public_key().0.serialize();
            return Signer {
                secret,
                keypair,
                pubkey,
            };
        }
    }
}

fn signed(secp: &Secp256k1<SignOnly>, signer: &Signer, msg: Vec<u8>) -> Owned {
    let sig = secp.sign_schnorr_no_aux_rand(&msg, &signer.keypair);
    Owned {
        pubkey: signer.pubkey,
        msg,
        sig: sig.to_byte_array(),
    }
}

fn random_msg(rng: &mut StdRng) -> Vec<u8> {
    // Mostly 32-byte ids, as events sign; sometimes any length, as BIP-340 allows.
    let len = if rng.random_bool(0.8) {
        32
    } else {
        rng.random_range(0..80)
    };
    (0..len).map(|_| rng.random()).collect()
}

/// A random 32-byte string that is not the x coordinate of a curve point.
fn not_on_curve(rng: &mut StdRng) -> [u8; 32] {
    loop {
        let x: [u8; 32] = rng.random();
        if secp256k1::XOnlyPublicKey::from_byte_array(&x).is_err() && x < P {
            return x;
        }
    }
}

/// A value at or above `bound` (which is close to 2^256), big-endian.
fn at_or_above(bound: &[u8; 32], rng: &mut StdRng) -> [u8; 32] {
    let mut v = *bound;
    let extra: u8 = rng.random_range(0..0x30);
    // bound's last byte is 0x41 (n) or 0x2f (p); adding at most 0x2f cannot carry out.
    v[31] += extra;
    v
}

fn scalar(bytes: &[u8; 32]) -> Scalar {
    Option::from(Scalar::from_repr(FieldBytes::from(*bytes))).expect("below n")
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

/// A signature whose nonce point `k G` has odd y: `x(kG) = r` still, but single verification
/// finds odd y and rejects it.
fn odd_nonce_signature(signer: &Signer, msg: &[u8], rng: &mut StdRng) -> [u8; 64] {
    let d = scalar(&signer.secret);
    let y_is_odd = (ProjectivePoint::GENERATOR * d).to_affine().y_is_odd();
    sign_raw(
        signer,
        if bool::from(y_is_odd) { -d } else { d },
        true,
        msg,
        rng,
    )
}

/// A signature made with the secret key as is, even when its point has odd y (BIP-340
/// negates it first): valid only when the point happens to have even y.
fn unnegated_key_signature(signer: &Signer, msg: &[u8], rng: &mut StdRng) -> [u8; 64] {
    sign_raw(signer, scalar(&signer.secret), false, msg, rng)
}

/// `(x(kG), k + e d)` for a random nonce `k` whose point has odd or even y as asked.
fn sign_raw(signer: &Signer, d: Scalar, odd: bool, msg: &[u8], rng: &mut StdRng) -> [u8; 64] {
    let (k, point) = loop {
        let k = scalar_from(rng);
        let point = (ProjectivePoint::GENERATOR * k).to_affine();
        if bool::from(point.y_is_odd()) == odd {
            break (k, point);
        }
    };
    let r: [u8; 32] = point.x().into();
    let s = k + challenge(&r, &signer.pubkey, msg) * d;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r);
    sig[32..].copy_from_slice(&s.to_bytes());
    sig
}

fn scalar_from(rng: &mut StdRng) -> Scalar {
    loop {
        let bytes: [u8; 32] = rng.random();
        if let Some(k) = Option::<Scalar>::from(Scalar::from_repr(FieldBytes::from(bytes))) {
            if !bool::from(k.is_zero()) {
                return k;
            }
        }
    }
}

/// Applies one random corruption to `items[i]`.
fn corrupt(items: &mut [Owned], i: usize, signers: &[Signer], rng: &mut StdRng) {
    let bit =
        |rng: &mut StdRng, len: usize| (rng.random_range(0..len), 1u8 << rng.random_range(0..8));
    match rng.random_range(0..11) {
        0 => {
            let (byte, mask) = bit(rng, 32);
            items[i].sig[byte] ^= mask;
        }
        1 => {
            let (byte, mask) = bit(rng, 32);
            items[i].sig[32 + byte] ^= mask;
        }
        2 => match items[i].msg.len() {
            0 => items[i].msg.push(rng.random()),
            len => {
                let (byte, mask) = bit(rng, len);
                items[i].msg[byte] ^= mask;
            }
        },
        3 => {
            let (byte, mask) = bit(rng, 32);
            items[i].pubkey[byte] ^= mask;
        }
        4 => {
            let j = rng.random_range(0..items.len());
            let sig = items[j].sig;
            items[j].sig = items[i].sig;
            items[i].sig = sig;
        }
        5 => items[i].sig[32..].copy_from_slice(&at_or_above(&N, rng)),
        6 => items[i].sig[..32].copy_from_slice(&at_or_above(&P, rng)),
        7 => items[i].sig[..32].copy_from_slice(&not_on_curve(rng)),
        8 => items[i].pubkey = not_on_curve(rng),
        9 => {
            let signer = signers
                .iter()
                .find(|s| s.pubkey == items[i].pubkey)
                .unwrap_or(&signers[0]);
            items[i].pubkey = signer.pubkey;
            items[i].sig = if rng.random_bool(0.5) {
                odd_nonce_signature(signer, &items[i].msg, rng)
            } else {
                unnegated_key_signature(signer, &items[i].msg, rng)
            };
        }
        _ => {
            let j = rng.random_range(0..items.len());
            items[i] = items[j].clone();
        }
    }
}

fn random_batch(secp: &Secp256k1<SignOnly>, rng: &mut StdRng) -> Vec<Owned> {
    let len = rng.random_range(0..=300);
    let signer_count = if rng.random_bool(0.4) {
        1
    } else {
        rng.random_range(2..=len.max(2))
    };
    let signers: Vec<Signer> = (0..signer_count).map(|_| signer(secp, rng)).collect();
    let mut items: Vec<Owned> = (0..len)
        .map(|_| {
            let signer = &signers[rng.random_range(0..signers.len())];
            signed(secp, signer, random_msg(rng))
        })
        .collect();
    if len > 0 {
        // None, a few, or many corrupted items.
        let corruptions = match rng.random_range(0..4) {
            0 => 0,
            1 => 1,
            2 => rng.random_range(2..=4),
            _ => rng.random_range(0..=len),
        };
        for _ in 0..corruptions {
            let i = rng.random_range(0..len);
            corrupt(&mut items, i, &signers, rng);
        }
    }
    items
}

fn check(verifier: &mut BatchVerifier, items: &[Owned], label: &str) {
    let borrowed: Vec<Item<'_>> = items.iter().map(Owned::item).collect();
    let expected: Vec<bool> = items
        .iter()
        .map(|o| schnorr::verify(&o.pubkey, &o.msg, &o.sig))
        .collect();
    let each = verifier.verify_each(&borrowed);
    for (i, (got, want)) in each.iter().zip(&expected).enumerate() {
        assert_eq!(
            got,
            want,
            "{label}: item {i} of {}: {:?}",
            items.len(),
            items[i]
        );
    }
    assert_eq!(each.len(), items.len(), "{label}");
    assert_eq!(
        verifier.verify_all(&borrowed),
        expected.iter().all(|v| *v),
        "{label}: verify_all"
    );
}

#[test]
fn batches_agree_with_single_verification() {
    let secp = Secp256k1::signing_only();
    let mut rng = StdRng::seed_from_u64(0x5eed_ba7c);
    let mut default = BatchVerifier::new();
    let mut always = BatchVerifier::new();
    always.single_below(0);
    let (mut invalid_seen, mut valid_batches) = (0, 0);
    for round in 0..40 {
        let items = random_batch(&secp, &mut rng);
        let invalid = items
            .iter()
            .filter(|o| !schnorr::verify(&o.pubkey, &o.msg, &o.sig))
            .count();
        invalid_seen += invalid;
        valid_batches += usize::from(invalid == 0 && !items.is_empty());
        check(&mut default, &items, &format!("round {round}, default"));
        check(&mut always, &items, &format!("round {round}, batch only"));
    }
    // The generator did exercise both outcomes.
    assert!(invalid_seen > 40, "{invalid_seen} invalid items");
    assert!(valid_batches >= 5, "{valid_batches} all-valid batches");
}

#[test]
fn every_corruption_is_caught_alone() {
    // Each kind of corruption, on its own in an otherwise valid batch of one signer and of
    // many, so that no other bad item can hide a missed one.
    let secp = Secp256k1::signing_only();
    let mut rng = StdRng::seed_from_u64(7);
    let mut verifier = BatchVerifier::new();
    let signers: Vec<Signer> = (0..5).map(|_| signer(&secp, &mut rng)).collect();
    for round in 0..200 {
        let many = round % 2 == 1;
        let mut items: Vec<Owned> = (0..12)
            .map(|i| {
                let signer = &signers[if many { i % signers.len() } else { 0 }];
                signed(&secp, signer, random_msg(&mut rng))
            })
            .collect();
        let i = rng.random_range(0..items.len());
        corrupt(&mut items, i, &signers, &mut rng);
        check(&mut verifier, &items, &format!("round {round}"));
    }
}

#[test]
fn empty_batch_is_true_and_empty() {
    let mut verifier = BatchVerifier::new();
    assert!(verifier.verify_all(&[]));
    assert!(verifier.verify_each(&[]).is_empty());
    verifier.single_below(0);
    assert!(verifier.verify_all(&[]));
    assert!(verifier.verify_each(&[]).is_empty());
}

#[test]
fn large_one_signer_batch_and_one_bad_item() {
    // The shape a verifier of one operator's events sees: hundreds of events by one key.
    let secp = Secp256k1::signing_only();
    let mut rng = StdRng::seed_from_u64(99);
    let signer = signer(&secp, &mut rng);
    let mut items: Vec<Owned> = (0..1024)
        .map(|_| {
            let msg: Vec<u8> = (0..32).map(|_| rng.random()).collect();
            signed(&secp, &signer, msg)
        })
        .collect();
    let mut verifier = BatchVerifier::new();
    let borrowed: Vec<Item<'_>> = items.iter().map(Owned::item).collect();
    assert!(verifier.verify_all(&borrowed));
    assert!(verifier.verify_each(&borrowed).iter().all(|v| *v));
    items[777].sig[40] ^= 4;
    let borrowed: Vec<Item<'_>> = items.iter().map(Owned::item).collect();
    assert!(!verifier.verify_all(&borrowed));
    let each = verifier.verify_each(&borrowed);
    let bad: Vec<usize> = (0..each.len()).filter(|&i| !each[i]).collect();
    assert_eq!(bad, [777]);
}
