//! AMD SEV-SNP: the attestation report, the AMD certificate chain, and the checks the `sev`
//! crate leaves out.
//!
//! `sev` decodes the report and checks the RSA-PSS chain ARK -> ASK -> VCEK. Everything else
//! is checked here: the report's exact length and version (2 to 5; a newer one is refused,
//! since its layout may differ), the report signature over the raw signed bytes (offsets 0 to
//! 0x2A0; `sev` re-serialises the report first, which would drop reserved bytes), the VCEK's
//! validity period at `now`, its TCB levels against the report's `reported_tcb`, its hardware
//! id against the report's chip id, and the guest policy. Revocation (AMD's certificate
//! revocation lists, when given) is checked in [`crate::crl`]. The VLEK (a cloud provider's
//! key) is not supported.

use p384::ecdsa::signature::hazmat::PrehashVerifier;
use p384::ecdsa::{Signature, VerifyingKey};
use sev::certs::snp::{Certificate, Verifiable, builtin};
use sev::firmware::guest::AttestationReport;
use sev::parser::ByteParser;
use sha2::{Digest, Sha384};
use x509_cert::der::Decode;

use crate::outcome::{InputError, Outcome, StepName};

/// The length of every SEV-SNP report version this verifier reads, in bytes.
pub const REPORT_LEN: usize = 0x4A0;
/// The signed part of a report: everything before the signature.
const SIGNED_LEN: usize = 0x2A0;
/// The oldest report version read.
pub const MIN_VERSION: u32 = 2;
/// The newest report version read (the 2026 layout, with the mitigation vectors).
pub const MAX_VERSION: u32 = 5;

/// A parsed SEV-SNP attestation report, with its raw bytes.
#[derive(Clone, Debug)]
pub struct Report {
    raw: Vec<u8>,
    /// The fields, as `sev` decodes them.
    pub fields: AttestationReport,
}

fn array<const N: usize>(raw: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&raw[at..at + N]);
    out
}

impl Report {
    /// Parses a raw report: exactly [`REPORT_LEN`] bytes, version [`MIN_VERSION`] to
    /// [`MAX_VERSION`], signature algorithm ECDSA P-384 with SHA-384.
    pub fn parse(raw: &[u8]) -> Result<Self, InputError> {
        if raw.len() != REPORT_LEN {
            let what = if raw.len() < REPORT_LEN {
                "truncated"
            } else {
                "oversized"
            };
            return Err(InputError::new(
                "input",
                "report",
                format!("{what}: {} bytes, a report is {REPORT_LEN}", raw.len()),
            ));
        }
        let version = u32::from_le_bytes(array(raw, 0));
        if !(MIN_VERSION..=MAX_VERSION).contains(&version) {
            let why = if version > MAX_VERSION {
                "newer than this verifier reads"
            } else {
                "older than SEV-SNP's published reports"
            };
            return Err(InputError::new(
                "input",
                "report.version",
                format!("version {version} is {why} ({MIN_VERSION} to {MAX_VERSION})"),
            ));
        }
        let sig_algo = u32::from_le_bytes(array(raw, 0x34));
        if sig_algo != 1 {
            return Err(InputError::new(
                "input",
                "report.signature_algo",
                format!("{sig_algo} is not 1 (ECDSA P-384 with SHA-384)"),
            ));
        }
        let fields = AttestationReport::from_bytes(raw)
            .map_err(|e| InputError::new("input", "report", format!("not decodable: {e}")))?;
        Ok(Self {
            raw: raw.to_vec(),
            fields,
        })
    }

    /// The raw bytes.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The report version.
    pub fn version(&self) -> u32 {
        self.fields.version
    }

    /// `REPORT_DATA`, where the key binding lives.
    pub fn report_data(&self) -> [u8; 64] {
        array(&self.raw, 0x50)
    }

    /// `MEASUREMENT`: the launch measurement of the guest.
    pub fn measurement(&self) -> [u8; 48] {
        array(&self.raw, 0x90)
    }

    /// `CHIP_ID`.
    pub fn chip_id(&self) -> [u8; 64] {
        array(&self.raw, 0x1A0)
    }

    /// The guest policy, as a 64-bit word.
    pub fn policy(&self) -> u64 {
        u64::from_le_bytes(array(&self.raw, 0x08))
    }

    /// `SIGNING_KEY` of `KEY_INFO`: 0 for the VCEK, 1 for the VLEK.
    pub fn signing_key(&self) -> u32 {
        (u32::from_le_bytes(array(&self.raw, 0x48)) >> 2) & 0x7
    }

    /// `VMPL` of the request that made the report.
    pub fn vmpl(&self) -> u32 {
        u32::from_le_bytes(array(&self.raw, 0x30))
    }
}

