//! Deterministic fixtures for provenance tests: golden events, tampered variants, schemas.
//!
//! Everything here is generated from fixed keys, fixed auxiliary randomness and fixed
//! timestamps, so the output is byte-for-byte reproducible. `cargo run -p provenance-testkit
//! --bin gen-fixtures` writes it to `fixtures/events/` and `schemas/`; the test
//! `checked_in_fixtures_are_up_to_date` fails when the checked-in files differ from what the
//! generator produces now.
//!
//! Each fixture file is one JSON object:
//!
//! ```json
//! {
//!   "_comment": "how it was made",
//!   "description": "what is special about it",
//!   "expect": { "holds": false, "failed": ["event.id.mismatch"] },
//!   "evidence": { "output": "...", "prompt": "...", "salt": "<hex>" },
//!   "event": { ... NIP-01 event ... }
//! }
//! ```
//!
//! `expect.failed` is the exact set of failed claim codes after verification with the given
//! evidence (empty for a valid event); `evidence` is optional.
//!
//! [`generate`] makes any number of signed events, deterministically, for batch tests and
//! benchmarks (`cargo run -p provenance-testkit --bin gen-events -- N`).

pub mod generate;

use std::collections::BTreeMap;

use provenance::commitment::{FORMAT_TEXT, PromptCommitment, Salt};
use provenance::digest::{Blake3Digest, sha256};
use provenance::event;
use provenance::nostr::prelude::{Event, Keys, Kind, SecretKey, Tag, Timestamp, UnsignedEvent};
use provenance::record::{
    AttestationRef, Model, Output, Record, Request, Response, Runtime, Sampling, Times,
};
use serde_json::{Value, json};

/// Fixed signing key of the golden events (never use outside tests).
pub const GOLDEN_SECRET_HEX: &str =
    "6b911fd37cdf5c81d4c0adb1ab7fa822ed253ab0ad9aa18d77257c88b29b718e";
/// A second fixed key, for "signed by someone else" variants.
pub const OTHER_SECRET_HEX: &str =
    "0000000000000000000000000000000000000000000000000000000000000003";
/// Fixed `created_at` of the golden events: 2026-11-01T00:00:00Z.
pub const CREATED_AT: u64 = 1_793_491_200;
/// Fixed auxiliary randomness for BIP-340 signing.
pub const AUX: [u8; 32] = [0x42; 32];
/// Fixed prompt salt of the golden records.
pub const SALT: [u8; 32] = [0x5a; 32];

/// The golden signing key.
pub fn golden_keys() -> Keys {
    // The constant is a valid secret key (checked by the tests).
    Keys::new(SecretKey::from_hex(GOLDEN_SECRET_HEX).expect("valid constant key"))
}

/// The other signing key.
pub fn other_keys() -> Keys {
    Keys::new(SecretKey::from_hex(OTHER_SECRET_HEX).expect("valid constant key"))
}

/// One generated fixture: a file name and its JSON.
pub struct Fixture {
    /// Path relative to the repository root.
    pub path: String,
    /// The file's content (pretty JSON, newline-terminated).
    pub content: String,
}

/// A golden record with the evidence that proves its claims.
pub struct Golden {
    /// Short name.
    pub name: &'static str,
    /// What it exercises.
    pub description: &'static str,
    /// The record.
    pub record: Record,
    /// The output text it describes.
    pub output: String,
    /// The prompt it commits to, if any.
    pub prompt: Option<String>,
}

/// Hard text: control characters, line/paragraph separators, astral characters, markup.
pub const HARD_TEXT: &str = "tab\there, nul\u{0}, bell\u{7}, del\u{7f}, \"quotes\" \\ back\u{2028}line\u{2029}para \u{1F600} \u{1D11E} </script><script>alert(1)</script> caf\u{e9} cafe\u{301}";

