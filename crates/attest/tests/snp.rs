//! SEV-SNP verification: the real Milan report shipped with the `sev` crate, and synthetic
//! reports signed by the test chain for the binding and every negative.

mod common;

use common::*;
use nostr::prelude::Keys;
use provenance::verdict::Status;
use provenance_attest::bundle::{Evidence, Platform};
use provenance_attest::{InputError, Outcome, Policy, StepName, verify};

fn status(out: &Outcome, step: StepName) -> Status {
    out.step(step)
        .unwrap_or_else(|| panic!("no step {step} in {out:#?}"))
        .status
}

fn detail(out: &Outcome, step: StepName) -> &str {
    &out.step(step).expect("step").detail
}

fn milan_report() -> Vec<u8> {
    let hex_text = String::from_utf8(read("sev/report_milan.hex")).expect("utf-8");
    hex::decode(hex_text.trim()).expect("hex")
}

const MILAN_MEASUREMENT: &str = "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f";

fn milan_bundle(report: &[u8], vcek: &[u8]) -> provenance_attest::Bundle {
    let mut ev = Evidence::new(Platform::SevSnp, report, &[0; 32]);
    ev.vcek = Some(hex::encode(vcek));
    evidence_bundle(ev)
}

fn milan_policy() -> Policy {
    let mut p = Policy::new(NOW);
    let mut m = [0u8; 48];
    m.copy_from_slice(&hex::decode(MILAN_MEASUREMENT).expect("hex"));
    p.expected.measurements = vec![m];
    p
}

#[test]
fn real_milan_report_chains_to_amd_and_its_vcek_matches() {
    let out = verify(
        &milan_bundle(&milan_report(), &read("sev/vcek_milan.der")),
        &milan_policy(),
    )
    .expect("usable");
    for s in [
        StepName::Chain,
        StepName::Signature,
        StepName::Tcb,
        StepName::Chip,
        StepName::Policy,
        StepName::Measurement,
    ] {
        assert_eq!(status(&out, s), Status::Proven, "{s}: {out:#?}");
    }
    assert!(
        detail(&out, StepName::Chain).contains("Milan ASK"),
        "{out:#?}"
    );
    assert!(detail(&out, StepName::Signature).contains("version 2"));
    // Bare evidence names no key: the claim is not proven.
    assert_eq!(status(&out, StepName::Binding), Status::Unknown);
    assert_eq!(status(&out, StepName::Freshness), Status::Unknown);
    assert!(!out.is_proven());
    assert_eq!(out.status(), Status::Unknown);
}

#[test]
fn real_milan_report_with_the_turin_vcek_fails_the_signature() {
    let out = verify(
        &milan_bundle(&milan_report(), &read("sev/vcek_turin.der")),
        &milan_policy(),
    )
    .expect("usable");
    // The Turin VCEK chains to AMD's Turin root, but it did not sign this report.
    assert_eq!(status(&out, StepName::Chain), Status::Proven, "{out:#?}");
    assert!(detail(&out, StepName::Chain).contains("Turin"));
    assert_eq!(status(&out, StepName::Signature), Status::Failed);
    assert!(out.has_failed());
}

#[test]
fn real_milan_report_with_one_byte_changed_fails_the_signature() {
    let mut report = milan_report();
    report[0x90] ^= 1; // the measurement
    let out = verify(
        &milan_bundle(&report, &read("sev/vcek_milan.der")),
        &milan_policy(),
    )
    .expect("usable");
    assert_eq!(status(&out, StepName::Signature), Status::Failed);
    assert_eq!(status(&out, StepName::Measurement), Status::Failed);
}

#[test]
fn real_milan_vcek_outside_its_validity_fails_the_chain() {
    let mut p = milan_policy();
    p.now = 1_577_836_800; // 2020-01-01, before the VCEK's notBefore (2023)
    let out = verify(
        &milan_bundle(&milan_report(), &read("sev/vcek_milan.der")),
        &p,
    )
    .expect("usable");
    assert_eq!(status(&out, StepName::Chain), Status::Failed);
    assert!(detail(&out, StepName::Chain).contains("vcek.validity"));
    assert_eq!(status(&out, StepName::Signature), Status::Unknown);
}

