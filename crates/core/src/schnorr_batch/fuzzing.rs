//! The property of the `schnorr_batch_differential` fuzz target
//! (`fuzz/fuzz_targets/schnorr_batch_differential.rs`) and of its seeded test
//! (`crates/core/tests/schnorr_batch_fuzz_property.rs`): batch verification says, item by
//! item, what libsecp256k1's single verification says.

use std::sync::LazyLock;

use k256::elliptic_curve::ff::PrimeField;
use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::point::AffineCoordinates;
use k256::{FieldBytes, ProjectivePoint, Scalar, U256};
use secp256k1::{Keypair, Secp256k1, SecretKey, SignOnly};
use sha2::{Digest, Sha256};

use super::{BatchVerifier, DEFAULT_SINGLE_BELOW, Item};

static SIGNER: LazyLock<Secp256k1<SignOnly>> = LazyLock::new(Secp256k1::signing_only);

/// The most items one input makes (signing dominates the cost of an input).
pub const MAX_ITEMS: usize = 160;

/// The order of secp256k1's group, big-endian.
pub const N: [u8; 32] = hex32("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141");
/// The field prime of secp256k1, big-endian.
pub const P: [u8; 32] = hex32("fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f");
/// x(G).
const GX: [u8; 32] = hex32("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798");

/// How many corruption kinds [`corrupt`] knows.
const KINDS: u8 = 17;

/// Builds a batch from `data` and checks it. The input chooses: the batch size (0 to
/// [`MAX_ITEMS`]), how many signers (one, a few or one per item), the small-batch bound
/// (default, 0 or 2), then any number of corruptions of three bytes each (item, kind,
/// parameter): a flipped bit of `r`, `s`, the message or the key; signatures swapped; `s >= n`;
/// `r >= p`; an `r` or a key that is no curve point; a nonce point or key with odd y; an item
/// repeated; two defects that cancel; `s = n - s`; `r = x(P)`; the key `x(G)`; a message of
/// another length. Keys, nonces and messages are derived from the input, so a crash replays.
///
/// # Panics
///
/// When [`BatchVerifier::verify_each`] disagrees with [`crate::schnorr::verify`] on an item,
/// or [`BatchVerifier::verify_all`] with their AND: a bug in batch verification.
pub fn check_against_single(data: &[u8]) {
    let mut input = data.iter().copied();
    let mut byte = move || input.next().unwrap_or(0);
    let size = usize::from(byte()) % (MAX_ITEMS + 1);
    let signer_count = match byte() {
        b if b < 96 => 1,
        b if b < 192 => 2 + usize::from(b) % 4,
        _ => size.max(1),
    };
    let key_seed = byte();
    let single_below = match byte() % 3 {
        0 => DEFAULT_SINGLE_BELOW,
        1 => 0,
        _ => 2,
    };
    let signers: Vec<Signer> = (0..signer_count)
        .map(|j| Signer::new(key_seed, j))
        .collect();
    let mut items: Vec<Owned> = (0..size)
        .map(|i| {
            let signer = &signers[i % signers.len()];
            let msg = Sha256::digest([b"msg".as_slice(), &[key_seed], &i.to_le_bytes()].concat());
            signer.sign(msg.to_vec())
        })
        .collect();
    if size > 0 {
        let rest = &data[data.len().min(4)..];
        for record in rest.chunks_exact(3) {
            let i = usize::from(record[0]) % size;
            corrupt(&mut items, &signers, i, record[1] % KINDS, record[2]);
        }
    }

    let borrowed: Vec<Item<'_>> = items.iter().map(Owned::item).collect();
    let expected: Vec<bool> = items
        .iter()
        .map(|o| crate::schnorr::verify(&o.pubkey, &o.msg, &o.sig))
        .collect();
    let mut verifier = BatchVerifier::new();
    verifier.single_below(single_below);
    // Twice: the second call may start from the first one's mark (many bad items).
    for round in 0..2 {
        let each = verifier.verify_each(&borrowed);
        for (i, (got, want)) in each.iter().zip(&expected).enumerate() {
            assert_eq!(
                got, want,
                "round {round}, item {i} of {size}, single_below {single_below}: {:?}",
                items[i]
            );
        }
        assert_eq!(each.len(), items.len());
    }
    assert_eq!(
        verifier.verify_all(&borrowed),
        expected.iter().all(|v| *v),
        "verify_all of {size} items, single_below {single_below}"
    );
}

/// A batch item that owns its bytes (for tests and fuzzing, which build and corrupt items).
#[derive(Clone, Debug)]
pub struct Owned {
    /// The x-only public key.
    pub pubkey: [u8; 32],
    /// The signed message.
    pub msg: Vec<u8>,
    /// The BIP-340 signature.
    pub sig: [u8; 64],
}

impl Owned {
    /// The item borrowing these bytes.
    pub fn item(&self) -> Item<'_> {
        Item {
            pubkey: &self.pubkey,
            msg: &self.msg,
            sig: &self.sig,
        }
    }
}

struct Signer {
    /// The secret as generated (its point may have odd y).
    secret: Scalar,
    keypair: Keypair,
    pubkey: [u8; 32],
}

impl Signer {
    fn new(seed: u8, j: usize) -> Self {
        let mut counter = 0u32;
        loop {
            let bytes: [u8; 32] = Sha256::digest(
                [
                    b"key".as_slice(),
                    &[seed],
                    &j.to_le_bytes(),
                    &counter.to_le_bytes(),
                ]
                .concat(),
            )
            .into();
            if let (Ok(key), Some(secret)) = (
                SecretKey::from_byte_array(&bytes),
                Option::<Scalar>::from(Scalar::from_repr(FieldBytes::from(bytes))),
            ) {
                let keypair = Keypair::from_secret_key(&SIGNER, &key);
                let pubkey = keypair.x_only_public_key().0.serialize();
                return Self {
                    secret,
                    keypair,
                    pubkey,
                };
            }
            counter += 1;
        }
    }

