//! TDX verification: the real quotes and collateral shipped with `dcap-qvl`, with `now` pinned
//! inside the collateral's validity window.

mod common;

use common::*;
use nostr::prelude::{Keys, Timestamp};
use provenance::verdict::Status;
use provenance_attest::bundle::{Evidence, Platform};
use provenance_attest::{Outcome, Policy, StepName, event, verify};

/// 2025-07-01T00:00:00Z: inside `tdx_quote_collateral.json`'s window (2025-06-19 to 07-19).
const IN_WINDOW: u64 = 1_751_328_000;
/// 2026-03-01T00:00:00Z: inside `tdx_quote_outdated_collateral.json`'s window.
const OUTDATED_IN_WINDOW: u64 = 1_772_323_200;

fn status(out: &Outcome, step: StepName) -> Status {
    out.step(step)
        .unwrap_or_else(|| panic!("no step {step} in {out:#?}"))
        .status
}

fn detail(out: &Outcome, step: StepName) -> &str {
    &out.step(step).expect("step").detail
}

fn bundle(quote: &[u8], collateral: &str) -> provenance_attest::Bundle {
    let mut ev = Evidence::new(Platform::Tdx, quote, &[0; 32]);
    ev.collateral = Some(read(collateral).into_iter().map(char::from).collect());
    evidence_bundle(ev)
}

fn mrtd(quote: &[u8]) -> [u8; 48] {
    provenance_attest::tdx::parse_quote(quote)
        .expect("quote")
        .mr_td
}

#[test]
fn real_quote_verifies_against_its_collateral_at_a_pinned_time() {
    let quote = read("dcap-qvl/tdx_quote");
    let mut p = Policy::new(IN_WINDOW);
    p.expected.measurements = vec![mrtd(&quote)];
    let out = verify(&bundle(&quote, "dcap-qvl/tdx_quote_collateral.json"), &p).expect("usable");
    assert_eq!(out.platform, "tdx");
    for s in [
        StepName::Chain,
        StepName::Tcb,
        StepName::Policy,
        StepName::Measurement,
    ] {
        assert_eq!(status(&out, s), Status::Proven, "{s}: {out:#?}");
    }
    assert!(
        detail(&out, StepName::Tcb).starts_with("TCB status UpToDate"),
        "{out:#?}"
    );
    assert_eq!(status(&out, StepName::Binding), Status::Unknown);
}

#[test]
fn rtmrs_are_compared_when_expected() {
    let quote = read("dcap-qvl/tdx_quote");
    let td = provenance_attest::tdx::parse_quote(&quote).expect("quote");
    let mut p = Policy::new(IN_WINDOW);
    p.expected.measurements = vec![td.mr_td];
    p.expected.rtmr[0] = Some(td.rt_mr0);
    p.expected.rtmr[3] = Some(td.rt_mr3);
    let b = bundle(&quote, "dcap-qvl/tdx_quote_collateral.json");
    let out = verify(&b, &p).expect("usable");
    assert_eq!(status(&out, StepName::Measurement), Status::Proven);
    assert!(detail(&out, StepName::Measurement).contains("rtmr0, rtmr3 as expected"));
    let mut other = td.rt_mr2;
    other[0] ^= 1;
    p.expected.rtmr[2] = Some(other);
    let out = verify(&b, &p).expect("usable");
    assert_eq!(status(&out, StepName::Measurement), Status::Failed);
    assert!(detail(&out, StepName::Measurement).starts_with("report.rtmr2:"));
    p.expected.rtmr = [None; 4];
    p.expected.measurements = vec![[0; 48]];
    let out = verify(&b, &p).expect("usable");
    assert!(detail(&out, StepName::Measurement).starts_with("report.mr_td:"));
}

#[test]
fn the_tcb_status_is_reported_as_such_and_refused_unless_accepted() {
    let quote = read("dcap-qvl/tdx_quote");
    let b = bundle(&quote, "dcap-qvl/tdx_quote_collateral.json");
    let mut p = Policy::new(IN_WINDOW);
    p.tdx.accept_tcb = vec!["OutOfDate".to_owned()];
    let out = verify(&b, &p).expect("usable");
    assert_eq!(status(&out, StepName::Chain), Status::Proven);
    assert_eq!(status(&out, StepName::Tcb), Status::Failed);
    assert_eq!(
        detail(&out, StepName::Tcb),
        "tcb.status: UpToDate, not accepted (accepted: OutOfDate)"
    );
}

