//! Differential test against an independent implementation: npm `nostr-tools` (NIP-44 v2 on
//! @noble, NIP-59 and NIP-17 gift wraps).
//!
//! - NIP-44: for the same keys, nonce and plaintext (hard Unicode, every padding boundary
//!   near the 2-byte / 6-byte prefix switch, a 300,000-byte plaintext), both sides derive the
//!   same conversation key and write the same payload, and each decrypts the other's; the
//!   large-payload vectors of `fixtures/nip44/large.vectors.json` are recomputed there.
//! - Gift wraps: nostr-tools opens what we wrap (kinds 1059 and 21059; its verdict on the
//!   wrap's signature included) and we open what it wraps, with the same sender and message.
//! - Refusals: a rumor whose author is not the seal's signer, and a seal with a bad
//!   signature, are refused on both sides.
//!
//! The JavaScript side is `tests/differential/dm-oracle.mjs` (protocol in its header), run
//! with `node`; install its pinned dependencies with `npm ci --prefix tests/differential`.

use std::path::PathBuf;

use provenance::nostr::prelude::{Kind, SignEvent, Tag, UnsignedEvent};
use provenance::{Event, Keys, PublicKey, Timestamp};
use provenance_dm::gift::{self, UnwrapError, WrapKind};
use provenance_dm::nip44::{self, ConversationKey};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the oracle on one request.
fn oracle(request: &Value) -> Value {
    provenance_harness::dm_oracle(request)
}

fn secret_hex(keys: &Keys) -> String {
    keys.secret_key().to_secret_hex()
}

/// Plaintexts that encoders get wrong when they get anything wrong.
fn plaintexts() -> Vec<String> {
    let controls: String = (0u32..0x20)
        .chain([0x7f])
        .filter_map(char::from_u32)
        .collect();
    let mut out = vec![
        "a".to_owned(),
        controls,
        "line\u{2028}separator\u{2029} nul \u{0} bom\u{FEFF} rlo\u{202E}".to_owned(),
        "crab \u{1F980} family \u{1F469}\u{200D}\u{1F469}\u{200D}\u{1F467} last \u{10FFFF}"
            .to_owned(),
        r#"{"json": ["inside", 1]} \" \\ </script>"#.to_owned(),
    ];
    // Padding boundaries, and both sides of the length-prefix switch.
    for len in [31, 32, 33, 256, 257, 65_535, 65_536, 65_537, 81_920, 81_921] {
        out.push("x".repeat(len));
    }
    out.push("é".repeat(150_000)); // 300,000 bytes of two-byte characters
    out
}

#[test]
fn nip44_payloads_agree_both_ways() {
    let alice = Keys::generate();
    let bob = Keys::generate();
    let texts = plaintexts();
    let nonces: Vec<[u8; 32]> = (0..texts.len())
        .map(|i| Sha256::digest(format!("nonce {i}")).into())
        .collect();
    let request = json!({
        "encrypt": texts.iter().zip(&nonces).map(|(t, n)| json!({
            "secret_key": secret_hex(&alice),
            "public_key": bob.public_key().to_hex(),
            "plaintext": t,
            "nonce": hex::encode(n),
        })).collect::<Vec<_>>(),
    });
    let answer = oracle(&request);
    let ours_key = ConversationKey::derive(alice.secret_key(), &bob.public_key()).expect("key");
    let mut ours = Vec::new();
    for ((text, nonce), theirs) in texts
        .iter()
        .zip(&nonces)
        .zip(answer["encrypt"].as_array().expect("list"))
    {
        assert_eq!(
            theirs["conversation_key"].as_str(),
            Some(hex::encode(ours_key.as_bytes()).as_str()),
            "conversation key"
        );
        let payload = nip44::encrypt_with_nonce(&ours_key, text, nonce).expect("encrypts");
        let their_payload = theirs["payload"].as_str().expect("payload");
        assert_eq!(payload, their_payload, "payload for {} bytes", text.len());
        // We decrypt theirs, from Bob's side.
        let bob_key = ConversationKey::derive(bob.secret_key(), &alice.public_key()).expect("key");
        assert_eq!(
            &nip44::decrypt(&bob_key, their_payload).expect("decrypts"),
            text
        );
        ours.push(nip44::encrypt(&ours_key, text).expect("encrypts with a random nonce"));
    }

    // They decrypt ours (random nonces), from Bob's side.
    let request = json!({
        "decrypt": ours.iter().map(|p| json!({
            "secret_key": secret_hex(&bob),
            "public_key": alice.public_key().to_hex(),
            "payload": p,
        })).collect::<Vec<_>>(),
    });
    let answer = oracle(&request);
    let decrypted = answer["decrypt"].as_array().expect("list");
    assert_eq!(decrypted.len(), texts.len());
    for (text, result) in texts.iter().zip(decrypted) {
        assert_eq!(
            result["plaintext"].as_str(),
            Some(text.as_str()),
            "{result}"
        );
    }
}

