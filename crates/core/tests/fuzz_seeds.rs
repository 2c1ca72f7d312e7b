//! The fuzz targets' properties over their checked-in seeds (`fuzz/seeds/<target>/`), so that
//! they run in every `cargo test`, without a nightly toolchain or libFuzzer.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::fs;
use std::path::PathBuf;

/// The seed files of one fuzz target, with their names.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let mut seeds: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&path).unwrap())
        })
        .collect();
    seeds.sort();
    seeds
}

/// `fuzz/fuzz_targets/nip19_decode.rs`.
#[test]
fn nip19_decode_seeds_round_trip() {
    let seeds = seeds("nip19_decode");
    assert!(
        seeds.len() >= 10,
        "expected at least 10 seeds, found {}",
        seeds.len()
    );
    let mut decoded = 0;
    for (name, data) in &seeds {
        let input = std::str::from_utf8(data).unwrap_or_else(|e| panic!("{name}: {e}"));
        provenance::nip19::fuzzing::check_round_trip(input);
        decoded += usize::from(provenance::nip19::decode_uri(input).is_ok());
    }
    // The seeds mix strings that decode with strings that must not, so both paths run.
    assert!(
        decoded > 0 && decoded < seeds.len(),
        "{decoded} of {} seeds decode",
        seeds.len()
    );
}

/// `fuzz/fuzz_targets/event_parse.rs`.
#[test]
fn event_parse_seeds_hold_the_property() {
    let seeds = seeds("event_parse");
    assert!(seeds.len() >= 10, "found {}", seeds.len());
    let limits = provenance::event::Limits::default();
    let mut parsed = 0;
    for (_, data) in &seeds {
        provenance::event::fuzzing::check_parse(data);
        parsed += usize::from(provenance::event::parse_event_bytes(data, &limits).is_ok());
    }
    // Both paths run: some seeds parse (the golden events, the flipped signature, the escapes),
    // the rest must not.
    assert!(
        parsed >= 4 && parsed < seeds.len(),
        "{parsed} of {} seeds parse",
        seeds.len()
    );
}
