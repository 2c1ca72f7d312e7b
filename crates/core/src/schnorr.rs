//! BIP-340 Schnorr signature verification over secp256k1.
//!
//! A thin wrapper over libsecp256k1 (through the `secp256k1` crate that `nostr` uses), so
//! that the BIP-340 test vectors run through exactly the code path events use.

use std::sync::LazyLock;

use secp256k1::{Secp256k1, VerifyOnly, XOnlyPublicKey, schnorr};

static VERIFIER: LazyLock<Secp256k1<VerifyOnly>> = LazyLock::new(Secp256k1::verification_only);

/// Whether `sig` is a valid BIP-340 signature of `msg` (any length) under the x-only public
/// key `pubkey`. A key that is not a valid curve point makes it false.
pub fn verify(pubkey: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
    let Ok(key) = XOnlyPublicKey::from_byte_array(pubkey) else {
        return false;
    };
    let sig = schnorr::Signature::from_byte_array(*sig);
    VERIFIER.verify_schnorr(&sig, msg, &key).is_ok()
}
