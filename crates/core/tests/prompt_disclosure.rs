//! `VerifiedRecord::check_prompt` with the disclosures a caller actually has: the committed
//! bytes, or (for JSON-formed prompts) the request body as sent, in any layout.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap is a failed test.

use std::path::PathBuf;

use provenance::commitment::Salt;
use provenance::event::{self, Limits};
use provenance::record::PromptCommitment;
use provenance::record::Record;
use provenance::verdict::{Claim, Code};
use provenance::{Keys, prompt};
use serde_json::{Value, json};

/// The full golden record, with its prompt commitment replaced.
fn record_with(commitment: PromptCommitment) -> Record {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/events/valid/full.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ev = event::parse_event(&fixture["event"].to_string(), &Limits::default()).unwrap();
    let mut record = event::verify(&ev)
        .record()
        .cloned()
        .expect("golden record parses");
    record.prompt = Some(commitment);
    record
}

/// Signs `record` and checks `disclosed` with `salt` against it.
fn check(record: &Record, disclosed: &[u8], salt: &Salt) -> Claim {
    let signed = event::sign(record, &Keys::generate(), &provenance::clock::SystemClock).unwrap();
    let verification = event::verify(&signed);
    let verified = verification
        .verified()
        .expect("a freshly signed record verifies");
    verified.check_prompt(disclosed, salt)
}

fn chat_request() -> Value {
    json!({
        "model": "gemma",
        "stream": true,
        "temperature": 0.2,
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
        "tool_choice": "auto"
    })
}

/// [`chat_request`], its committed `chat.v1` bytes, a fresh salt and a record committing to
/// them.
fn chat_commitment() -> (Value, Vec<u8>, Salt, Record) {
    let request = chat_request();
    let committed = prompt::chat(request.as_object().unwrap()).unwrap().unwrap();
    let salt = Salt::random();
    let commitment = PromptCommitment::commit(prompt::FORMAT_CHAT, &committed, &salt);
    (request, committed, salt, record_with(commitment))
}

#[test]
fn chat_commitment_opens_with_committed_bytes_and_with_the_request_body() {
    let (request, committed, salt, record) = chat_commitment();

    let exact = check(&record, &committed, &salt);
    assert_eq!(exact.code, Code::PromptMatch, "{}", exact.detail);
    assert!(!exact.detail.contains("formed"), "{}", exact.detail);

    // The body as a client sent it, pretty-printed, sampling fields and all.
    let body = serde_json::to_vec_pretty(&request).unwrap();
    let formed = check(&record, &body, &salt);
    assert_eq!(formed.code, Code::PromptMatch, "{}", formed.detail);
    assert!(
        formed.detail.contains("formed as chat.v1"),
        "{}",
        formed.detail
    );

    // Sampling is not part of the prompt; changing it still opens the commitment.
    let mut cooler = request.clone();
    cooler["temperature"] = json!(0.9);
    assert_eq!(
        check(&record, &serde_json::to_vec(&cooler).unwrap(), &salt).code,
        Code::PromptMatch
    );

    // What the model was asked to do is: another tool choice, or another message, does not.
    let mut forced = request.clone();
    forced["tool_choice"] = json!("none");
    assert_eq!(
        check(&record, &serde_json::to_vec(&forced).unwrap(), &salt).code,
        Code::PromptMismatch
    );
    let mut edited = request.clone();
    edited["messages"][0]["content"] = json!("What is the weather in Rome?");
    assert_eq!(
        check(&record, &serde_json::to_vec(&edited).unwrap(), &salt).code,
        Code::PromptMismatch
    );

    // The messages alone leave out the tools the request carried.
    let messages = serde_json::to_vec(&json!({"messages": request["messages"]})).unwrap();
    assert_eq!(check(&record, &messages, &salt).code, Code::PromptMismatch);

    // The right body under another salt does not open it either.
    assert_eq!(
        check(&record, &body, &Salt::random()).code,
        Code::PromptMismatch
    );
}

#[test]
fn text_commitment_is_checked_byte_for_byte_only() {
    let salt = Salt::random();
    let text = b"Tell me a story.";
    let record = record_with(PromptCommitment::commit("text", text, &salt));
    assert_eq!(check(&record, text, &salt).code, Code::PromptMatch);
    assert_eq!(
        check(&record, b"Tell me a story. ", &salt).code,
        Code::PromptMismatch
    );
    // JSON that happens to hold the text is not the text.
    assert_eq!(
        check(&record, b"\"Tell me a story.\"", &salt).code,
        Code::PromptMismatch
    );
}

#[test]
fn garbage_disclosure_of_a_json_format_is_a_mismatch_not_an_error() {
    let (_, _, salt, record) = chat_commitment();
    for junk in [
        &b""[..],
        b"{",
        b"\xff\xfe",
        b"[1,2,3]",
        b"{\"messages\": 7}",
    ] {
        assert_eq!(check(&record, junk, &salt).code, Code::PromptMismatch);
    }
}