/// The golden records.
pub fn golden() -> Vec<Golden> {
    let salt = Salt::from_bytes(SALT);
    let mut out = Vec::new();

    let text = "The sky is blue because air scatters short wavelengths more than long ones.";
    out.push(Golden {
        name: "minimal",
        description: "output and model name only",
        record: Record::new(Output::from_text(text), Model::named("gemma3:270m")),
        output: text.to_owned(),
        prompt: None,
    });

    let text = "Paris is the capital of France.\n";
    let prompt = "What is the capital of France? Answer in one sentence.";
    let mut output = Output::from_text(text);
    output.finish_reason = Some("stop".into());
    output.tokens = Some(8);
    let mut commitment = PromptCommitment::commit(FORMAT_TEXT, prompt.as_bytes(), &salt);
    commitment.tokens = Some(14);
    let mut record = Record::new(
        output,
        Model {
            name: "gemma-3-270m-it-Q4_K_M.gguf".into(),
            sha256: Some(sha256(b"stand-in for the weights file")),
            blake3: Some(Blake3Digest::from_bytes([0x11; 32])),
            tensor_root: Some(Blake3Digest::from_bytes([0x22; 32])),
            bytes: Some(253_115_680),
            architecture: Some("gemma3".into()),
            quantization: Some("Q4_K_M".into()),
            parameters: Some(268_098_176),
            tokenizer_sha256: Some(sha256(b"tokenizer")),
            chat_template_sha256: Some(sha256(b"template")),
        },
    );
    record.prompt = Some(commitment);
    record.runtime = Some(Runtime {
        engine: "llama.cpp".into(),
        version: Some("b6000".into()),
        binary_sha256: Some(sha256(b"llama-server")),
        params: BTreeMap::from([
            ("batch".to_owned(), json!(2048)),
            ("cache_prompt".to_owned(), json!(false)),
            ("ctx".to_owned(), json!(4096)),
            ("flash_attn".to_owned(), json!("off")),
            ("threads".to_owned(), json!(2)),
            ("ubatch".to_owned(), json!(512)),
        ]),
    });
    record.sampling = Some(Sampling {
        seed: Some(42),
        temperature: Some(0.8),
        top_k: Some(40),
        top_p: Some(0.95),
        min_p: Some(0.05),
        repeat_penalty: Some(1.0),
        presence_penalty: Some(0.0),
        frequency_penalty: Some(0.0),
        max_tokens: Some(64),
        samplers: vec![
            "penalties".into(),
            "top_k".into(),
            "top_p".into(),
            "min_p".into(),
            "temperature".into(),
        ],
        extra: BTreeMap::new(),
    });
    record.request = Some(Request {
        api: "openai.chat".into(),
        sha256: Some(sha256(b"{\"messages\":[]}")),
        caller: None,
    });
    record.response = Some(Response {
        sha256: sha256(b"response bytes"),
        bytes: 14,
        streamed: true,
    });
    record.time = Some(Times {
        start_ms: CREATED_AT * 1000 - 1500,
        end_ms: CREATED_AT * 1000 - 200,
    });
    record.attestations = vec![AttestationRef {
        kind: "sev-snp".into(),
        sha256: sha256(b"report"),
        uri: None,
    }];
    out.push(Golden {
        name: "full",
        description: "every record field: prompt commitment, model digests, runtime, sampling, request/response, times, attestation reference",
        record,
        output: text.to_owned(),
        prompt: Some(prompt.to_owned()),
    });

    let mut record = Record::new(
        Output::from_text(HARD_TEXT).with_text(HARD_TEXT),
        Model::named("m\u{e9}t\u{e9}o\u{2028}\u{1F600}"),
    );
    record.output.finish_reason = Some("length".into());
    out.push(Golden {
        name: "hard-text",
        description: "control characters, U+2028/U+2029, astral characters and </script> in the published text and the model name",
        record,
        output: HARD_TEXT.to_owned(),
        prompt: None,
    });

    let text = "The answer was cut";
    let mut record = Record::new(Output::from_text(text), Model::named("llama"));
    record.output.truncated = true;
    out.push(Golden {
        name: "truncated",
        description: "a stream that broke: hashes cover only the served bytes",
        record,
        output: text.to_owned(),
        prompt: None,
    });

    let text = FINGERPRINT_PARAGRAPH;
    out.push(Golden {
        name: "fingerprints",
        description: "output fingerprints (rule wk-v1) for partial-match lookups, without the text",
        record: Record::new(
            Output::from_text(text).with_fingerprints(text),
            Model::named("gemma3:270m"),
        ),
        output: text.to_owned(),
        prompt: None,
    });
    out
}

