//! What a verification returns: one result per step, or why the input could not be read.

use std::fmt;

use provenance::verdict::Status;
use serde::Serialize;

/// The checks, in the order they run. The names are stable (they appear in `--json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepName {
    /// The attestation event: id, BIP-340 signature, kind, content.
    Event,
    /// The certificate chain (SEV-SNP: ARK, ASK, VCEK and its validity period) or the quote's
    /// PCK chain and collateral (TDX: signatures, CRLs, validity at `now`).
    Chain,
    /// SEV-SNP: AMD's certificate revocation list, signed by the chain's ARK and current at
    /// `now`, lists neither the ASK nor the VCEK. Unknown when no CRL is given: a warning that
    /// does not keep the claim from being proven unless the policy requires a CRL
    /// ([`Outcome::warnings`]). TDX checks its CRLs within `chain`.
    Revocation,
    /// The report's signature by the VCEK (SEV-SNP); TDX checks it within `chain`.
    Signature,
    /// SEV-SNP: the VCEK's TCB levels against the report's; TDX: the platform's TCB status.
    Tcb,
    /// SEV-SNP: the VCEK's hardware id against the report's chip id.
    Chip,
    /// The guest policy: debugging off, no migration agent (SEV-SNP); TD not in debug (TDX).
    Policy,
    /// `report_data` equals SHA-512(domain || event key || nonce).
    Binding,
    /// The launch measurement (SEV-SNP) or MRTD and RTMRs (TDX) against the expected values.
    Measurement,
    /// The verifier's challenge nonce, or the age of the attestation event at `now`.
    Freshness,
}

impl StepName {
    /// The lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Chain => "chain",
            Self::Revocation => "revocation",
            Self::Signature => "signature",
            Self::Tcb => "tcb",
            Self::Chip => "chip",
            Self::Policy => "policy",
            Self::Binding => "binding",
            Self::Measurement => "measurement",
            Self::Freshness => "freshness",
        }
    }
}

impl fmt::Display for StepName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of one step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Which check.
    pub step: StepName,
    /// `proven` (checked and holds), `failed` (checked and does not hold) or `unknown` (could
    /// not be checked: an input is missing, or an earlier step failed).
    pub status: Status,
    /// One line saying what was compared, with the values.
    pub detail: String,
}

impl Step {
    /// An unknown `revocation` step: a warning, not a reason the claim is unproven (the
    /// verifier made it a failure instead when a CRL is required).
    pub fn is_warning(&self) -> bool {
        self.step == StepName::Revocation && self.status == Status::Unknown
    }
}

/// The results of every step of one verification.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// `sev-snp` or `tdx`.
    pub platform: &'static str,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

impl Outcome {
    pub(crate) fn new(platform: &'static str) -> Self {
        Self {
            platform,
            steps: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, step: StepName, status: Status, detail: impl Into<String>) {
        self.steps.push(Step {
            step,
            status,
            detail: detail.into(),
        });
    }

    pub(crate) fn proven(&mut self, step: StepName, detail: impl Into<String>) {
        self.push(step, Status::Proven, detail);
    }

    pub(crate) fn failed(&mut self, step: StepName, detail: impl Into<String>) {
        self.push(step, Status::Failed, detail);
    }

    pub(crate) fn unknown(&mut self, step: StepName, detail: impl Into<String>) {
        self.push(step, Status::Unknown, detail);
    }

    /// True when every step is proven, warnings aside ([`Self::warnings`]): only then is the
    /// TEE claim proven.
    pub fn is_proven(&self) -> bool {
        !self.steps.is_empty()
            && self
                .steps
                .iter()
                .all(|s| s.status == Status::Proven || s.is_warning())
    }

    /// The steps that were not checked without keeping the claim from being proven: the
    /// `revocation` step when no CRL was given and none was required. A proven claim says
    /// nothing about them, and every report of it names them.
    pub fn warnings(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| s.is_warning())
    }

    /// True when some step failed (the evidence was checked and does not hold).
    pub fn has_failed(&self) -> bool {
        self.steps.iter().any(|s| s.status == Status::Failed)
    }

    /// The first step that is not proven, warnings aside, if any.
    pub fn first_unproven(&self) -> Option<&Step> {
        self.steps
            .iter()
            .find(|s| s.status != Status::Proven && !s.is_warning())
    }

    /// The step to name when the claim is not proven: the first that failed, else the first
    /// that is unknown.
    pub fn deciding_step(&self) -> Option<&Step> {
        self.steps
            .iter()
            .find(|s| s.status == Status::Failed)
            .or_else(|| self.first_unproven())
    }

    /// The step named `name`, if it ran.
    pub fn step(&self, name: StepName) -> Option<&Step> {
        self.steps.iter().find(|s| s.step == name)
    }

    /// The overall status of the TEE claim: proven when every step is, failed when one
    /// failed, unknown otherwise.
    pub fn status(&self) -> Status {
        if self.is_proven() {
            Status::Proven
        } else if self.has_failed() {
            Status::Failed
        } else {
            Status::Unknown
        }
    }
}

/// Input that could not be read: the evidence was not checked at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{step}: {field}: {reason}")]
pub struct InputError {
    /// The step that needed the input.
    pub step: &'static str,
    /// The field or file part at fault, e.g. `report.version`.
    pub field: String,
    /// Why, in one line.
    pub reason: String,
}

impl InputError {
    pub(crate) fn new(
        step: &'static str,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        let reason: String = reason.into();
        Self {
            step,
            field: field.into(),
            // One line, whatever a dependency's message looks like.
            reason: reason.split_whitespace().collect::<Vec<_>>().join(" "),
        }
    }
}
