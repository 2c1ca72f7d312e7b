//! Events signed by other Nostr software, checked claim by claim.
//!
//! Each file in `fixtures/events/external/` holds one event, copied verbatim from its source
//! (see the `README.md` there), and the outcome `provenance::event::verify` must report for
//! each claim subject: `{"event.id": "match", "event.sig": "valid", "event.kind":
//! "unexpected"}` means the claims `event.id.match`, `event.sig.valid` and
//! `event.kind.unexpected`. The negative vectors are events whose fields were edited after
//! signing (`event.id.mismatch`) or whose id was edited (`event.sig.invalid` as well).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use provenance::event::{self, Limits};
use provenance::verdict::Status;
use serde::Deserialize;
use serde_json::value::RawValue;

/// One fixture file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Vector<'a> {
    source: String,
    description: String,
    /// Claim subject (`event.id`) to expected outcome (`match`).
    expect: BTreeMap<String, String>,
    /// The event, as the exact text of the source.
    #[serde(borrow)]
    event: &'a RawValue,
}

/// The subjects every vector must state an outcome for.
const SUBJECTS: [&str; 3] = ["event.id", "event.sig", "event.kind"];

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/events/external")
}

fn fixture_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// Verifies one fixture and returns its expected `event.id` and `event.sig` outcomes.
fn check(path: &Path) -> (String, String) {
    let name = path.display();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let vector: Vector<'_> =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: not a vector: {e}"));
    assert!(
        vector.source.starts_with("https://github.com/"),
        "{name}: source must link the exact lines"
    );
    assert!(!vector.description.is_empty(), "{name}: description");
    let expected: Vec<&str> = vector.expect.keys().map(String::as_str).collect();
    assert_eq!(
        expected,
        {
            let mut s = SUBJECTS.to_vec();
            s.sort_unstable();
            s
        },
        "{name}: expect must name exactly {SUBJECTS:?}"
    );

    let parsed = event::parse_event(vector.event.get(), &Limits::default())
        .unwrap_or_else(|e| panic!("{name}: does not parse: {e}"));
    let verification = event::verify(&parsed);
    let claims = verification.claims();
    for (subject, outcome) in &vector.expect {
        let prefix = format!("{subject}.");
        let found: Vec<&str> = claims
            .iter()
            .map(|c| c.code.as_str())
            .filter(|code| code.starts_with(&prefix))
            .collect();
        assert_eq!(
            found,
            [format!("{subject}.{outcome}")],
            "{name}: claims were {claims:#?}"
        );
    }
    // None of these is a provenance event, so none can be verified as one.
    assert!(!verification.holds(), "{name}: a failed claim must show");
    assert!(
        verification.verified().is_none(),
        "{name}: no verified record"
    );
    assert!(verification.record().is_none(), "{name}: no record read");
    // Nothing was read from a non-provenance event, so nothing is merely asserted.
    assert!(
        claims.iter().all(|c| c.status != Status::Asserted),
        "{name}: {claims:#?}"
    );
    (
        vector.expect["event.id"].clone(),
        vector.expect["event.sig"].clone(),
    )
}

#[test]
fn external_events_verify_as_expected() {
    let files = fixture_files(&fixtures_dir());
    let outcomes: Vec<(String, String)> = files.iter().map(|p| check(p)).collect();
    let count = |id: &str, sig: &str| outcomes.iter().filter(|(i, s)| i == id && s == sig).count();
    // Guard against an empty or thinned-out directory: the valid events from nak and the
    // NIP texts, fields edited after signing (NIP-98, NIP-57, NIP-47), an edited id (nak).
    assert!(files.len() >= 18, "only {} fixtures", files.len());
    assert!(count("match", "valid") >= 14);
    assert!(count("mismatch", "valid") >= 3);
    assert!(count("mismatch", "invalid") >= 1);
}

#[test]
fn nip98_and_nip57_examples_do_not_match_their_ids() {
    for name in [
        "nip98-http-auth-example.json",
        "nip57-zap-request-example.json",
    ] {
        let (id, _) = check(&fixtures_dir().join(name));
        assert_eq!(id, "mismatch", "{name}");
    }
}
