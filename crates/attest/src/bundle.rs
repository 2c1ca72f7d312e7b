//! The evidence an attestation event carries, and the bundle file that packs an attestation
//! event (or bare evidence) with the certificates and collateral a verifier needs, so that
//! one file verifies offline in one step.
//!
//! Evidence (the attestation event's `content`, JSON):
//!
//! | field | meaning |
//! |---|---|
//! | `v` | `1` |
//! | `platform` | `sev-snp` or `tdx` |
//! | `evidence` | hex of the raw SEV-SNP report (1,184 bytes) or TDX quote, exactly as the TEE returned it |
//! | `nonce` | hex of the 32-byte nonce of the binding ([`crate::binding`]) |
//! | `vcek` | SEV-SNP: hex of the DER VCEK certificate (optional: a bundle or the verifier may supply it) |
//! | `collateral` | TDX: the DCAP collateral as JSON text (`dcap-qvl`'s `QuoteCollateralV3`; optional likewise) |
//!
//! A bundle (`provenance attest bundle`) is a JSON object with `"provenance_attest_bundle": 1`
//! and either `event` (the signed attestation event) or `evidence` (bare evidence: then the
//! binding and freshness cannot be checked), plus optional `vcek` and `collateral` that fill
//! in what the evidence lacks, and optional `crls`: SEV-SNP certificate revocation lists (hex
//! of DER, as AMD's KDS serves them), so that revocation is checked offline too.

use serde::{Deserialize, Serialize};

use crate::outcome::InputError;

/// The largest bundle or event read, in bytes.
pub const MAX_BUNDLE_BYTES: usize = 1 << 20;
/// The largest TDX quote accepted, in bytes (real quotes are 5 to 8 KB).
pub const MAX_QUOTE_BYTES: usize = 64 * 1024;
/// The largest VCEK certificate accepted, in bytes (real ones are about 1.3 KB).
pub const MAX_CERT_BYTES: usize = 16 * 1024;
/// The largest collateral accepted, in bytes of JSON (real ones are 15 to 25 KB).
pub const MAX_COLLATERAL_BYTES: usize = 512 * 1024;

/// The evidence format version.
pub const EVIDENCE_VERSION: u32 = 1;

/// The TEE platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Platform {
    /// AMD SEV-SNP.
    #[serde(rename = "sev-snp")]
    SevSnp,
    /// Intel TDX.
    #[serde(rename = "tdx")]
    Tdx,
}

impl Platform {
    /// `sev-snp` or `tdx` (also the `kind` of a record's attestation reference).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SevSnp => "sev-snp",
            Self::Tdx => "tdx",
        }
    }

    /// Parses `sev-snp` or `tdx`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sev-snp" => Some(Self::SevSnp),
            "tdx" => Some(Self::Tdx),
            _ => None,
        }
    }
}

/// Attestation evidence: the content of an attestation event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// [`EVIDENCE_VERSION`].
    pub v: u32,
    /// The platform.
    pub platform: Platform,
    /// Hex of the raw report or quote.
    pub evidence: String,
    /// Hex of the 32-byte binding nonce.
    pub nonce: String,
    /// SEV-SNP: hex of the DER VCEK certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcek: Option<String>,
    /// TDX: the collateral as JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collateral: Option<String>,
}

impl Evidence {
    /// Evidence from raw parts.
    pub fn new(platform: Platform, raw: &[u8], nonce: &crate::binding::Nonce) -> Self {
        Self {
            v: EVIDENCE_VERSION,
            platform,
            evidence: hex::encode(raw),
            nonce: hex::encode(nonce),
            vcek: None,
            collateral: None,
        }
    }

    /// The raw report or quote.
    pub fn raw(&self) -> Result<Vec<u8>, InputError> {
        let max = match self.platform {
            Platform::SevSnp => 4096,
            Platform::Tdx => MAX_QUOTE_BYTES,
        };
        decode_hex("input", "evidence", &self.evidence, max)
    }

    /// The binding nonce.
    pub fn nonce(&self) -> Result<crate::binding::Nonce, InputError> {
        let bytes = decode_hex("binding", "nonce", &self.nonce, 64)?;
        bytes.try_into().map_err(|b: Vec<u8>| {
            InputError::new(
                "binding",
                "nonce",
                format!("{} bytes, expected 32", b.len()),
            )
        })
    }

    /// The DER VCEK certificate, when present.
    pub fn vcek_der(&self) -> Result<Option<Vec<u8>>, InputError> {
        self.vcek
            .as_deref()
            .map(|h| decode_hex("chain", "vcek", h, MAX_CERT_BYTES))
            .transpose()
    }

    /// Checks the version and sizes, so that a bad field is named before any check runs.
    pub fn check(&self) -> Result<(), InputError> {
        if self.v != EVIDENCE_VERSION {
            return Err(InputError::new(
                "input",
                "evidence.v",
                format!("version {} is not {EVIDENCE_VERSION}", self.v),
            ));
        }
        self.raw()?;
        self.nonce()?;
        self.vcek_der()?;
        if let Some(c) = &self.collateral {
            if c.len() > MAX_COLLATERAL_BYTES {
                return Err(InputError::new(
                    "chain",
                    "collateral",
                    format!(
                        "{} bytes, over the limit of {MAX_COLLATERAL_BYTES}",
                        c.len()
                    ),
                ));
            }
        }
        Ok(())
    }
}

pub(crate) fn decode_hex(
    step: &'static str,
    field: &str,
    s: &str,
    max_bytes: usize,
) -> Result<Vec<u8>, InputError> {
    if s.len() > max_bytes * 2 {
        return Err(InputError::new(
            step,
            field,
            format!(
                "{} hex digits, over the limit of {} bytes",
                s.len(),
                max_bytes
            ),
        ));
    }
    hex::decode(s).map_err(|e| InputError::new(step, field, format!("not hex: {e}")))
}