    fn sign(&self, msg: Vec<u8>) -> Owned {
        let sig = SIGNER.sign_schnorr_no_aux_rand(&msg, &self.keypair);
        Owned {
            pubkey: self.pubkey,
            msg,
            sig: sig.to_byte_array(),
        }
    }

    /// `(x(kG), k + e d)` with `d` the secret as generated (BIP-340 negates it when its point
    /// has odd y; `negate_as_bip340` does that), and a nonce point of odd or even y as asked.
    fn sign_raw(&self, msg: &[u8], odd_nonce: bool, negate_as_bip340: bool, param: u8) -> [u8; 64] {
        let mut d = self.secret;
        if negate_as_bip340 && bool::from((ProjectivePoint::GENERATOR * d).to_affine().y_is_odd()) {
            d = -d;
        }
        let mut counter = 0u32;
        let (k, r) = loop {
            let k = scalar_of(&[b"nonce".as_slice(), msg, &[param], &counter.to_le_bytes()]);
            let point = (ProjectivePoint::GENERATOR * k).to_affine();
            if bool::from(point.y_is_odd()) == odd_nonce {
                break (k, <[u8; 32]>::from(point.x()));
            }
            counter += 1;
        };
        let s = k + challenge(&r, &self.pubkey, msg) * d;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r);
        sig[32..].copy_from_slice(&s.to_bytes());
        sig
    }
}

fn scalar_of(parts: &[&[u8]]) -> Scalar {
    let digest: [u8; 32] = Sha256::digest(parts.concat()).into();
    <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(digest))
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

/// A 32-byte string below p that is not the x coordinate of a curve point (about half of all
/// values are not; 64 tries fail with probability 2^-64, and then the last try is used).
fn not_on_curve(param: u8) -> [u8; 32] {
    let mut x = [0u8; 32];
    for counter in 0u8..64 {
        x = Sha256::digest([b"off curve".as_slice(), &[param, counter]].concat()).into();
        if x < P && secp256k1::XOnlyPublicKey::from_byte_array(&x).is_err() {
            break;
        }
    }
    x
}

fn s_of(sig: &[u8; 64]) -> Option<Scalar> {
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(&sig[32..]);
    Option::from(Scalar::from_repr(FieldBytes::from(bytes)))
}

fn set_s(sig: &mut [u8; 64], s: Scalar) {
    sig[32..].copy_from_slice(&s.to_bytes());
}

/// Applies corruption `kind` (with `param`) to `items[i]`.
fn corrupt(items: &mut [Owned], signers: &[Signer], i: usize, kind: u8, param: u8) {
    let other = usize::from(param) % items.len();
    let (byte, bit) = (usize::from(param) % 32, 1u8 << (param / 32));
    match kind {
        0 => items[i].sig[byte] ^= bit,
        1 => items[i].sig[32 + byte] ^= bit,
        2 => match items[i].msg.len() {
            0 => items[i].msg.push(param),
            len => items[i].msg[usize::from(param) % len] ^= 1 << (param % 8),
        },
        3 => items[i].pubkey[byte] ^= bit,
        4 => {
            let sig = items[other].sig;
            items[other].sig = items[i].sig;
            items[i].sig = sig;
        }
        5 => {
            let mut s = N;
            s[31] = s[31].wrapping_add(param % 0x30);
            items[i].sig[32..].copy_from_slice(&s);
        }
        6 => {
            let mut r = P;
            r[31] = r[31].wrapping_add(param % 0x30);
            items[i].sig[..32].copy_from_slice(&r);
        }
        7 => items[i].sig[..32].copy_from_slice(&not_on_curve(param)),
        8 => items[i].pubkey = not_on_curve(param),
        9 | 10 => {
            let signer = signers
                .iter()
                .find(|s| s.pubkey == items[i].pubkey)
                .unwrap_or(&signers[0]);
            items[i].pubkey = signer.pubkey;
            // 9: a nonce point with odd y; 10: the secret not negated as BIP-340 asks (valid
            // when its point happens to have even y).
            items[i].sig = if kind == 9 {
                signer.sign_raw(&items[i].msg, true, true, param)
            } else {
                signer.sign_raw(&items[i].msg, false, false, param)
            };
        }
        11 => items[i] = items[other].clone(),
        12 => {
            // Defects that cancel with equal coefficients: s_i + delta, s_other - delta.
            let delta = scalar_of(&[b"delta".as_slice(), &[param]]);
            if let (Some(a), Some(b)) = (s_of(&items[i].sig), s_of(&items[other].sig)) {
                set_s(&mut items[i].sig, a + delta);
                set_s(&mut items[other].sig, b - delta);
            }
        }
        13 => {
            if let Some(s) = s_of(&items[i].sig) {
                set_s(&mut items[i].sig, -s);
            }
        }
        14 => {
            let pubkey = items[i].pubkey;
            items[i].sig[..32].copy_from_slice(&pubkey);
        }
        15 => items[i].pubkey = GX,
        _ => {
            let len = usize::from(param) % 80;
            items[i].msg.resize(len, param);
        }
    }
}

const fn hex32(s: &str) -> [u8; 32] {
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => 0,
    }
}
