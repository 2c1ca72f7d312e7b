//! The `stream_parse` fuzz target's property over its checked-in seeds
//! (`fuzz/seeds/stream_parse/`), so that it runs in every `cargo test`.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::fs;
use std::path::PathBuf;

use provenance_signer::adapter::stream::fuzzing::{check_split, run};
use provenance_signer::adapter::stream::{Item, Kind};

#[test]
fn stream_parse_seeds_hold_the_property() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/stream_parse");
    let mut seeds: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| fs::read(e.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 10, "found {}", seeds.len());
    let (mut messages, mut overflows) = (0, 0);
    for seed in &seeds {
        check_split(seed);
        let Some((&head, rest)) = seed.split_first() else {
            continue;
        };
        let kind = if head & 1 == 0 {
            Kind::Sse
        } else {
            Kind::Ndjson
        };
        for item in run(kind, 64, &[rest]) {
            match item {
                Item::Overflow => overflows += 1,
                _ => messages += 1,
            }
        }
    }
    // Both paths run: ordinary messages and the cap.
    assert!(
        messages >= 10 && overflows >= 2,
        "{messages} messages, {overflows} overflows"
    );
}
