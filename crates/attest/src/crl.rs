//! AMD SEV-SNP revocation: the certificate revocation lists AMD's Key Distribution Service
//! publishes per product (`https://kdsintf.amd.com/vcek/v1/{Milan,Genoa,Turin}/crl`), signed
//! by the product's ARK with RSA-PSS (SHA-384), like the ASK certificate.
//!
//! A CRL is read from DER or PEM ([`Crl::parse`]; anything else is an [`InputError`]). The
//! `revocation` step then uses the CRLs whose issuer is the ARK the chain led to: each must be
//! signed by that ARK, current at `now` (`thisUpdate` <= now <= `nextUpdate`; a CRL past its
//! `nextUpdate` is stale and fails), and list neither the ASK's nor the VCEK's serial number.
//! Without such a CRL the step is unknown ("not checked"), a warning that does not keep the
//! claim from being proven, unless the policy requires a CRL ([`crate::Policy::require_crl`]).

use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use x509_cert::crl::CertificateList;
use x509_cert::der::{Decode, Encode, Reader, SliceReader};

use crate::outcome::{InputError, Outcome, StepName};

/// The largest CRL read, in bytes (AMD's are about 1 KB; each revoked entry adds some 40).
pub const MAX_CRL_BYTES: usize = 256 * 1024;

/// RSASSA-PSS, the algorithm of AMD's CRLs and certificates.
const RSA_PSS: &str = "1.2.840.113549.1.1.10";

/// A parsed certificate revocation list, with the signed bytes exactly as given.
#[derive(Clone, Debug)]
pub struct Crl {
    list: CertificateList,
    tbs: Vec<u8>,
    der: Vec<u8>,
    /// `thisUpdate`, Unix seconds.
    pub this_update: u64,
    /// `nextUpdate`, Unix seconds.
    pub next_update: u64,
}

impl Crl {
    /// Reads a CRL from DER, or from PEM (`-----BEGIN X509 CRL-----`), as AMD's KDS serves it.
    /// It must have a `nextUpdate` (without one, staleness cannot be judged).
    pub fn parse(bytes: &[u8]) -> Result<Self, InputError> {
        let bad = |why: String| InputError::new("revocation", "crl", why);
        if bytes.len() > MAX_CRL_BYTES {
            return Err(bad(format!(
                "{} bytes, over the limit of {MAX_CRL_BYTES}",
                bytes.len()
            )));
        }
        let der = if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
            let (label, der) = x509_cert::der::pem::decode_vec(bytes.trim_ascii())
                .map_err(|e| bad(format!("not PEM: {e}")))?;
            if label != "X509 CRL" {
                return Err(bad(format!("PEM label {label:?} is not \"X509 CRL\"")));
            }
            der
        } else {
            bytes.to_vec()
        };
        let list = CertificateList::from_der(&der)
            .map_err(|e| bad(format!("not a DER X.509 CRL: {e}")))?;
        // The signature covers the TBS bytes as given, not a re-encoding of them.
        let tbs = {
            let mut r = SliceReader::new(&der).map_err(|e| bad(e.to_string()))?;
            let outer = r.peek_header().map_err(|e| bad(e.to_string()))?;
            let header_len = outer.encoded_len().map_err(|e| bad(e.to_string()))?;
            r.read_slice(header_len).map_err(|e| bad(e.to_string()))?;
            r.tlv_bytes().map_err(|e| bad(e.to_string()))?.to_vec()
        };
        let this_update = list.tbs_cert_list.this_update.to_unix_duration().as_secs();
        let next_update = list
            .tbs_cert_list
            .next_update
            .ok_or_else(|| bad("no nextUpdate: its freshness cannot be judged".to_owned()))?
            .to_unix_duration()
            .as_secs();
        Ok(Self {
            list,
            tbs,
            der,
            this_update,
            next_update,
        })
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The issuer's name, as text (e.g. `CN=ARK-Milan,...`).
    pub fn issuer(&self) -> String {
        self.list.tbs_cert_list.issuer.to_string()
    }

    /// The serial numbers listed as revoked, big-endian bytes.
    pub fn revoked(&self) -> Vec<&[u8]> {
        self.list
            .tbs_cert_list
            .revoked_certificates
            .iter()
            .flatten()
            .map(|r| r.serial_number.as_bytes())
            .collect()
    }

