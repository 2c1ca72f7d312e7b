//! `provenance attest`: TEE attestation of the signing key (`docs/attest.md`). Thin glue over
//! `provenance-attest`: read files, build the policy from flags, render the steps.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use nostr::prelude::Timestamp;
use provenance::verdict::Status;
use provenance_attest::bundle::{Bundle, Evidence, MAX_BUNDLE_BYTES, Platform};
use provenance_attest::configfs::{self, ConfigfsTsm};
use provenance_attest::snp::Roots;
use provenance_attest::{Policy, StepName};
use provenance_verify::AttestationEvidence;
use serde::Serialize;

use crate::keyfile;
use crate::output::{EXIT_FAILED, Out};
use crate::sign::read_capped;

/// TEE attestation of the signing key: take evidence, pack it, verify it offline
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    Verify(VerifyArgs),
    Bundle(BundleArgs),
    Take(TakeArgs),
    Receipt(ReceiptArgs),
}

/// Check a foreign receipt (NEAR AI Cloud / Phala vllm-proxy style: `text` =
/// sha256(request):sha256(response), signed with ECDSA over EIP-191 or Ed25519) against the
/// request and response bytes. It proves who signed the hashes, not that the key is in a TEE
#[derive(clap::Args, Debug)]
struct ReceiptArgs {
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

/// Verify an attestation event or bundle offline: chain, signature, TCB, chip, policy,
/// binding, measurement, freshness. Exit 0 only when every step is proven
#[derive(clap::Args, Debug)]
struct VerifyArgs {
    /// An attestation event (kind 1989) or a bundle, as a JSON file ("-" for stdin)
    #[arg(value_name = "EVENT|FILE")]
    input: PathBuf,
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

/// Pack an attestation event (or bare evidence) with its VCEK or collateral into one bundle
/// file that verifies offline in one step
#[derive(clap::Args, Debug)]
struct BundleArgs {
    /// The attestation event (JSON file, "-" for stdin)
    #[arg(long, value_name = "FILE", required_unless_present = "report")]
    event: Option<PathBuf>,
    /// Bare evidence instead of an event: a raw SEV-SNP report or TDX quote (binary, or hex)
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "event",
        requires = "platform"
    )]
    report: Option<PathBuf>,
    /// The platform of --report: sev-snp or tdx
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,
    /// SEV-SNP: the VCEK certificate (DER)
    #[arg(long, value_name = "FILE")]
    vcek: Option<PathBuf>,
    /// TDX: the collateral (JSON)
    #[arg(long, value_name = "FILE")]
    collateral: Option<PathBuf>,
    /// Where to write the bundle ("-" for stdout)
    #[arg(long, short, value_name = "FILE", default_value = "-")]
    output: PathBuf,
}

/// Inside a confidential VM: take a report binding the signing key through configfs-tsm, with
/// a fresh nonce, and print the signed attestation event
#[derive(clap::Args, Debug)]
struct TakeArgs {
    /// sev-snp or tdx
    #[arg(long, value_name = "PLATFORM")]
    platform: String,
    /// The configfs-tsm report directory
    #[arg(long, value_name = "DIR", default_value = configfs::DEFAULT_ROOT)]
    tsm: PathBuf,
    /// SEV-SNP: the VCEK certificate (DER) to carry in the event
    #[arg(long, value_name = "FILE")]
    vcek: Option<PathBuf>,
    /// TDX: the collateral (JSON) to carry in the event
    #[arg(long, value_name = "FILE")]
    collateral: Option<PathBuf>,
    /// Signing key file [default: $XDG_CONFIG_HOME/provenance/key.nsec]
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        Command::Verify(a) => verify(a),
        Command::Bundle(a) => bundle(a),
        Command::Take(a) => take(a),
        Command::Receipt(a) => receipt(a),
    }
}

/// The largest request or response body read for a receipt.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

fn receipt(a: ReceiptArgs) -> Result<ExitCode> {
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
    let bytes = read(path, MAX_BUNDLE_BYTES)?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow!("{}: input: not JSON: {e}", path.display()))?;
    if value.get("provenance_attest_bundle").is_some() {
        return Bundle::from_json(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()));
    }
    if value.get("sig").is_some() && value.get("kind").is_some() {
        return Ok(Bundle {
            provenance_attest_bundle: 1,
            event: Some(value),
            evidence: None,
            vcek: None,
            collateral: None,
        });
    }
    bail!(
        "{}: input: neither an attestation event nor a bundle",
        path.display()
    )
}

fn hex48(flag: &str, s: &str) -> Result<[u8; 48]> {
    hex::decode(s.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("{flag} {s:?}: 48 bytes of hex (96 digits)"))
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
}

