//! Evidence: what a verifier holds besides the event, checked against every verified record.
//!
//! Each piece adds one claim to a record that passed the structural checks: the output bytes
//! ([`Evidence::output`]), a disclosed prompt and its salt ([`PromptEvidence`]), the weights
//! ([`ModelEvidence`]) and a trust list of signers ([`Evidence::trusted`]). Every check runs
//! on the record as the structural checks alone verified it.
//!
//! Replay ([`ReplayEvidence`]: re-running a generation on the recorded engine) is one more:
//! a record with a `replay` section always gets a `generation.replay.*` claim, `unknown` when
//! no engine was given. Attestation (TEE evidence binding the signing key, feature `attest`) is
//! a field of [`Evidence`] too: one claim per attestation reference of the record
//! (`crate::attest`), so every path that verifies (files, relays, labels, and through the same
//! [`Verdict`](crate::Verdict)) reports it without further wiring.

use std::path::PathBuf;

use provenance::commitment::Salt;
use provenance::event::{Verification, VerifiedRecord};
use provenance::verdict::{Claim, Code};
use provenance_gguf::resolve::{self, IdentifyError, StoreDirs};
use provenance_gguf::{Cache, ModelIdentity};
use provenance_replay::{EngineChoice, Inputs, Outcome};

use crate::trust::TrustList;

/// Most differing tensors named in a claim's detail.
pub const MAX_TENSORS_NAMED: usize = 20;

/// Evidence to check every verified record against. Empty by default: only the event's own
/// claims are reported.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Evidence {
    /// The output bytes the record should describe.
    pub output: Option<Vec<u8>>,
    /// A disclosed prompt and its salt.
    pub prompt: Option<PromptEvidence>,
    /// The weights the record's digests should name.
    pub model: Option<ModelEvidence>,
    /// Signers to trust.
    pub trusted: Option<TrustList>,
    /// An engine to replay generations on (needs [`Evidence::prompt`]).
    pub replay: Option<ReplayEvidence>,
    /// TEE attestation bundles for the records' attestation references (feature `attest`).
    #[cfg(feature = "attest")]
    pub attestation: Option<crate::attest::AttestationEvidence>,
}

/// What replaying a record's generation needs besides the disclosed prompt and salt.
#[derive(Clone, Debug)]
pub struct ReplayEvidence {
    /// The weights file to start the engine with.
    pub model: PathBuf,
    /// The engine: a `llama-server` binary started with the recorded settings.
    pub engine: EngineChoice,
}

/// A disclosed prompt, to check against the record's commitment.
#[derive(Clone, Debug)]
pub struct PromptEvidence {
    /// The prompt bytes.
    pub prompt: Vec<u8>,
    /// The salt disclosed with it.
    pub salt: Salt,
}

/// Weights, hashed once, to check the record's digests against.
#[derive(Clone, Debug)]
pub struct ModelEvidence {
    /// How the weights were named (a path, `ollama:NAME`).
    pub input: String,
    /// Their digests.
    pub identity: ModelIdentity,
    /// Weights that have the recorded digests, to name the tensors that differ.
    pub reference: Option<ReferenceModel>,
}

/// A reference model and the tensors in which the checked weights differ from it.
#[derive(Clone, Debug)]
pub struct ReferenceModel {
    /// How the reference was named.
    pub input: String,
    /// Its digests.
    pub identity: ModelIdentity,
    /// The names of the tensors that differ.
    pub differing: Vec<String>,
}

impl Evidence {
    /// Adds one claim per piece of evidence to a verification whose record verified; a
    /// verification without a verified record is left as it is.
    pub fn check(&self, verification: &mut Verification) {
        let Some(verified) = verification.verified() else {
            return;
        };
        let mut claims = Vec::new();
        if let Some(output) = &self.output {
            claims.push(verified.check_output(output));
        }
        if let Some(PromptEvidence { prompt, salt }) = &self.prompt {
            claims.push(verified.check_prompt(prompt, salt));
        }
        if let Some(model) = &self.model {
            claims.push(model.check(verified));
        }
        if verified.record().replay.is_some() {
            claims.push(self.replay_claim(verified));
        }
        if let Some(trusted) = &self.trusted {
            let mut claim = verified.check_signer(trusted.keys());
            if let Some(name) = trusted.name_detail(&verified.author()) {
                claim.detail = format!("{} {name}", claim.detail);
            }
            claims.push(claim);
        }
        // One claim per attestation reference: the first replaces the structural
        // `attestation.evidence.unchecked` claims, the others are added beside it.
        #[cfg(feature = "attest")]
        let attested = match &self.attestation {
            Some(a) => a.claims(verified),
            None => Vec::new(),
        };
        // Every check ran on the record as verified by the structural checks alone, as
        // before any evidence claim was added.
        for claim in claims {
            verification.add_evidence(claim);
        }
        #[cfg(feature = "attest")]
        for (i, claim) in attested.into_iter().enumerate() {
            if i == 0 {
                verification.add_evidence(claim);
            } else {
                verification.add_claim(claim);
            }
        }
    }
}

