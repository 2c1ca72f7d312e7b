//! One verification: an attestation event (or bare evidence) from a bundle, against the
//! verifier's policy, every input handed in.

use provenance::verdict::Status;

use crate::binding;
use crate::bundle::{Bundle, Evidence, Platform};
use crate::event::{self, CheckedEvent};
use crate::outcome::{InputError, Outcome, StepName};

/// The measurements the verifier accepts (its allow-list).
#[derive(Clone, Debug, Default)]
pub struct Expected {
    /// SEV-SNP: accepted launch measurements; TDX: accepted MRTD values. Empty: the
    /// measurement step is unknown and the claim cannot be proven.
    pub measurements: Vec<[u8; 48]>,
    /// TDX: RTMR 0 to 3 values that must hold, where given.
    pub rtmr: [Option<[u8; 48]>; 4],
}

impl Expected {
    /// Accepts the launch measurement (SEV-SNP) or MRTD (TDX) written as 96 hex digits.
    pub fn accept_measurement_hex(&mut self, hex: &str) -> Result<(), &'static str> {
        self.measurements.push(hex48(hex)?);
        Ok(())
    }

    /// Requires an RTMR value, written `N=HEX` (N from 0 to 3, 96 hex digits).
    pub fn require_rtmr(&mut self, spec: &str) -> Result<(), &'static str> {
        let (n, hex) = spec.split_once('=').ok_or("N=HEX")?;
        let i: usize = n.parse().ok().filter(|i| *i < 4).ok_or("N is 0 to 3")?;
        self.rtmr[i] = Some(hex48(hex)?);
        Ok(())
    }
}

fn hex48(hex: &str) -> Result<[u8; 48], &'static str> {
    hex::decode(hex.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("48 bytes of hex (96 digits)")
}

/// Everything a verification depends on besides the evidence.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The time of the check, Unix seconds (certificate and collateral validity, freshness).
    pub now: u64,
    /// The oldest attestation event accepted, in seconds before `now`.
    pub max_age: u64,
    /// The verifier's challenge: when set, the event's nonce must be it.
    pub challenge: Option<binding::Nonce>,
    /// The measurements accepted.
    pub expected: Expected,
    /// SEV-SNP trusted roots; `None`: AMD's Milan, Genoa and Turin roots.
    #[cfg(feature = "sev-snp")]
    pub snp_roots: Option<crate::snp::Roots>,
    /// SEV-SNP guest policy accepted.
    #[cfg(feature = "sev-snp")]
    pub snp: crate::snp::GuestPolicy,
    /// SEV-SNP: AMD certificate revocation lists, besides those a bundle carries; those
    /// issued by the chain's ARK are checked in the `revocation` step.
    #[cfg(feature = "sev-snp")]
    pub crls: Vec<crate::crl::Crl>,
    /// SEV-SNP: fail the `revocation` step when no CRL of the chain's ARK is given (otherwise
    /// it is unknown, a warning that does not keep the claim from being proven).
    #[cfg(feature = "sev-snp")]
    pub require_crl: bool,
    /// TDX TCB statuses and attributes accepted.
    #[cfg(feature = "tdx")]
    pub tdx: crate::tdx::TdPolicy,
}

/// How far in the future (by `now`) an attestation event's time may lie: clock skew.
pub const MAX_SKEW_SECS: u64 = 300;

impl Policy {
    /// A policy at `now` with defaults: AMD roots, debugging and migration agents refused,
    /// TDX TCB `UpToDate` only, events up to a day old, no expected measurement, no CRL given
    /// nor required.
    pub fn new(now: u64) -> Self {
        Self {
            now,
            max_age: 24 * 3600,
            challenge: None,
            expected: Expected::default(),
            #[cfg(feature = "sev-snp")]
            snp_roots: None,
            #[cfg(feature = "sev-snp")]
            snp: crate::snp::GuestPolicy::default(),
            #[cfg(feature = "sev-snp")]
            crls: Vec::new(),
            #[cfg(feature = "sev-snp")]
            require_crl: false,
            #[cfg(feature = "tdx")]
            tdx: crate::tdx::TdPolicy::default(),
        }
    }
}

