//! The `adapter_parse` fuzz target's property over its checked-in seeds
//! (`fuzz/seeds/adapter_parse/`: recorded real answers of every API with a first byte that
//! picks the API and a piece size), so that it runs in every `cargo test`; and every seed is
//! read as an answer with text, so the seeds reach the adapters rather than their error paths.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::fs;
use std::path::PathBuf;

use provenance_signer::adapter::Generation;
use provenance_signer::adapter::fuzzing::{APIS, check_answer, stream};

#[test]
fn adapter_parse_seeds_hold_the_property_and_read_as_answers() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/adapter_parse");
    let mut seeds: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            (path.clone(), fs::read(path).unwrap())
        })
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 15, "found {}", seeds.len());
    let mut apis = std::collections::BTreeSet::new();
    for (path, seed) in &seeds {
        check_answer(seed);
        let (&head, rest) = seed.split_first().unwrap();
        let api = APIS[usize::from(head) % APIS.len()];
        apis.insert(api.name());
        let streamed = path.to_string_lossy().ends_with("-stream");
        let read = if streamed {
            stream(api, &[rest])
        } else {
            let mut g = Generation::default();
            g.apply_body(api, rest);
            g
        };
        assert_eq!(read.unreadable, 0, "{}", path.display());
        assert!(read.complete, "{} is not a whole answer", path.display());
        assert!(!read.output().0.is_empty(), "{}: no output", path.display());
    }
    assert_eq!(apis.len(), APIS.len(), "every API has a seed: {apis:?}");
}