/// Signs an arbitrary event deterministically (for tampered variants that are validly signed).
pub fn sign_raw(keys: &Keys, created_at: u64, kind: u16, tags: Vec<Tag>, content: String) -> Event {
    let unsigned = UnsignedEvent::new(
        keys.public_key(),
        Timestamp::from_secs(created_at),
        Kind::from_u16(kind),
        tags,
        content,
    );
    let id = unsigned.compute_id();
    let secp = secp256k1::Secp256k1::signing_only();
    let sig = keys.sign_schnorr_with_aux_rand(&secp, id.as_bytes(), &AUX);
    // The id was just computed from these fields, so adding the signature cannot fail.
    unsigned.add_signature(sig).expect("freshly computed id")
}

fn golden_event(record: &Record) -> Event {
    // Golden records are valid v1 records with I-JSON numbers.
    event::sign_with_aux_rand(
        record,
        &golden_keys(),
        Timestamp::from_secs(CREATED_AT),
        &AUX,
    )
    .expect("golden record signs")
}

fn event_value(ev: &Event) -> Value {
    // An event's own JSON always parses.
    serde_json::from_str(&ev.as_json()).expect("event JSON")
}

fn fixture(
    dir: &str,
    name: &str,
    description: &str,
    failed: &[&str],
    evidence: Option<Value>,
    event: Value,
) -> Fixture {
    let mut obj = serde_json::Map::new();
    obj.insert(
        "_comment".into(),
        json!("generated by `cargo run -p provenance-testkit --bin gen-fixtures`; do not edit"),
    );
    obj.insert("description".into(), json!(description));
    obj.insert(
        "expect".into(),
        json!({ "holds": failed.is_empty(), "failed": failed }),
    );
    if let Some(e) = evidence {
        obj.insert("evidence".into(), e);
    }
    obj.insert("event".into(), event);
    let mut content = serde_json::to_string_pretty(&Value::Object(obj)).expect("fixture JSON");
    content.push('\n');
    Fixture {
        path: format!("fixtures/events/{dir}/{name}.json"),
        content,
    }
}

fn evidence_for(g: &Golden) -> Value {
    let mut e = json!({ "output": g.output });
    if let Some(p) = &g.prompt {
        e["prompt"] = json!(p);
        e["salt"] = json!(hex::encode(SALT));
    }
    e
}

/// Replaces one field of an event's JSON without re-signing.
fn edit(ev: &Event, f: impl FnOnce(&mut Value)) -> Value {
    let mut v = event_value(ev);
    f(&mut v);
    v
}

