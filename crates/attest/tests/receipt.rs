//! Foreign receipts: the example NEAR AI Cloud publishes in its verification guide (a real
//! receipt of its gateway, with the response body it covers: `fixtures/attest/near-ai/`),
//! receipts signed here with both schemes, and every way a receipt is refused.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::path::PathBuf;

use k256::ecdsa::SigningKey;
use provenance::verdict::Status;
use provenance_attest::receipt::{self, Receipt, eip191_hash, ethereum_address};

fn near_ai() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/attest/near-ai")
}

fn published() -> (Receipt, Vec<u8>) {
    let receipt = Receipt::from_json(&std::fs::read(near_ai().join("receipt.json")).unwrap());
    let response = std::fs::read(near_ai().join("response.sse")).unwrap();
    (receipt.unwrap(), response)
}

fn statuses(check: &receipt::ReceiptCheck) -> Vec<(&str, Status)> {
    check.steps.iter().map(|s| (s.step, s.status)).collect()
}

#[test]
fn the_published_near_ai_receipt_checks_against_its_response() {
    let (receipt, response) = published();
    let check = receipt::check(&receipt, None, Some(&response)).unwrap();
    assert_eq!(check.algo, "ecdsa");
    assert_eq!(check.key, "0x319f1b8bb3b723a5d098ffb67005bdf7bb579aca");
    assert_eq!(check.model, None);
    // The guide does not publish the request body of this receipt: its step stays unknown.
    assert_eq!(
        statuses(&check),
        [
            ("request", Status::Unknown),
            ("response", Status::Proven),
            ("signature", Status::Proven)
        ]
    );
    assert!(!check.is_proven());
    assert_eq!(check.deciding_step().unwrap().step, "request");
}

#[test]
fn a_changed_response_another_address_or_a_changed_signature_fail() {
    let (receipt, response) = published();
    let mut edited = response.clone();
    let at = edited.iter().position(|&b| b == b'O').unwrap(); // "Okay"
    edited[at] = b'o';
    let check = receipt::check(&receipt, None, Some(&edited)).unwrap();
    assert_eq!(
        check.steps[1].status,
        Status::Failed,
        "{:?}",
        check.steps[1]
    );

    let mut other = receipt.clone();
    other.signing_address = "0x0000000000000000000000000000000000000001".into();
    let check = receipt::check(&other, None, Some(&response)).unwrap();
    assert_eq!(check.steps[2].status, Status::Failed);
    assert!(
        check.steps[2].detail.contains("recovers 0x319f1b8b"),
        "{}",
        check.steps[2].detail
    );

    // Another text under the same signature recovers another key.
    let mut text = receipt.clone();
    text.text = text.text.replacen('b', "c", 1);
    let check = receipt::check(&text, None, None).unwrap();
    assert_eq!(check.steps[2].status, Status::Failed);

    let mut flipped = receipt;
    let mut sig = hex::decode(flipped.signature.trim_start_matches("0x")).unwrap();
    sig[10] ^= 1;
    flipped.signature = hex::encode(sig);
    let check = receipt::check(&flipped, None, Some(&response)).unwrap();
    assert_eq!(check.steps[2].status, Status::Failed);
}

#[test]
fn receipts_signed_here_verify_with_both_schemes_and_the_model_prefix() {
    let request = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let response = br#"{"choices":[{"message":{"content":"hello"}}]}"#;
    let text = format!(
        "m:{}:{}",
        hex::encode(sha256(request)),
        hex::encode(sha256(response))
    );

    let key = SigningKey::from_slice(&[7; 32]).unwrap();
    let (sig, recovery) = key
        .sign_prehash_recoverable(&eip191_hash(text.as_bytes()))
        .unwrap();
    let mut signature = sig.to_bytes().to_vec();
    signature.push(27 + recovery.to_byte());
    let ecdsa = Receipt {
        text: text.clone(),
        signature: format!("0x{}", hex::encode(&signature)),
        signing_address: format!("0x{}", hex::encode(ethereum_address(key.verifying_key()))),
        signing_algo: "ecdsa".into(),
    };
    let check = receipt::check(&ecdsa, Some(request), Some(response)).unwrap();
    assert!(check.is_proven(), "{:?}", check.steps);
    assert_eq!(check.model.as_deref(), Some("m"));

    use ed25519_dalek::Signer as _;
    let ed = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let ed_receipt = Receipt {
        text: text.clone(),
        signature: hex::encode(ed.sign(text.as_bytes()).to_bytes()),
        signing_address: hex::encode(ed.verifying_key().to_bytes()),
        signing_algo: "ed25519".into(),
    };
    let check = receipt::check(&ed_receipt, Some(request), Some(response)).unwrap();
    assert!(check.is_proven(), "{:?}", check.steps);
    let mut wrong = ed_receipt;
    wrong.text = wrong.text.replacen("m:", "n:", 1);
    let check = receipt::check(&wrong, Some(request), Some(response)).unwrap();
    assert_eq!(check.steps[2].status, Status::Failed);
}

#[test]
fn receipts_that_cannot_be_checked_name_the_field() {
    let (receipt, _) = published();
    type Edit = fn(&mut Receipt);
    let cases: [(Edit, &str); 6] = [
        (|r| r.text = "no hashes here".into(), "receipt text:"),
        (|r| r.text = "ab:cd".into(), "receipt text:"),
        (|r| r.signing_algo = "rsa".into(), "receipt signing_algo:"),
        (|r| r.signature = "0x1234".into(), "receipt signature:"),
        (|r| r.signature = "zz".into(), "receipt signature: not hex"),
        (
            |r| r.signing_address = "0x1234".into(),
            "receipt signing_address:",
        ),
    ];
    for (edit, says) in cases {
        let mut r = receipt.clone();
        edit(&mut r);
        let e = receipt::check(&r, None, None).unwrap_err().to_string();
        assert!(e.starts_with(says) && !e.contains('\n'), "{e}");
    }
    for bad in [&b"{"[..], b"[]", b"{\"text\":1}"] {
        let e = Receipt::from_json(bad).unwrap_err().to_string();
        assert!(e.starts_with("receipt json:"), "{e}");
    }
    let big = vec![b' '; receipt::MAX_RECEIPT_BYTES + 1];
    assert!(
        Receipt::from_json(&big)
            .unwrap_err()
            .to_string()
            .contains("over")
    );
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}