#[test]
fn synthetic_event_binding_the_key_proves_every_step() {
    let chain = chain();
    let keys = Keys::generate();
    let (event, _) = snp_event(&chain, &keys, |_| {});
    let out = verify(&event_bundle(&event), &test_policy(&chain)).expect("usable");
    assert!(out.is_proven(), "{out:#?}");
    assert_eq!(out.steps.len(), 10);
    assert!(detail(&out, StepName::Binding).contains(&keys.public_key().to_hex()));
    // Every step proven but revocation, which no CRL was given for: a warning, named.
    let warnings: Vec<StepName> = out.warnings().map(|s| s.step).collect();
    assert_eq!(warnings, [StepName::Revocation], "{out:#?}");
    assert!(detail(&out, StepName::Revocation).starts_with("not checked: no CRL given"));
}

#[test]
fn the_test_root_is_not_trusted_by_default() {
    let chain = chain();
    let keys = Keys::generate();
    let (event, _) = snp_event(&chain, &keys, |_| {});
    let mut p = test_policy(&chain);
    p.snp_roots = None; // AMD's roots only
    let out = verify(&event_bundle(&event), &p).expect("usable");
    assert_eq!(status(&out, StepName::Chain), Status::Failed, "{out:#?}");
    assert!(detail(&out, StepName::Chain).contains("not signed by the ASK"));
    assert!(!out.is_proven());
}

#[test]
fn one_bit_of_report_data_flipped_fails_the_binding_only() {
    let chain = chain();
    let keys = Keys::generate();
    let (event, _) = snp_event(&chain, &keys, |r| r.report_data[17] ^= 0x04);
    let out = verify(&event_bundle(&event), &test_policy(&chain)).expect("usable");
    assert_eq!(status(&out, StepName::Binding), Status::Failed, "{out:#?}");
    assert!(detail(&out, StepName::Binding).starts_with("report.report_data:"));
    assert_eq!(
        out.first_unproven().map(|s| s.step),
        Some(StepName::Binding)
    );
}

#[test]
fn a_report_binding_another_key_fails_the_binding() {
    let chain = chain();
    let (keys, other) = (Keys::generate(), Keys::generate());
    let (event, _) = snp_event(&chain, &keys, |r| {
        r.report_data =
            provenance_attest::binding::report_data(&other.public_key().to_bytes(), &[0x5a; 32]);
    });
    let out = verify(&event_bundle(&event), &test_policy(&chain)).expect("usable");
    assert_eq!(status(&out, StepName::Binding), Status::Failed);
}

fn with_vcek(event: &nostr::prelude::Event, keys: &Keys, vcek: &[u8]) -> nostr::prelude::Event {
    let mut ev: Evidence = serde_json::from_str(&event.content).expect("evidence");
    ev.vcek = Some(hex::encode(vcek));
    provenance_attest::event::sign(&ev, keys, event.created_at).expect("sign")
}

#[test]
fn a_wrong_vcek_fails_the_signature() {
    let chain = chain();
    let keys = Keys::generate();
    let (event, _) = snp_event(&chain, &keys, |_| {});
    let event = with_vcek(&event, &keys, &chain.other_vcek_der);
    let out = verify(&event_bundle(&event), &test_policy(&chain)).expect("usable");
    assert_eq!(status(&out, StepName::Chain), Status::Proven);
    assert_eq!(
        status(&out, StepName::Signature),
        Status::Failed,
        "{out:#?}"
    );
}

#[test]
fn a_vcek_with_a_lower_tcb_than_the_report_fails_the_tcb() {
    let chain = chain();
    let keys = Keys::generate();
    let (event, _) = snp_event(&chain, &keys, |_| {});
    let event = with_vcek(&event, &keys, &chain.vcek_low_tcb_der);
    let out = verify(&event_bundle(&event), &test_policy(&chain)).expect("usable");
    // Same key, so the signature holds: only the TCB check catches it.
    assert_eq!(status(&out, StepName::Signature), Status::Proven);
    assert_eq!(status(&out, StepName::Tcb), Status::Failed, "{out:#?}");
    assert!(
        detail(&out, StepName::Tcb).contains("snp 7 lower than the report's 8"),
        "{}",
        detail(&out, StepName::Tcb)
    );
}

