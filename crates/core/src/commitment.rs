//! Salted prompt commitments.
//!
//! A record never carries the prompt, nor a bare hash of it: a bare hash of a short prompt
//! ("hi") is one dictionary look-up away from the prompt. It carries
//! `sha256(salt || prompt bytes)` with a fresh random 32-byte salt. The salt goes back to the
//! caller, who can later disclose prompt and salt to a verifier; [`PromptCommitment::check`]
//! then proves the disclosed prompt is the one that was committed to.
//!
//! # Scheme `sha256-salted-v1`
//!
//! `commitment = SHA-256(salt || prompt)`, where `salt` is exactly 32 bytes and `prompt` the
//! committed prompt bytes as named by the record's `prompt.format`. The salt has a fixed
//! length, so the concatenation is unambiguous.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::digest::{HexError, Sha256Hasher, parse_hex32};
pub use crate::record::PromptCommitment;

/// The name of the commitment scheme this module implements.
pub const SCHEME: &str = "sha256-salted-v1";

/// Prompt format: the prompt string's UTF-8 bytes.
pub const FORMAT_TEXT: &str = "text";

/// A 32-byte commitment salt.
///
/// `Debug` does not print the value: the salt is what links a record to its prompt, so it is
/// handed only to the caller. `Display` prints hex, for handing it over.
#[derive(Clone)]
pub struct Salt([u8; 32]);

impl Salt {
    /// A fresh salt from the operating system's random number generator.
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Wraps given salt bytes (for tests and for disclosed salts).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The salt bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Salt(..)")
    }
}

impl fmt::Display for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl FromStr for Salt {
    type Err = HexError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex32(s).map(Self)
    }
}

impl PromptCommitment {
    /// Commits to `prompt` (bytes formed as `format` says) under `salt`.
    pub fn commit(format: &str, prompt: &[u8], salt: &Salt) -> Self {
        Self {
            scheme: SCHEME.to_owned(),
            format: format.to_owned(),
            commitment: compute(prompt, salt),
            tokens: None,
        }
    }

    /// Whether `prompt` and `salt` open this commitment. Compares in constant time. Always
    /// false for a scheme other than [`SCHEME`].
    pub fn check(&self, prompt: &[u8], salt: &Salt) -> bool {
        self.scheme == SCHEME
            && bool::from(
                compute(prompt, salt)
                    .as_bytes()
                    .ct_eq(self.commitment.as_bytes()),
            )
    }
}

fn compute(prompt: &[u8], salt: &Salt) -> crate::digest::Sha256Digest {
    let mut h = Sha256Hasher::new();
    h.update(&salt.0).update(prompt);
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commitment_opens_with_the_right_prompt_and_salt_only() {
        let salt = Salt::from_bytes([7; 32]);
        let c = PromptCommitment::commit(FORMAT_TEXT, b"hi", &salt);
        assert!(c.check(b"hi", &salt));
        assert!(!c.check(b"hi ", &salt));
        assert!(!c.check(b"hi", &Salt::from_bytes([8; 32])));
        // Never a bare hash.
        assert_ne!(c.commitment, crate::digest::sha256(b"hi"));
    }

    #[test]
    fn known_answer() {
        // sha256(32 x 0x07 || "hi"), computed independently with Python's hashlib.
        let c = PromptCommitment::commit(FORMAT_TEXT, b"hi", &Salt::from_bytes([7; 32]));
        assert_eq!(
            c.commitment.to_string(),
            "8d8bb0c843f4618ba1213709a39ec943d3110b0f6b3dad73284975c0754dc6b5"
        );
    }

    #[test]
    fn random_salts_differ_and_debug_hides_them() {
        let a = Salt::random();
        let b = Salt::random();
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert_eq!(format!("{a:?}"), "Salt(..)");
        assert_eq!(
            a.to_string().parse::<Salt>().unwrap().as_bytes(),
            a.as_bytes()
        );
    }

    #[test]
    fn unknown_scheme_never_opens() {
        let salt = Salt::from_bytes([1; 32]);
        let mut c = PromptCommitment::commit(FORMAT_TEXT, b"x", &salt);
        c.scheme = "sha256-bare".into();
        assert!(!c.check(b"x", &salt));
    }
}