#[test]
fn a_platform_below_every_listed_tcb_level_fails_the_chain() {
    // `dcap-qvl`'s "outdated" sample: its platform matches no TCB level of its collateral
    // (`dcap-qvl` itself verifies it only with a TCB override, which is not used here).
    let quote = read("dcap-qvl/tdx_quote_outdated");
    let b = bundle(&quote, "dcap-qvl/tdx_quote_outdated_collateral.json");
    let out = verify(&b, &Policy::new(OUTDATED_IN_WINDOW)).expect("usable");
    assert_eq!(status(&out, StepName::Chain), Status::Failed, "{out:#?}");
    assert!(detail(&out, StepName::Chain).contains("No matching TCB level"));
    assert_eq!(status(&out, StepName::Tcb), Status::Unknown);
}

#[test]
fn expired_and_not_yet_valid_collateral_fail_the_chain() {
    let quote = read("dcap-qvl/tdx_quote");
    let b = bundle(&quote, "dcap-qvl/tdx_quote_collateral.json");
    for now in [NOW, 1_735_689_600] {
        // 2027, after nextUpdate; 2025-01-01, before issueDate
        let out = verify(&b, &Policy::new(now)).expect("usable");
        assert_eq!(
            status(&out, StepName::Chain),
            Status::Failed,
            "{now}: {out:#?}"
        );
        assert_eq!(status(&out, StepName::Tcb), Status::Unknown);
    }
}

#[test]
fn a_quote_without_collateral_is_unknown_not_proven() {
    let quote = read("dcap-qvl/tdx_quote");
    let out = verify(
        &evidence_bundle(Evidence::new(Platform::Tdx, &quote, &[0; 32])),
        &Policy::new(IN_WINDOW),
    )
    .expect("usable");
    assert_eq!(status(&out, StepName::Chain), Status::Unknown);
    assert!(!out.is_proven());
}

#[test]
fn trailing_bytes_truncation_and_sgx_quotes_are_unusable_input() {
    let quote = read("dcap-qvl/tdx_quote");
    let collateral = "dcap-qvl/tdx_quote_collateral.json";
    let p = Policy::new(IN_WINDOW);
    let mut long = quote.clone();
    long.extend_from_slice(b"xyz");
    let e = verify(&bundle(&long, collateral), &p).expect_err("unusable");
    assert_eq!((e.step, e.field.as_str()), ("input", "quote"));
    assert!(e.to_string().contains("3 trailing bytes"), "{e}");
    let e = verify(&bundle(&quote[..600], collateral), &p).expect_err("unusable");
    assert!(e.to_string().contains("not a DCAP quote"), "{e}");
    let e = verify(&bundle(&read("dcap-qvl/sgx_quote"), collateral), &p).expect_err("unusable");
    assert!(e.to_string().contains("SGX quote, not TDX"), "{e}");
    let mut b = bundle(&quote, collateral);
    if let Some(ev) = b.evidence.as_mut() {
        ev.collateral = Some("{\"not\": \"collateral\"}".to_owned());
    }
    let e = verify(&b, &p).expect_err("unusable");
    assert_eq!((e.step, e.field.as_str()), ("chain", "collateral"));
}

#[test]
fn an_event_carrying_a_quote_that_binds_another_key_fails_the_binding() {
    // A real quote cannot bind a test key: the chain holds and the binding fails.
    let quote = read("dcap-qvl/tdx_quote");
    let keys = Keys::generate();
    let mut ev = Evidence::new(Platform::Tdx, &quote, &[7; 32]);
    ev.collateral = Some(
        read("dcap-qvl/tdx_quote_collateral.json")
            .into_iter()
            .map(char::from)
            .collect(),
    );
    let event = event::sign(&ev, &keys, Timestamp::from(IN_WINDOW - 10)).expect("sign");
    let out = verify(&event_bundle(&event), &Policy::new(IN_WINDOW)).expect("usable");
    assert_eq!(status(&out, StepName::Event), Status::Proven);
    assert_eq!(status(&out, StepName::Chain), Status::Proven, "{out:#?}");
    assert_eq!(status(&out, StepName::Binding), Status::Failed);
    assert_eq!(status(&out, StepName::Freshness), Status::Proven);
}

#[test]
fn a_debug_td_fails_the_policy_step() {
    let mut quote = read("dcap-qvl/tdx_quote");
    // td_attributes: after the 48-byte header, TEE_TCB_SVN (16), MRSEAM (48),
    // MRSIGNERSEAM (48) and SEAMATTRIBUTES (8).
    quote[48 + 120] |= 0x01;
    assert_eq!(
        provenance_attest::tdx::parse_quote(&quote)
            .expect("quote")
            .td_attributes[0]
            & 1,
        1
    );
    let out = verify(
        &bundle(&quote, "dcap-qvl/tdx_quote_collateral.json"),
        &Policy::new(IN_WINDOW),
    )
    .expect("usable");
    assert_eq!(status(&out, StepName::Policy), Status::Failed, "{out:#?}");
    assert!(detail(&out, StepName::Policy).contains("debug on"));
    // The changed byte is signed: the quote no longer verifies either.
    assert_eq!(status(&out, StepName::Chain), Status::Failed);
}