/// Every fixture: golden events, then tampered variants.
pub fn fixtures() -> Vec<Fixture> {
    let mut out = Vec::new();
    let goldens = golden();
    for g in &goldens {
        out.push(fixture(
            "valid",
            g.name,
            g.description,
            &[],
            Some(evidence_for(g)),
            event_value(&golden_event(&g.record)),
        ));
    }
    let base = &goldens[1];
    let ev = golden_event(&base.record);
    let keys = golden_keys();
    let tags: Vec<Tag> = ev.tags.iter().cloned().collect();
    let content = ev.content.clone();

    // Changed after signing: the id no longer matches.
    let mut record = base.record.clone();
    record.output = Output::from_text("Lyon is the capital of France.\n");
    let other_content = provenance::canonical::to_canonical_json(&record).expect("canonical");
    out.push(fixture(
        "invalid",
        "content-edited",
        "content replaced after signing (another output hash)",
        &["event.id.mismatch", "event.tags.inconsistent"],
        None,
        edit(&ev, |v| v["content"] = json!(other_content)),
    ));
    out.push(fixture(
        "invalid",
        "created-at-edited",
        "created_at changed after signing",
        &["event.id.mismatch"],
        None,
        edit(&ev, |v| v["created_at"] = json!(CREATED_AT + 1)),
    ));
    out.push(fixture(
        "invalid",
        "kind-edited",
        "kind changed to 1 after signing",
        &["event.id.mismatch", "event.kind.unexpected"],
        None,
        edit(&ev, |v| v["kind"] = json!(1)),
    ));
    out.push(fixture(
        "invalid",
        "tag-edited",
        "x tag changed after signing",
        &["event.id.mismatch", "event.tags.inconsistent"],
        None,
        edit(&ev, |v| v["tags"][0][1] = json!(sha256(b"other").to_hex())),
    ));
    out.push(fixture(
        "invalid",
        "pubkey-swapped",
        "pubkey replaced by another key after signing",
        &["event.id.mismatch", "event.sig.invalid"],
        None,
        edit(&ev, |v| {
            v["pubkey"] = json!(other_keys().public_key().to_hex())
        }),
    ));
    out.push(fixture(
        "invalid",
        "sig-flipped",
        "one bit of the signature flipped",
        &["event.sig.invalid"],
        None,
        edit(&ev, |v| {
            let mut sig = ev.sig.to_bytes();
            sig[63] ^= 1;
            v["sig"] = json!(hex::encode(sig));
        }),
    ));
    out.push(fixture(
        "invalid",
        "id-recomputed-sig-kept",
        "content edited and id recomputed, old signature kept",
        &["event.sig.invalid"],
        None,
        {
            let forged = sign_raw(
                &keys,
                CREATED_AT,
                event::KIND,
                event::tags_for(&record),
                other_content.clone(),
            );
            edit(&forged, |v| v["sig"] = json!(ev.sig.to_string()))
        },
    ));

    // Validly signed, but structurally wrong.
    let resigned = |kind: u16, tags: Vec<Tag>, content: String| {
        event_value(&sign_raw(&keys, CREATED_AT, kind, tags, content))
    };
    let invalid = |name: &str, description: &str, failed: &[&str], event: Value| {
        fixture("invalid", name, description, failed, None, event)
    };
    // The base record with one edit, as content (canonical unless `canonical` is false).
    let edited = |edit: &dyn Fn(&mut Value), canonical: bool| {
        let mut value: Value = serde_json::from_str(&content).expect("record JSON");
        edit(&mut value);
        if canonical {
            provenance::canonical::value_to_canonical(&value).expect("canonical")
        } else {
            serde_jcs_like(&value)
        }
    };
    let pretty = serde_json::to_string_pretty(
        &serde_json::from_str::<Value>(&content).expect("record JSON"),
    )
    .expect("pretty");
    out.push(invalid(
        "noncanonical-content",
        "record pretty-printed instead of RFC 8785 canonical JSON",
        &["record.content.noncanonical"],
        resigned(event::KIND, tags.clone(), pretty),
    ));
    let mut wrong_x = tags.clone();
    wrong_x[0] = Tag::parse(["x", &sha256(b"something else").to_hex()]).expect("tag");
    out.push(invalid(
        "x-tag-inconsistent",
        "signed x tag names another output hash than the record",
        &["event.tags.inconsistent"],
        resigned(event::KIND, wrong_x, content.clone()),
    ));
    let no_m: Vec<Tag> = tags.iter().filter(|t| t.kind() != "m").cloned().collect();
    out.push(invalid(
        "m-tag-missing",
        "signed without the m tag",
        &["event.tags.inconsistent"],
        resigned(event::KIND, no_m, content.clone()),
    ));
    let mut extra_x = tags.clone();
    extra_x.push(Tag::parse(["x", &sha256(b"unrelated").to_hex()]).expect("tag"));
    out.push(invalid(
        "x-tag-extra",
        "an extra x tag would index the event under an unrelated hash",
        &["event.tags.inconsistent"],
        resigned(event::KIND, extra_x, content.clone()),
    ));
    out.push(invalid(
        "unknown-field",
        "record with a field version 1 does not define",
        &["record.content.invalid"],
        resigned(
            event::KIND,
            tags.clone(),
            edited(&|v| v["surprise"] = json!(true), true),
        ),
    ));
    out.push(invalid(
        "future-version",
        "record version 2",
        &["record.content.invalid"],
        resigned(
            event::KIND,
            tags.clone(),
            edited(&|v| v["v"] = json!(2), true),
        ),
    ));
    out.push(invalid(
        "unsafe-integer",
        "a seed over 2^53 - 1, which JavaScript would read as another number",
        &["record.content.invalid"],
        resigned(
            event::KIND,
            tags.clone(),
            edited(&|v| v["sampling"]["seed"] = json!(1u64 << 60), false),
        ),
    ));
    out.push(invalid(
        "not-a-record",
        "kind 1988 with plain-text content",
        &["record.content.invalid"],
        resigned(event::KIND, tags.clone(), "hello".into()),
    ));
    out.push(invalid(
        "wrong-kind",
        "a valid record signed as kind 1",
        &["event.kind.unexpected"],
        resigned(1, tags.clone(), content.clone()),
    ));

    // Valid events with evidence that does not match.
    out.push(fixture(
        "invalid",
        "output-mismatch",
        "valid event, evidence output differs",
        &["output.hash.mismatch"],
        Some(json!({ "output": "Paris is the capital of Germany.\n" })),
        event_value(&ev),
    ));
    out.push(fixture("invalid", "prompt-mismatch", "valid event, disclosed prompt differs", &["prompt.commitment.mismatch"], Some(json!({ "prompt": "What is the capital of Spain? Answer in one sentence.", "salt": hex::encode(SALT) })), event_value(&ev)));
    out.push(fixture(
        "invalid",
        "salt-mismatch",
        "valid event, disclosed salt differs",
        &["prompt.commitment.mismatch"],
        Some(json!({ "prompt": base.prompt, "salt": hex::encode([0u8; 32]) })),
        event_value(&ev),
    ));
    out.push(fixture("valid", "output-normalized", "evidence is the output after copy and paste (whitespace and composition changed): the normalised hash proves it", &[], Some(json!({ "output": "  Paris is the\u{a0}capital of\nFrance. " })), event_value(&ev)));
    out
}

