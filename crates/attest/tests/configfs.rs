//! Producing evidence through configfs-tsm, against a fake tree in a temporary directory (no
//! machine these tests run on has a TEE), and an attestation made through a source that
//! signs synthetic reports with the test VCEK.

mod common;

use std::fs;

use common::*;
use nostr::prelude::{Keys, Timestamp};
use provenance_attest::bundle::Platform;
use provenance_attest::configfs::{ConfigfsTsm, ReportSource, SourceError, attest};
use provenance_attest::testing::{SyntheticReport, TestChain};
use provenance_attest::{binding, verify};

/// A fake configfs-tsm entry: `provider`, `generation` and a canned `outblob`.
fn fake_tree(provider: &str, outblob: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let entry = dir.path().join("provenance");
    fs::create_dir(&entry).expect("entry");
    fs::write(entry.join("provider"), format!("{provider}\n")).expect("provider");
    fs::write(entry.join("generation"), "1\n").expect("generation");
    fs::write(entry.join("outblob"), outblob).expect("outblob");
    dir
}

#[test]
fn configfs_writes_the_report_data_and_reads_the_report() {
    let dir = fake_tree("sev_guest", b"REPORT BYTES");
    let src = ConfigfsTsm::new(dir.path(), Platform::SevSnp, "provenance");
    let data = [0x42u8; 64];
    let out = src.report(&data).expect("report");
    assert_eq!(out, b"REPORT BYTES");
    let inblob = fs::read(dir.path().join("provenance/inblob")).expect("inblob");
    assert_eq!(inblob, data);
}

#[test]
fn configfs_refuses_another_provider_and_an_empty_report() {
    let dir = fake_tree("tdx_guest", b"QUOTE");
    let src = ConfigfsTsm::new(dir.path(), Platform::SevSnp, "provenance");
    let err = src.report(&[0; 64]).expect_err("wrong provider");
    assert!(matches!(err, SourceError::Provider { .. }), "{err}");
    assert!(err.to_string().contains("\"tdx_guest\" is not sev_guest"));

    let dir = fake_tree("tdx_guest", b"");
    let src = ConfigfsTsm::new(dir.path(), Platform::Tdx, "provenance");
    assert!(
        src.report(&[0; 64])
            .expect_err("empty")
            .to_string()
            .contains("empty")
    );

    let missing = tempfile::tempdir().expect("tempdir");
    let src = ConfigfsTsm::new(missing.path().join("nope"), Platform::Tdx, "provenance");
    assert!(matches!(
        src.report(&[0; 64]).expect_err("no tree"),
        SourceError::Io { .. }
    ));
}

/// A source that answers like an SEV-SNP guest would, with synthetic reports signed by the
/// test VCEK.
struct SyntheticSource(TestChain);

impl ReportSource for SyntheticSource {
    fn report(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, SourceError> {
        let r = SyntheticReport {
            report_data: *report_data,
            ..SyntheticReport::default()
        };
        Ok(r.sign(&self.0.key))
    }

    fn platform(&self) -> Platform {
        Platform::SevSnp
    }
}

#[test]
fn attest_binds_the_key_with_a_fresh_nonce_and_verifies() {
    let src = SyntheticSource(chain());
    let keys = Keys::generate();
    let vcek = src.0.vcek_der.clone();
    let a = attest(&src, &keys, Timestamp::from(NOW - 5), Some(&vcek), None).expect("attest");
    let b = attest(&src, &keys, Timestamp::from(NOW - 5), Some(&vcek), None).expect("attest");
    assert_eq!(a.pubkey, keys.public_key());
    let nonce = |e: &nostr::prelude::Event| {
        serde_json::from_str::<provenance_attest::bundle::Evidence>(&e.content)
            .expect("evidence")
            .nonce
    };
    assert_ne!(nonce(&a), nonce(&b), "each attestation takes a fresh nonce");
    let out = verify(&event_bundle(&a), &test_policy(&src.0)).expect("usable");
    assert!(out.is_proven(), "{out:#?}");
    // The nonce of the event is the one in the binding.
    let n: binding::Nonce = hex::decode(nonce(&a))
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    assert!(
        out.step(provenance_attest::StepName::Binding)
            .expect("binding")
            .detail
            .contains(&hex::encode(n))
    );
}
