//! NIP-44 v2 against the official vectors (`fixtures/external/nip44/`, paulmillr/nip44) and
//! our vectors for the extended length prefix (`fixtures/nip44/large.vectors.json`, see its
//! README), with the Rust `nostr` crate's own NIP-44 as a second implementation on the large
//! payloads.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use provenance::nostr::nips::nip44::v2 as nostr_v2;
use provenance::{Keys, PublicKey, SecretKey};
use provenance_dm::nip44::{
    self, ConversationKey, DecryptError, EncryptError, MessageKeys, Version, calc_padded_len,
};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn fixture(path: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(path);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("vectors are JSON")
}

fn official() -> Value {
    let v = fixture("external/nip44/nip44.vectors.json");
    v["v2"].clone()
}

fn hex32(s: &str) -> [u8; 32] {
    hex::decode(s).expect("hex").try_into().expect("32 bytes")
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn list<'a>(v: &'a Value, a: &str, b: &str) -> &'a Vec<Value> {
    v[a][b]
        .as_array()
        .unwrap_or_else(|| panic!("{a}.{b} is a list"))
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is a string"))
}

#[test]
fn conversation_keys() {
    let v = official();
    let cases = list(&v, "valid", "get_conversation_key");
    assert_eq!(cases.len(), 35);
    for case in cases {
        let sec = SecretKey::from_hex(s(case, "sec1")).expect("sec1");
        let public = PublicKey::from_hex(s(case, "pub2")).expect("pub2");
        let key = ConversationKey::derive(&sec, &public).expect("valid keys");
        assert_eq!(
            hex::encode(key.as_bytes()),
            s(case, "conversation_key"),
            "{case}"
        );
    }
}

#[test]
fn invalid_conversation_keys() {
    let v = official();
    let cases = list(&v, "invalid", "get_conversation_key");
    assert_eq!(cases.len(), 8);
    for case in cases {
        // A secret out of range is refused when parsed; a public key off the curve when
        // the conversation key is derived.
        let refused = match (
            SecretKey::from_hex(s(case, "sec1")),
            PublicKey::from_hex(s(case, "pub2")),
        ) {
            (Ok(sec), Ok(public)) => ConversationKey::derive(&sec, &public).is_err(),
            _ => true,
        };
        assert!(refused, "accepted: {}", s(case, "note"));
    }
}

#[test]
fn message_keys() {
    let v = official();
    let group = &v["valid"]["get_message_keys"];
    let key = ConversationKey::from_bytes(hex32(s(group, "conversation_key")));
    let cases = group["keys"].as_array().expect("keys");
    assert!(!cases.is_empty());
    for case in cases {
        let keys = MessageKeys::derive(&key, &hex32(s(case, "nonce")));
        assert_eq!(hex::encode(keys.chacha_key), s(case, "chacha_key"));
        assert_eq!(hex::encode(keys.chacha_nonce), s(case, "chacha_nonce"));
        assert_eq!(hex::encode(keys.hmac_key), s(case, "hmac_key"));
    }
}

#[test]
fn padded_lengths() {
    let v = official();
    let cases = list(&v, "valid", "calc_padded_len");
    assert_eq!(cases.len(), 24);
    for case in cases {
        let pair = case.as_array().expect("pair");
        let (len, padded) = (pair[0].as_u64().expect("n"), pair[1].as_u64().expect("n"));
        assert_eq!(calc_padded_len(len), padded, "length {len}");
    }
}

#[test]
fn encrypt_decrypt() {
    let v = official();
    let cases = list(&v, "valid", "encrypt_decrypt");
    assert_eq!(cases.len(), 10);
    for case in cases {
        let sec1 = SecretKey::from_hex(s(case, "sec1")).expect("sec1");
        let sec2 = SecretKey::from_hex(s(case, "sec2")).expect("sec2");
        let pub1 = Keys::new(sec1.clone()).public_key();
        let pub2 = Keys::new(sec2.clone()).public_key();
        let key = ConversationKey::derive(&sec1, &pub2).expect("keys");
        assert_eq!(hex::encode(key.as_bytes()), s(case, "conversation_key"));
        let payload =
            nip44::encrypt_with_nonce(&key, s(case, "plaintext"), &hex32(s(case, "nonce")))
                .expect("encrypts");
        assert_eq!(payload, s(case, "payload"));
        let key = ConversationKey::derive(&sec2, &pub1).expect("keys");
        assert_eq!(
            nip44::decrypt(&key, &payload).expect("decrypts"),
            s(case, "plaintext")
        );
    }
}

