//! The official BIP-340 test vectors, run through the verifier that events use.
//!
//! Vectors: `fixtures/external/bip340/test-vectors.csv`, a byte-identical copy of
//! <https://github.com/bitcoin/bips/blob/master/bip-0340/test-vectors.csv> (see the `SOURCE.md`
//! next to it). Every row's signature is checked with [`provenance::schnorr::verify`] against
//! the row's expected result, including the rows with invalid public keys and the rows whose
//! messages are not 32 bytes long. Rows with a secret key are also signed again with
//! libsecp256k1 and the row's `aux_rand`, which must reproduce the row's signature exactly.

use std::path::PathBuf;

use secp256k1::{Keypair, Secp256k1, SecretKey};
use serde::Deserialize;

/// One row of the CSV, with the upstream column names.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    index: usize,
    #[serde(rename = "secret key")]
    secret_key: String,
    #[serde(rename = "public key")]
    public_key: String,
    aux_rand: String,
    message: String,
    signature: String,
    #[serde(rename = "verification result")]
    verification_result: String,
    comment: String,
}

impl Row {
    fn expected(&self) -> bool {
        match self.verification_result.as_str() {
            "TRUE" => true,
            "FALSE" => false,
            other => panic!("row {}: verification result {other:?}", self.index),
        }
    }
}

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/external/bip340/test-vectors.csv")
}

fn load() -> Vec<Row> {
    let path = vectors_path();
    let mut reader = csv::Reader::from_path(&path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    reader
        .deserialize()
        .map(|row| row.unwrap_or_else(|e| panic!("bad row in {}: {e}", path.display())))
        .collect()
}

fn hex_bytes(row: &Row, column: &str, value: &str) -> Vec<u8> {
    hex::decode(value).unwrap_or_else(|e| panic!("row {}: {column} is not hex: {e}", row.index))
}

fn hex_array<const N: usize>(row: &Row, column: &str, value: &str) -> [u8; N] {
    let bytes = hex_bytes(row, column, value);
    bytes.try_into().unwrap_or_else(|b: Vec<u8>| {
        panic!(
            "row {}: {column} has {} bytes, expected {N}",
            row.index,
            b.len()
        )
    })
}

#[test]
fn file_is_the_full_upstream_revision() {
    let rows = load();
    let indices: Vec<usize> = rows.iter().map(|r| r.index).collect();
    assert_eq!(
        indices,
        (0..=18).collect::<Vec<_>>(),
        "rows 0 to 18, in order"
    );
    // The revision with variable-length messages (rows 15 to 18).
    let lengths: Vec<usize> = rows[15..]
        .iter()
        .map(|r| hex_bytes(r, "message", &r.message).len())
        .collect();
    assert_eq!(lengths, [0, 1, 17, 100]);
}

#[test]
fn every_row_verifies_as_expected() {
    let rows = load();
    let mut invalid_keys = 0;
    for row in &rows {
        let pubkey: [u8; 32] = hex_array(row, "public key", &row.public_key);
        let sig: [u8; 64] = hex_array(row, "signature", &row.signature);
        let msg = hex_bytes(row, "message", &row.message);
        let expected = row.expected();
        assert_eq!(
            provenance::schnorr::verify(&pubkey, &msg, &sig),
            expected,
            "row {} ({}): expected {}",
            row.index,
            row.comment,
            row.verification_result
        );
        if secp256k1::XOnlyPublicKey::from_byte_array(&pubkey).is_err() {
            assert!(!expected, "row {}: an invalid key cannot verify", row.index);
            invalid_keys += 1;
        }
        if expected {
            // A valid signature stops verifying when one bit of it, of the message or of the
            // key changes.
            let mut bad_sig = sig;
            bad_sig[63] ^= 1;
            assert!(!provenance::schnorr::verify(&pubkey, &msg, &bad_sig));
            let mut bad_msg = msg.clone();
            match bad_msg.first_mut() {
                Some(b) => *b ^= 0x80,
                None => bad_msg.push(0),
            }
            assert!(!provenance::schnorr::verify(&pubkey, &bad_msg, &sig));
            let mut bad_key = pubkey;
            bad_key[31] ^= 1;
            assert!(!provenance::schnorr::verify(&bad_key, &msg, &sig));
        }
    }
    // Rows 5 (not on the curve) and 14 (exceeds the field size).
    assert_eq!(invalid_keys, 2, "the invalid-public-key rows were run");
}

#[test]
fn signing_rows_reproduce_their_signatures() {
    let secp = Secp256k1::new();
    let mut signed = 0;
    for row in load().iter().filter(|r| !r.secret_key.is_empty()) {
        let secret = SecretKey::from_byte_array(&hex_array(row, "secret key", &row.secret_key))
            .unwrap_or_else(|e| panic!("row {}: secret key: {e}", row.index));
        let keypair = Keypair::from_secret_key(&secp, &secret);
        let (xonly, _) = keypair.x_only_public_key();
        let pubkey: [u8; 32] = hex_array(row, "public key", &row.public_key);
        assert_eq!(xonly.serialize(), pubkey, "row {}: public key", row.index);

        let aux: [u8; 32] = hex_array(row, "aux_rand", &row.aux_rand);
        let msg = hex_bytes(row, "message", &row.message);
        let sig = secp.sign_schnorr_with_aux_rand(&msg, &keypair, &aux);
        let expected: [u8; 64] = hex_array(row, "signature", &row.signature);
        assert_eq!(
            hex::encode_upper(sig.to_byte_array()),
            hex::encode_upper(expected),
            "row {}: signature",
            row.index
        );
        assert!(provenance::schnorr::verify(&pubkey, &msg, &expected));
        signed += 1;
    }
    // Rows 0 to 3 and 15 to 18 carry a secret key.
    assert_eq!(signed, 8);
}
