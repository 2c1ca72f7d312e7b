//! The key binding: what an attestation report's 64-byte `report_data` holds.
//!
//! `report_data = SHA-512(DOMAIN || pubkey || nonce)`, where `DOMAIN` is the 31 ASCII bytes
//! [`DOMAIN`], `pubkey` the 32-byte x-only (BIP-340) public key of the Nostr key being bound,
//! and `nonce` 32 bytes, fresh for each report (a verifier's challenge, or random). SHA-512
//! fills both TEEs' 64 bytes exactly. The domain tag keeps this hash from meaning anything in
//! another protocol that also puts a key hash in `report_data`.
//!
//! The binding says which key, on which platform, with which measurement; nothing more.

use sha2::{Digest, Sha512};

/// The domain tag that starts the hashed input.
pub const DOMAIN: &[u8] = b"provenance/attest/report-data/1";

/// Length of the nonce, in bytes.
pub const NONCE_LEN: usize = 32;

/// A nonce mixed into the binding.
pub type Nonce = [u8; NONCE_LEN];

/// The 64 bytes a report must carry to bind `pubkey` (x-only, 32 bytes) with `nonce`.
pub fn report_data(pubkey: &[u8; 32], nonce: &Nonce) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(DOMAIN);
    h.update(pubkey);
    h.update(nonce);
    let mut out = [0u8; 64];
    out.copy_from_slice(&h.finalize());
    out
}

/// A fresh random nonce.
pub fn fresh_nonce() -> Nonce {
    rand::random()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_data_is_sha512_of_domain_key_nonce() {
        let key = [7u8; 32];
        let nonce = [9u8; 32];
        let mut input = DOMAIN.to_vec();
        input.extend_from_slice(&key);
        input.extend_from_slice(&nonce);
        let want = Sha512::digest(&input);
        assert_eq!(report_data(&key, &nonce).as_slice(), want.as_slice());
        assert_ne!(report_data(&key, &[8u8; 32]), report_data(&key, &nonce));
        assert_eq!(DOMAIN.len(), 31);
    }
}