impl Evidence {
    /// The replay claim of a record with a `replay` section: `unknown` without an engine,
    /// otherwise the outcome of [`provenance_replay::replay`] on the recorded engine binary
    /// (another binary is refused, never replayed as if it were the recorded one).
    fn replay_claim(&self, verified: &VerifiedRecord) -> Claim {
        let (Some(replay), Some(prompt)) = (&self.replay, &self.prompt) else {
            return Claim::new(
                Code::GenerationReplayUnknown,
                "not replayed here; run provenance replay or verify --llama-server",
            );
        };
        let inputs = Inputs {
            record: verified.record(),
            prompt: &prompt.prompt,
            salt: &prompt.salt,
            model: &replay.model,
            engine: replay.engine.clone(),
            allow_other_engine: false,
        };
        match provenance_replay::replay(&inputs) {
            Err(refusal) => Claim::new(
                Code::GenerationReplayRefused,
                format!("not replayed: {refusal}"),
            ),
            Ok(report) => {
                let engine = report
                    .engine
                    .binary_sha256
                    .map_or_else(String::new, |sha| format!(" (engine sha256 {sha})"));
                match &report.outcome {
                    Outcome::Match => Claim::new(
                        Code::GenerationReplayMatch,
                        format!(
                            "replayed here: {} output token ids identical{engine}",
                            report.replayed_tokens
                        ),
                    ),
                    Outcome::Diverged(d) => {
                        let token = |t: &provenance_replay::Token| {
                            format!("{} {:?}", t.id, t.text.as_deref().unwrap_or("?"))
                        };
                        let mut detail = format!("replayed here and diverged: {}", d.reason);
                        if let Some(position) = d.position {
                            detail.push_str(&format!(
                                "; position {position}, recorded {}, replayed {}",
                                d.recorded.as_ref().map_or("none".into(), token),
                                d.replayed.as_ref().map_or("none".into(), token),
                            ));
                        }
                        detail.push_str(&engine);
                        Claim::new(Code::GenerationReplayDiverged, detail)
                    }
                }
            }
        }
    }
}

impl ModelEvidence {
    /// Hashes `model` (and `reference`) once, through `cache` when given: resolve, hash and
    /// check the store's digest ([`resolve::identify`]), then compare tensor by tensor.
    /// `before_hashing` is told each name that resolved, before its hashing starts.
    ///
    /// # Errors
    ///
    /// Either name does not resolve or cannot be hashed; the error says which.
    pub fn identify(
        model: &str,
        reference: Option<&str>,
        dirs: &StoreDirs,
        cache: Option<&Cache>,
        before_hashing: &mut dyn FnMut(&str),
    ) -> Result<Self, ModelError> {
        let mut identify = |input: &str, flag: &'static str| {
            resolve::identify(input, dirs, cache, &mut |_| before_hashing(input))
                .map(|(_, identity)| identity)
                .map_err(|error| ModelError {
                    flag,
                    input: input.to_owned(),
                    error: Box::new(error),
                })
        };
        let identity = identify(model, "--model")?;
        let reference = match reference {
            Some(name) => {
                let reference = identify(name, "--reference-model")?;
                let differing = reference
                    .compare(&identity)
                    .iter()
                    .map(|d| d.name().to_owned())
                    .collect();
                Some(ReferenceModel {
                    input: name.to_owned(),
                    identity: reference,
                    differing,
                })
            }
            None => None,
        };
        Ok(Self {
            input: model.to_owned(),
            identity,
            reference,
        })
    }

    /// The record's digests against the weights; on a mismatch, the tensors that differ
    /// from a reference model that has the recorded digests.
    pub fn check(&self, verified: &VerifiedRecord) -> Claim {
        let id = &self.identity;
        let mut claim =
            verified.check_model(Some(&id.sha256), Some(&id.blake3), Some(&id.tensor_root));
        claim.detail = format!("{} ({}: {})", claim.detail, self.input, id.sha256);
        if claim.code != Code::ModelDigestMismatch {
            return claim;
        }
        let note = match &self.reference {
            None => {
                "; pass --reference-model with the recorded weights to name the differing tensors"
                    .to_owned()
            }
            Some(reference) => reference.note(verified),
        };
        claim.detail.push_str(&note);
        claim
    }
}

impl ReferenceModel {
    /// What the reference says about a mismatch.
    fn note(&self, verified: &VerifiedRecord) -> String {
        let Self {
            input: name,
            identity: reference,
            differing,
        } = self;
        let reference_matches = verified
            .check_model(
                Some(&reference.sha256),
                Some(&reference.blake3),
                Some(&reference.tensor_root),
            )
            .code
            == Code::ModelDigestMatch;
        if !reference_matches {
            return format!(
                "; the reference {name} does not have the recorded digests either, so the differing tensors cannot be named"
            );
        }
        if differing.is_empty() {
            return format!(
                "; every tensor equals the reference {name}'s (only metadata or layout differ)"
            );
        }
        let mut named: Vec<&str> = differing
            .iter()
            .take(MAX_TENSORS_NAMED)
            .map(String::as_str)
            .collect();
        let more = differing.len().saturating_sub(MAX_TENSORS_NAMED);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        named.sort_unstable();
        format!(
            "; {} tensor{} differ from the reference {name}, which has the recorded digests: {}{more}",
            differing.len(),
            if differing.len() == 1 { "" } else { "s" },
            named.join(", ")
        )
    }
}

/// Why weights given as evidence could not be identified. It displays as the flag and the
/// name; the cause is its [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[error("{flag} {input}")]
pub struct ModelError {
    /// The flag that named them (`--model`, `--reference-model`).
    pub flag: &'static str,
    /// The name given.
    pub input: String,
    /// Why.
    #[source]
    pub error: Box<IdentifyError>,
}