#[test]
fn a_debuggable_guest_fails_the_policy_unless_allowed() {
    let chain = chain();
    let keys = Keys::generate();
    let (event, _) = snp_event(&chain, &keys, |r| r.policy |= 1 << 19);
    let mut p = test_policy(&chain);
    let out = verify(&event_bundle(&event), &p).expect("usable");
    assert_eq!(status(&out, StepName::Policy), Status::Failed);
    assert!(detail(&out, StepName::Policy).contains("debugging allowed"));
    p.snp.allow_debug = true;
    assert!(
        verify(&event_bundle(&event), &p)
            .expect("usable")
            .is_proven()
    );
}

#[test]
fn a_migration_agent_fails_the_policy() {
    let chain = chain();
    let keys = Keys::generate();
    let (event, _) = snp_event(&chain, &keys, |r| r.policy |= 1 << 18);
    let out = verify(&event_bundle(&event), &test_policy(&chain)).expect("usable");
    assert_eq!(status(&out, StepName::Policy), Status::Failed);
    assert!(detail(&out, StepName::Policy).contains("migration agent allowed"));
}

#[test]
fn an_unknown_measurement_fails_and_no_allow_list_is_unknown() {
    let chain = chain();
    let keys = Keys::generate();
    let (event, _) = snp_event(&chain, &keys, |r| r.measurement = [0x99; 48]);
    let mut p = test_policy(&chain);
    let out = verify(&event_bundle(&event), &p).expect("usable");
    assert_eq!(status(&out, StepName::Measurement), Status::Failed);
    p.expected.measurements.clear();
    let out = verify(&event_bundle(&event), &p).expect("usable");
    assert_eq!(status(&out, StepName::Measurement), Status::Unknown);
    assert!(!out.is_proven());
}

#[test]
fn a_masked_chip_id_fails_the_chip_step() {
    let chain = chain();
    let keys = Keys::generate();
    let (event, _) = snp_event(&chain, &keys, |r| {
        r.chip_id = [0; 64];
        r.version = 3;
    });
    let out = verify(&event_bundle(&event), &test_policy(&chain)).expect("usable");
    assert_eq!(status(&out, StepName::Chip), Status::Failed, "{out:#?}");
}

#[test]
fn report_versions_2_to_5_are_read_and_6_is_refused() {
    let chain = chain();
    let keys = Keys::generate();
    for v in [2, 3, 4, 5] {
        let (event, _) = snp_event(&chain, &keys, |r| r.version = v);
        let out = verify(&event_bundle(&event), &test_policy(&chain)).expect("usable");
        assert!(out.is_proven(), "version {v}: {out:#?}");
    }
    let (event, _) = snp_event(&chain, &keys, |r| r.version = 6);
    let err = verify(&event_bundle(&event), &test_policy(&chain)).expect_err("refused");
    assert_eq!(err.field, "report.version");
    assert!(err.to_string().contains("version 6 is newer"), "{err}");
}

fn input_error(report: &[u8]) -> InputError {
    let chain = chain();
    let mut ev = Evidence::new(Platform::SevSnp, report, &[0; 32]);
    ev.vcek = Some(hex::encode(&chain.vcek_der));
    verify(&evidence_bundle(ev), &test_policy(&chain)).expect_err("unusable")
}

#[test]
fn truncated_and_oversized_reports_are_unusable_input() {
    let report = milan_report();
    let e = input_error(&report[..1000]);
    assert_eq!((e.step, e.field.as_str()), ("input", "report"));
    assert!(e.to_string().contains("truncated: 1000 bytes"), "{e}");
    let mut long = report.clone();
    long.push(0);
    assert!(
        input_error(&long)
            .to_string()
            .contains("oversized: 1185 bytes")
    );
    assert!(input_error(&[]).to_string().contains("truncated: 0 bytes"));
}

