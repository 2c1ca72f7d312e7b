//! SEV-SNP revocation: certificate revocation lists signed by the test ARK (and forged by its
//! ASK), checked against synthetic evidence under the test chain: an empty CRL passes, a
//! listed VCEK or ASK is revoked, a stale or not yet valid CRL fails, a CRL signed by another
//! key fails, garbage is unusable input, and no CRL is a warning unless one is required.

mod common;

use common::*;
use nostr::prelude::Keys;
use provenance::verdict::Status;
use provenance_attest::crl::Crl;
use provenance_attest::snp::Vcek;
use provenance_attest::testing::{TestChain, TestCrl};
use provenance_attest::{Bundle, Outcome, Policy, StepName, verify};

const DAY: u64 = 86_400;

/// A CRL current at [`NOW`]: issued a day before, next update in a week.
fn current(revoked: Vec<Vec<u8>>) -> TestCrl {
    TestCrl {
        this_update: NOW - DAY,
        next_update: NOW + 7 * DAY,
        revoked,
    }
}

fn vcek_serial(chain: &TestChain) -> Vec<u8> {
    Vcek::from_der(&chain.vcek_der).expect("test VCEK").serial
}

fn event_bundle_with(chain: &TestChain, crls: &[Vec<u8>]) -> Bundle {
    let (event, _) = snp_event(chain, &Keys::generate(), |_| {});
    let mut b = event_bundle(&event);
    b.crls = crls.iter().map(hex::encode).collect();
    b
}

fn run(chain: &TestChain, crl: &TestCrl, key: &rsa::RsaPrivateKey) -> Outcome {
    let der = chain.sign_crl(crl, key);
    verify(&event_bundle_with(chain, &[der]), &test_policy(chain)).expect("usable")
}

fn revocation(out: &Outcome) -> (Status, &str) {
    let s = out.step(StepName::Revocation).expect("a revocation step");
    (s.status, &s.detail)
}

#[test]
fn a_crl_of_the_ark_that_lists_neither_the_ask_nor_the_vcek_passes() {
    let chain = chain();
    // Another serial is listed: the check compares serials, not the list's length.
    let out = run(&chain, &current(vec![vec![0x7f, 0x01]]), &chain.ark_key);
    let (status, detail) = revocation(&out);
    assert_eq!(status, Status::Proven, "{out:#?}");
    assert!(detail.contains("signed by the TEST ARK"), "{detail}");
    assert!(
        detail.contains(&format!(
            "VCEK (serial {})",
            hex::encode(vcek_serial(&chain))
        )),
        "{detail}"
    );
    assert!(out.is_proven(), "{out:#?}");
    assert_eq!(out.warnings().count(), 0);
    // The step runs right after the chain it checks.
    let names: Vec<StepName> = out.steps.iter().map(|s| s.step).collect();
    assert_eq!(names[1..3], [StepName::Chain, StepName::Revocation]);
}

#[test]
fn a_listed_vcek_is_revoked() {
    let chain = chain();
    let out = run(&chain, &current(vec![vcek_serial(&chain)]), &chain.ark_key);
    let (status, detail) = revocation(&out);
    assert_eq!(status, Status::Failed, "{out:#?}");
    assert!(detail.starts_with("crl: the VCEK (serial "), "{detail}");
    assert!(detail.contains("is revoked by the TEST ARK"), "{detail}");
    assert_eq!(out.status(), Status::Failed);
    assert_eq!(
        out.deciding_step().map(|s| s.step),
        Some(StepName::Revocation)
    );
}

#[test]
fn a_listed_ask_is_revoked() {
    let chain = chain();
    let out = run(&chain, &current(vec![chain.ask_serial()]), &chain.ark_key);
    let (status, detail) = revocation(&out);
    assert_eq!(status, Status::Failed, "{out:#?}");
    assert!(detail.starts_with("crl: the ASK (serial "), "{detail}");
}

#[test]
fn a_stale_crl_fails_the_revocation_step_and_says_so() {
    let chain = chain();
    let stale = TestCrl {
        this_update: NOW - 30 * DAY,
        next_update: NOW - DAY,
        revoked: Vec::new(),
    };
    let out = run(&chain, &stale, &chain.ark_key);
    let (status, detail) = revocation(&out);
    assert_eq!(status, Status::Failed, "{out:#?}");
    assert!(detail.starts_with("crl.next_update: stale:"), "{detail}");
    assert!(!out.is_proven());

    let future = TestCrl {
        this_update: NOW + DAY,
        next_update: NOW + 8 * DAY,
        revoked: Vec::new(),
    };
    let out = run(&chain, &future, &chain.ark_key);
    let (status, detail) = revocation(&out);
    assert_eq!(status, Status::Failed, "{out:#?}");
    assert!(detail.contains("not yet valid"), "{detail}");
}

#[test]
fn a_crl_in_the_arks_name_signed_by_another_key_fails() {
    let chain = chain();
    let out = run(&chain, &current(Vec::new()), &chain.ask_key);
    let (status, detail) = revocation(&out);
    assert_eq!(status, Status::Failed, "{out:#?}");
    assert!(
        detail.starts_with("crl: not signed by the TEST ARK:"),
        "{detail}"
    );

    // A genuine CRL altered after signing: one byte of the issuer's name.
    let mut der = chain.sign_crl(&current(Vec::new()), &chain.ark_key);
    let at = der
        .windows(8)
        .position(|w| w == b"TEST-ARK")
        .expect("the issuer's name");
    der[at + 5] ^= 0x01;
    let crl = Crl::parse(&der).expect("still a CRL");
    let ark = x509_cert_from_pem(&chain.ark_pem);
    assert!(crl.signed_by(&ark).is_err());
}

