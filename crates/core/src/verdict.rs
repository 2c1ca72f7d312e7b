//! Verdicts: what a verification proved, what it merely read, and what it could not tell.
//!
//! Every check a verifier makes becomes a [`Claim`] with a stable machine-readable [`Code`]
//! and a [`Status`]:
//!
//! - **proven**: the verifier recomputed it from evidence it holds (the signature over the
//!   event id, a hash of output bytes it was given, a disclosed prompt that opens the
//!   commitment);
//! - **asserted**: the signer says so, and the signature binds the signer to having said it,
//!   but nothing the verifier holds confirms it (the model that ran, the sampling settings);
//! - **unknown**: nothing was checked (no evidence was given);
//! - **failed**: a check was made and did not hold.
//!
//! There is deliberately no verdict "authentic" or "AI-generated": a valid event proves that
//! a key holder published exactly this record, not that the record is true.
//!
//! Codes are stable strings in the spirit of C2PA's validation codes: three dot-separated
//! parts, `<subject>.<aspect>.<outcome>`, where the first two name what the claim is about.
//! Each code implies its status ([`Code::status`]); the full list is [`Code::ALL`] and
//! `schemas/codes.json`.

use std::fmt;

use serde::{Serialize, Serializer};

/// How much a claim is worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Recomputed by the verifier from evidence.
    Proven,
    /// Stated by the signer, not confirmed.
    Asserted,
    /// Not checked.
    Unknown,
    /// Checked, and it does not hold.
    Failed,
}

impl Status {
    /// The lowercase name: `proven`, `asserted`, `unknown`, `failed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Proven => "proven",
            Self::Asserted => "asserted",
            Self::Unknown => "unknown",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $text:literal => $status:ident, )*) => {
        /// A stable result code. The string form never changes once published.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// Every code, in declaration order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The stable string, e.g. `event.sig.valid`.
            pub const fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $text, )* }
            }

            /// The status this code stands for.
            pub const fn status(self) -> Status {
                match self { $( Code::$variant => Status::$status, )* }
            }
        }
    };
}

