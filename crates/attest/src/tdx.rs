//! Intel TDX: quotes checked with `dcap-qvl` against collateral the caller supplies.
//!
//! `dcap-qvl` checks the PCK certificate chain to Intel's SGX root CA, the CRLs, the TCB info
//! and QE identity signatures and their validity at `now`, the QE report and the quote
//! signature, and gives the platform's TCB status. Here: the quote must be a TDX quote with no
//! bytes after it, the TCB status must be one the verifier accepts (only `UpToDate` unless
//! told otherwise), the TD must not be debuggable, and MRTD and the RTMRs must be the expected
//! values. Collateral and `now` are inputs; nothing is fetched.

use dcap_qvl::QuoteCollateralV3;
use dcap_qvl::configs::RingConfig;
use dcap_qvl::quote::{Quote, Report, TDReport10};
use dcap_qvl::verify::QuoteVerifier;
use parity_scale_codec::Decode;

use crate::bundle::MAX_QUOTE_BYTES;
use crate::outcome::{InputError, Outcome, StepName};

/// Parses a raw quote: a TDX quote (version 4 or 5) with nothing but zero padding after it.
pub fn parse_quote(raw: &[u8]) -> Result<TDReport10, InputError> {
    if raw.len() > MAX_QUOTE_BYTES {
        return Err(InputError::new(
            "input",
            "quote",
            format!("oversized: {} bytes, over {MAX_QUOTE_BYTES}", raw.len()),
        ));
    }
    let mut rest = raw;
    let quote = Quote::decode(&mut rest)
        .map_err(|e| InputError::new("input", "quote", format!("not a DCAP quote: {e}")))?;
    // Quotes read from a fixed-size buffer end in zero padding (the 5,006-byte sample quote of
    // `dcap-qvl` carries 70 zero bytes after its 4,936); anything else after the quote is refused.
    if rest.iter().any(|&b| b != 0) {
        return Err(InputError::new(
            "input",
            "quote",
            format!(
                "{} trailing bytes, not all zero padding, after the quote's {} bytes",
                rest.len(),
                raw.len() - rest.len()
            ),
        ));
    }
    td_report(&quote.report)
        .ok_or_else(|| InputError::new("input", "quote.header.tee_type", "an SGX quote, not TDX"))
}

fn td_report(report: &Report) -> Option<TDReport10> {
    match report {
        Report::SgxEnclave(_) => None,
        Report::TD10(r) => Some(*r),
        Report::TD15(r) => Some(r.base),
        Report::TD15Ex(r) => Some(r.base.base),
    }
}

/// Reads collateral JSON (`dcap-qvl`'s `QuoteCollateralV3`).
pub fn parse_collateral(json: &str) -> Result<QuoteCollateralV3, InputError> {
    serde_json::from_str(json)
        .map_err(|e| InputError::new("chain", "collateral", format!("not DCAP collateral: {e}")))
}

/// What the verifier accepts of a TD.
#[derive(Clone, Debug)]
pub struct TdPolicy {
    /// TCB statuses accepted (`UpToDate`, `SWHardeningNeeded`, `ConfigurationNeeded`,
    /// `ConfigurationAndSWHardeningNeeded`, `OutOfDate`, `OutOfDateConfigurationNeeded`).
    pub accept_tcb: Vec<String>,
    /// Accept a debuggable TD.
    pub allow_debug: bool,
}

impl Default for TdPolicy {
    fn default() -> Self {
        Self {
            accept_tcb: vec!["UpToDate".to_owned()],
            allow_debug: false,
        }
    }
}

/// Runs the platform steps (chain with signature, TCB status, policy) into `out`.
pub(crate) fn check(
    raw: &[u8],
    td: &TDReport10,
    collateral: Option<&QuoteCollateralV3>,
    now: u64,
    policy: &TdPolicy,
    out: &mut Outcome,
) {
    match collateral {
        None => {
            out.unknown(
                StepName::Chain,
                "no collateral given (--collateral, or in the bundle)",
            );
            out.unknown(StepName::Tcb, "not checked: no collateral");
        }
        Some(c) => {
            let verifier = QuoteVerifier::new_prod()
                .with_config::<RingConfig>()
                .allow_debug(true);
            match verifier.verify(raw, c, now) {
                Err(e) => {
                    out.failed(
                        StepName::Chain,
                        format!("quote or collateral at {now}: {e:#}"),
                    );
                    out.unknown(StepName::Tcb, "not checked: the chain failed");
                }
                Ok(v) => {
                    out.proven(
                        StepName::Chain,
                        format!(
                            "quote signed by a QE whose PCK chains to Intel's SGX root CA; collateral valid at {now}"
                        ),
                    );
                    let adv = if v.advisory_ids.is_empty() {
                        String::new()
                    } else {
                        format!(" (advisories {})", v.advisory_ids.join(", "))
                    };
                    if policy.accept_tcb.contains(&v.status) {
                        out.proven(StepName::Tcb, format!("TCB status {}{adv}", v.status));
                    } else {
                        out.failed(
                            StepName::Tcb,
                            format!(
                                "tcb.status: {}{adv}, not accepted (accepted: {})",
                                v.status,
                                policy.accept_tcb.join(", ")
                            ),
                        );
                    }
                }
            }
        }
    }
    let attrs = td.td_attributes;
    // TUD bits: 0 is DEBUG, 4 to 6 are the profiling and tracing bits that also expose the
    // TD to the host (dcap-qvl's own check, reported here as a policy step).
    let debug = attrs[0] & 0x01 != 0;
    let profiling = attrs[0] & 0x70 != 0;
    let says = format!(
        "td_attributes {}: debug {}, profiling {}",
        hex::encode(attrs),
        if debug { "on" } else { "off" },
        if profiling { "on" } else { "off" }
    );
    if (debug || profiling) && !policy.allow_debug {
        out.failed(
            StepName::Policy,
            format!(
                "report.td_attributes: {says}; a debuggable TD's memory is readable by the host"
            ),
        );
    } else {
        out.proven(StepName::Policy, says);
    }
}
