//! `provenance attest bundle` and `take`, and the evidence `provenance serve --attest` takes
//! at start-up.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use nostr::prelude::Timestamp;
use provenance_attest::bundle::{Bundle, Platform};
use provenance_attest::configfs::{self, ConfigfsTsm};

use super::{fill_in, platform, read, read_bundle, read_crls, read_text};
use crate::keyfile;
use crate::output::Out;

/// Pack an attestation event (or bare evidence) with its VCEK or collateral into one bundle
/// file that verifies offline in one step
#[derive(clap::Args, Debug)]
pub(super) struct BundleArgs {
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
    /// SEV-SNP: an AMD certificate revocation list (DER or PEM) to carry, so that revocation
    /// is checked offline too (repeatable)
    #[arg(long, value_name = "FILE")]
    crl: Vec<PathBuf>,
    /// Where to write the bundle ("-" for stdout)
    #[arg(long, short, value_name = "FILE", default_value = "-")]
    output: PathBuf,
}

/// Inside a confidential VM: take a report binding the signing key through configfs-tsm, with
/// a fresh nonce, and print the signed attestation event
#[derive(clap::Args, Debug)]
pub(super) struct TakeArgs {
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

pub(super) fn bundle(a: BundleArgs) -> Result<ExitCode> {
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
            // Raw, or hex text: twice the bytes and a newline.
            let bytes = read(p, provenance_attest::bundle::MAX_QUOTE_BYTES * 2 + 2)?;
            Bundle::bare(platform, &bytes)
        }
        (None, None) => bail!("pass --event FILE or --report FILE --platform PLATFORM"),
    };
    fill_in(&mut b, a.vcek.as_deref(), a.collateral.as_deref())?;
    b.crls
        .extend(read_crls(&a.crl)?.iter().map(|c| hex::encode(c.der())));
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
    let event =
        take_event(platform, tsm, vcek, collateral, keys).map_err(|e| anyhow!("--attest {e}"))?;
    let checked = provenance_attest::event::check(event.clone())
        .map_err(|e| anyhow!("--attest: {e}"))?
        .map_err(|e| anyhow!("--attest: {e}"))?;
    std::fs::write(out, serde_json::to_string(&event)? + "\n")
        .with_context(|| format!("--attest-out {}", out.display()))?;
    Ok(provenance_attest::event::attestation_ref(&checked))
}

/// Takes evidence binding `keys` through the configfs-tsm directory `tsm` (with the VCEK or
/// collateral files to carry) and signs the attestation event.
fn take_event(
    platform: Platform,
    tsm: &Path,
    vcek: Option<&Path>,
    collateral: Option<&Path>,
    keys: &nostr::prelude::Keys,
) -> Result<nostr::prelude::Event> {
    let vcek = vcek
        .map(|p| read(p, provenance_attest::bundle::MAX_CERT_BYTES))
        .transpose()?;
    let collateral = collateral
        .map(|p| read_text(p, provenance_attest::bundle::MAX_COLLATERAL_BYTES))
        .transpose()?;
    let src = ConfigfsTsm::new(tsm, platform, "provenance");
    configfs::attest(
        &src,
        keys,
        Timestamp::now(),
        vcek.as_deref(),
        collateral.as_deref(),
    )
    .map_err(|e| anyhow!("{}: {e}", tsm.display()))
}

pub(super) fn take(a: TakeArgs) -> Result<ExitCode> {
    let platform = platform(&a.platform)?;
    let key_path = match &a.key {
        Some(p) => p.clone(),
        None => keyfile::default_path()?,
    };
    let keys = keyfile::load(&key_path)?;
    let event = take_event(
        platform,
        &a.tsm,
        a.vcek.as_deref(),
        a.collateral.as_deref(),
        &keys,
    )?;
    Out::new(false).raw(&serde_json::to_string(&event)?)?;
    Ok(ExitCode::SUCCESS)
}