    fn issued_by(&self, ark: &x509_cert::Certificate) -> bool {
        let a = self.list.tbs_cert_list.issuer.to_der();
        let b = ark.tbs_certificate.subject.to_der();
        matches!((a, b), (Ok(a), Ok(b)) if a == b)
    }

    /// Checks the signature under `ark`'s key: RSA-PSS with SHA-384 (salt 48 bytes).
    pub fn signed_by(&self, ark: &x509_cert::Certificate) -> Result<(), String> {
        if self.list.signature_algorithm.oid.to_string() != RSA_PSS {
            return Err(format!(
                "signature algorithm {} is not RSA-PSS ({RSA_PSS})",
                self.list.signature_algorithm.oid
            ));
        }
        let spki = ark
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| e.to_string())?;
        let key = rsa::RsaPublicKey::from_public_key_der(&spki)
            .map_err(|e| format!("the ARK's key is not RSA: {e}"))?;
        let key = rsa::pss::VerifyingKey::<rsa::sha2::Sha384>::new(key);
        let sig = self
            .list
            .signature
            .as_bytes()
            .ok_or("the signature is not a whole number of bytes")?;
        let sig = rsa::pss::Signature::try_from(sig).map_err(|e| e.to_string())?;
        key.verify(&self.tbs, &sig)
            .map_err(|_| "the RSA-PSS SHA-384 signature does not verify under its key".to_owned())
    }
}

/// What the `revocation` step checks against: the chain's ARK, ASK and VCEK.
pub(crate) struct Chain<'a> {
    pub product: &'a str,
    pub ark: &'a x509_cert::Certificate,
    pub ask_serial: &'a [u8],
    pub vcek_serial: &'a [u8],
}

/// Runs the `revocation` step into `out`.
pub(crate) fn check(crls: &[Crl], chain: &Chain<'_>, now: u64, require: bool, out: &mut Outcome) {
    let product = chain.product;
    let mine: Vec<&Crl> = crls.iter().filter(|c| c.issued_by(chain.ark)).collect();
    if mine.is_empty() {
        let why = if crls.is_empty() {
            "no CRL given (--crl, or in the bundle)".to_owned()
        } else {
            let issuers: Vec<String> = crls.iter().map(Crl::issuer).collect();
            format!(
                "none of the {} CRLs given is issued by the {product} ARK (issuers: {})",
                crls.len(),
                issuers.join("; ")
            )
        };
        if require {
            out.failed(
                StepName::Revocation,
                format!("crl: {why}; a CRL is required"),
            );
        } else {
            out.unknown(
                StepName::Revocation,
                format!("not checked: {why}; the ASK and VCEK may be revoked"),
            );
        }
        return;
    }
    for crl in &mine {
        if let Err(why) = crl.signed_by(chain.ark) {
            out.failed(
                StepName::Revocation,
                format!("crl: not signed by the {product} ARK: {why}"),
            );
            return;
        }
        if now < crl.this_update {
            out.failed(
                StepName::Revocation,
                format!(
                    "crl.this_update: {} is after now ({now}): not yet valid",
                    crl.this_update
                ),
            );
            return;
        }
        if now > crl.next_update {
            out.failed(
                StepName::Revocation,
                format!(
                    "crl.next_update: stale: {} is before now ({now}); fetch a current CRL",
                    crl.next_update
                ),
            );
            return;
        }
        let revoked = crl.revoked();
        for (what, serial) in [("ASK", chain.ask_serial), ("VCEK", chain.vcek_serial)] {
            if revoked.contains(&serial) {
                out.failed(
                    StepName::Revocation,
                    format!(
                        "crl: the {what} (serial {}) is revoked by the {product} ARK",
                        hex::encode(serial)
                    ),
                );
                return;
            }
        }
    }
    let newest = mine.iter().map(|c| c.this_update).max().unwrap_or_default();
    let entries: usize = mine.iter().map(|c| c.revoked().len()).sum();
    out.proven(
        StepName::Revocation,
        format!(
            "{} CRL{} signed by the {product} ARK, current at {now} (thisUpdate {newest}), \
             {entries} revoked: neither the ASK (serial {}) nor the VCEK (serial {})",
            mine.len(),
            if mine.len() == 1 { "" } else { "s" },
            hex::encode(chain.ask_serial),
            hex::encode(chain.vcek_serial)
        ),
    );
}