/// Canonical JSON without the I-JSON check (to build an invalid record on purpose).
fn serde_jcs_like(value: &Value) -> String {
    // Sorting keys via BTreeMap-backed Value (serde_json without preserve_order) and compact
    // output is canonical for integer-only content like this.
    serde_json::to_string(value).expect("JSON")
}

/// The JSON Schema of the record, and the list of result codes.
pub fn schemas() -> Vec<Fixture> {
    let schema = schemars::schema_for!(Record);
    let mut record = serde_json::to_string_pretty(&schema).expect("schema JSON");
    record.push('\n');
    let codes: Vec<Value> = provenance::verdict::Code::ALL
        .iter()
        .map(|c| json!({ "code": c.as_str(), "status": c.status().as_str() }))
        .collect();
    let mut codes = serde_json::to_string_pretty(&json!({
        "_comment": "generated by `cargo run -p provenance-testkit --bin gen-fixtures`; do not edit",
        "codes": codes,
    }))
    .expect("codes JSON");
    codes.push('\n');
    vec![
        Fixture {
            path: "schemas/record.v1.schema.json".into(),
            content: record,
        },
        Fixture {
            path: "schemas/codes.json".into(),
            content: codes,
        },
    ]
}

/// Inputs for the normalisation vectors: each exercises one part of rule `nfc-ws-v1`.
pub const NORMALIZE_INPUTS: &[(&str, &str)] = &[
    ("empty", ""),
    ("only-whitespace", " \t\r\n\u{a0}\u{3000} "),
    ("plain", "The sky is blue."),
    ("leading-trailing", "  \n The sky is blue. \t\n"),
    ("runs-folded", "The   sky\tis\n\nblue."),
    ("crlf", "line one\r\nline two\r\n"),
    ("nbsp-and-narrow-nbsp", "10\u{a0}km and 5\u{202f}%"),
    (
        "all-white-space",
        "a\u{9}\u{a}\u{b}\u{c}\u{d}\u{20}\u{85}\u{a0}\u{1680}\u{2000}\u{2001}\u{2002}\u{2003}\u{2004}\u{2005}\u{2006}\u{2007}\u{2008}\u{2009}\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}b",
    ),
    ("not-white-space", "a\u{200b}b\u{feff}c\u{180e}d\u{2060}e"),
    ("nfc-compose", "cafe\u{301} nai\u{308}ve"),
    ("nfc-already", "caf\u{e9}"),
    ("nfc-reorder-marks", "a\u{302}\u{323}"),
    ("nfc-singleton", "\u{212b}ngstr\u{f6}m \u{2126}"),
    ("hangul-jamo", "\u{1100}\u{1161}\u{11a8}"),
    ("astral", "\u{1f600} \u{1d11e}  \u{1f1eb}\u{1f1f7}"),
    ("control-kept", "bell\u{7} nul\u{0} del\u{7f}"),
    ("no-case-folding", "ABC abc \u{130}"),
    (
        "quotes-kept",
        "\u{201c}quoted\u{201d} \"plain\" \u{2014} dash",
    ),
];