/// Verifies a bundle. Unusable input is an [`InputError`]; otherwise every step's result is
/// in the [`Outcome`].
pub fn verify(bundle: &Bundle, policy: &Policy) -> Result<Outcome, InputError> {
    let mut checked: Option<CheckedEvent> = None;
    let mut evidence: Evidence;
    let mut event_failure = None;
    if let Some(json) = &bundle.event {
        let text = serde_json::to_string(json)
            .map_err(|e| InputError::new("event", "event", e.to_string()))?;
        match event::check_json(&text)? {
            Ok(c) => {
                evidence = c.evidence.clone();
                checked = Some(c);
            }
            Err(f) => {
                // The content is read only to name the platform; nothing in it is trusted.
                let platform = json
                    .get("content")
                    .and_then(|c| c.as_str())
                    .and_then(|c| serde_json::from_str::<Evidence>(c).ok())
                    .map_or("unknown", |e| e.platform.as_str());
                event_failure = Some((f, platform));
                evidence = Evidence::new(Platform::SevSnp, &[], &[0; 32]);
            }
        }
    } else if let Some(e) = &bundle.evidence {
        e.check()?;
        evidence = e.clone();
    } else {
        return Err(InputError::new(
            "input",
            "bundle",
            "holds neither an event nor evidence",
        ));
    }
    if let Some((f, platform)) = event_failure {
        let mut out = Outcome::new(platform);
        out.failed(StepName::Event, format!("attestation event: {f}"));
        for s in [
            StepName::Chain,
            StepName::Binding,
            StepName::Measurement,
            StepName::Freshness,
        ] {
            out.unknown(s, "not checked: the attestation event failed");
        }
        return Ok(out);
    }
    if evidence.vcek.is_none() {
        evidence.vcek.clone_from(&bundle.vcek);
    }
    if evidence.collateral.is_none() {
        evidence.collateral.clone_from(&bundle.collateral);
    }
    evidence.check()?;
    let raw = evidence.raw()?;
    let nonce = evidence.nonce()?;
    let mut out = Outcome::new(evidence.platform.as_str());
    match &checked {
        Some(c) => out.proven(
            StepName::Event,
            format!(
                "attestation event {} by {}: id, signature, kind {} and tags hold",
                c.event.id,
                c.event.pubkey,
                event::KIND
            ),
        ),
        None => out.unknown(
            StepName::Event,
            "bare evidence: no signed attestation event",
        ),
    }
    let (report_data, measured) = match evidence.platform {
        #[cfg(feature = "sev-snp")]
        Platform::SevSnp => {
            let report = crate::snp::Report::parse(&raw)?;
            let vcek = evidence
                .vcek_der()?
                .map(|der| crate::snp::Vcek::from_der(&der))
                .transpose()?;
            let amd;
            let roots = match &policy.snp_roots {
                Some(r) => r,
                None => {
                    amd = crate::snp::Roots::amd()?;
                    &amd
                }
            };
            let mut crls = bundle.crls()?;
            crls.extend(policy.crls.iter().cloned());
            crate::snp::check(
                &report,
                vcek.as_ref(),
                roots,
                policy.now,
                policy.snp,
                crate::snp::Revocation {
                    crls: &crls,
                    require: policy.require_crl,
                },
                &mut out,
            );
            let m = report.measurement();
            let status = measurement_status(&policy.expected.measurements, &m);
            let detail = match status {
                Status::Proven => format!("launch measurement {} is expected", hex::encode(m)),
                Status::Failed => format!(
                    "report.measurement: {} is not among the {} expected",
                    hex::encode(m),
                    policy.expected.measurements.len()
                ),
                _ => format!(
                    "launch measurement {}: no expected value given (--measurement)",
                    hex::encode(m)
                ),
            };
            (report.report_data(), (status, detail))
        }
        #[cfg(feature = "tdx")]
        Platform::Tdx => {
            let td = crate::tdx::parse_quote(&raw)?;
            let collateral = evidence
                .collateral
                .as_deref()
                .map(crate::tdx::parse_collateral)
                .transpose()?;
            crate::tdx::check(
                &raw,
                &td,
                collateral.as_ref(),
                policy.now,
                &policy.tdx,
                &mut out,
            );
            (td.report_data, tdx_measurement(&td, &policy.expected))
        }
        #[allow(unreachable_patterns)]
        other => {
            return Err(InputError::new(
                "input",
                "platform",
                format!("{} support is not built in", other.as_str()),
            ));
        }
    };
    match &checked {
        Some(c) => {
            let key = c.event.pubkey.to_bytes();
            let want = binding::report_data(&key, &nonce);
            if want == report_data {
                out.proven(
                    StepName::Binding,
                    format!(
                        "report_data is SHA-512(domain || key {} || nonce {})",
                        c.event.pubkey,
                        hex::encode(nonce)
                    ),
                );
            } else {
                out.failed(
                    StepName::Binding,
                    format!(
                        "report.report_data: {} is not SHA-512(domain || key {} || nonce {}) = {}",
                        hex::encode(report_data),
                        c.event.pubkey,
                        hex::encode(nonce),
                        hex::encode(want)
                    ),
                );
            }
        }
        None => out.unknown(
            StepName::Binding,
            "bare evidence: no signed event names a key",
        ),
    }
    out.push(StepName::Measurement, measured.0, measured.1);
    freshness(checked.as_ref(), &nonce, policy, &mut out);
    Ok(out)
}

