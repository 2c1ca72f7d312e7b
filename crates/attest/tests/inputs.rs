//! The inputs a verifier hands in, read by the library: an event-or-bundle file, bare
//! evidence as raw bytes or hex, and expected values written as hex.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use provenance_attest::Expected;
use provenance_attest::bundle::{Bundle, Platform, ReadError};

fn report() -> Vec<u8> {
    let hex = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/attest/sev/report_milan.hex"),
    )
    .unwrap();
    hex::decode(hex.trim()).unwrap()
}

#[test]
fn bare_evidence_reads_the_same_from_raw_bytes_and_from_hex() {
    let raw = report();
    let from_raw = Bundle::bare(Platform::SevSnp, &raw);
    let from_hex = Bundle::bare(
        Platform::SevSnp,
        format!("{}\n", hex::encode(&raw)).as_bytes(),
    );
    assert_eq!(from_raw, from_hex);
    assert_eq!(from_raw.evidence.as_ref().unwrap().raw().unwrap(), raw);
    // What `bundle` writes, `read` reads back as the same bundle.
    assert_eq!(
        Bundle::read(from_raw.to_json().as_bytes()).unwrap(),
        from_raw
    );
}

#[test]
fn a_file_that_is_neither_an_event_nor_a_bundle_is_named_so() {
    assert!(matches!(
        Bundle::read(b"{not json"),
        Err(ReadError::NotJson(_))
    ));
    assert!(matches!(
        Bundle::read(br#"{"kind":1}"#),
        Err(ReadError::Neither)
    ));
    let e = Bundle::read(br#"{"provenance_attest_bundle":2}"#).unwrap_err();
    assert!(matches!(e, ReadError::Bundle(_)), "{e}");
    // An event is taken as one (checked when verified).
    let b = Bundle::read(br#"{"kind":1989,"sig":"00"}"#).unwrap();
    assert!(b.event.is_some() && b.evidence.is_none());
}

#[test]
fn expected_values_are_read_from_hex() {
    let mut expected = Expected::default();
    let m = "ab".repeat(48);
    expected.accept_measurement_hex(&m).unwrap();
    assert_eq!(expected.measurements, [[0xab; 48]]);
    assert_eq!(
        expected.accept_measurement_hex("abcd"),
        Err("48 bytes of hex (96 digits)")
    );
    expected.require_rtmr(&format!("2={m}")).unwrap();
    assert_eq!(expected.rtmr[2], Some([0xab; 48]));
    assert_eq!(expected.require_rtmr(&m), Err("N=HEX"));
    assert_eq!(expected.require_rtmr(&format!("4={m}")), Err("N is 0 to 3"));
}
