//! `provenance attest`: TEE attestation of the signing key (`docs/attest.md`). Thin glue over
//! `provenance-attest`: read files (or fetch the attestation event from relays, `fetch`),
//! build the policy from flags, render the steps. Taking and packing evidence are in
//! `produce`, foreign receipts in `receipt`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use nostr::prelude::Timestamp;
use provenance::verdict::Status;
use provenance_attest::bundle::{Bundle, MAX_BUNDLE_BYTES, Platform};
use provenance_attest::crl::{Crl, MAX_CRL_BYTES};
use provenance_attest::snp::Roots;
use provenance_attest::{Policy, StepName};
use provenance_verify::AttestationEvidence;
use serde::Serialize;

use crate::input::{self, Source};
use crate::output::{EXIT_FAILED, Out};
use crate::sign::read_capped;

mod fetch;
mod produce;
mod receipt;

pub(crate) use produce::at_start;

/// TEE attestation of the signing key: take evidence, pack it, verify it offline
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    Verify(VerifyArgs),
    Bundle(produce::BundleArgs),
    Take(produce::TakeArgs),
    Receipt(receipt::ReceiptArgs),
}

/// Verify an attestation event or bundle: chain, revocation, signature, TCB, chip, policy,
/// binding, measurement, freshness. Exit 0 only when every step is proven (revocation not
/// checked, without --crl, is a warning unless --require-crl)
#[derive(clap::Args, Debug)]
struct VerifyArgs {
    /// An attestation event (kind 1989) or a bundle, as a JSON file ("-" for stdin); or a
    /// nevent1.../note1.../64-hex event id, fetched from relays
    #[arg(value_name = "EVENT|NEVENT|FILE")]
    input: String,
    /// Relay to fetch the attestation event from, besides the nevent's relay hints
    /// (repeatable)
    #[arg(long = "relay", value_name = "URL")]
    relays: Vec<String>,
    /// Seconds each relay has to answer
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    timeout: u64,
    /// SEV-SNP: an AMD certificate revocation list (DER or PEM, as AMD's KDS serves it at
    /// /vcek/v1/{Milan,Genoa,Turin}/crl), checked against the chain's ARK (repeatable)
    #[arg(long, value_name = "FILE")]
    crl: Vec<PathBuf>,
    /// SEV-SNP: fail the revocation step when no CRL of the chain's ARK is given (by --crl
    /// or in the bundle)
    #[arg(long)]
    require_crl: bool,
    /// SEV-SNP: the VCEK certificate (DER), when the evidence does not carry it
    #[arg(long, value_name = "FILE")]
    vcek: Option<PathBuf>,
    /// TDX: the collateral (JSON), when the evidence does not carry it
    #[arg(long, value_name = "FILE")]
    collateral: Option<PathBuf>,
    /// An accepted launch measurement (SEV-SNP) or MRTD (TDX), hex; repeat for several
    #[arg(long, value_name = "HEX")]
    measurement: Vec<String>,
    /// TDX: an RTMR value that must hold, as N=HEX (N from 0 to 3); repeat for several
    #[arg(long, value_name = "N=HEX")]
    rtmr: Vec<String>,
    /// The verifier's challenge: the evidence's nonce must be it (hex, 32 bytes)
    #[arg(long, value_name = "HEX")]
    challenge: Option<String>,
    /// The oldest attestation event accepted, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 86_400)]
    max_age: u64,
    /// The time of the check, Unix seconds [default: now]
    #[arg(long, value_name = "UNIX")]
    now: Option<u64>,
    /// SEV-SNP: trust this ARK (PEM) instead of AMD's roots (with --snp-ask)
    #[arg(long, value_name = "FILE", requires = "snp_ask")]
    snp_root: Option<PathBuf>,
    /// SEV-SNP: the ASK (PEM) under --snp-root
    #[arg(long, value_name = "FILE", requires = "snp_root")]
    snp_ask: Option<PathBuf>,
    /// Accept a guest that allows debugging (SEV-SNP policy, TDX attributes)
    #[arg(long)]
    allow_debug: bool,
    /// SEV-SNP: accept a guest that allows a migration agent
    #[arg(long)]
    allow_migration_agent: bool,
    /// TDX: an accepted TCB status besides UpToDate (e.g. SWHardeningNeeded); repeat for several
    #[arg(long, value_name = "STATUS")]
    accept_tcb: Vec<String>,
    /// Print JSON Lines instead of text
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        Command::Verify(a) => verify(a),
        Command::Bundle(a) => produce::bundle(a),
        Command::Take(a) => produce::take(a),
        Command::Receipt(a) => receipt::receipt(a),
    }
}

