//! Differential test against an independent Nostr implementation: npm `nostr-tools`, both its
//! pure-JavaScript verifier (@noble/curves) and its WebAssembly one (`nostr-wasm`, which is
//! libsecp256k1 compiled to wasm).
//!
//! - Events we sign over records with hard content (control characters, U+2028/U+2029,
//!   astral-plane characters, `</script>`, backslashes and quotes, unusual Unicode, a 10 KiB
//!   tag value, a thousand tags) must verify there, with the id it recomputes equal to ours.
//! - Events nostr-tools signs (`finalizeEvent`) over our canonical records and tags must pass
//!   every structural check of [`event::verify`] here.
//! - Events tampered by one character of content must be rejected by both sides.
//! - The external fixtures (`fixtures/events/external/`) must get the same verdicts there.
//!
//! The JavaScript side is `tests/differential/oracle.mjs` (protocol in its header), run with
//! `node`; install its pinned dependencies with `npm ci --prefix tests/differential`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use provenance::canonical::to_canonical_json;
use provenance::clock::FixedClock;
use provenance::event::{self, KIND, Limits, Verification};
use provenance::nostr::prelude::{Kind, Tag, UnsignedEvent};
use provenance::record::{Runtime, Sampling};
use provenance::verdict::{Code, Status};
use provenance::{Event, EventId, Keys, Model, Output, Record, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};

/// The claims that make an event a verified provenance event.
const STRUCTURAL: [Code; 5] = [
    Code::EventIdMatch,
    Code::EventSigValid,
    Code::EventKindProvenance,
    Code::RecordValid,
    Code::EventTagsConsistent,
];

fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/differential")
}

/// nostr-tools' verdict on one event.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Verdict {
    /// `getEventHash`: the id recomputed from the fields.
    hash: String,
    /// `verifyEvent` of `nostr-tools/pure`.
    pure: bool,
    /// `verifyEvent` of `nostr-tools/wasm`.
    wasm: bool,
}

/// One event signed by nostr-tools, as the JSON text it produced.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Signed {
    pure: String,
    wasm: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    verify: Vec<Verdict>,
    sign: Vec<Signed>,
}

