//! TEST ONLY: synthetic SEV-SNP evidence signed by the test chain in
//! `fixtures/attest/test-root/` (its private keys are published there on purpose), and
//! certificate revocation lists signed by its ARK.
//!
//! A real report cannot carry a test's key in `report_data`, so the positive binding case
//! and most negatives are built here: a report laid out like a Milan report of version 2 to
//! 5, signed by the test VCEK. Nothing signed this way proves anything: the test ARK is
//! trusted only by a verifier that is handed it ([`TestChain::roots`]).

use std::path::Path;

use p384::ecdsa::SigningKey;
use p384::ecdsa::signature::hazmat::PrehashSigner;
use p384::pkcs8::DecodePrivateKey;
use sha2::{Digest, Sha384};

use rsa::signature::{RandomizedSigner, SignatureEncoding};
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::der::asn1::{BitString, UtcTime};
use x509_cert::der::{DecodePem, Encode};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;

use crate::outcome::InputError;
use crate::snp::{REPORT_LEN, Roots};

/// The test chain, read from a directory laid out like `fixtures/attest/test-root/`.
pub struct TestChain {
    /// The test ARK, PEM.
    pub ark_pem: Vec<u8>,
    /// The test ASK, PEM.
    pub ask_pem: Vec<u8>,
    /// The test VCEK (TCB bootloader 3, TEE 0, SNP 8, microcode 115), DER.
    pub vcek_der: Vec<u8>,
    /// The same key certified for a lower SNP TCB (7), DER.
    pub vcek_low_tcb_der: Vec<u8>,
    /// A VCEK of another key, DER.
    pub other_vcek_der: Vec<u8>,
    /// The test VCEK's private key.
    pub key: SigningKey,
    /// The test ARK's private key (RSA-3072): it signs the test CRLs.
    pub ark_key: rsa::RsaPrivateKey,
    /// The test ASK's private key: the wrong key for a CRL in the ARK's name.
    pub ask_key: rsa::RsaPrivateKey,
}

fn pem_to_der(pem: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(pem);
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64_decode(&b64)
}

fn base64_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        let Some(v) = A.iter().position(|a| *a == c) else {
            continue;
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

impl TestChain {
    /// Reads the chain from `dir`.
    pub fn load(dir: &Path) -> std::io::Result<Self> {
        let read = |n: &str| std::fs::read(dir.join(n));
        let key_der = read("vcek.key.der")?;
        let key = SigningKey::from_pkcs8_der(&key_der)
            .map_err(|e| std::io::Error::other(format!("vcek.key.der: {e}")))?;
        let rsa_key = |n: &str| {
            rsa::RsaPrivateKey::from_pkcs8_der(&read(n)?)
                .map_err(|e| std::io::Error::other(format!("{n}: {e}")))
        };
        Ok(Self {
            ark_key: rsa_key("ark.key.der")?,
            ask_key: rsa_key("ask.key.der")?,
            ark_pem: read("ark.pem")?,
            ask_pem: read("ask.pem")?,
            vcek_der: pem_to_der(&read("vcek.pem")?),
            vcek_low_tcb_der: pem_to_der(&read("vcek-low-tcb.pem")?),
            other_vcek_der: pem_to_der(&read("other-vcek.pem")?),
            key,
        })
    }

    /// Roots trusting the test ARK and ASK (and nothing else).
    pub fn roots(&self) -> Result<Roots, InputError> {
        Roots::from_pem("TEST", &self.ark_pem, &self.ask_pem)
    }

    /// The serial number of the test ASK, big-endian bytes.
    pub fn ask_serial(&self) -> Vec<u8> {
        cert(&self.ask_pem)
            .tbs_certificate
            .serial_number
            .as_bytes()
            .to_vec()
    }

    /// A DER CRL in the test ARK's name, signed with `key` (RSA-PSS, SHA-384, as AMD's KDS
    /// signs): [`Self::ark_key`] for a genuine one, anything else for a forgery.
    pub fn sign_crl(&self, crl: &TestCrl, key: &rsa::RsaPrivateKey) -> Vec<u8> {
        self.sign_crl_as(&self.ark_pem, crl, key)
    }

    /// A DER CRL in the name of the certificate `issuer_pem` (its subject and signature
    /// algorithm), signed with `key`.
    pub fn sign_crl_as(
        &self,
        issuer_pem: &[u8],
        crl: &TestCrl,
        key: &rsa::RsaPrivateKey,
    ) -> Vec<u8> {
        let ark = cert(issuer_pem);
        let time = |t: u64| {
            Time::UtcTime(
                UtcTime::from_unix_duration(std::time::Duration::from_secs(t))
                    .expect("a time from 1970 to 2049"),
            )
        };
        let revoked: Vec<RevokedCert> = crl
            .revoked
            .iter()
            .map(|serial| RevokedCert {
                serial_number: SerialNumber::new(serial).expect("a serial number"),
                revocation_date: time(crl.this_update),
                crl_entry_extensions: None,
            })
            .collect();
        let tbs = TbsCertList {
            version: x509_cert::Version::V2,
            signature: ark.signature_algorithm.clone(),
            issuer: ark.tbs_certificate.subject.clone(),
            this_update: time(crl.this_update),
            next_update: Some(time(crl.next_update)),
            revoked_certificates: (!revoked.is_empty()).then_some(revoked),
            crl_extensions: None,
        };
        let tbs_der = tbs.to_der().expect("a TBS encodes");
        let signer = rsa::pss::SigningKey::<rsa::sha2::Sha384>::new(key.clone());
        let sig = signer.sign_with_rng(&mut TestRng(crl.this_update), &tbs_der);
        CertificateList {
            tbs_cert_list: tbs,
            signature_algorithm: ark.signature_algorithm,
            signature: BitString::from_bytes(&sig.to_vec()).expect("a bit string"),
        }
        .to_der()
        .expect("a CRL encodes")
    }
}

fn cert(pem: &[u8]) -> x509_cert::Certificate {
    x509_cert::Certificate::from_pem(pem).expect("a PEM certificate")
}

/// A certificate revocation list to sign ([`TestChain::sign_crl`]).
#[derive(Clone, Debug, Default)]
pub struct TestCrl {
    /// `thisUpdate`, Unix seconds (also each entry's revocation date).
    pub this_update: u64,
    /// `nextUpdate`, Unix seconds.
    pub next_update: u64,
    /// The serial numbers revoked, big-endian bytes.
    pub revoked: Vec<Vec<u8>>,
}

/// Salt and blinding for the test signatures: deterministic, which a test needs and a real
/// signer must never be.
struct TestRng(u64);

impl rsa::rand_core::RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }

    fn next_u64(&mut self) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for TestRng {}