fn platform(s: &str) -> Result<Platform> {
    Platform::parse(s).ok_or_else(|| anyhow!("--platform {s:?}: sev-snp or tdx"))
}

fn read(path: &Path, cap: usize) -> Result<Vec<u8>> {
    read_capped(path, cap as u64).with_context(|| path.display().to_string())
}

fn read_text(path: &Path, cap: usize) -> Result<String> {
    String::from_utf8(read(path, cap)?).map_err(|_| anyhow!("{}: not UTF-8", path.display()))
}

/// A file that is an attestation event or a bundle, as a bundle.
fn read_bundle(path: &Path) -> Result<Bundle> {
    Bundle::read(&read(path, MAX_BUNDLE_BYTES)?).map_err(|e| anyhow!("{}: {e}", path.display()))
}

fn fill_in(b: &mut Bundle, vcek: Option<&Path>, collateral: Option<&Path>) -> Result<()> {
    if let Some(p) = vcek {
        b.vcek = Some(hex::encode(read(
            p,
            provenance_attest::bundle::MAX_CERT_BYTES,
        )?));
    }
    if let Some(p) = collateral {
        b.collateral = Some(read_text(
            p,
            provenance_attest::bundle::MAX_COLLATERAL_BYTES,
        )?);
    }
    Ok(())
}

#[derive(Serialize)]
struct Summary<'a> {
    input: String,
    platform: &'a str,
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    deciding_step: Option<StepName>,
    /// Steps not checked that do not keep the claim from being proven (revocation without a
    /// CRL).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<StepName>,
}

/// `--crl` files.
fn read_crls(paths: &[PathBuf]) -> Result<Vec<Crl>> {
    paths
        .iter()
        .map(|p| {
            // PEM is base64: a third larger than the DER cap, with line ends.
            Crl::parse(&read(p, MAX_CRL_BYTES * 2)?).map_err(|e| anyhow!("{}: {e}", p.display()))
        })
        .collect()
}

/// The bundle to verify, and how it is named: a file, or an event fetched from relays.
fn load(a: &VerifyArgs) -> Result<(Bundle, String)> {
    let trimmed = a.input.trim();
    let bare = trimmed.strip_prefix("nostr:").unwrap_or(trimmed);
    let remote_looking = trimmed.starts_with("nostr:")
        || bare.starts_with("nevent1")
        || bare.starts_with("note1")
        || input::redact(&a.input) != a.input;
    match input::classify(&a.input) {
        Ok(Source::Remote { id, author, relays }) => {
            let mut all = relays;
            all.extend(a.relays.iter().cloned());
            all.dedup();
            if all.is_empty() {
                bail!(
                    "{}: no relay to ask: the input has no relay hints; pass --relay URL",
                    a.input
                );
            }
            fetch::fetch(&a.input, id, author, &all, Duration::from_secs(a.timeout))
        }
        Err(message) if remote_looking => bail!("{}: {message}", input::redact(&a.input)),
        _ => {
            let path = PathBuf::from(&a.input);
            Ok((read_bundle(&path)?, a.input.clone()))
        }
    }
}