#[test]
fn a_vcek_that_is_not_a_certificate_is_unusable_input() {
    let e =
        verify(&milan_bundle(&milan_report(), b"not der"), &milan_policy()).expect_err("unusable");
    assert_eq!((e.step, e.field.as_str()), ("chain", "vcek"));
}

#[test]
fn freshness_by_challenge_and_by_age() {
    let chain = chain();
    let keys = Keys::generate();
    let (event, nonce) = snp_event(&chain, &keys, |_| {});
    let mut p = test_policy(&chain);
    p.challenge = Some(nonce);
    let out = verify(&event_bundle(&event), &p).expect("usable");
    assert!(out.is_proven());
    assert!(detail(&out, StepName::Freshness).contains("challenge"));
    p.challenge = Some([1; 32]);
    let out = verify(&event_bundle(&event), &p).expect("usable");
    assert_eq!(status(&out, StepName::Freshness), Status::Failed);
    p.challenge = None;
    p.max_age = 30; // the event is 60 s old
    let out = verify(&event_bundle(&event), &p).expect("usable");
    assert_eq!(status(&out, StepName::Freshness), Status::Failed);
    assert!(detail(&out, StepName::Freshness).contains("over the maximum age of 30 s"));
    p.max_age = 3600;
    p.now = NOW - 3600; // the event claims a time an hour after "now"
    let out = verify(&event_bundle(&event), &p).expect("usable");
    assert_eq!(status(&out, StepName::Freshness), Status::Failed);
    assert!(detail(&out, StepName::Freshness).contains("after now"));
}

#[test]
fn a_tampered_event_fails_and_nothing_else_is_trusted() {
    let chain = chain();
    let keys = Keys::generate();
    let (event, _) = snp_event(&chain, &keys, |_| {});
    let mut json = serde_json::to_value(&event).expect("json");
    json["created_at"] = serde_json::json!(NOW - 30);
    let mut b = event_bundle(&event);
    b.event = Some(json);
    let out = verify(&b, &test_policy(&chain)).expect("usable");
    assert_eq!(status(&out, StepName::Event), Status::Failed, "{out:#?}");
    assert_eq!(out.platform, "sev-snp");
    assert!(out.steps[1..].iter().all(|s| s.status == Status::Unknown));
}

#[test]
fn bundles_round_trip_and_bad_bundles_are_named() {
    let chain = chain();
    let keys = Keys::generate();
    let (event, _) = snp_event(&chain, &keys, |_| {});
    let b = event_bundle(&event);
    let back = provenance_attest::Bundle::from_json(b.to_json().as_bytes()).expect("parses");
    assert_eq!(back, b);
    for (bad, want) in [
        (&b"{}"[..], "missing field"),
        (
            br#"{"provenance_attest_bundle":2,"vcek":"00"}"#,
            "version 2",
        ),
        (br#"{"provenance_attest_bundle":1}"#, "neither"),
        (b"[1,2", "not a bundle"),
    ] {
        let e = provenance_attest::Bundle::from_json(bad).expect_err("bad");
        assert!(e.to_string().contains(want), "{e}");
        assert!(!e.to_string().contains('\n'));
    }
}

#[test]
fn the_attestation_reference_names_the_event_and_the_evidence_digest() {
    let chain = chain();
    let keys = Keys::generate();
    let (event, _) = snp_event(&chain, &keys, |_| {});
    let checked = provenance_attest::event::check(event.clone())
        .expect("usable")
        .expect("holds");
    let r = provenance_attest::event::attestation_ref(&checked);
    assert_eq!(r.kind, "sev-snp");
    let ev: Evidence = serde_json::from_str(&event.content).expect("evidence");
    let raw = hex::decode(&ev.evidence).expect("hex");
    assert_eq!(r.sha256, provenance::digest::sha256(&raw));
    let uri = r.uri.expect("uri");
    let id = provenance::nip19::decode_note(uri.trim_start_matches("nostr:")).expect("note");
    assert_eq!(id, event.id);
}
