//! Foreign receipts: a response signed by a TEE-hosted inference service in the style of
//! NEAR AI Cloud and Phala's vllm-proxy (`GET /v1/signature/{chat_id}`).
//!
//! Such a receipt is JSON with four fields: `text` is `sha256(request body):sha256(response
//! body)` in lowercase hex (older proxies put the model name first: `model:req:resp`),
//! `signature` is the signature of `text`, `signing_address` names the key and
//! `signing_algo` the scheme:
//!
//! - `ecdsa`: secp256k1 ECDSA over the EIP-191 personal message of `text`
//!   (Keccak-256 of `"\x19Ethereum Signed Message:\n" || decimal length || text`), 65 bytes
//!   `r || s || v`; `signing_address` is the Ethereum address of the key (the last 20 bytes of
//!   the Keccak-256 of its uncompressed point), recovered from the signature and compared;
//! - `ed25519`: Ed25519 over the bytes of `text` (strict verification), 64 bytes;
//!   `signing_address` is the 32-byte public key in hex.
//!
//! [`check`] compares the hashes in `text` with the request and response bytes given and
//! checks the signature. What a proven receipt says: the holder of that key signed these
//! two hashes. It does not say that the key lives in a TEE (the service's attestation binds
//! the address into its report, which this module does not read), which model ran, or when.
//! It is reported as external evidence, beside our own records, never as one.

use provenance::verdict::Status;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sha3::Keccak256;

/// The largest receipt read, in bytes.
pub const MAX_RECEIPT_BYTES: usize = 64 * 1024;

/// A receipt as the service returns it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Receipt {
    /// `[model:]sha256(request):sha256(response)`.
    pub text: String,
    /// The signature, hex (`0x` allowed).
    pub signature: String,
    /// The Ethereum address (`ecdsa`) or the hex public key (`ed25519`).
    pub signing_address: String,
    /// `ecdsa` or `ed25519`.
    pub signing_algo: String,
}

/// A receipt that cannot be checked at all: which field, and what is wrong with it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("receipt {field}: {reason}")]
pub struct ReceiptError {
    /// The field (or `json`).
    pub field: &'static str,
    /// What is wrong, in one line.
    pub reason: String,
}

fn bad(field: &'static str, reason: impl Into<String>) -> ReceiptError {
    ReceiptError {
        field,
        reason: reason.into(),
    }
}

impl Receipt {
    /// Reads a receipt from its JSON (at most [`MAX_RECEIPT_BYTES`]).
    pub fn from_json(bytes: &[u8]) -> Result<Self, ReceiptError> {
        if bytes.len() > MAX_RECEIPT_BYTES {
            return Err(bad(
                "json",
                format!("{} bytes, over {MAX_RECEIPT_BYTES}", bytes.len()),
            ));
        }
        serde_json::from_slice(bytes).map_err(|e| bad("json", e.to_string()))
    }
}

/// One check of a receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReceiptStep {
    /// `request`, `response` or `signature`.
    pub step: &'static str,
    /// Proven, failed, or unknown (the bytes were not given).
    pub status: Status,
    /// What was compared, with the values.
    pub detail: String,
}

/// The checks of one receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReceiptCheck {
    /// `ecdsa` or `ed25519`.
    pub algo: &'static str,
    /// The model named in `text`, when it names one.
    pub model: Option<String>,
    /// The key: the Ethereum address (lowercase) or the Ed25519 public key (hex).
    pub key: String,
    /// `request`, `response`, `signature`, in that order.
    pub steps: Vec<ReceiptStep>,
}

impl ReceiptCheck {
    /// Every step proven.
    pub fn is_proven(&self) -> bool {
        self.steps.iter().all(|s| s.status == Status::Proven)
    }

    /// The step to name when not proven: the first failed, else the first unknown.
    pub fn deciding_step(&self) -> Option<&ReceiptStep> {
        self.steps
            .iter()
            .find(|s| s.status == Status::Failed)
            .or_else(|| self.steps.iter().find(|s| s.status != Status::Proven))
    }
}

/// Checks `receipt` against the request and response bytes (each may be absent: its step is
/// then unknown) and its signature.
pub fn check(
    receipt: &Receipt,
    request: Option<&[u8]>,
    response: Option<&[u8]>,
) -> Result<ReceiptCheck, ReceiptError> {
    let mut parts = receipt.text.rsplitn(3, ':');
    let (Some(response_hex), Some(request_hex)) = (parts.next(), parts.next()) else {
        return Err(bad(
            "text",
            "expected [model:]sha256(request):sha256(response)",
        ));
    };
    let model = parts.next().map(str::to_owned);
    let request_hash = hash32("text", request_hex)?;
    let response_hash = hash32("text", response_hex)?;
    let signature = decode_hex("signature", &receipt.signature)?;
    let (algo, key, signed) = match receipt.signing_algo.as_str() {
        "ecdsa" => {
            let address = decode_hex("signing_address", &receipt.signing_address)?;
            let address: [u8; 20] = address
                .try_into()
                .map_err(|_| bad("signing_address", "an Ethereum address is 20 bytes"))?;
            let signed = ecdsa_eip191(receipt.text.as_bytes(), &signature, &address)?;
            ("ecdsa", format!("0x{}", hex::encode(address)), signed)
        }
        "ed25519" => {
            let key = decode_hex("signing_address", &receipt.signing_address)?;
            let key: [u8; 32] = key
                .try_into()
                .map_err(|_| bad("signing_address", "an Ed25519 public key is 32 bytes"))?;
            let signed = ed25519(receipt.text.as_bytes(), &signature, &key)?;
            ("ed25519", hex::encode(key), signed)
        }
        other => {
            return Err(bad(
                "signing_algo",
                format!("{other:?} (known: ecdsa, ed25519)"),
            ));
        }
    };
    let steps = vec![
        compare("request", request, &request_hash),
        compare("response", response, &response_hash),
        signed,
    ];
    Ok(ReceiptCheck {
        algo,
        model,
        key,
        steps,
    })
}