/// Normalisation vectors: input, normalised text, and its SHA-256.
pub fn normalize_vectors() -> Fixture {
    let cases: Vec<Value> = NORMALIZE_INPUTS
        .iter()
        .map(|(name, input)| {
            let normalized = provenance::normalize::normalize(input);
            json!({
                "name": name,
                "input": input,
                "normalized": normalized,
                "sha256": sha256(normalized.as_bytes()).to_hex(),
            })
        })
        .collect();
    let mut content = serde_json::to_string_pretty(&json!({
        "_comment": "generated by `cargo run -p provenance-testkit --bin gen-fixtures`; do not edit. Rule: docs/normalization.md",
        "rule": provenance::normalize::RULE,
        "cases": cases,
    }))
    .expect("vectors JSON");
    content.push('\n');
    Fixture {
        path: "fixtures/normalize/vectors.json".into(),
        content,
    }
}

/// A paragraph of model-like prose, long enough for several fingerprints.
pub const FINGERPRINT_PARAGRAPH: &str = "The sky looks blue because of Rayleigh scattering. \
Molecules of nitrogen and oxygen in the air are much smaller than the wavelength of visible \
light, and they scatter short wavelengths far more strongly than long ones. Blue light is \
therefore redirected across the whole sky and reaches the eye from every direction, while red \
and yellow light mostly passes straight through. At sunrise and sunset the light travels \
through much more air, most of the blue is scattered away before it arrives, and the sky near \
the horizon turns orange and red.";

/// Inputs for the fingerprint vectors: each exercises one part of rule `wk-v1`.
pub fn fingerprint_inputs() -> Vec<(&'static str, String)> {
    let mut v: Vec<(&'static str, String)> = [
        ("empty", ""),
        ("four-tokens", "one two three four"),
        ("five-tokens", "one two three four five"),
        (
            "fewer-kgrams-than-window",
            "one two three four five six seven",
        ),
        (
            "ascii-case-folded",
            "The SKY is Blue and The Sea is Green today.",
        ),
        (
            "non-ascii-case-kept",
            "\u{c9}COLE \u{c9}t\u{c9} \u{130}stanbul \u{1e9e} Stra\u{df}e \u{3a3}\u{3a3}",
        ),
        (
            "whitespace-runs",
            "  The sky\tis\n\nblue\u{a0}and the\u{3000}sea is green.  ",
        ),
        (
            "nfc-composed",
            "the cafe\u{301} was open and the na\u{ef}ve crowd came in",
        ),
        (
            "repeated-phrase-ties",
            "la la la la la la la la la la la la la la",
        ),
        (
            "punctuation-kept",
            "Hello, world! Hello world. \u{201c}Hello\u{201d} \u{2014} world?",
        ),
        (
            "astral-and-zero-width",
            "\u{1f600} a\u{200b}b c d e \u{1d11e} f g",
        ),
    ]
    .iter()
    .map(|(n, t)| (*n, (*t).to_owned()))
    .collect();
    v.push(("paragraph", FINGERPRINT_PARAGRAPH.to_owned()));
    v.push((
        "paragraph-excerpt",
        "Molecules of nitrogen and oxygen in the air are much smaller than the wavelength of \
visible light, and they scatter short wavelengths far more strongly than long ones."
            .to_owned(),
    ));
    // 3,000 distinct tokens give about 1,200 selections: more than the cap.
    let long: Vec<String> = (0..3000).map(|i| format!("w{i}")).collect();
    v.push(("capped", long.join(" ")));
    v
}

