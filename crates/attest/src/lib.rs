//! TEE attestation for provenance signing keys: AMD SEV-SNP reports and Intel TDX quotes that
//! bind a Nostr key, checked offline.
//!
//! A signing key that lives inside a confidential VM can be bound to that VM's hardware
//! evidence: the VM asks its TEE for a report whose 64-byte `report_data` is
//! [`binding::report_data`] = SHA-512([`binding::DOMAIN`] || x-only public key || nonce), and
//! publishes it in an **attestation event** ([`event`], kind [`event::KIND`]) signed by that
//! same key. Provenance records point at the event (`attestations`: the evidence's SHA-256
//! and the event id, [`event::attestation_ref`]).
//!
//! [`verify()`] checks such evidence **offline**: every input (certificates, TDX collateral,
//! AMD's revocation lists, the trusted roots, the time `now`, the measurements the verifier
//! accepts) is handed in; nothing is fetched. It returns an [`Outcome`] with one [`Step`] per
//! check (certificate chain, revocation, report signature, TCB, chip id, guest policy,
//! binding, measurement, freshness); the TEE claim is proven only when every step is, except
//! that SEV-SNP revocation not checked (no CRL given) is a warning ([`Outcome::warnings`])
//! unless the policy requires a CRL. Input that cannot be read at all (a truncated report, an
//! unknown report version, a quote with trailing bytes, malformed JSON, a CRL that is not
//! one) is an [`InputError`] naming the step and the field instead.
//!
//! What a proven outcome says: the key that signed the attestation event was bound, by a
//! genuine TEE of that platform whose certificates chain to a trusted root, to a guest with
//! that launch measurement and policy. It does not say that the measured code keeps the key
//! inside, what the code does with it, or that an answer signed later came from a model; see
//! `docs/attest.md`.
//!
//! [`receipt`] checks foreign receipts: responses signed by a TEE-hosted service in the style
//! of NEAR AI Cloud (ECDSA over EIP-191, or Ed25519), reported as external evidence.
//!
//! Features: `sev-snp` (AMD, with the `sev` crate), `tdx` (Intel, with `dcap-qvl`) and
//! `receipts`, all on by default; `testing` builds synthetic SEV-SNP evidence under a test
//! root (tests only).

pub mod binding;
pub mod bundle;
pub mod configfs;
#[cfg(feature = "sev-snp")]
pub mod crl;
pub mod event;
mod outcome;
#[cfg(feature = "receipts")]
pub mod receipt;
#[cfg(feature = "sev-snp")]
pub mod snp;
#[cfg(feature = "tdx")]
pub mod tdx;
#[cfg(feature = "testing")]
pub mod testing;
mod verify;

pub use self::bundle::{Bundle, Platform};
pub use self::outcome::{InputError, Outcome, Step, StepName};
pub use self::verify::{Expected, MAX_SKEW_SECS, Policy, verify};

/// Properties checked by the fuzz target `attest_parse` and by the seed tests. Not a stable
/// API.
#[doc(hidden)]
pub mod fuzzing {
    /// Reads arbitrary bytes as an SEV-SNP report, a CRL, a TDX quote, a bundle and a foreign receipt
    /// (checked against the same bytes): none panics, and
    /// whatever is rejected is rejected with a non-empty one-line reason.
    pub fn check_parse(data: &[u8]) {
        #[cfg(feature = "sev-snp")]
        if let Err(e) = crate::snp::Report::parse(data) {
            assert_one_line(&e.to_string());
        }
        #[cfg(feature = "sev-snp")]
        if let Err(e) = crate::crl::Crl::parse(data) {
            assert_one_line(&e.to_string());
        }
        #[cfg(feature = "tdx")]
        if let Err(e) = crate::tdx::parse_quote(data) {
            assert_one_line(&e.to_string());
        }
        if let Err(e) = crate::bundle::Bundle::from_json(data) {
            assert_one_line(&e.to_string());
        }
        #[cfg(feature = "receipts")]
        match crate::receipt::Receipt::from_json(data) {
            Ok(receipt) => {
                if let Err(e) = crate::receipt::check(&receipt, Some(data), Some(data)) {
                    assert_one_line(&e.to_string());
                }
            }
            Err(e) => assert_one_line(&e.to_string()),
        }
    }

    fn assert_one_line(s: &str) {
        assert!(!s.is_empty() && !s.contains('\n'), "reason {s:?}");
    }
}
