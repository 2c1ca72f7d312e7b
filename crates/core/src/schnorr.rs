//! BIP-340 Schnorr signature verification over secp256k1.
//!
//! A thin wrapper over libsecp256k1 (through the `secp256k1` crate that `nostr` uses), so
//! that the BIP-340 test vectors run through exactly the code path events use. Parsing a key
//! (lifting the x coordinate to a curve point) is split from verifying, so that a verifier of
//! many events by one signer ([`crate::event::Verifier`]) parses the key once.

use std::sync::LazyLock;

use secp256k1::{Secp256k1, VerifyOnly, XOnlyPublicKey, schnorr};

static VERIFIER: LazyLock<Secp256k1<VerifyOnly>> = LazyLock::new(Secp256k1::verification_only);

/// Whether `sig` is a valid BIP-340 signature of `msg` (any length) under the x-only public
/// key `pubkey`. A key that is not a valid curve point makes it false.
pub fn verify(pubkey: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
    parse_key(pubkey).is_some_and(|key| verify_parsed(&key, msg, sig))
}

/// The x-only public key, or `None` when `pubkey` is not the x coordinate of a curve point.
pub(crate) fn parse_key(pubkey: &[u8; 32]) -> Option<XOnlyPublicKey> {
    XOnlyPublicKey::from_byte_array(pubkey).ok()
}

/// [`verify`] with a key already parsed by [`parse_key`].
pub(crate) fn verify_parsed(key: &XOnlyPublicKey, msg: &[u8], sig: &[u8; 64]) -> bool {
    let sig = schnorr::Signature::from_byte_array(*sig);
    VERIFIER.verify_schnorr(&sig, msg, key).is_ok()
}