/// Why a file is neither an attestation event nor a bundle ([`Bundle::read`]).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not JSON at all.
    #[error("input: not JSON: {0}")]
    NotJson(String),
    /// JSON, but neither an event nor a bundle.
    #[error("input: neither an attestation event nor a bundle")]
    Neither,
    /// A bundle that does not read.
    #[error(transparent)]
    Bundle(#[from] InputError),
}

/// A bundle: an attestation event or bare evidence, with what verifying it needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Always `1`; names the file type.
    pub provenance_attest_bundle: u32,
    /// The signed attestation event (NIP-01 JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<serde_json::Value>,
    /// Bare evidence, when there is no event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// SEV-SNP: hex of the DER VCEK, when the evidence does not carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcek: Option<String>,
    /// TDX: the collateral as JSON text, when the evidence does not carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collateral: Option<String>,
    /// SEV-SNP: AMD certificate revocation lists, hex of DER.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crls: Vec<String>,
}

/// The most CRLs a bundle carries (AMD publishes one per product).
pub const MAX_BUNDLE_CRLS: usize = 8;

impl Bundle {
    /// The certificate revocation lists the bundle carries, parsed.
    #[cfg(feature = "sev-snp")]
    pub fn crls(&self) -> Result<Vec<crate::crl::Crl>, InputError> {
        if self.crls.len() > MAX_BUNDLE_CRLS {
            return Err(InputError::new(
                "revocation",
                "bundle.crls",
                format!(
                    "{} CRLs, over the limit of {MAX_BUNDLE_CRLS}",
                    self.crls.len()
                ),
            ));
        }
        self.crls
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let der = decode_hex(
                    "revocation",
                    &format!("bundle.crls[{i}]"),
                    h,
                    crate::crl::MAX_CRL_BYTES,
                )?;
                crate::crl::Crl::parse(&der).map_err(|e| {
                    InputError::new("revocation", format!("bundle.crls[{i}]"), e.reason)
                })
            })
            .collect()
    }

    /// Reads a bundle from JSON bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, InputError> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(InputError::new(
                "input",
                "bundle",
                format!(
                    "{} bytes, over the limit of {MAX_BUNDLE_BYTES}",
                    bytes.len()
                ),
            ));
        }
        let b: Bundle = serde_json::from_slice(bytes)
            .map_err(|e| InputError::new("input", "bundle", format!("not a bundle: {e}")))?;
        if b.provenance_attest_bundle != 1 {
            return Err(InputError::new(
                "input",
                "bundle.provenance_attest_bundle",
                format!("version {} is not 1", b.provenance_attest_bundle),
            ));
        }
        match (&b.event, &b.evidence) {
            (Some(_), Some(_)) => Err(InputError::new(
                "input",
                "bundle",
                "holds both an event and bare evidence; one of them",
            )),
            (None, None) => Err(InputError::new(
                "input",
                "bundle",
                "holds neither an event nor evidence",
            )),
            _ => Ok(b),
        }
    }

    /// The evidence the bundle holds: the event's content (not checked here) or the bare
    /// evidence, with the bundle's VCEK and collateral filled in where it lacks them.
    pub fn evidence_unchecked(&self) -> Option<Evidence> {
        let mut ev = match (&self.event, &self.evidence) {
            (Some(event), _) => event
                .get("content")
                .and_then(|c| c.as_str())
                .and_then(|c| serde_json::from_str::<Evidence>(c).ok())?,
            (None, Some(ev)) => ev.clone(),
            (None, None) => return None,
        };
        if ev.vcek.is_none() {
            ev.vcek.clone_from(&self.vcek);
        }
        if ev.collateral.is_none() {
            ev.collateral.clone_from(&self.collateral);
        }
        Some(ev)
    }

    /// SHA-256 of the raw report or quote the bundle holds: what a record's attestation
    /// reference names.
    pub fn evidence_sha256(&self) -> Option<provenance::digest::Sha256Digest> {
        let raw = self.evidence_unchecked()?.raw().ok()?;
        Some(provenance::digest::sha256(&raw))
    }

    /// Reads a file that is either an attestation event (NIP-01 JSON) or a bundle, as a
    /// bundle: what `provenance attest verify` and `provenance verify --attestation` accept.
    pub fn read(bytes: &[u8]) -> Result<Self, ReadError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| ReadError::NotJson(e.to_string()))?;
        if value.get("provenance_attest_bundle").is_some() {
            return Ok(Self::from_json(bytes)?);
        }
        if value.get("sig").is_some() && value.get("kind").is_some() {
            return Ok(Self {
                provenance_attest_bundle: 1,
                event: Some(value),
                evidence: None,
                vcek: None,
                collateral: None,
                crls: Vec::new(),
            });
        }
        Err(ReadError::Neither)
    }

    /// A bundle of bare evidence (no event, so no binding: its nonce is zero and is not
    /// checked): the report or quote as raw bytes, or as hex text (the form `sev` ships its
    /// reports in).
    pub fn bare(platform: Platform, bytes: &[u8]) -> Self {
        let raw = std::str::from_utf8(bytes)
            .ok()
            .and_then(|t| hex::decode(t.trim()).ok());
        Self {
            provenance_attest_bundle: 1,
            event: None,
            evidence: Some(Evidence::new(
                platform,
                raw.as_deref().unwrap_or(bytes),
                &[0; 32],
            )),
            vcek: None,
            collateral: None,
            crls: Vec::new(),
        }
    }

    /// Serialises the bundle (pretty JSON, ending in a newline).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}