codes! {
    /// The event id equals the SHA-256 of its NIP-01 serialisation.
    EventIdMatch = "event.id.match" => Proven,
    /// The event id does not equal the SHA-256 of its NIP-01 serialisation.
    EventIdMismatch = "event.id.mismatch" => Failed,
    /// The BIP-340 signature is valid for the event id and the author's key.
    EventSigValid = "event.sig.valid" => Proven,
    /// The BIP-340 signature does not verify.
    EventSigInvalid = "event.sig.invalid" => Failed,
    /// The event is of the provenance kind.
    EventKindProvenance = "event.kind.provenance" => Proven,
    /// The event is of another kind.
    EventKindUnexpected = "event.kind.unexpected" => Failed,
    /// The event's indexing tags agree with its record.
    EventTagsConsistent = "event.tags.consistent" => Proven,
    /// A tag contradicts the record (or a required tag is missing).
    EventTagsInconsistent = "event.tags.inconsistent" => Failed,
    /// The event is the one that was asked for (its recomputed id is the requested id).
    EventIdRequested = "event.id.requested" => Proven,
    /// The event is not the one that was asked for.
    EventIdUnrequested = "event.id.unrequested" => Failed,
    /// The event's author is the one that was asked for.
    EventAuthorRequested = "event.author.requested" => Proven,
    /// The event's author is not the one that was asked for.
    EventAuthorUnrequested = "event.author.unrequested" => Failed,
    /// The content is a well-formed, canonical record of a supported version.
    RecordValid = "record.content.valid" => Proven,
    /// The content is not a well-formed record of a supported version.
    RecordInvalid = "record.content.invalid" => Failed,
    /// The content is a record but not in its canonical serialisation.
    RecordNoncanonical = "record.content.noncanonical" => Failed,
    /// The signer trusts list includes the author.
    SignerTrusted = "signer.trust.listed" => Proven,
    /// The author is not in the given trust list.
    SignerUntrusted = "signer.trust.unlisted" => Failed,
    /// No trust list was given: the author is merely whoever holds the key.
    SignerUnknown = "signer.trust.unknown" => Unknown,
    /// The output hashes are stated; no output bytes were given to check them.
    OutputAsserted = "output.hash.asserted" => Asserted,
    /// The given output bytes hash to the recorded SHA-256.
    OutputMatch = "output.hash.match" => Proven,
    /// The given output's normalised text matches the recorded normalised hash (the exact
    /// bytes differ: whitespace or Unicode composition changed).
    OutputNormalizedMatch = "output.hash.normalized" => Proven,
    /// The given output matches neither the exact nor the normalised hash.
    OutputMismatch = "output.hash.mismatch" => Failed,
    /// The record says the response was cut short; its hashes cover only what was served.
    OutputTruncated = "output.response.truncated" => Asserted,
    /// A prompt commitment is present; no prompt was disclosed to open it.
    PromptCommitted = "prompt.commitment.present" => Asserted,
    /// The record has no prompt commitment.
    PromptAbsent = "prompt.commitment.absent" => Unknown,
    /// The disclosed prompt and salt open the commitment.
    PromptMatch = "prompt.commitment.match" => Proven,
    /// The disclosed prompt and salt do not open the commitment.
    PromptMismatch = "prompt.commitment.mismatch" => Failed,
    /// The model identity is stated; the weights were not checked.
    ModelAsserted = "model.digest.asserted" => Asserted,
    /// The given weights file has the recorded digests.
    ModelDigestMatch = "model.digest.match" => Proven,
    /// The given weights file does not have the recorded digests.
    ModelDigestMismatch = "model.digest.mismatch" => Failed,
    /// The record names the model without any weights digest.
    ModelUnidentified = "model.digest.absent" => Unknown,
    /// Runtime and sampling settings are stated; no replay checked them.
    GenerationAsserted = "generation.settings.asserted" => Asserted,
    /// The generation was replayed here on the recorded engine binary with the recorded
    /// settings, and produced the recorded output token ids.
    GenerationReplayMatch = "generation.replay.match" => Proven,
    /// The generation was replayed here and produced other token ids (or another
    /// tokenisation of the prompt) than recorded.
    GenerationReplayDiverged = "generation.replay.diverged" => Failed,
    /// The record carries a replay section; the generation was not replayed here.
    GenerationReplayUnknown = "generation.replay.unknown" => Unknown,
    /// A replay was asked for but could not run as recorded (a missing value, another engine
    /// binary, weights with other digests, an engine that did not start).
    GenerationReplayRefused = "generation.replay.refused" => Unknown,
    /// The record references attestation evidence that was not checked, or was checked and
    /// could not be proven (a step unknown: no VCEK, collateral or expected measurement).
    AttestationUnchecked = "attestation.evidence.unchecked" => Unknown,
    /// The referenced TEE evidence was checked here (`provenance-attest`): chain, signature,
    /// TCB, chip, guest policy, binding of the event's author key, measurement and freshness
    /// all hold.
    AttestationProven = "attestation.evidence.proven" => Proven,
    /// The referenced TEE evidence was checked here and a step does not hold (or it binds
    /// another key than the event's author).
    AttestationFailed = "attestation.evidence.failed" => Failed,
    /// A labeller on the trusted-labellers list published a NIP-32 audit label about the
    /// event (kind 1985, namespace `provenance.audit`). A third party says so; the verifier
    /// did not check it.
    LabelTrusted = "label.audit.trusted" => Asserted,
    /// A labeller not on the trusted-labellers list (or no list was given) published an
    /// audit label about the event. Informational only.
    LabelUntrusted = "label.audit.untrusted" => Unknown,
    /// A label event about this event was unusable (bad id or signature, wrong shape) and
    /// was ignored. Says nothing about the event itself.
    LabelInvalid = "label.event.invalid" => Unknown,
    /// Audit labels saying that parties other than the event's author replayed the
    /// generation (`replay.match`, `replay.mismatch`), counted by distinct labeller. Third
    /// parties say so; the verifier did not replay it.
    LabelReplayCount = "label.replay.independent" => Unknown,
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One checked (or unchecked) statement about an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Claim {
    /// The result code.
    pub code: Code,
    /// The status the code stands for.
    pub status: Status,
    /// A human-readable detail: what was compared, expected vs found.
    pub detail: String,
}

impl Claim {
    /// A claim with the given code and detail.
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        Self {
            code,
            status: code.status(),
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_dotted_lowercase() {
        let mut seen = std::collections::BTreeSet::new();
        for code in Code::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(
                s.split('.').count() == 3
                    && s.chars()
                        .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'),
                "{s}"
            );
        }
    }

    #[test]
    fn every_status_is_reachable() {
        for status in [
            Status::Proven,
            Status::Asserted,
            Status::Unknown,
            Status::Failed,
        ] {
            assert!(Code::ALL.iter().any(|c| c.status() == status), "{status}");
        }
    }
}