/// Policy bit 19: debugging allowed.
pub const POLICY_DEBUG: u64 = 1 << 19;
/// Policy bit 18: a migration agent is allowed.
pub const POLICY_MIGRATE_MA: u64 = 1 << 18;

/// The trusted roots: pairs of ARK and ASK whose link is checked when they are loaded.
#[derive(Clone, Debug)]
pub struct Roots {
    roots: Vec<Root>,
}

/// One product's ARK and ASK.
#[derive(Clone, Debug)]
struct Root {
    name: String,
    ark: x509_cert::Certificate,
    ask: Certificate,
    ask_serial: Vec<u8>,
}

impl Roots {
    /// AMD's ARK and ASK of Milan, Genoa and Turin, as the `sev` crate ships them.
    pub fn amd() -> Result<Self, InputError> {
        let mut r = Self { roots: Vec::new() };
        for (name, ark, ask) in [
            ("Milan", builtin::milan::ark(), builtin::milan::ask()),
            ("Genoa", builtin::genoa::ark(), builtin::genoa::ask()),
            ("Turin", builtin::turin::ark(), builtin::turin::ask()),
        ] {
            let bad = |e: std::io::Error| InputError::new("chain", name, e.to_string());
            r.add(name, ark.map_err(bad)?, ask.map_err(bad)?)?;
        }
        Ok(r)
    }

    /// Roots from one ARK and one ASK in PEM (e.g. a test root). Nothing but the caller puts
    /// such roots in front of the verifier.
    pub fn from_pem(name: &str, ark_pem: &[u8], ask_pem: &[u8]) -> Result<Self, InputError> {
        let mut r = Self { roots: Vec::new() };
        let bad = |e: std::io::Error| InputError::new("chain", name.to_owned(), e.to_string());
        r.add(
            name,
            Certificate::from_pem(ark_pem).map_err(bad)?,
            Certificate::from_pem(ask_pem).map_err(bad)?,
        )?;
        Ok(r)
    }

    fn add(&mut self, name: &str, ark: Certificate, ask: Certificate) -> Result<(), InputError> {
        (&ark, &ark)
            .verify()
            .and_then(|()| (&ark, &ask).verify())
            .map_err(|e| InputError::new("chain", format!("{name} ARK/ASK"), e.to_string()))?;
        let ark = x509_cert::Certificate::from(ark);
        let ask_serial = x509_cert::Certificate::from(ask.clone())
            .tbs_certificate
            .serial_number
            .as_bytes()
            .to_vec();
        self.roots.push(Root {
            name: name.to_owned(),
            ark,
            ask,
            ask_serial,
        });
        Ok(())
    }
}

/// TCB levels, as a VCEK certifies them or a report states them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tcb {
    /// FMC (Turin and later).
    pub fmc: Option<u8>,
    /// PSP bootloader.
    pub bootloader: u8,
    /// PSP OS.
    pub tee: u8,
    /// SNP firmware.
    pub snp: u8,
    /// Microcode.
    pub microcode: u8,
}

impl std::fmt::Display for Tcb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(fmc) = self.fmc {
            write!(f, "fmc {fmc} ")?;
        }
        write!(
            f,
            "bootloader {} tee {} snp {} microcode {}",
            self.bootloader, self.tee, self.snp, self.microcode
        )
    }
}

/// A VCEK certificate with the AMD extensions read.
#[derive(Clone, Debug)]
pub struct Vcek {
    cert: Certificate,
    key: VerifyingKey,
    /// The serial number, big-endian bytes (what a CRL lists).
    pub serial: Vec<u8>,
    /// The TCB levels the VCEK was derived for.
    pub tcb: Tcb,
    /// The hardware id (64 bytes; 8 on Turin).
    pub hwid: Vec<u8>,
    /// Validity, Unix seconds.
    pub not_before: u64,
    /// Validity, Unix seconds.
    pub not_after: u64,
}

const OID_BL: &str = "1.3.6.1.4.1.3704.1.3.1";
const OID_TEE: &str = "1.3.6.1.4.1.3704.1.3.2";
const OID_SNP: &str = "1.3.6.1.4.1.3704.1.3.3";
const OID_UCODE: &str = "1.3.6.1.4.1.3704.1.3.8";
const OID_FMC: &str = "1.3.6.1.4.1.3704.1.3.9";
const OID_HWID: &str = "1.3.6.1.4.1.3704.1.4";

/// A DER INTEGER from 0 to 255.
fn der_u8(bytes: &[u8]) -> Option<u8> {
    match bytes {
        [0x02, 1, v] if *v < 0x80 => Some(*v),
        [0x02, 2, 0, v] if *v >= 0x80 => Some(*v),
        _ => None,
    }
}

