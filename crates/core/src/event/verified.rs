//! The verified record: what an event that passed every structural check carries, and the
//! evidence checks (output, prompt, weights, signer) that only it offers.

use super::*;

/// A record whose event passed every structural check. Only [`verify`] constructs it.
#[derive(Clone, Debug)]
pub struct VerifiedRecord {
    pub(super) id: EventId,
    pub(super) author: PublicKey,
    pub(super) created_at: Timestamp,
    pub(super) record: Record,
}

impl VerifiedRecord {
    /// The event id.
    pub fn id(&self) -> EventId {
        self.id
    }

    /// The key that signed it.
    pub fn author(&self) -> PublicKey {
        self.author
    }

    /// The event's `created_at`.
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }

    /// The record.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Checks output bytes against the record: the exact hash first, then the normalised
    /// hash (when the bytes are UTF-8 and the record has one).
    pub fn check_output(&self, output: &[u8]) -> Claim {
        let out = &self.record.output;
        let found = sha256(output);
        if found == out.sha256 {
            return Claim::new(
                Code::OutputMatch,
                format!("sha256 {found} of {} bytes matches", output.len()),
            );
        }
        if let (Some(n), Ok(text)) = (&out.normalized, std::str::from_utf8(output)) {
            if n.rule == normalize::RULE && normalize::normalized_sha256(text) == n.sha256 {
                return Claim::new(
                    Code::OutputNormalizedMatch,
                    format!(
                        "normalised text matches ({}); exact bytes differ: expected sha256 {}, found {found}",
                        n.rule, out.sha256
                    ),
                );
            }
        }
        Claim::new(
            Code::OutputMismatch,
            format!("expected sha256 {}, found {found}", out.sha256),
        )
    }

    /// Checks a disclosed prompt and salt against the commitment.
    ///
    /// The disclosure is first checked byte for byte. If that fails and the commitment's
    /// format forms its bytes from JSON (`chat.v1`, `completion.v1`, `messages`, `json`), the
    /// disclosure is also formed as that format says ([`crate::prompt::disclosed`]), so the
    /// request body as sent, or the committed JSON in any layout, opens it too; the claim says
    /// which.
    pub fn check_prompt(&self, prompt: &[u8], salt: &Salt) -> Claim {
        match &self.record.prompt {
            None => Claim::new(Code::PromptAbsent, "the record has no prompt commitment"),
            Some(c) if c.check(prompt, salt) => Claim::new(
                Code::PromptMatch,
                format!(
                    "disclosed prompt ({} bytes, format {}) opens the commitment",
                    prompt.len(),
                    c.format
                ),
            ),
            Some(c) if formed_opens(c, prompt, salt) => Claim::new(
                Code::PromptMatch,
                format!(
                    "disclosed prompt ({} bytes), formed as {} says, opens the commitment",
                    prompt.len(),
                    c.format
                ),
            ),
            Some(c) => Claim::new(
                Code::PromptMismatch,
                format!(
                    "disclosed prompt ({} bytes) and salt do not open commitment {} ({})",
                    prompt.len(),
                    c.commitment,
                    c.scheme
                ),
            ),
        }
    }

    /// Checks model digests computed from a weights file against the record. Every digest
    /// the record states and the caller computed must match; at least one must be compared.
    pub fn check_model(
        &self,
        sha256: Option<&Sha256Digest>,
        blake3: Option<&Blake3Digest>,
        tensor_root: Option<&Blake3Digest>,
    ) -> Claim {
        let m = &self.record.model;
        let mut compared = Vec::new();
        let mut mismatches = Vec::new();
        let mut cmp = |name: &str, expected: Option<String>, found: Option<String>| {
            if let (Some(e), Some(f)) = (expected, found) {
                compared.push(name.to_owned());
                if e != f {
                    mismatches.push(format!("{name}: expected {e}, found {f}"));
                }
            }
        };
        cmp(
            "sha256",
            m.sha256.map(|d| d.to_hex()),
            sha256.map(|d| d.to_hex()),
        );
        cmp(
            "blake3",
            m.blake3.map(|d| d.to_hex()),
            blake3.map(|d| d.to_hex()),
        );
        cmp(
            "tensor_root",
            m.tensor_root.map(|d| d.to_hex()),
            tensor_root.map(|d| d.to_hex()),
        );
        if !mismatches.is_empty() {
            Claim::new(Code::ModelDigestMismatch, mismatches.join("; "))
        } else if compared.is_empty() {
            Claim::new(
                Code::ModelUnidentified,
                "the record states no digest that the given weights could be compared with",
            )
        } else {
            Claim::new(
                Code::ModelDigestMatch,
                format!("{} match the given weights", compared.join(", ")),
            )
        }
    }

    /// Checks the author against a list of trusted keys.
    pub fn check_signer(&self, trusted: &[PublicKey]) -> Claim {
        if trusted.contains(&self.author) {
            Claim::new(
                Code::SignerTrusted,
                format!("{} is in the trust list", self.author),
            )
        } else {
            Claim::new(
                Code::SignerUntrusted,
                format!(
                    "{} is not in the trust list of {} keys",
                    self.author,
                    trusted.len()
                ),
            )
        }
    }
}

/// Whether `prompt`, formed as the commitment's format says, opens it (only when forming
/// changes the bytes: the exact bytes were checked already).
pub(super) fn formed_opens(
    c: &crate::record::PromptCommitment,
    prompt: &[u8],
    salt: &Salt,
) -> bool {
    let formed = crate::prompt::disclosed(&c.format, prompt);
    formed.as_ref() != prompt && c.check(&formed, salt)
}