fn compare(step: &'static str, bytes: Option<&[u8]>, claimed: &[u8; 32]) -> ReceiptStep {
    let claimed_hex = hex::encode(claimed);
    let (status, detail) = match bytes {
        None => (
            Status::Unknown,
            format!("the {step} body was not given (the receipt says sha256 {claimed_hex})"),
        ),
        Some(bytes) => {
            let found: [u8; 32] = Sha256::digest(bytes).into();
            if &found == claimed {
                (
                    Status::Proven,
                    format!(
                        "sha256 {claimed_hex} of the {} bytes given matches",
                        bytes.len()
                    ),
                )
            } else {
                (
                    Status::Failed,
                    format!(
                        "sha256 of the {} bytes given is {}, the receipt says {claimed_hex}",
                        bytes.len(),
                        hex::encode(found)
                    ),
                )
            }
        }
    };
    ReceiptStep {
        step,
        status,
        detail,
    }
}

/// The EIP-191 personal-message hash of `message`.
pub fn eip191_hash(message: &[u8]) -> [u8; 32] {
    let mut hasher = Keccak256::new();
    hasher.update(b"\x19Ethereum Signed Message:\n");
    hasher.update(message.len().to_string().as_bytes());
    hasher.update(message);
    hasher.finalize().into()
}

/// The Ethereum address of a secp256k1 public key.
pub fn ethereum_address(key: &k256::ecdsa::VerifyingKey) -> [u8; 20] {
    let point = key.to_encoded_point(false);
    let hash: [u8; 32] = Keccak256::digest(&point.as_bytes()[1..]).into();
    let mut address = [0; 20];
    address.copy_from_slice(&hash[12..]);
    address
}

fn ecdsa_eip191(
    message: &[u8],
    signature: &[u8],
    address: &[u8; 20],
) -> Result<ReceiptStep, ReceiptError> {
    use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
    if signature.len() != 65 {
        return Err(bad(
            "signature",
            format!(
                "{} bytes; an ECDSA receipt signature is 65 (r, s, v)",
                signature.len()
            ),
        ));
    }
    let v = signature[64];
    let recovery = match v {
        27 | 28 => v - 27,
        0 | 1 => v,
        _ => {
            return Err(bad(
                "signature",
                format!("recovery byte v = {v} (27 or 28)"),
            ));
        }
    };
    let step = |status, detail: String| ReceiptStep {
        step: "signature",
        status,
        detail,
    };
    let Ok(sig) = Signature::from_slice(&signature[..64]) else {
        return Ok(step(
            Status::Failed,
            "r or s is not a valid secp256k1 scalar".into(),
        ));
    };
    let recovery = RecoveryId::new(recovery == 1, false);
    let prehash = eip191_hash(message);
    let expected = format!("0x{}", hex::encode(address));
    Ok(
        match VerifyingKey::recover_from_prehash(&prehash, &sig, recovery) {
            Ok(key) => {
                let found = ethereum_address(&key);
                if &found == address {
                    step(
                        Status::Proven,
                        format!("EIP-191 ECDSA signature by {expected} (address recovered)"),
                    )
                } else {
                    step(
                        Status::Failed,
                        format!(
                            "the signature recovers 0x{}, not {expected}",
                            hex::encode(found)
                        ),
                    )
                }
            }
            Err(_) => step(
                Status::Failed,
                format!("no key recovers from the signature (expected {expected})"),
            ),
        },
    )
}

fn ed25519(message: &[u8], signature: &[u8], key: &[u8; 32]) -> Result<ReceiptStep, ReceiptError> {
    let signature: [u8; 64] = signature.try_into().map_err(|_| {
        bad(
            "signature",
            format!("{} bytes; an Ed25519 signature is 64", signature.len()),
        )
    })?;
    let step = |status, detail: String| ReceiptStep {
        step: "signature",
        status,
        detail,
    };
    let Ok(verifying) = ed25519_dalek::VerifyingKey::from_bytes(key) else {
        return Err(bad("signing_address", "not an Ed25519 public key"));
    };
    let signature = ed25519_dalek::Signature::from_bytes(&signature);
    Ok(match verifying.verify_strict(message, &signature) {
        Ok(()) => step(
            Status::Proven,
            format!("Ed25519 signature by {}", hex::encode(key)),
        ),
        Err(_) => step(
            Status::Failed,
            format!(
                "the Ed25519 signature does not verify for {}",
                hex::encode(key)
            ),
        ),
    })
}

fn decode_hex(field: &'static str, text: &str) -> Result<Vec<u8>, ReceiptError> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    hex::decode(text).map_err(|e| bad(field, format!("not hex: {e}")))
}

fn hash32(field: &'static str, text: &str) -> Result<[u8; 32], ReceiptError> {
    decode_hex(field, text)?
        .try_into()
        .map_err(|_| bad(field, format!("{text:?} is not a SHA-256 in hex")))
}