#[test]
fn encrypt_decrypt_long_messages() {
    let v = official();
    let cases = list(&v, "valid", "encrypt_decrypt_long_msg");
    assert_eq!(cases.len(), 3);
    for case in cases {
        let key = ConversationKey::from_bytes(hex32(s(case, "conversation_key")));
        let plaintext = s(case, "pattern").repeat(case["repeat"].as_u64().expect("n") as usize);
        assert_eq!(
            sha256_hex(plaintext.as_bytes()),
            s(case, "plaintext_sha256")
        );
        let payload = nip44::encrypt_with_nonce(&key, &plaintext, &hex32(s(case, "nonce")))
            .expect("encrypts");
        assert_eq!(sha256_hex(payload.as_bytes()), s(case, "payload_sha256"));
        assert_eq!(nip44::decrypt(&key, &payload).expect("decrypts"), plaintext);
    }
}

/// The lengths the official file lists as invalid that NIP-44 allows since June 2026.
const NOW_VALID_LENGTHS: [u64; 3] = [65_536, 100_000, 10_000_000];

#[test]
fn invalid_message_lengths() {
    let v = official();
    let lengths: Vec<u64> = list(&v, "invalid", "encrypt_msg_lengths")
        .iter()
        .map(|n| n.as_u64().expect("n"))
        .collect();
    assert_eq!(lengths, [0, 65_536, 100_000, 10_000_000]);
    let key = ConversationKey::from_bytes([1; 32]);
    let mut checked = 0;
    for len in lengths {
        if NOW_VALID_LENGTHS.contains(&len) {
            continue;
        }
        let plaintext = "a".repeat(len as usize);
        assert_eq!(
            nip44::encrypt_with_nonce(&key, &plaintext, &[1; 32]),
            Err(EncryptError::Empty)
        );
        checked += 1;
    }
    assert_eq!(checked, 1, "only the empty plaintext is still invalid");
    // Beyond the format: 2^32 bytes cannot be allocated in a test, but the bound is stated.
    assert_eq!(nip44::MAX_PLAINTEXT_LEN, u64::from(u32::MAX));
}

