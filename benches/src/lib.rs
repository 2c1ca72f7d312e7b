//! What the benchmarks in `benches/` share: signed inputs for the BIP-340 batch benches.

use secp256k1::{Keypair, Secp256k1, SecretKey};
use sha2::{Digest, Sha256};

/// `count` BIP-340 signatures over 32-byte messages (`SHA-256("{label} {i}")`), by one key or
/// by `count` distinct keys (key `i` is `SHA-256("key {i}")`): the x-only key, the message and
/// the signature of each. The same arguments give the same bytes on every run.
pub fn signed(count: usize, one_signer: bool, label: &str) -> Vec<([u8; 32], [u8; 32], [u8; 64])> {
    let secp = Secp256k1::signing_only();
    (0..count)
        .map(|i| {
            let signer = if one_signer { 0 } else { i };
            let secret: [u8; 32] = Sha256::digest(format!("key {signer}")).into();
            let key = SecretKey::from_byte_array(&secret).expect("a hash is a valid key");
            let keypair = Keypair::from_secret_key(&secp, &key);
            let msg: [u8; 32] = Sha256::digest(format!("{label} {i}")).into();
            let sig = secp.sign_schnorr_no_aux_rand(&msg, &keypair);
            (
                keypair.x_only_public_key().0.serialize(),
                msg,
                sig.to_byte_array(),
            )
        })
        .collect()
}