/// Fingerprint vectors: input, normalised text, every k-gram hash, the winnowed selection and
/// the final fingerprint set.
pub fn fingerprint_vectors() -> Fixture {
    use provenance::fingerprint::{Analysis, K, kgram_hash};
    let cases: Vec<Value> = fingerprint_inputs()
        .iter()
        .map(|(name, input)| {
            let a = Analysis::of(input);
            let folded = a.normalized.to_ascii_lowercase();
            let tokens: Vec<&str> = a.tokens.iter().map(|t| &folded[t.start..t.end]).collect();
            let kgrams: Vec<String> = tokens
                .windows(K)
                .map(|g| format!("{:016x}", kgram_hash(g.join(" ").as_bytes())))
                .collect();
            let mut case = json!({
                "name": name,
                "input": input,
                "normalized": a.normalized,
                "tokens": tokens.len(),
                "hashes": a.hashes(),
            });
            // The long case lists only its result, to keep the file small.
            if kgrams.len() <= 200 {
                case["kgrams"] = json!(kgrams);
                case["selected"] = json!(a.selected.iter().map(|s| s.token).collect::<Vec<_>>());
            }
            case
        })
        .collect();
    let mut content = serde_json::to_string_pretty(&json!({
        "_comment": "generated by `cargo run -p provenance-testkit --bin gen-fixtures`; do not edit. Rule: docs/fingerprint.md. `kgrams`: every k-gram hash in order; `selected`: winnowed positions (k-gram index) in order; `hashes`: the fingerprint set (sorted, unique, capped)",
        "rule": provenance::fingerprint::RULE,
        "k": provenance::fingerprint::K,
        "w": provenance::fingerprint::W,
        "max_hashes": provenance::fingerprint::MAX_HASHES,
        "cases": cases,
    }))
    .expect("vectors JSON");
    content.push('\n');
    Fixture {
        path: "fixtures/fingerprint/vectors.json".into(),
        content,
    }
}

/// A model answer of three paragraphs, for lookup tests: the second paragraph gets copied.
pub const LOOKUP_ANSWER: &str = "Bread rises because yeast ferments the sugars in the flour. \
The yeast releases carbon dioxide, and the gluten network formed by kneading traps the gas in \
small pockets, so the dough swells.\n\n\
During baking the heat makes the trapped gas expand quickly, the water turns to steam, and the \
yeast dies once the dough passes about sixty degrees. The starch sets around the bubbles and \
gives the crumb its open, springy structure.\n\n\
A longer, cooler proof develops more flavour, because the yeast and bacteria have time to \
produce organic acids and aromatic compounds before the loaf goes into the oven.";

/// The second paragraph of [`LOOKUP_ANSWER`], as a reader would copy it.
pub const LOOKUP_PARAGRAPH: &str = "During baking the heat makes the trapped gas expand quickly, \
the water turns to steam, and the yeast dies once the dough passes about sixty degrees. The \
starch sets around the bubbles and gives the crumb its open, springy structure.";

/// [`LOOKUP_PARAGRAPH`] with three words changed.
pub const LOOKUP_EDITED: &str = "During baking the heat makes the trapped gas expand rapidly, \
the water turns to steam, and the yeast dies once the dough passes about sixty degrees. The \
starch hardens around the bubbles and gives the crumb its light, springy structure.";

/// A second answer, by another key.
pub const LOOKUP_OTHER: &str = "Tides are caused mainly by the gravitational pull of the moon \
on the oceans, with a smaller contribution from the sun; when both line up the spring tides are \
highest.";

/// A text that no indexed output contains.
pub const LOOKUP_UNRELATED: &str = "The committee will meet on Thursday afternoon to review the \
budget for the new library wing and to vote on the proposed opening hours.";