/// The fields of a synthetic report.
#[derive(Clone, Debug)]
pub struct SyntheticReport {
    /// Report version (2 to 5 are read; others are refused).
    pub version: u32,
    /// Guest policy (default: SMT allowed, reserved bit 17 set, no debugging, no migration
    /// agent).
    pub policy: u64,
    /// `REPORT_DATA`.
    pub report_data: [u8; 64],
    /// Launch measurement.
    pub measurement: [u8; 48],
    /// Chip id (default: the test VCEK's hardware id).
    pub chip_id: [u8; 64],
    /// Reported TCB: bootloader, TEE, SNP, microcode (default: the test VCEK's).
    pub tcb: [u8; 4],
}

/// The launch measurement of the default synthetic report.
pub const MEASUREMENT: [u8; 48] = [0x4d; 48];

impl Default for SyntheticReport {
    fn default() -> Self {
        let mut chip_id = [0u8; 64];
        for (i, b) in chip_id.iter_mut().enumerate() {
            *b = 0x11 + i as u8;
        }
        Self {
            version: 5,
            policy: 0x3_0000,
            report_data: [0; 64],
            measurement: MEASUREMENT,
            chip_id,
            tcb: [3, 0, 8, 115],
        }
    }
}

impl SyntheticReport {
    /// The raw report, signed by `key`.
    pub fn sign(&self, key: &SigningKey) -> Vec<u8> {
        let mut r = vec![0u8; REPORT_LEN];
        let [bl, tee, snp, ucode] = self.tcb;
        let tcb = [bl, tee, 0, 0, 0, 0, snp, ucode];
        r[0..4].copy_from_slice(&self.version.to_le_bytes());
        r[4..8].copy_from_slice(&1u32.to_le_bytes()); // guest SVN
        r[8..16].copy_from_slice(&self.policy.to_le_bytes());
        r[0x34..0x38].copy_from_slice(&1u32.to_le_bytes()); // ECDSA P-384 with SHA-384
        r[0x38..0x40].copy_from_slice(&tcb); // current TCB
        r[0x50..0x90].copy_from_slice(&self.report_data);
        r[0x90..0xC0].copy_from_slice(&self.measurement);
        r[0x180..0x188].copy_from_slice(&tcb); // reported TCB
        if self.version >= 3 {
            // Version 3 added the CPUID fields; in version 2 these bytes are reserved (zero).
            r[0x188] = 0x19; // family: Milan
            r[0x189] = 0x01; // model
            r[0x18A] = 0x01; // stepping
        }
        r[0x1A0..0x1E0].copy_from_slice(&self.chip_id);
        r[0x1E0..0x1E8].copy_from_slice(&tcb); // committed TCB
        r[0x1E8..0x1EB].copy_from_slice(&[0x2a, 0x37, 0x01]); // current build, minor, major
        r[0x1EC..0x1EF].copy_from_slice(&[0x2a, 0x37, 0x01]); // committed
        r[0x1F0..0x1F8].copy_from_slice(&tcb); // launch TCB
        resign(&mut r, key);
        r
    }
}

/// Signs a raw report again after a change to its signed part.
pub fn resign(report: &mut [u8], key: &SigningKey) {
    let digest = Sha384::digest(&report[..0x2A0]);
    let sig: p384::ecdsa::Signature = key.sign_prehash(&digest).expect("a 48-byte prehash signs");
    let (r, s) = sig.split_bytes();
    let (mut r, mut s) = (r.to_vec(), s.to_vec());
    r.reverse();
    s.reverse();
    report[0x2A0..0x2A0 + 144].fill(0);
    report[0x2A0..0x2A0 + 48].copy_from_slice(&r);
    report[0x2A0 + 72..0x2A0 + 72 + 48].copy_from_slice(&s);
}