fn verify(a: VerifyArgs) -> Result<ExitCode> {
    let mut b = read_bundle(&a.input)?;
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
            .measurements
            .push(hex48("--measurement", m)?);
    }
    for r in &a.rtmr {
        let (n, h) = r
            .split_once('=')
            .ok_or_else(|| anyhow!("--rtmr {r:?}: N=HEX"))?;
        let i: usize = n
            .parse()
            .ok()
            .filter(|i| *i < 4)
            .ok_or_else(|| anyhow!("--rtmr {r:?}: N is 0 to 3"))?;
        policy.expected.rtmr[i] = Some(hex48("--rtmr", h)?);
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
    policy.snp.allow_debug = a.allow_debug;
    policy.snp.allow_migration_agent = a.allow_migration_agent;
    policy.tdx.allow_debug = a.allow_debug;
    policy.tdx.accept_tcb.extend(a.accept_tcb.iter().cloned());

    let input = a.input.display().to_string();
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
    out.message(
        "summary",
        &Summary {
            input: input.clone(),
            platform: outcome.platform,
            status: outcome.status(),
            deciding_step: first.map(|s| s.step),
        },
    )?;
    let verdict = match first {
        None => format!("{input}: TEE claim proven ({})", outcome.platform),
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
            .measurements
            .push(hex48("--attest-measurement", m)?);
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

fn bundle(a: BundleArgs) -> Result<ExitCode> {
    let mut b = match (&a.event, &a.report) {
        (Some(p), _) => {
            let b = read_bundle(p)?;
            if b.event.is_none() {
                bail!("{}: --event: not an attestation event", p.display());
            }
            b
        }
        (None, Some(p)) => {
            let platform = platform(a.platform.as_deref().unwrap_or_default())?;
            let bytes = read(p, provenance_attest::bundle::MAX_QUOTE_BYTES * 2 + 2)?;
            // Hex text (the form `sev` ships its reports in) or raw bytes.
            let raw = std::str::from_utf8(&bytes)
                .ok()
                .and_then(|t| hex::decode(t.trim()).ok())
                .unwrap_or(bytes);
            // Bare evidence has no binding: its nonce is zero and is not checked.
            let ev = Evidence::new(platform, &raw, &[0; 32]);
            Bundle {
                provenance_attest_bundle: 1,
                event: None,
                evidence: Some(ev),
                vcek: None,
                collateral: None,
            }
        }
        (None, None) => bail!("pass --event FILE or --report FILE --platform PLATFORM"),
    };
    fill_in(&mut b, a.vcek.as_deref(), a.collateral.as_deref())?;
    // Refuse a bundle that would not even parse on the verifying side.
    let text = b.to_json();
    Bundle::from_json(text.as_bytes()).map_err(|e| anyhow!("bundle: {e}"))?;
    if let Some(ev) = &b.evidence {
        ev.check().map_err(|e| anyhow!("{e}"))?;
    }
    if a.output == Path::new("-") {
        Out::new(false).raw(text.trim_end())?;
    } else {
        std::fs::write(&a.output, text).with_context(|| a.output.display().to_string())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `provenance serve --attest`: takes evidence binding `keys` through configfs-tsm, writes
/// the attestation event to `out` and returns the reference every record carries.
pub(crate) fn at_start(
    platform_name: &str,
    tsm: &Path,
    vcek: Option<&Path>,
    collateral: Option<&Path>,
    keys: &nostr::prelude::Keys,
    out: &Path,
) -> Result<provenance::record::AttestationRef> {
    let platform = platform(platform_name).map_err(|e| anyhow!("--attest: {e}"))?;
    let vcek = vcek
        .map(|p| read(p, provenance_attest::bundle::MAX_CERT_BYTES))
        .transpose()?;
    let collateral = collateral
        .map(|p| read_text(p, provenance_attest::bundle::MAX_COLLATERAL_BYTES))
        .transpose()?;
    let src = ConfigfsTsm::new(tsm, platform, "provenance");
    let event = configfs::attest(
        &src,
        keys,
        Timestamp::now(),
        vcek.as_deref(),
        collateral.as_deref(),
    )
    .map_err(|e| anyhow!("--attest {}: {e}", tsm.display()))?;
    let checked = provenance_attest::event::check(event.clone())
        .map_err(|e| anyhow!("--attest: {e}"))?
        .map_err(|e| anyhow!("--attest: {e}"))?;
    std::fs::write(out, serde_json::to_string(&event)? + "\n")
        .with_context(|| format!("--attest-out {}", out.display()))?;
    Ok(provenance_attest::event::attestation_ref(&checked))
}

fn take(a: TakeArgs) -> Result<ExitCode> {
    let platform = platform(&a.platform)?;
    let key_path = match &a.key {
        Some(p) => p.clone(),
        None => keyfile::default_path()?,
    };
    let keys = keyfile::load(&key_path)?;
    let vcek = a
        .vcek
        .as_deref()
        .map(|p| read(p, provenance_attest::bundle::MAX_CERT_BYTES))
        .transpose()?;
    let collateral = a
        .collateral
        .as_deref()
        .map(|p| read_text(p, provenance_attest::bundle::MAX_COLLATERAL_BYTES))
        .transpose()?;
    let src = ConfigfsTsm::new(&a.tsm, platform, "provenance");
    let event = configfs::attest(
        &src,
        &keys,
        Timestamp::now(),
        vcek.as_deref(),
        collateral.as_deref(),
    )
    .map_err(|e| anyhow!("{}: {e}", a.tsm.display()))?;
    Out::new(false).raw(&serde_json::to_string(&event)?)?;
    Ok(ExitCode::SUCCESS)
}