#[test]
fn invalid_decrypt() {
    let v = official();
    let cases = list(&v, "invalid", "decrypt");
    assert_eq!(cases.len(), 12);
    for case in cases {
        let key = ConversationKey::from_bytes(hex32(s(case, "conversation_key")));
        let note = s(case, "note");
        let error = nip44::decrypt(&key, s(case, "payload")).expect_err(note);
        let expected = match note {
            "unknown encryption version" => {
                matches!(error, DecryptError::UnsupportedVersion(Version::NonBase64))
            }
            "unknown encryption version 0" => {
                matches!(error, DecryptError::UnsupportedVersion(Version::Byte(0)))
            }
            "invalid base64" => matches!(error, DecryptError::Base64(_)),
            "invalid MAC" => error == DecryptError::Mac,
            "invalid padding" => matches!(error, DecryptError::Padding(_)),
            "invalid payload length: 0" => {
                matches!(error, DecryptError::UnsupportedVersion(Version::Empty))
            }
            n if n.starts_with("invalid payload length: ") => {
                matches!(error, DecryptError::TooShort { .. })
            }
            other => panic!("unexpected vector note {other:?}"),
        };
        assert!(expected, "{note}: got {error:?}");
        let text = error.to_string();
        assert!(!text.contains('\n') && !text.is_empty());
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Large {
    conversation_key: String,
    nonce: String,
    pattern: String,
    repeat: usize,
    plaintext_len: usize,
    prefix: String,
    padded_len: usize,
    payload_len: usize,
    plaintext_sha256: String,
    payload_sha256: String,
}

fn large() -> Vec<Large> {
    let v = fixture("nip44/large.vectors.json");
    serde_json::from_value(v["encrypt_decrypt_large"].clone()).expect("vectors")
}

/// The prefix bytes NIP-44 prescribes for a length, written from the NIP text.
fn nip_prefix(len: usize) -> Vec<u8> {
    if len < 65_536 {
        (len as u16).to_be_bytes().to_vec()
    } else {
        let mut p = vec![0, 0];
        p.extend_from_slice(&(len as u32).to_be_bytes());
        p
    }
}

#[test]
fn large_payloads() {
    let cases = large();
    assert_eq!(cases.len(), 12);
    // The NIP's own table: 65,535 / 65,536 / 65,537 bytes of 'a'.
    assert_eq!(
        cases[1].payload_sha256,
        "b7b4edb36ba92e267d322d56d9aebc22e7fa96ff52e3c12adc07f07a43cbc616"
    );
    for case in &cases {
        let key = ConversationKey::from_bytes(hex32(&case.conversation_key));
        let nonce = hex32(&case.nonce);
        let plaintext = case.pattern.repeat(case.repeat);
        assert_eq!(plaintext.len(), case.plaintext_len);
        assert_eq!(sha256_hex(plaintext.as_bytes()), case.plaintext_sha256);
        assert_eq!(hex::encode(nip_prefix(case.plaintext_len)), case.prefix);
        assert_eq!(
            calc_padded_len(case.plaintext_len as u64),
            case.padded_len as u64
        );

        let payload = nip44::encrypt_with_nonce(&key, &plaintext, &nonce).expect("encrypts");
        assert_eq!(
            payload.len(),
            case.payload_len,
            "{} bytes",
            case.plaintext_len
        );
        assert_eq!(sha256_hex(payload.as_bytes()), case.payload_sha256);
        assert_eq!(nip44::decrypt(&key, &payload).expect("decrypts"), plaintext);

        // The exact bytes under the cipher: prefix, plaintext, zeros.
        let raw = BASE64.decode(&payload).expect("base64");
        assert_eq!(raw[0], 2);
        let mut padded = raw[33..raw.len() - 32].to_vec();
        assert_eq!(padded.len(), case.prefix.len() / 2 + case.padded_len);
        let keys = MessageKeys::derive(&key, &nonce);
        ChaCha20::new(&keys.chacha_key.into(), &keys.chacha_nonce.into())
            .apply_keystream(&mut padded);
        let prefix_len = case.prefix.len() / 2;
        assert_eq!(hex::encode(&padded[..prefix_len]), case.prefix);
        assert_eq!(
            &padded[prefix_len..prefix_len + case.plaintext_len],
            plaintext.as_bytes()
        );
        assert!(
            padded[prefix_len + case.plaintext_len..]
                .iter()
                .all(|&b| b == 0)
        );

        // The `nostr` crate's NIP-44 (a separate implementation with the extended prefix).
        let theirs = nostr_v2::ConversationKey::new(hex32(&case.conversation_key));
        let raw_theirs =
            nostr_v2::encrypt_to_bytes_with_nonce(&theirs, plaintext.as_bytes(), nonce)
                .expect("nostr encrypts");
        assert_eq!(raw_theirs, raw, "nostr crate, {} bytes", case.plaintext_len);
        assert_eq!(
            nostr_v2::decrypt_to_bytes(&theirs, &raw).expect("nostr decrypts"),
            plaintext.as_bytes()
        );
    }
}

#[test]
fn the_limit_is_checked_before_decoding() {
    let key = ConversationKey::from_bytes([1; 32]);
    let payload = nip44::encrypt_with_nonce(&key, &"a".repeat(70_000), &[2; 32]).expect("enc");
    assert_eq!(
        nip44::decrypt_limited(&key, &payload, 1000),
        Err(DecryptError::TooLong {
            len: payload.len(),
            max: 1000
        })
    );
    // Not even base64 is looked at past the limit.
    let junk = "!".repeat(2000);
    assert!(matches!(
        nip44::decrypt_limited(&key, &junk, 1000),
        Err(DecryptError::TooLong { .. })
    ));
    assert!(matches!(
        nip44::decrypt_limited(&key, &junk, 4000),
        Err(DecryptError::Base64(_))
    ));
}

#[test]
fn a_wrong_key_is_a_mac_failure() {
    let alice = Keys::generate();
    let bob = Keys::generate();
    let eve = Keys::generate();
    let key = ConversationKey::derive(alice.secret_key(), &bob.public_key()).expect("key");
    let payload = nip44::encrypt(&key, "for bob").expect("enc");
    let wrong = ConversationKey::derive(eve.secret_key(), &alice.public_key()).expect("key");
    assert_eq!(nip44::decrypt(&wrong, &payload), Err(DecryptError::Mac));
    // And a version byte other than 2, re-encoded, is refused as such.
    let mut raw = BASE64.decode(&payload).expect("base64");
    raw[0] = 1;
    assert_eq!(
        nip44::decrypt(&key, &BASE64.encode(&raw)),
        Err(DecryptError::UnsupportedVersion(Version::Byte(1)))
    );
}

#[test]
fn non_utf8_plaintext_is_refused() {
    // Build a payload whose plaintext bytes are not UTF-8, with a valid MAC.
    let key = ConversationKey::from_bytes([3; 32]);
    let nonce = [4u8; 32];
    let keys = MessageKeys::derive(&key, &nonce);
    let mut padded = nip44::pad(&[0xff, 0xfe]).expect("pads");
    ChaCha20::new(&keys.chacha_key.into(), &keys.chacha_nonce.into()).apply_keystream(&mut padded);
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&keys.hmac_key).expect("key");
    mac.update(&nonce);
    mac.update(&padded);
    let mut raw = vec![2];
    raw.extend_from_slice(&nonce);
    raw.extend_from_slice(&padded);
    raw.extend_from_slice(&mac.finalize().into_bytes());
    assert_eq!(
        nip44::decrypt(&key, &BASE64.encode(&raw)),
        Err(DecryptError::Utf8)
    );
}
