//! The `lightning_parse` fuzz target's property over its checked-in seeds
//! (`fuzz/seeds/lightning_parse/`), so that it runs in every `cargo test`, without a nightly
//! toolchain or libFuzzer, and the seeds stay what they claim to be.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::fs;
use std::path::PathBuf;

use provenance_pay::bolt11::Invoice;

#[test]
fn lightning_parse_seeds_hold_the_property() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/lightning_parse");
    let mut seen = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = fs::read(&path).unwrap();
        provenance_pay::zap::fuzzing::check(&bytes);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = String::from_utf8_lossy(&bytes[1..]).into_owned();
        if name.starts_with("bolt11") {
            // The invoice seeds parse: the fuzzer starts from inputs that reach past the checksum.
            assert!(Invoice::parse(&text).is_ok(), "{name}");
        }
        if name == "zap-request-nostr-tools" {
            // nostr-tools' zap request is well formed; only its recipient differs.
            let why = provenance_pay::zap::check_request(
                &text,
                21_000,
                &"b889ff5b1513b641e2a139f661a661364979c5beee91842f8f0ef42ab558e9d4"
                    .parse()
                    .unwrap(),
            );
            assert!(why.is_ok(), "{why:?}");
        }
        seen += 1;
    }
    assert!(seen >= 4, "{seen} seeds");
}
