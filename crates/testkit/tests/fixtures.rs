//! The checked-in fixtures and schemas are what the generator produces, and every fixture
//! verifies exactly as its `expect` says.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::collections::BTreeSet;
use std::path::PathBuf;

use provenance::commitment::Salt;
use provenance::event::{self, Limits};
use provenance::verdict::Status;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn checked_in_fixtures_are_up_to_date() {
    let mut stale = Vec::new();
    for f in provenance_testkit::all() {
        let on_disk = std::fs::read_to_string(root().join(&f.path)).unwrap_or_default();
        if on_disk != f.content {
            stale.push(f.path);
        }
    }
    assert!(
        stale.is_empty(),
        "stale fixtures {stale:?}: run `cargo run -p provenance-testkit --bin gen-fixtures`"
    );
}

#[test]
fn every_event_fixture_verifies_as_expected() {
    let mut seen = 0;
    for dir in ["valid", "invalid"] {
        let mut paths: Vec<_> = std::fs::read_dir(root().join("fixtures/events").join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        for path in paths {
            let fixture: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let json = serde_json::to_string(&fixture["event"]).unwrap();
            let ev = event::parse_event(&json, &Limits::default()).unwrap();
            let mut v = event::verify(&ev);
            if let Some(verified) = v.verified().cloned() {
                let e = &fixture["evidence"];
                if let Some(output) = e["output"].as_str() {
                    v.add_evidence(verified.check_output(output.as_bytes()));
                }
                if let (Some(p), Some(s)) = (e["prompt"].as_str(), e["salt"].as_str()) {
                    v.add_evidence(
                        verified.check_prompt(p.as_bytes(), &s.parse::<Salt>().unwrap()),
                    );
                }
            }
            let failed: BTreeSet<&str> = v
                .claims()
                .iter()
                .filter(|c| c.status == Status::Failed)
                .map(|c| c.code.as_str())
                .collect();
            let expected: BTreeSet<&str> = fixture["expect"]["failed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect();
            assert_eq!(failed, expected, "{}: {:#?}", path.display(), v.claims());
            assert_eq!(
                v.holds(),
                fixture["expect"]["holds"].as_bool().unwrap(),
                "{}",
                path.display()
            );
            assert_eq!(
                dir == "valid",
                v.holds(),
                "{} is in the wrong directory",
                path.display()
            );
            // With evidence, valid fixtures must prove the output rather than assert it.
            if dir == "valid" {
                let codes: BTreeSet<&str> = v.claims().iter().map(|c| c.code.as_str()).collect();
                assert!(
                    codes.contains("output.hash.match") || codes.contains("output.hash.normalized"),
                    "{}: {codes:?}",
                    path.display()
                );
            }
            seen += 1;
        }
    }
    assert!(seen >= 20, "only {seen} fixtures");
}

#[test]
fn golden_keys_are_valid_and_distinct() {
    assert_ne!(
        provenance_testkit::golden_keys().public_key(),
        provenance_testkit::other_keys().public_key()
    );
}

#[test]
fn normalization_vectors_match_independent_expectations() {
    let vectors: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/normalize/vectors.json")).unwrap(),
    )
    .unwrap();
    let by_name = |n: &str| {
        vectors["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .unwrap()["normalized"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // Hand-written expectations, independent of the implementation.
    assert_eq!(by_name("empty"), "");
    assert_eq!(by_name("only-whitespace"), "");
    assert_eq!(by_name("leading-trailing"), "The sky is blue.");
    assert_eq!(by_name("runs-folded"), "The sky is blue.");
    assert_eq!(by_name("crlf"), "line one line two");
    assert_eq!(by_name("all-white-space"), "a b");
    assert_eq!(
        by_name("not-white-space"),
        "a\u{200b}b\u{feff}c\u{180e}d\u{2060}e"
    );
    assert_eq!(by_name("nfc-compose"), "caf\u{e9} na\u{ef}ve");
    // Canonical ordering puts the dot below first, then both compose.
    assert_eq!(by_name("nfc-reorder-marks"), "\u{1ead}");
    assert_eq!(by_name("nfc-singleton"), "\u{c5}ngstr\u{f6}m \u{3a9}");
    assert_eq!(by_name("hangul-jamo"), "\u{ac01}");
    assert_eq!(by_name("no-case-folding"), "ABC abc \u{130}");
    for case in vectors["cases"].as_array().unwrap() {
        let n = case["normalized"].as_str().unwrap();
        assert_eq!(
            provenance::digest::sha256(n.as_bytes()).to_hex(),
            case["sha256"].as_str().unwrap()
        );
    }
}
