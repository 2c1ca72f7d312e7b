//! `provenance attest verify --crl` and `attest bundle --crl`: AMD certificate revocation
//! lists checked against the chain's ARK, through the binary. The CRLs are made under the
//! test root of `fixtures/attest/test-root/` (signed by its ARK, or forged by its ASK) for a
//! synthetic attestation event signed by its VCEK.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nostr::prelude::{Keys, Timestamp};
use provenance_attest::binding;
use provenance_attest::bundle::{Evidence, Platform};
use provenance_attest::snp::Vcek;
use provenance_attest::testing::{MEASUREMENT, SyntheticReport, TestChain, TestCrl};

const DAY: u64 = 86_400;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_provenance"))
        .env_remove("PROVENANCE_PASSPHRASE")
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/attest")
        .join(rel)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn chain() -> TestChain {
    TestChain::load(&fixture("test-root")).unwrap()
}

/// An attestation event over a synthetic report binding a new key, taken a minute ago.
fn synthetic_event(dir: &Path, chain: &TestChain) -> PathBuf {
    let keys = Keys::generate();
    let nonce = [0x44; 32];
    let r = SyntheticReport {
        report_data: binding::report_data(&keys.public_key().to_bytes(), &nonce),
        ..SyntheticReport::default()
    };
    let mut ev = Evidence::new(Platform::SevSnp, &r.sign(&chain.key), &nonce);
    ev.vcek = Some(hex::encode(&chain.vcek_der));
    let now = Timestamp::now().as_secs();
    let event = provenance_attest::event::sign(&ev, &keys, Timestamp::from(now - 60)).unwrap();
    let path = dir.join("attestation.json");
    fs::write(&path, serde_json::to_string(&event).unwrap()).unwrap();
    path
}

