//! `provenance attest receipt`: a foreign signed response, checked with
//! `provenance_attest::receipt`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, anyhow};

use super::read;
use crate::output::{EXIT_FAILED, Out};

/// Check a foreign receipt (NEAR AI Cloud / Phala vllm-proxy style: `text` =
/// sha256(request):sha256(response), signed with ECDSA over EIP-191 or Ed25519) against the
/// request and response bytes. It proves who signed the hashes, not that the key is in a TEE
#[derive(clap::Args, Debug)]
pub(super) struct ReceiptArgs {
    /// The receipt, as the service's signature endpoint returns it (JSON; "-" for stdin)
    #[arg(value_name = "FILE")]
    receipt: PathBuf,
    /// The exact request body that was sent
    #[arg(long, value_name = "FILE")]
    request: Option<PathBuf>,
    /// The exact response body that was received (a stream with its last blank lines)
    #[arg(long, value_name = "FILE")]
    response: Option<PathBuf>,
    /// Print JSON Lines instead of text
    #[arg(long)]
    json: bool,
}

/// The largest request or response body read for a receipt.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

pub(super) fn receipt(a: ReceiptArgs) -> Result<ExitCode> {
    use provenance_attest::receipt::{self, MAX_RECEIPT_BYTES, Receipt};
    let input = a.receipt.display().to_string();
    let r = Receipt::from_json(&read(&a.receipt, MAX_RECEIPT_BYTES)?)
        .map_err(|e| anyhow!("{input}: {e}"))?;
    let request = a
        .request
        .as_deref()
        .map(|p| read(p, MAX_BODY_BYTES))
        .transpose()?;
    let response = a
        .response
        .as_deref()
        .map(|p| read(p, MAX_BODY_BYTES))
        .transpose()?;
    let check = receipt::check(&r, request.as_deref(), response.as_deref())
        .map_err(|e| anyhow!("{input}: {e}"))?;
    let mut out = Out::new(a.json);
    for s in &check.steps {
        out.message("step", s)?;
        out.line(&format!(
            "{:<8} {:<11} {}",
            s.status.as_str(),
            s.step,
            s.detail
        ))?;
    }
    out.message("receipt", &check)?;
    let who = format!("{} key {}", check.algo, check.key);
    out.line(&match check.deciding_step() {
        None => format!(
            "{input}: receipt proven: {who} signed these request and response hashes \
             (external evidence: not a TEE claim)"
        ),
        Some(s) => format!(
            "{input}: receipt not proven: {} {}: {}",
            s.step,
            s.status.as_str(),
            s.detail
        ),
    })?;
    Ok(if check.is_proven() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}
