//! Attestation evidence (feature `attest`): TEE bundles checked against a record's
//! attestation references with `provenance-attest`.
//!
//! For each reference in a verified record, the bundle whose raw report or quote has the
//! referenced SHA-256 is verified ([`provenance_attest::verify`]) at the time the record was
//! signed (certificate and collateral validity, and freshness: the attestation event at most
//! the policy's maximum age before the record, and at most 300 s after it). The claim is
//! `attestation.evidence.proven` only when every step holds and the attestation event's key
//! is the record's author; `attestation.evidence.failed` names the first failed step;
//! otherwise it stays `attestation.evidence.unchecked`, naming the step that could not be
//! checked. SEV-SNP revocation is checked against the CRLs the bundle carries; without one
//! the claim can still be proven, but its detail names revocation as not checked (a warning)
//! and never among the proven steps.

use provenance::event::VerifiedRecord;
use provenance::record::AttestationRef;
use provenance::verdict::{Claim, Code};
use provenance_attest::{Bundle, Policy};

/// Bundles to check records' attestation references against, and the policy to check them
/// with (its `now` is replaced by each record's time).
#[derive(Clone, Debug)]
pub struct AttestationEvidence {
    /// Attestation bundles (or events wrapped as bundles).
    pub bundles: Vec<Bundle>,
    /// Roots, accepted measurements, guest policy, TCB statuses, maximum age.
    pub policy: Policy,
}

impl AttestationEvidence {
    /// One claim per attestation reference of the record.
    pub(crate) fn claims(&self, verified: &VerifiedRecord) -> Vec<Claim> {
        verified
            .record()
            .attestations
            .iter()
            .map(|r| self.claim(verified, r))
            .collect()
    }

    fn claim(&self, verified: &VerifiedRecord, r: &AttestationRef) -> Claim {
        let what = format!("{} evidence {}", r.kind, r.sha256);
        let Some(bundle) = self
            .bundles
            .iter()
            .find(|b| b.evidence_sha256() == Some(r.sha256))
        else {
            return Claim::new(
                Code::AttestationUnchecked,
                format!("{what} not checked: no --attestation bundle holds it"),
            );
        };
        let mut policy = self.policy.clone();
        policy.now = verified.created_at().as_secs();
        let outcome = match provenance_attest::verify(bundle, &policy) {
            Ok(o) => o,
            Err(e) => {
                return Claim::new(Code::AttestationFailed, format!("{what}: unusable: {e}"));
            }
        };
        if outcome.platform != r.kind {
            return Claim::new(
                Code::AttestationFailed,
                format!(
                    "{what}: the reference says {}, the evidence is {}",
                    r.kind, outcome.platform
                ),
            );
        }
        if let Some(s) = outcome.deciding_step() {
            let code = if outcome.has_failed() {
                Code::AttestationFailed
            } else {
                Code::AttestationUnchecked
            };
            return Claim::new(
                code,
                format!("{what}: {} {}: {}", s.step, s.status.as_str(), s.detail),
            );
        }
        // Every step holds, so the bundle holds a verified attestation event.
        let author = verified.author();
        let event = bundle
            .event
            .as_ref()
            .and_then(|e| e.get("pubkey"))
            .and_then(|k| k.as_str())
            .unwrap_or_default();
        if event != author.to_hex() {
            return Claim::new(
                Code::AttestationFailed,
                format!("{what}: binds key {event}, not the author {author}"),
            );
        }
        if let Some(uri) = &r.uri {
            let id = bundle
                .event
                .as_ref()
                .and_then(|e| e.get("id"))
                .and_then(|k| k.as_str())
                .unwrap_or_default();
            let named = uri
                .strip_prefix("nostr:")
                .and_then(|n| provenance::nip19::decode_note(n).ok())
                .map(|n| n.to_hex());
            if let Some(named) = named {
                if named != id {
                    return Claim::new(
                        Code::AttestationFailed,
                        format!(
                            "{what}: the reference names attestation event {named}, the bundle holds {id}"
                        ),
                    );
                }
            }
        }
        // Revocation without a CRL is a warning, not a proven step: the claim names it.
        let proven: Vec<&str> = outcome
            .steps
            .iter()
            .filter(|s| !s.is_warning())
            .map(|s| s.step.as_str())
            .collect();
        let warnings: String = outcome
            .warnings()
            .map(|s| format!("; warning: {} {}", s.step, s.detail))
            .collect();
        Claim::new(
            Code::AttestationProven,
            format!(
                "{what}: every step proven ({}); binds the author's key{warnings}",
                proven.join(", ")
            ),
        )
    }
}