fn measurement_status(accepted: &[[u8; 48]], m: &[u8; 48]) -> Status {
    if accepted.is_empty() {
        Status::Unknown
    } else if accepted.contains(m) {
        Status::Proven
    } else {
        Status::Failed
    }
}

#[cfg(feature = "tdx")]
fn tdx_measurement(td: &dcap_qvl::quote::TDReport10, expected: &Expected) -> (Status, String) {
    let rtmrs = [td.rt_mr0, td.rt_mr1, td.rt_mr2, td.rt_mr3];
    let status = measurement_status(&expected.measurements, &td.mr_td);
    if status == Status::Failed {
        return (
            status,
            format!(
                "report.mr_td: {} is not among the {} expected",
                hex::encode(td.mr_td),
                expected.measurements.len()
            ),
        );
    }
    for (i, want) in expected.rtmr.iter().enumerate() {
        if let Some(w) = want {
            if *w != rtmrs[i] {
                return (
                    Status::Failed,
                    format!(
                        "report.rtmr{i}: {} is not the expected {}",
                        hex::encode(rtmrs[i]),
                        hex::encode(w)
                    ),
                );
            }
        }
    }
    let given: Vec<String> = (0..4)
        .filter(|i| expected.rtmr[*i].is_some())
        .map(|i| format!("rtmr{i}"))
        .collect();
    if status == Status::Unknown {
        return (
            status,
            format!(
                "MRTD {}: no expected value given (--measurement)",
                hex::encode(td.mr_td)
            ),
        );
    }
    let also = if given.is_empty() {
        " (no RTMR expected)".to_owned()
    } else {
        format!(" and {} as expected", given.join(", "))
    };
    (
        Status::Proven,
        format!("MRTD {} is expected{also}", hex::encode(td.mr_td)),
    )
}

fn freshness(
    checked: Option<&CheckedEvent>,
    nonce: &binding::Nonce,
    policy: &Policy,
    out: &mut Outcome,
) {
    let Some(c) = checked else {
        out.unknown(
            StepName::Freshness,
            "bare evidence: no signed time or nonce",
        );
        return;
    };
    if let Some(ch) = &policy.challenge {
        if ch == nonce {
            out.proven(StepName::Freshness, "the nonce is the verifier's challenge");
        } else {
            out.failed(
                StepName::Freshness,
                format!(
                    "evidence.nonce: {} is not the challenge {}",
                    hex::encode(nonce),
                    hex::encode(ch)
                ),
            );
        }
        return;
    }
    let t = c.event.created_at.as_secs();
    if t > policy.now.saturating_add(MAX_SKEW_SECS) {
        out.failed(
            StepName::Freshness,
            format!(
                "event.created_at: {t} is {} s after now ({})",
                t - policy.now,
                policy.now
            ),
        );
    } else if policy.now.saturating_sub(t) > policy.max_age {
        out.failed(
            StepName::Freshness,
            format!(
                "event.created_at: {t} is {} s before now, over the maximum age of {} s",
                policy.now - t,
                policy.max_age
            ),
        );
    } else {
        out.proven(
            StepName::Freshness,
            format!(
                "taken at {t} (the bound key's own time), {} s before now, within {} s",
                policy.now.saturating_sub(t),
                policy.max_age
            ),
        );
    }
}