/// Runs the oracle on one request.
fn oracle(request: &Value) -> Answer {
    let dir = project_dir();
    for package in ["nostr-tools", "nostr-wasm"] {
        assert!(
            dir.join("node_modules").join(package).is_dir(),
            "{package} is not installed in {}: run `npm ci --prefix tests/differential` \
             from the repository root (needs Node.js 20.19 or later)",
            dir.display()
        );
    }
    let mut child = Command::new("node")
        .arg("oracle.mjs")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `node` (Node.js 20.19 or later is needed): {e}"));
    let input = serde_json::to_vec(request).expect("request serialises");
    let mut stdin = child.stdin.take().expect("piped stdin");
    // Write from another thread so that a large request cannot block on a full pipe.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("node ran");
    writer
        .join()
        .expect("writer thread")
        .expect("request written to node");
    assert!(
        output.status.success(),
        "oracle.mjs failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "oracle.mjs answered something else than JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// Strings that JSON and NIP-01 serialisers get wrong when they get anything wrong.
fn hard_strings() -> Vec<(&'static str, String)> {
    let controls: String = (0u32..0x20)
        .chain([0x7f])
        .filter_map(char::from_u32)
        .collect();
    let mut cases = vec![
        ("controls", format!("c0 [{controls}] del")),
        (
            "separators",
            "line\u{2028}separator\u{2029}paragraph\u{85}next line".to_owned(),
        ),
        (
            "astral",
            "crab \u{1F980} grin \u{1F600} family \u{1F469}\u{200D}\u{1F469}\u{200D}\u{1F467} \
             clef \u{1D11E} flag \u{1F1F9}\u{1F1FF} last \u{10FFFF}"
                .to_owned(),
        ),
        (
            "script",
            "</script><script>alert(\"x\")</script><!-- --> </SCRIPT>".to_owned(),
        ),
        (
            "escapes",
            r#"back\slash \\ \" "quoted" 'single' \u0000 \n \/ {"json":["array",1]}"#.to_owned(),
        ),
        (
            "unusual",
            "bom\u{FEFF} zwj\u{200D} zwnj\u{200C} rlo\u{202E}olr nbsp\u{A0} e\u{301} \u{C5} \
             A\u{30A} \u{FFFD} \u{FFFE}\u{FFFF} \u{D7FF}\u{E000} \u{E0001}tag \u{FDD0}"
                .to_owned(),
        ),
        (
            "whitespace",
            " \t\r\n leading and trailing \r\n ".to_owned(),
        ),
        ("empty", String::new()),
    ];
    let everything: String = cases.iter().map(|(_, s)| s.as_str()).collect();
    cases.push(("everything", everything));
    let mut long = String::new();
    while long.len() < 10 * 1024 {
        long.push_str("long value \u{1F980}\u{2028}\\\"\u{1} ");
    }
    cases.push(("long-10kib", long));
    cases
}

/// A record whose text fields (output text, finish reason, model name) are all `s`; the
/// model name reaches the `model` and `alt` tags too.
fn record(s: &str) -> Record {
    let mut output = Output::from_text(s).with_text(s);
    output.finish_reason = Some(s.to_owned());
    output.tokens = Some(42);
    let mut record = Record::new(output, Model::named(s));
    record.runtime = Some(Runtime {
        engine: "llama.cpp".to_owned(),
        version: Some(s.to_owned()),
        binary_sha256: None,
        params: [
            ("flash_attn".to_owned(), json!(true)),
            ("note".to_owned(), json!(s)),
        ]
        .into_iter()
        .collect(),
    });
    record.sampling = Some(Sampling {
        seed: Some(9_007_199_254_740_991),
        temperature: Some(0.7),
        top_p: Some(0.95),
        min_p: Some(1e-7),
        samplers: vec![s.to_owned(), "top_k".to_owned()],
        ..Sampling::default()
    });
    record
}

/// A deterministic key per case.
fn keys(case: usize) -> (Keys, String) {
    let byte = u8::try_from(case + 1).expect("few cases");
    let secret = hex::encode([byte; 32]);
    let keys = Keys::parse(&secret).expect("valid secret key");
    (keys, secret)
}

fn created_at(case: usize) -> Timestamp {
    Timestamp::from_secs(1_700_000_000 + case as u64)
}

fn tag_values(tag: &Tag) -> Vec<String> {
    tag.as_slice().to_vec()
}

/// A thousand tags beyond the record's own: hard strings, and one tag of 64 values.
fn extra_tags() -> Vec<Tag> {
    let strings = hard_strings();
    let mut tags: Vec<Tag> = (0..1_000)
        .map(|i| {
            let (name, s) = &strings[i % strings.len()];
            Tag::parse([
                format!("t{i}"),
                (*name).to_owned(),
                s.chars().take(64).collect(),
            ])
            .expect("non-empty tag")
        })
        .collect();
    tags.push(Tag::parse((0..64).map(|i| format!("v{i}\u{2028}"))).expect("non-empty tag"));
    tags
}

/// Our provenance event for `record` with `extra` tags after the record's own, signed with
/// `keys`. Without extras this is exactly [`event::sign`].
fn sign_ours(record: &Record, keys: &Keys, at: Timestamp, extra: Vec<Tag>) -> Event {
    if extra.is_empty() {
        return event::sign(record, keys, &FixedClock(at)).expect("record signs");
    }
    let mut tags = event::tags_for(record);
    tags.extend(extra);
    let content = to_canonical_json(record).expect("canonical record");
    let unsigned = UnsignedEvent::new(keys.public_key(), at, Kind::from_u16(KIND), tags, content);
    let id = unsigned.compute_id();
    unsigned
        .add_signature(keys.sign_schnorr(id.as_bytes()))
        .expect("signature verifies")
}

fn event_value(event: &Event) -> Value {
    serde_json::from_str(&event.as_json()).expect("event JSON")
}

fn codes(verification: &Verification) -> Vec<Code> {
    verification.claims().iter().map(|c| c.code).collect()
}

fn assert_fully_verified(name: &str, verification: &Verification) {
    let found = codes(verification);
    for code in STRUCTURAL {
        assert!(found.contains(&code), "{name}: {code} missing: {found:?}");
    }
    assert!(
        verification
            .claims()
            .iter()
            .all(|c| c.status != Status::Failed),
        "{name}: {:#?}",
        verification.claims()
    );
    assert!(verification.verified().is_some(), "{name}: not verified");
}

/// Our events over every hard string, plus one with many tags.
fn our_events() -> Vec<(String, Record, Event)> {
    let mut events: Vec<(String, Record, Event)> = hard_strings()
        .into_iter()
        .enumerate()
        .map(|(case, (name, s))| {
            let record = record(&s);
            let event = sign_ours(&record, &keys(case).0, created_at(case), Vec::new());
            (name.to_owned(), record, event)
        })
        .collect();
    let case = events.len();
    let record = record("many tags \u{2028}\u{1F980}");
    let event = sign_ours(&record, &keys(case).0, created_at(case), extra_tags());
    assert!(event.tags.len() > 1_000);
    events.push(("many-tags".to_owned(), record, event));
    events
}

#[test]
fn our_events_verify_in_nostr_tools() {
    let events = our_events();
    for (name, _, event) in &events {
        assert_fully_verified(name, &event::verify(event));
    }
    let request =
        json!({ "verify": events.iter().map(|(_, _, e)| event_value(e)).collect::<Vec<_>>() });
    let answer = oracle(&request);
    assert_eq!(answer.verify.len(), events.len());
    for ((name, _, event), verdict) in events.iter().zip(&answer.verify) {
        assert_eq!(
            verdict.hash,
            event.id.to_hex(),
            "{name}: getEventHash differs from our id"
        );
        assert!(
            verdict.pure,
            "{name}: nostr-tools (pure JS) rejects our event"
        );
        assert!(
            verdict.wasm,
            "{name}: nostr-tools (nostr-wasm) rejects our event"
        );
    }
}

/// Templates for nostr-tools to sign: our records, canonical content and tags.
fn templates() -> Vec<(String, Record, Keys, Value)> {
    let mut cases: Vec<(String, Record, Vec<Tag>)> = hard_strings()
        .into_iter()
        .map(|(name, s)| (name.to_owned(), record(&s), Vec::new()))
        .collect();
    cases.push((
        "many-tags".to_owned(),
        record("many tags \u{2029}\u{1D11E}"),
        extra_tags(),
    ));
    cases
        .into_iter()
        .enumerate()
        .map(|(case, (name, record, extra))| {
            let (keys, secret) = keys(case);
            let mut tags = event::tags_for(&record);
            tags.extend(extra);
            let template = json!({
                "secret_key": secret,
                "created_at": created_at(case).as_secs(),
                "kind": KIND,
                "tags": tags.iter().map(tag_values).collect::<Vec<_>>(),
                "content": to_canonical_json(&record).expect("canonical record"),
            });
            (name, record, keys, template)
        })
        .collect()
}

#[test]
fn nostr_tools_events_verify_here() {
    let templates = templates();
    let request = json!({ "sign": templates.iter().map(|t| t.3.clone()).collect::<Vec<_>>() });
    let answer = oracle(&request);
    assert_eq!(answer.sign.len(), templates.len());
    for ((name, record, keys, template), signed) in templates.iter().zip(&answer.sign) {
        for (signer, json) in [("pure", &signed.pure), ("wasm", &signed.wasm)] {
            let what = format!("{name} signed by nostr-tools/{signer}");
            let parsed = event::parse_event(json, &Limits::default())
                .unwrap_or_else(|e| panic!("{what}: does not parse: {e}"));
            assert_eq!(parsed.pubkey, keys.public_key(), "{what}");
            assert_eq!(parsed.content, template["content"], "{what}");
            let verification = event::verify(&parsed);
            assert_fully_verified(&what, &verification);
            let verified = verification.verified().expect("checked above");
            assert_eq!(verified.record(), record, "{what}");
            let text = record
                .output
                .text
                .as_deref()
                .expect("records carry their text");
            assert_eq!(
                verified.check_output(text.as_bytes()).code,
                Code::OutputMatch,
                "{what}"
            );
        }
    }
}

/// Changes one character of `content`: the first ASCII letter or digit from the middle on.
fn tamper(content: &str) -> String {
    let (at, c) = content
        .char_indices()
        .skip(content.chars().count() / 2)
        .find(|(_, c)| c.is_ascii_alphanumeric())
        .expect("content has a letter or digit");
    let replacement = match c {
        '0' => '1',
        '0'..='9' => '0',
        c if c.is_ascii_lowercase() => c.to_ascii_uppercase(),
        c => c.to_ascii_lowercase(),
    };
    let mut out = content.to_owned();
    out.replace_range(at..at + 1, &replacement.to_string());
    assert_ne!(out, content);
    out
}

#[test]
fn tampered_events_are_rejected_by_both() {
    // Three of ours (control characters, astral plane, 10 KiB values) and three signed by
    // nostr-tools over the same kinds of record.
    let ours = our_events();
    let mut originals: Vec<(String, Value)> = ours
        .iter()
        .filter(|(name, _, _)| ["controls", "astral", "long-10kib"].contains(&name.as_str()))
        .map(|(name, _, e)| (format!("ours/{name}"), event_value(e)))
        .collect();
    let templates = templates();
    let signed =
        oracle(&json!({ "sign": templates.iter().map(|t| t.3.clone()).collect::<Vec<_>>() }));
    for ((name, ..), signed) in templates.iter().zip(&signed.sign) {
        if ["separators", "escapes", "everything"].contains(&name.as_str()) {
            let value = serde_json::from_str(&signed.wasm).expect("event JSON");
            originals.push((format!("nostr-tools/{name}"), value));
        }
    }
    assert_eq!(originals.len(), 6);

    // Two ways to tamper: keep the id (it no longer matches), or recompute the id (the
    // signature no longer covers it).
    let mut cases: Vec<(String, bool, Value)> = Vec::new();
    for (name, original) in originals {
        let content = original["content"].as_str().expect("content");
        let mut kept = original.clone();
        kept["content"] = json!(tamper(content));
        let parsed = event::parse_event(&kept.to_string(), &Limits::default()).expect("parses");
        let id = EventId::compute(
            &parsed.pubkey,
            &parsed.created_at,
            &parsed.kind,
            &parsed.tags,
            &parsed.content,
        );
        let mut recomputed = kept.clone();
        recomputed["id"] = json!(id.to_hex());
        cases.push((format!("{name}, id kept"), false, kept));
        cases.push((format!("{name}, id recomputed"), true, recomputed));
    }

    let answer =
        oracle(&json!({ "verify": cases.iter().map(|c| c.2.clone()).collect::<Vec<_>>() }));
    assert_eq!(answer.verify.len(), cases.len());
    for ((name, id_recomputed, value), verdict) in cases.iter().zip(&answer.verify) {
        let parsed = event::parse_event(&value.to_string(), &Limits::default())
            .unwrap_or_else(|e| panic!("{name}: does not parse: {e}"));
        let verification = event::verify(&parsed);
        let found = codes(&verification);
        let expected = if *id_recomputed {
            [Code::EventIdMatch, Code::EventSigInvalid]
        } else {
            // The signature is still valid over the stated id; the id no longer matches.
            [Code::EventIdMismatch, Code::EventSigValid]
        };
        assert_eq!(found[..2], expected, "{name}: {found:?}");
        assert!(!verification.holds(), "{name}: we accept it");
        assert!(verification.verified().is_none(), "{name}: we accept it");

        assert!(!verdict.pure, "{name}: nostr-tools (pure JS) accepts it");
        assert!(!verdict.wasm, "{name}: nostr-tools (nostr-wasm) accepts it");
        assert_eq!(
            verdict.hash == parsed.id.to_hex(),
            *id_recomputed,
            "{name}: getEventHash and our id recomputation disagree"
        );
    }
}

#[test]
fn external_fixtures_get_the_same_verdicts_from_nostr_tools() {
    #[derive(Deserialize)]
    struct Vector {
        expect: std::collections::BTreeMap<String, String>,
        event: Value,
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/events/external");
    let mut vectors: Vec<(String, Vector)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("fixture readable");
            let vector = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not a vector: {e}", p.display()));
            (p.display().to_string(), vector)
        })
        .collect();
    vectors.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(vectors.len() >= 18, "only {} fixtures", vectors.len());

    let answer =
        oracle(&json!({ "verify": vectors.iter().map(|v| v.1.event.clone()).collect::<Vec<_>>() }));
    assert_eq!(answer.verify.len(), vectors.len());
    for ((name, vector), verdict) in vectors.iter().zip(&answer.verify) {
        let id_matches = vector.expect["event.id"] == "match";
        let valid = id_matches && vector.expect["event.sig"] == "valid";
        assert_eq!(
            verdict.hash == vector.event["id"],
            id_matches,
            "{name}: getEventHash"
        );
        assert_eq!(verdict.pure, valid, "{name}: nostr-tools (pure JS)");
        assert_eq!(verdict.wasm, valid, "{name}: nostr-tools (nostr-wasm)");
    }
}