#[derive(Debug, Deserialize)]
struct Large {
    conversation_key: String,
    nonce: String,
    pattern: String,
    repeat: usize,
    payload_len: usize,
    payload_sha256: String,
}

#[test]
fn large_vectors_recomputed_by_nostr_tools() {
    let text =
        std::fs::read_to_string(repo().join("fixtures/nip44/large.vectors.json")).expect("vectors");
    let v: Value = serde_json::from_str(&text).expect("json");
    let cases: Vec<Large> =
        serde_json::from_value(v["encrypt_decrypt_large"].clone()).expect("vectors");
    let request = json!({
        "digest": cases.iter().map(|c| json!({
            "conversation_key": c.conversation_key,
            "nonce": c.nonce,
            "pattern": c.pattern,
            "repeat": c.repeat,
        })).collect::<Vec<_>>(),
    });
    let answer = oracle(&request);
    let digests = answer["digest"].as_array().expect("list");
    assert_eq!(digests.len(), cases.len());
    for (case, theirs) in cases.iter().zip(digests) {
        assert_eq!(
            theirs["payload_sha256"].as_str(),
            Some(case.payload_sha256.as_str())
        );
        assert_eq!(
            theirs["payload_len"].as_u64(),
            Some(case.payload_len as u64)
        );
    }
}

#[test]
fn they_open_what_we_wrap() {
    let alice = Keys::generate();
    let bob = Keys::generate();
    let now = Timestamp::now();
    let mut sent = Vec::new();
    for (i, text) in [
        "hello, model",
        "crab \u{1F980}\n\"quoted\"",
        &"long ".repeat(20_000),
    ]
    .iter()
    .enumerate()
    {
        for kind in [WrapKind::Stored, WrapKind::Ephemeral] {
            let rumor = gift::message(&alice.public_key(), &bob.public_key(), text, now);
            let wrap =
                gift::wrap(&alice, &bob.public_key(), rumor.clone(), kind, now).expect("wraps");
            sent.push((i, kind, rumor, wrap));
        }
    }
    let request = json!({
        "unwrap": sent.iter().map(|(_, _, _, wrap)| json!({
            "recipient_secret": secret_hex(&bob),
            "event": serde_json::from_str::<Value>(&wrap.as_json()).expect("json"),
        })).collect::<Vec<_>>(),
    });
    let answer = oracle(&request);
    let opened = answer["unwrap"].as_array().expect("list");
    assert_eq!(opened.len(), sent.len());
    for ((i, kind, rumor, _), theirs) in sent.iter().zip(opened) {
        assert_eq!(
            theirs["wrap_valid"],
            json!(true),
            "message {i} {kind:?}: {theirs}"
        );
        let expected: Value = serde_json::from_str(&rumor.as_json()).expect("json");
        assert_eq!(theirs["rumor"], expected, "message {i} {kind:?}");
    }
}