impl Vcek {
    /// Reads a DER VCEK: the AMD TCB and hardware id extensions must be present.
    pub fn from_der(der: &[u8]) -> Result<Self, InputError> {
        let bad = |field: &str, why: String| InputError::new("chain", format!("vcek{field}"), why);
        let x509 = x509_cert::Certificate::from_der(der)
            .map_err(|e| bad("", format!("not a DER certificate: {e}")))?;
        let cert = Certificate::from(x509.clone());
        let key = VerifyingKey::from_sec1_bytes(cert.public_key_sec1())
            .map_err(|_| bad(".public_key", "not a P-384 key".to_owned()))?;
        let spl = |oid: &str| -> Result<Option<u8>, InputError> {
            let found = x509
                .tbs_certificate
                .extensions
                .iter()
                .flatten()
                .find(|e| e.extn_id.to_string() == oid);
            match found {
                None => Ok(None),
                Some(e) => der_u8(e.extn_value.as_bytes())
                    .map(Some)
                    .ok_or_else(|| bad(&format!(".{oid}"), "not an integer 0 to 255".to_owned())),
            }
        };
        let need = |v: Option<u8>, oid: &str| {
            v.ok_or_else(|| bad(&format!(".{oid}"), "TCB extension missing".to_owned()))
        };
        let tcb = Tcb {
            fmc: spl(OID_FMC)?,
            bootloader: need(spl(OID_BL)?, OID_BL)?,
            tee: need(spl(OID_TEE)?, OID_TEE)?,
            snp: need(spl(OID_SNP)?, OID_SNP)?,
            microcode: need(spl(OID_UCODE)?, OID_UCODE)?,
        };
        let hwid = x509
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id.to_string() == OID_HWID)
            .map(|e| e.extn_value.as_bytes().to_vec())
            .ok_or_else(|| bad(".hwid", "hardware id extension missing".to_owned()))?;
        let validity = &x509.tbs_certificate.validity;
        Ok(Self {
            serial: x509.tbs_certificate.serial_number.as_bytes().to_vec(),
            cert,
            key,
            tcb,
            hwid,
            not_before: validity.not_before.to_unix_duration().as_secs(),
            not_after: validity.not_after.to_unix_duration().as_secs(),
        })
    }
}

/// What the verifier accepts of the guest policy.
#[derive(Clone, Copy, Debug, Default)]
pub struct GuestPolicy {
    /// Accept a guest that allows debugging (its memory is readable by the host).
    pub allow_debug: bool,
    /// Accept a guest that allows a migration agent.
    pub allow_migration_agent: bool,
}

fn report_tcb(report: &Report) -> Tcb {
    let t = &report.fields.reported_tcb;
    Tcb {
        fmc: t.fmc,
        bootloader: t.bootloader,
        tee: t.tee,
        snp: t.snp,
        microcode: t.microcode,
    }
}

/// What revocation is checked against: the CRLs given, and whether one is required.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Revocation<'a> {
    pub crls: &'a [crate::crl::Crl],
    pub require: bool,
}

/// Runs the platform steps (chain, revocation, signature, TCB, chip id, policy) into `out`.
pub(crate) fn check(
    report: &Report,
    vcek: Option<&Vcek>,
    roots: &Roots,
    now: u64,
    policy: GuestPolicy,
    revocation: Revocation<'_>,
    out: &mut Outcome,
) {
    let skipped = |out: &mut Outcome, why: &str| {
        // Unknown even when a CRL is required: the chain step already keeps the claim
        // from being proven.
        out.unknown(StepName::Revocation, format!("not checked: {why}"));
        for s in [StepName::Signature, StepName::Tcb, StepName::Chip] {
            out.unknown(s, format!("not checked: {why}"));
        }
    };
    let chained = match vcek {
        None => {
            out.unknown(StepName::Chain, "no VCEK given (--vcek, or in the bundle)");
            skipped(out, "no VCEK");
            None
        }
        Some(_) if report.signing_key() != 0 => {
            out.failed(
                StepName::Chain,
                format!(
                    "report.key_info: signed by key {} (1 is a VLEK), only the VCEK is supported",
                    report.signing_key()
                ),
            );
            skipped(out, "the chain failed");
            None
        }
        Some(v) => match roots
            .roots
            .iter()
            .find(|r| (&r.ask, &v.cert).verify().is_ok())
        {
            None => {
                out.failed(
                    StepName::Chain,
                    "vcek: not signed by the ASK of any trusted root (Milan, Genoa, Turin)",
                );
                skipped(out, "the chain failed");
                None
            }
            Some(_) if now < v.not_before || now > v.not_after => {
                out.failed(
                    StepName::Chain,
                    format!(
                        "vcek.validity: {} to {}, now is {now}",
                        v.not_before, v.not_after
                    ),
                );
                skipped(out, "the chain failed");
                None
            }
            Some(root) => {
                out.proven(
                    StepName::Chain,
                    format!(
                        "VCEK signed by the {} ASK under its ARK; valid at {now}",
                        root.name
                    ),
                );
                let chain = crate::crl::Chain {
                    product: &root.name,
                    ark: &root.ark,
                    ask_serial: &root.ask_serial,
                    vcek_serial: &v.serial,
                };
                crate::crl::check(revocation.crls, &chain, now, revocation.require, out);
                Some(v)
            }
        },
    };
    if let Some(v) = chained {
        signature(report, v, out);
        let (want, got) = (v.tcb, report_tcb(report));
        if want == got {
            out.proven(
                StepName::Tcb,
                format!("VCEK TCB ({want}) is the report's reported TCB"),
            );
        } else {
            out.failed(StepName::Tcb, tcb_mismatch(&want, &got));
        }
        chip(report, v, out);
    }
    guest_policy(report, policy, out);
}

