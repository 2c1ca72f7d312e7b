//! Producing evidence inside a confidential VM: Linux's configfs-tsm report interface.
//!
//! The kernel (6.7 and later) exposes TEE reports under `/sys/kernel/config/tsm/report`: make a
//! directory there, write 64 bytes to `inblob`, read `outblob` (the raw SEV-SNP report or TDX
//! quote), `provider` (`sev_guest` or `tdx_guest`) and `generation` (which must not change
//! between the write and the read, or another writer interfered). [`ReportSource`] is that
//! interface behind a trait; [`ConfigfsTsm`] works on any directory laid out like it, so the
//! tests drive it against a fake tree in a temporary directory. No machine this crate was
//! tested on had a TEE.

use std::fs;
use std::path::{Path, PathBuf};

use crate::bundle::Platform;

/// The configfs-tsm report directory on Linux.
pub const DEFAULT_ROOT: &str = "/sys/kernel/config/tsm/report";

/// Why a report could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file of the interface could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The provider is not the platform asked for.
    #[error("provider {found:?} is not {wanted} (sev_guest or tdx_guest)")]
    Provider {
        /// What was asked for.
        wanted: &'static str,
        /// What the kernel reports.
        found: String,
    },
    /// Another writer used the report entry between the write and the read.
    #[error("generation changed from {before} to {after}: another writer used the entry")]
    Raced {
        /// Before.
        before: u64,
        /// After.
        after: u64,
    },
    /// The output is empty or unreadable.
    #[error("{0}")]
    Bad(String),
}

/// Something that returns a TEE report or quote for 64 bytes of report data.
pub trait ReportSource {
    /// The raw report (SEV-SNP) or quote (TDX) carrying `report_data`.
    fn report(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, SourceError>;
    /// The platform the source produces evidence of.
    fn platform(&self) -> Platform;
}

/// configfs-tsm under `root` (normally [`DEFAULT_ROOT`]), for `platform`.
#[derive(Clone, Debug)]
pub struct ConfigfsTsm {
    root: PathBuf,
    platform: Platform,
    entry: String,
}

impl ConfigfsTsm {
    /// A source using the entry `entry` (a directory name, made when missing) under `root`.
    pub fn new(root: impl Into<PathBuf>, platform: Platform, entry: &str) -> Self {
        Self {
            root: root.into(),
            platform,
            entry: entry.to_owned(),
        }
    }

    fn dir(&self) -> PathBuf {
        self.root.join(&self.entry)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SourceError + '_ {
    move |source| SourceError::Io {
        path: path.to_owned(),
        source,
    }
}

fn read_generation(dir: &Path) -> Result<u64, SourceError> {
    let p = dir.join("generation");
    let s = fs::read_to_string(&p).map_err(io(&p))?;
    s.trim()
        .parse()
        .map_err(|_| SourceError::Bad(format!("{}: not a number: {:?}", p.display(), s.trim())))
}

impl ReportSource for ConfigfsTsm {
    fn report(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, SourceError> {
        let dir = self.dir();
        if !dir.is_dir() {
            fs::create_dir(&dir).map_err(io(&dir))?;
        }
        let p = dir.join("provider");
        let provider = fs::read_to_string(&p).map_err(io(&p))?;
        let wanted = match self.platform {
            Platform::SevSnp => "sev_guest",
            Platform::Tdx => "tdx_guest",
        };
        if provider.trim() != wanted {
            return Err(SourceError::Provider {
                wanted,
                found: provider.trim().to_owned(),
            });
        }
        let p = dir.join("inblob");
        fs::write(&p, report_data).map_err(io(&p))?;
        let before = read_generation(&dir)?;
        let p = dir.join("outblob");
        let out = fs::read(&p).map_err(io(&p))?;
        let after = read_generation(&dir)?;
        if before != after {
            return Err(SourceError::Raced { before, after });
        }
        if out.is_empty() {
            return Err(SourceError::Bad(format!("{}: empty", p.display())));
        }
        Ok(out)
    }

    fn platform(&self) -> Platform {
        self.platform
    }
}

/// Why an attestation event could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    /// The TEE gave no report.
    #[error("report: {0}")]
    Source(#[from] SourceError),
    /// The event could not be built.
    #[error("event: {0}")]
    Event(#[from] crate::outcome::InputError),
}

/// Takes fresh evidence binding `keys` from `source` (a new random nonce) and signs it as an
/// attestation event stamped `created_at`. `vcek` (SEV-SNP, DER) and `collateral` (TDX, JSON)
/// are carried in the event when given.
pub fn attest(
    source: &dyn ReportSource,
    keys: &nostr::prelude::Keys,
    created_at: nostr::prelude::Timestamp,
    vcek: Option<&[u8]>,
    collateral: Option<&str>,
) -> Result<nostr::prelude::Event, AttestError> {
    let nonce = crate::binding::fresh_nonce();
    let data = crate::binding::report_data(&keys.public_key().to_bytes(), &nonce);
    let raw = source.report(&data)?;
    let mut evidence = crate::bundle::Evidence::new(source.platform(), &raw, &nonce);
    evidence.vcek = vcek.map(hex::encode);
    evidence.collateral = collateral.map(str::to_owned);
    Ok(crate::event::sign(&evidence, keys, created_at)?)
}