#[test]
fn we_open_what_they_wrap() {
    let alice = Keys::generate();
    let bob = Keys::generate();
    let texts = [
        "hello, model",
        "crab \u{1F980}\n\"quoted\"",
        &"long ".repeat(20_000),
    ];
    let mut request = Vec::new();
    for text in &texts {
        for kind in [1059, 21059] {
            request.push(json!({
                "sender_secret": secret_hex(&alice),
                "recipient": bob.public_key().to_hex(),
                "message": text,
                "kind": kind,
            }));
        }
    }
    let answer = oracle(&json!({ "wrap": request }));
    let wraps = answer["wrap"].as_array().expect("list");
    assert_eq!(wraps.len(), texts.len() * 2);
    for (i, wrap) in wraps.iter().enumerate() {
        let wrap = Event::from_json(wrap.as_str().expect("event text")).expect("event");
        let opened = gift::unwrap(&bob, &wrap, Timestamp::now())
            .unwrap_or_else(|e| panic!("wrap {i} (kind {}): {e}", wrap.kind.as_u16()));
        assert_eq!(opened.sender, alice.public_key());
        assert_eq!(opened.rumor.content, texts[i / 2]);
        assert_eq!(opened.rumor.kind.as_u16(), gift::CHAT_MESSAGE_KIND);
        assert_eq!(
            opened.wrap_kind.as_u16(),
            if i % 2 == 0 { 1059 } else { 21059 }
        );
        let p: Vec<&str> = opened
            .rumor
            .tags
            .iter()
            .filter(|t| t.kind() == "p")
            .filter_map(|t| t.content())
            .collect();
        assert_eq!(p, [bob.public_key().to_hex()]);
    }
}

fn encrypt_to(author: &Keys, recipient: &PublicKey, plaintext: &str) -> String {
    let key = ConversationKey::derive(author.secret_key(), recipient).expect("key");
    nip44::encrypt(&key, plaintext).expect("encrypts")
}

fn signed(keys: &Keys, kind: u16, tags: Vec<Tag>, content: String) -> Event {
    let event = UnsignedEvent::new(
        keys.public_key(),
        Timestamp::now(),
        Kind::from_u16(kind),
        tags,
        content,
    );
    keys.sign_event(event).expect("signs")
}

fn wrap_seal(seal: &Event, recipient: &PublicKey) -> Event {
    let one_time = Keys::generate();
    signed(
        &one_time,
        1059,
        vec![Tag::public_key(*recipient)],
        encrypt_to(&one_time, recipient, &seal.as_json()),
    )
}

#[test]
fn both_refuse_a_forged_author_and_a_bad_seal_signature() {
    let alice = Keys::generate();
    let bob = Keys::generate();
    let mallory = Keys::generate();
    let bob_pk = bob.public_key();

    // Mallory seals a rumor claiming to be Alice's.
    let claimed = gift::message(
        &alice.public_key(),
        &bob_pk,
        "from alice?",
        Timestamp::now(),
    );
    let seal = signed(
        &mallory,
        13,
        vec![],
        encrypt_to(&mallory, &bob_pk, &claimed.as_json()),
    );
    let forged = wrap_seal(&seal, &bob_pk);

    // Alice's seal with a signature by another key.
    let genuine = gift::message(&alice.public_key(), &bob_pk, "hi", Timestamp::now());
    let mut seal = signed(
        &alice,
        13,
        vec![],
        encrypt_to(&alice, &bob_pk, &genuine.as_json()),
    );
    seal.sig = mallory.sign_schnorr(seal.id.as_bytes());
    let bad_sig = wrap_seal(&seal, &bob_pk);

    let now = Timestamp::now();
    assert!(matches!(
        gift::unwrap(&bob, &forged, now),
        Err(UnwrapError::ForgedAuthor { .. })
    ));
    assert!(matches!(
        gift::unwrap(&bob, &bad_sig, now),
        Err(UnwrapError::BadSignature(gift::Layer::Seal))
    ));

    let cases: Vec<Value> = [&forged, &bad_sig]
        .iter()
        .map(|w| {
            json!({
                "recipient_secret": secret_hex(&bob),
                "event": serde_json::from_str::<Value>(&w.as_json()).expect("json"),
            })
        })
        .collect();
    let answer = oracle(&json!({ "unwrap": cases }));
    let results = answer["unwrap"].as_array().expect("list");
    assert!(
        results[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("does not match seal pubkey")),
        "{}",
        results[0]
    );
    assert!(
        results[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("seal signature is invalid")),
        "{}",
        results[1]
    );
}