fn signature(report: &Report, v: &Vcek, out: &mut Outcome) {
    let raw = report.raw();
    let r = &raw[SIGNED_LEN..SIGNED_LEN + 72];
    let s = &raw[SIGNED_LEN + 72..SIGNED_LEN + 144];
    let be = |le: &[u8]| {
        let mut b = [0u8; 48];
        b.copy_from_slice(&le[..48]);
        b.reverse();
        b
    };
    if r[48..].iter().chain(&s[48..]).any(|&b| b != 0) {
        out.failed(
            StepName::Signature,
            "report.signature: r or s longer than 48 bytes",
        );
        return;
    }
    let Ok(sig) = Signature::from_scalars(be(r), be(s)) else {
        out.failed(
            StepName::Signature,
            "report.signature: not a P-384 signature",
        );
        return;
    };
    let digest = Sha384::digest(&raw[..SIGNED_LEN]);
    match v.key.verify_prehash(&digest, &sig) {
        Ok(()) => out.proven(
            StepName::Signature,
            format!(
                "report (version {}) signed by the VCEK (ECDSA P-384, SHA-384)",
                report.version()
            ),
        ),
        Err(_) => out.failed(
            StepName::Signature,
            "report.signature: does not verify under the VCEK's key",
        ),
    }
}

fn tcb_mismatch(vcek: &Tcb, report: &Tcb) -> String {
    let parts = [
        ("fmc", vcek.fmc.unwrap_or(0), report.fmc.unwrap_or(0)),
        ("bootloader", vcek.bootloader, report.bootloader),
        ("tee", vcek.tee, report.tee),
        ("snp", vcek.snp, report.snp),
        ("microcode", vcek.microcode, report.microcode),
    ];
    let diffs: Vec<String> = parts
        .iter()
        .filter(|(_, a, b)| a != b)
        .map(|(n, a, b)| {
            let rel = if a < b { "lower than" } else { "higher than" };
            format!("{n} {a} {rel} the report's {b}")
        })
        .collect();
    format!(
        "vcek.tcb: the VCEK was not derived for the report's reported TCB: {}",
        diffs.join(", ")
    )
}

fn chip(report: &Report, v: &Vcek, out: &mut Outcome) {
    let chip = report.chip_id();
    if chip == [0u8; 64] {
        out.failed(
            StepName::Chip,
            "report.chip_id: masked (all zero), the VCEK cannot be tied to the chip",
        );
        return;
    }
    let n = v.hwid.len().min(64);
    let matches = n > 0 && v.hwid[..n] == chip[..n] && chip[n..].iter().all(|&b| b == 0);
    if matches && v.hwid.len() <= 64 {
        out.proven(
            StepName::Chip,
            format!(
                "VCEK hardware id is the report's chip id {}",
                hex::encode(&chip[..n])
            ),
        );
    } else {
        out.failed(
            StepName::Chip,
            format!(
                "vcek.hwid {} is not the report's chip id {}",
                hex::encode(&v.hwid),
                hex::encode(chip)
            ),
        );
    }
}

fn guest_policy(report: &Report, accept: GuestPolicy, out: &mut Outcome) {
    let p = report.policy();
    let debug = p & POLICY_DEBUG != 0;
    let ma = p & POLICY_MIGRATE_MA != 0;
    let says = format!(
        "policy {p:#x}: debugging {}, migration agent {}, VMPL {}",
        if debug { "allowed" } else { "off" },
        if ma { "allowed" } else { "off" },
        report.vmpl()
    );
    if debug && !accept.allow_debug {
        out.failed(
            StepName::Policy,
            format!("report.policy: {says}; a debuggable guest's memory is readable by the host"),
        );
    } else if ma && !accept.allow_migration_agent {
        out.failed(
            StepName::Policy,
            format!("report.policy: {says}; a migration agent is not accepted"),
        );
    } else {
        out.proven(StepName::Policy, says);
    }
}