fn x509_cert_from_pem(pem: &[u8]) -> x509_cert::Certificate {
    use x509_cert::der::DecodePem;
    x509_cert::Certificate::from_pem(pem).expect("PEM")
}

#[test]
fn a_crl_reads_from_der_and_pem_and_garbage_is_one_line_unusable_input() {
    let chain = chain();
    let der = chain.sign_crl(&current(vec![vec![5]]), &chain.ark_key);
    let crl = Crl::parse(&der).expect("DER");
    assert_eq!(crl.der(), der.as_slice());
    assert_eq!(crl.revoked(), [&[5u8][..]]);
    assert_eq!(crl.this_update, NOW - DAY);
    assert_eq!(crl.next_update, NOW + 7 * DAY);
    let pem =
        x509_cert::der::pem::encode_string("X509 CRL", x509_cert::der::pem::LineEnding::LF, &der)
            .expect("PEM");
    assert_eq!(
        Crl::parse(pem.as_bytes()).expect("PEM").der(),
        der.as_slice()
    );

    let cert_pem = String::from_utf8(chain.ark_pem.clone()).expect("utf-8");
    for (bytes, want) in [
        (
            der[..der.len() / 2].to_vec(),
            "revocation: crl: not a DER X.509 CRL",
        ),
        (
            b"not a crl at all".to_vec(),
            "revocation: crl: not a DER X.509 CRL",
        ),
        (Vec::new(), "revocation: crl: not a DER X.509 CRL"),
        (
            [der.clone(), vec![0]].concat(),
            "revocation: crl: not a DER X.509 CRL",
        ),
        (
            cert_pem.into_bytes(),
            "revocation: crl: PEM label \"CERTIFICATE\"",
        ),
    ] {
        let e = Crl::parse(&bytes).expect_err("unusable");
        let text = e.to_string();
        assert!(text.starts_with(want), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }

    // In a bundle: the whole verification is unusable input, naming the CRL.
    let b = event_bundle_with(&chain, &[der[..40].to_vec()]);
    let e = verify(&b, &test_policy(&chain)).expect_err("unusable");
    assert_eq!(e.step, "revocation");
    assert_eq!(e.field, "bundle.crls[0]");
}

#[test]
fn no_crl_is_a_warning_unless_one_is_required() {
    let chain = chain();
    let b = event_bundle_with(&chain, &[]);
    let out = verify(&b, &test_policy(&chain)).expect("usable");
    assert_eq!(revocation(&out).0, Status::Unknown);
    assert!(out.is_proven(), "{out:#?}");
    assert_eq!(out.status(), Status::Proven);
    assert_eq!(out.deciding_step(), None);
    assert_eq!(out.warnings().count(), 1);

    let mut policy = test_policy(&chain);
    policy.require_crl = true;
    let out = verify(&b, &policy).expect("usable");
    let (status, detail) = revocation(&out);
    assert_eq!(status, Status::Failed, "{out:#?}");
    assert!(detail.contains("a CRL is required"), "{detail}");
    assert!(!out.is_proven());

    // A CRL from the policy counts like one from the bundle.
    policy.crls = vec![Crl::parse(&chain.sign_crl(&current(Vec::new()), &chain.ark_key)).unwrap()];
    let out = verify(&b, &policy).expect("usable");
    assert!(out.is_proven(), "{out:#?}");
}

#[test]
fn a_crl_of_another_ark_does_not_apply_and_is_named() {
    let chain = chain();
    // A CRL in the ASK's name (a CA of its own) is not one of the test ARK's.
    let other = chain.sign_crl_as(&chain.ask_pem, &current(Vec::new()), &chain.ask_key);
    let mut policy: Policy = test_policy(&chain);
    policy.crls = vec![Crl::parse(&other).expect("a CRL")];
    let out = verify(&event_bundle_with(&chain, &[]), &policy).expect("usable");
    let (status, detail) = revocation(&out);
    assert_eq!(status, Status::Unknown, "{out:#?}");
    assert!(
        detail.contains("none of the 1 CRLs given is issued by the TEST ARK"),
        "{detail}"
    );
    assert!(detail.contains("CN=TEST-ASK"), "{detail}");
}

#[test]
fn a_bundle_carries_its_crls_through_json() {
    let chain = chain();
    let der = chain.sign_crl(&current(Vec::new()), &chain.ark_key);
    let b = event_bundle_with(&chain, &[der]);
    let back = Bundle::from_json(b.to_json().as_bytes()).expect("bundle");
    assert_eq!(back.crls, b.crls);
    let out = verify(&back, &test_policy(&chain)).expect("usable");
    assert_eq!(revocation(&out).0, Status::Proven, "{out:#?}");
    assert!(!b.to_json().contains("\"crls\": []"));
    assert!(!event_bundle_with(&chain, &[]).to_json().contains("crls"));
}