/// A CRL current now (issued a day ago, next update in a week) listing `revoked`.
fn current(revoked: Vec<Vec<u8>>) -> TestCrl {
    let now = Timestamp::now().as_secs();
    TestCrl {
        this_update: now - DAY,
        next_update: now + 7 * DAY,
        revoked,
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p
}

/// `attest verify` of `input` under the test root, with the synthetic measurement expected.
fn verify(input: &Path, extra: &[&str]) -> Output {
    let (ark, ask) = (fixture("test-root/ark.pem"), fixture("test-root/ask.pem"));
    let m = hex::encode(MEASUREMENT);
    let mut args = vec![
        "attest",
        "verify",
        s(input),
        "--snp-root",
        s(&ark),
        "--snp-ask",
        s(&ask),
        "--measurement",
        &m,
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn verdict(o: &Output) -> String {
    text(&o.stdout)
        .trim_end()
        .lines()
        .last()
        .unwrap()
        .to_owned()
}

#[test]
fn a_crl_that_lists_neither_the_ask_nor_the_vcek_proves_revocation_in_der_and_pem() {
    let dir = tempfile::tempdir().unwrap();
    let chain = chain();
    let ev = synthetic_event(dir.path(), &chain);
    let der = chain.sign_crl(&current(vec![vec![0x7f, 0x7f]]), &chain.ark_key);
    let pem = x509_pem(&der);
    for crl in [
        write(dir.path(), "crl.der", &der),
        write(dir.path(), "crl.pem", pem.as_bytes()),
    ] {
        let o = verify(&ev, &["--crl", s(&crl)]);
        let out = text(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
        assert!(
            out.contains("proven   revocation  1 CRL signed by the"),
            "{out}"
        );
        assert!(verdict(&o).ends_with("TEE claim proven (sev-snp)"), "{out}");
    }
    // --require-crl is met by it.
    let crl = dir.path().join("crl.der");
    let o = verify(&ev, &["--crl", s(&crl), "--require-crl"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
}

fn x509_pem(der: &[u8]) -> String {
    use std::fmt::Write;
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= n {
                b64.push(A[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut pem = "-----BEGIN X509 CRL-----\n".to_owned();
    for line in b64.as_bytes().chunks(64) {
        writeln!(pem, "{}", std::str::from_utf8(line).unwrap()).unwrap();
    }
    pem.push_str("-----END X509 CRL-----\n");
    pem
}

#[test]
fn a_revoked_vcek_a_stale_crl_and_a_forged_crl_fail_the_revocation_step() {
    let dir = tempfile::tempdir().unwrap();
    let chain = chain();
    let ev = synthetic_event(dir.path(), &chain);
    let vcek = Vcek::from_der(&chain.vcek_der).unwrap();
    let now = Timestamp::now().as_secs();
    let cases = [
        (
            "revoked.crl",
            chain.sign_crl(&current(vec![vcek.serial.clone()]), &chain.ark_key),
            format!(
                "revocation failed: crl: the VCEK (serial {}) is revoked by the",
                hex::encode(&vcek.serial)
            ),
        ),
        (
            "ask-revoked.crl",
            chain.sign_crl(&current(vec![chain.ask_serial()]), &chain.ark_key),
            "revocation failed: crl: the ASK (serial".to_owned(),
        ),
        (
            "stale.crl",
            chain.sign_crl(
                &TestCrl {
                    this_update: now - 30 * DAY,
                    next_update: now - DAY,
                    revoked: Vec::new(),
                },
                &chain.ark_key,
            ),
            "revocation failed: crl.next_update: stale:".to_owned(),
        ),
        (
            "forged.crl",
            chain.sign_crl(&current(Vec::new()), &chain.ask_key),
            "revocation failed: crl: not signed by the".to_owned(),
        ),
    ];
    for (name, der, want) in cases {
        let crl = write(dir.path(), name, &der);
        let o = verify(&ev, &["--crl", s(&crl)]);
        let out = text(&o.stdout);
        assert_eq!(o.status.code(), Some(1), "{name}: {out}");
        assert!(
            out.lines().any(|l| l.starts_with("failed   revocation")),
            "{name}: {out}"
        );
        assert!(verdict(&o).contains(&want), "{name}: {out}");
        // The other steps still ran.
        assert!(out.contains("proven   signature"), "{name}: {out}");
    }
}

#[test]
fn a_truncated_or_garbage_crl_is_an_error_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let chain = chain();
    let ev = synthetic_event(dir.path(), &chain);
    let der = chain.sign_crl(&current(Vec::new()), &chain.ark_key);
    for (name, bytes) in [
        ("truncated.crl", der[..der.len() - 10].to_vec()),
        ("garbage.crl", b"<html>not found</html>".to_vec()),
    ] {
        let crl = write(dir.path(), name, &bytes);
        let o = verify(&ev, &["--crl", s(&crl)]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(err.contains(name), "{name}: {err}");
        assert!(
            err.contains("revocation: crl: not a DER X.509 CRL"),
            "{name}: {err}"
        );
        assert!(text(&o.stdout).is_empty());

        // Packing it into a bundle is refused the same way.
        let o = run(&["attest", "bundle", "--event", s(&ev), "--crl", s(&crl)]);
        assert_eq!(o.status.code(), Some(2));
        assert_eq!(text(&o.stderr).lines().count(), 1);
    }
}

#[test]
fn a_bundle_carries_the_crl_so_one_file_verifies_offline() {
    let dir = tempfile::tempdir().unwrap();
    let chain = chain();
    let ev = synthetic_event(dir.path(), &chain);
    let good = write(
        dir.path(),
        "good.crl",
        &chain.sign_crl(&current(Vec::new()), &chain.ark_key),
    );
    let b = dir.path().join("bundle.json");
    let o = run(&[
        "attest",
        "bundle",
        "--event",
        s(&ev),
        "--vcek",
        s(&write(dir.path(), "vcek.der", &chain.vcek_der)),
        "--crl",
        s(&good),
        "-o",
        s(&b),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&fs::read(&b).unwrap()).unwrap();
    assert_eq!(json["crls"].as_array().unwrap().len(), 1);
    let o = verify(&b, &["--require-crl"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("proven   revocation"), "{out}");

    // A CRL given on the command line is checked too: one that revokes the VCEK fails it.
    let vcek = Vcek::from_der(&chain.vcek_der).unwrap();
    let revoked = write(
        dir.path(),
        "revoked.crl",
        &chain.sign_crl(&current(vec![vcek.serial]), &chain.ark_key),
    );
    let o = verify(&b, &["--crl", s(&revoked)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    assert!(verdict(&o).contains("revocation failed"));
}