/// The text of the forged event in [`lookup_forged_json`].
pub const LOOKUP_FORGED: &str = "This text was never signed by the key that appears to have \
signed it, because the content was replaced after signing.";

/// The lookup demo events: [`LOOKUP_ANSWER`] by the golden key and [`LOOKUP_OTHER`] by the
/// other key, both with fingerprints; fixed timestamps and auxiliary randomness.
pub fn lookup_events() -> Vec<Event> {
    [
        (LOOKUP_ANSWER, golden_keys(), "gemma3:270m"),
        (LOOKUP_OTHER, other_keys(), "llama3.2:1b"),
    ]
    .iter()
    .map(|(text, keys, model)| {
        let record = Record::new(
            Output::from_text(text).with_fingerprints(text),
            Model::named(model),
        );
        event::sign_with_aux_rand(&record, keys, Timestamp::from_secs(CREATED_AT), &AUX)
            .expect("sign")
    })
    .collect()
}

/// A forged event as a relay might serve it: a record of [`LOOKUP_ANSWER`] signed by the golden
/// key, whose content was then replaced by a record of [`LOOKUP_FORGED`] (the id and signature
/// no longer match).
pub fn lookup_forged_json() -> String {
    let ev = &lookup_events()[0];
    let record = Record::new(
        Output::from_text(LOOKUP_FORGED).with_fingerprints(LOOKUP_FORGED),
        Model::named("gemma3:270m"),
    );
    let content = provenance::canonical::to_canonical_json(&record).expect("canonical");
    edit(ev, |v| v["content"] = json!(content)).to_string()
}

/// Writes the lookup demo corpus into `dir`: `events.jsonl` ([`lookup_events`] and the forged
/// event, one per line) and `texts.json` (the texts the tests look up, and the golden key's
/// npub for a trust list).
pub fn write_lookup_demo(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut events = String::new();
    for ev in lookup_events() {
        events.push_str(&ev.as_json());
        events.push('\n');
    }
    events.push_str(&lookup_forged_json());
    events.push('\n');
    std::fs::write(dir.join("events.jsonl"), events)?;
    let texts = json!({
        "answer": LOOKUP_ANSWER,
        "paragraph": LOOKUP_PARAGRAPH,
        "edited": LOOKUP_EDITED,
        "other": LOOKUP_OTHER,
        "unrelated": LOOKUP_UNRELATED,
        "forged": LOOKUP_FORGED,
        "trusted_npub": provenance::nip19::encode_npub(&golden_keys().public_key()),
    });
    std::fs::write(dir.join("texts.json"), format!("{texts:#}\n"))
}

/// Deterministic synthetic model output number `i`: 40 to 119 words drawn from a vocabulary of
/// 4,096 made-up words, in sentences. For index benchmarks.
pub fn synthetic_output(i: u64) -> String {
    const SYLLABLES: [&str; 16] = [
        "ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "an", "el", "or", "pu", "qe", "di", "su",
        "zo",
    ];
    // xorshift64*, seeded from i (never zero).
    let mut state = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let words = 40 + (next() % 80) as usize;
    let mut out = String::new();
    for w in 0..words {
        let r = next();
        let word: String = (0..3)
            .map(|s| SYLLABLES[((r >> (s * 4)) & 15) as usize])
            .collect();
        if w > 0 {
            out.push(' ');
        }
        out.push_str(&word);
        if r >> 60 == 0 {
            out.push('.');
        }
    }
    out.push('.');
    out
}

/// A signed provenance event (with fingerprints) for [`synthetic_output`] `i`, by `keys`.
pub fn synthetic_event(keys: &Keys, i: u64) -> Event {
    let text = synthetic_output(i);
    let record = Record::new(
        Output::from_text(&text).with_fingerprints(&text),
        Model::named("synthetic"),
    );
    event::sign_with_aux_rand(&record, keys, Timestamp::from_secs(CREATED_AT + i), &AUX)
        .expect("sign")
}

/// Everything the generator writes.
pub fn all() -> Vec<Fixture> {
    let mut v = fixtures();
    v.extend(schemas());
    v.push(normalize_vectors());
    v.push(fingerprint_vectors());
    v
}