fn verify(a: VerifyArgs) -> Result<ExitCode> {
    let crls = read_crls(&a.crl)?;
    let (mut b, input) = load(&a)?;
    // Given on the command line, they replace what the bundle holds (not what the event
    // carries: an event's own VCEK or collateral is used first).
    fill_in(&mut b, a.vcek.as_deref(), a.collateral.as_deref())?;
    let now = match a.now {
        Some(n) => n,
        None => Timestamp::now().as_secs(),
    };
    let mut policy = Policy::new(now);
    policy.max_age = a.max_age;
    for m in &a.measurement {
        policy
            .expected
            .accept_measurement_hex(m)
            .map_err(|e| anyhow!("--measurement {m:?}: {e}"))?;
    }
    for r in &a.rtmr {
        policy
            .expected
            .require_rtmr(r)
            .map_err(|e| anyhow!("--rtmr {r:?}: {e}"))?;
    }
    if let Some(c) = &a.challenge {
        policy.challenge = Some(
            hex::decode(c.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| anyhow!("--challenge {c:?}: 32 bytes of hex"))?,
        );
    }
    if let (Some(ark), Some(ask)) = (&a.snp_root, &a.snp_ask) {
        let roots = Roots::from_pem(
            &ark.display().to_string(),
            &read(ark, 64 * 1024)?,
            &read(ask, 64 * 1024)?,
        )
        .map_err(|e| anyhow!("--snp-root: {e}"))?;
        policy.snp_roots = Some(roots);
    }
    policy.crls = crls;
    policy.require_crl = a.require_crl;
    policy.snp.allow_debug = a.allow_debug;
    policy.snp.allow_migration_agent = a.allow_migration_agent;
    policy.tdx.allow_debug = a.allow_debug;
    policy.tdx.accept_tcb.extend(a.accept_tcb.iter().cloned());

    let outcome = provenance_attest::verify(&b, &policy).map_err(|e| anyhow!("{input}: {e}"))?;
    let mut out = Out::new(a.json);
    for s in &outcome.steps {
        out.message("step", s)?;
        out.line(&format!(
            "{:<8} {:<11} {}",
            s.status.as_str(),
            s.step.as_str(),
            s.detail
        ))?;
    }
    let first = outcome.deciding_step();
    let warnings: Vec<StepName> = outcome.warnings().map(|s| s.step).collect();
    out.message(
        "summary",
        &Summary {
            input: input.clone(),
            platform: outcome.platform,
            status: outcome.status(),
            deciding_step: first.map(|s| s.step),
            warnings: warnings.clone(),
        },
    )?;
    let verdict = match first {
        None if warnings.is_empty() => {
            format!("{input}: TEE claim proven ({})", outcome.platform)
        }
        None => format!(
            "{input}: TEE claim proven ({}); warning: {} not checked",
            outcome.platform,
            warnings
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(s) => format!(
            "{input}: TEE claim not proven ({}): {} {}: {}",
            outcome.platform,
            s.step.as_str(),
            s.status.as_str(),
            s.detail
        ),
    };
    out.line(&verdict)?;
    Ok(if outcome.is_proven() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

/// `provenance verify --attestation`: the bundles and the policy to check records'
/// attestation references with.
pub(crate) fn evidence(
    files: &[PathBuf],
    measurements: &[String],
    max_age: u64,
    snp_root: Option<(&Path, &Path)>,
) -> Result<AttestationEvidence> {
    let bundles = files
        .iter()
        .map(|p| read_bundle(p).with_context(|| "--attestation".to_owned()))
        .collect::<Result<Vec<_>>>()?;
    // `now` is each record's time (set by the check).
    let mut policy = Policy::new(0);
    policy.max_age = max_age;
    for m in measurements {
        policy
            .expected
            .accept_measurement_hex(m)
            .map_err(|e| anyhow!("--attest-measurement {m:?}: {e}"))?;
    }
    if let Some((ark, ask)) = snp_root {
        policy.snp_roots = Some(
            Roots::from_pem(
                &ark.display().to_string(),
                &read(ark, 64 * 1024)?,
                &read(ask, 64 * 1024)?,
            )
            .map_err(|e| anyhow!("--attest-snp-root: {e}"))?,
        );
    }
    Ok(AttestationEvidence { bundles, policy })
}
