//! The NIP-19 vectors in `fixtures/nip19/` (see its README for their sources), through the
//! public API only.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use provenance::nip19::{self, Naddr, Nevent, Nip19, Nip19Error, Nprofile};
use provenance::{EventId, PublicKey, SecretKey};
use serde::Deserialize;
use serde_json::Value;

const VALID: &str = include_str!("../../../fixtures/nip19/valid.json");
const INVALID: &str = include_str!("../../../fixtures/nip19/invalid.json");

#[derive(Deserialize)]
struct File<T> {
    vectors: Vec<T>,
}

#[derive(Deserialize)]
struct Valid {
    input: String,
    canonical: bool,
    expect: Value,
}

#[derive(Deserialize)]
struct Invalid {
    input: String,
    expect: String,
}

fn decode(input: &str) -> Result<Nip19, Nip19Error> {
    if input.starts_with("nostr:") {
        nip19::decode_uri(input)
    } else {
        nip19::decode(input)
    }
}

/// The error class a vector names: the variant in snake case.
fn class(err: &Nip19Error) -> &'static str {
    match err {
        Nip19Error::Bech32m => "bech32m",
        Nip19Error::Checksum => "checksum",
        Nip19Error::DuplicateTlv { .. } => "duplicate_tlv",
        Nip19Error::HrpLength { .. } => "hrp_length",
        Nip19Error::InvalidCharacter { .. } => "invalid_character",
        Nip19Error::InvalidPadding => "invalid_padding",
        Nip19Error::InvalidPublicKey { .. } => "invalid_public_key",
        Nip19Error::InvalidSecretKey => "invalid_secret_key",
        Nip19Error::MissingSeparator => "missing_separator",
        Nip19Error::MissingTlv { .. } => "missing_tlv",
        Nip19Error::MixedCase => "mixed_case",
        Nip19Error::NotUtf8 { .. } => "not_utf8",
        Nip19Error::NsecInUri => "nsec_in_uri",
        Nip19Error::PayloadLength { .. } => "payload_length",
        Nip19Error::TlvLength { .. } => "tlv_length",
        Nip19Error::TlvPastEnd { .. } => "tlv_past_end",
        Nip19Error::TooLong { .. } => "too_long",
        Nip19Error::TooManyRelays { .. } => "too_many_relays",
        Nip19Error::TooShort { .. } => "too_short",
        Nip19Error::UnknownHrp { .. } => "unknown_hrp",
        Nip19Error::ValueTooLong { .. } => "value_too_long",
        Nip19Error::WrongHrp { .. } => "wrong_hrp",
        _ => "unclassified",
    }
}

fn public_key(v: &Value) -> PublicKey {
    PublicKey::from_hex(v.as_str().unwrap()).unwrap()
}

fn relays(v: &Value) -> Vec<String> {
    serde_json::from_value(v.clone()).unwrap()
}

fn kind(v: &Value) -> u32 {
    u32::try_from(v.as_u64().unwrap()).unwrap()
}

/// Reads a fixture's `expect` object into the value it describes.
fn expected(expect: &Value) -> Nip19 {
    let (name, v) = expect.as_object().unwrap().iter().next().unwrap();
    match name.as_str() {
        "npub" => Nip19::Npub(public_key(v)),
        "nsec" => Nip19::Nsec(SecretKey::from_hex(v.as_str().unwrap()).unwrap()),
        "note" => Nip19::Note(EventId::from_hex(v.as_str().unwrap()).unwrap()),
        "nevent" => Nip19::Nevent(Nevent {
            id: EventId::from_hex(v["id"].as_str().unwrap()).unwrap(),
            relays: relays(&v["relays"]),
            author: (!v["author"].is_null()).then(|| public_key(&v["author"])),
            kind: (!v["kind"].is_null()).then(|| kind(&v["kind"])),
        }),
        "nprofile" => Nip19::Nprofile(Nprofile {
            pubkey: public_key(&v["pubkey"]),
            relays: relays(&v["relays"]),
        }),
        "naddr" => Nip19::Naddr(Naddr {
            identifier: v["identifier"].as_str().unwrap().to_owned(),
            author: public_key(&v["author"]),
            kind: kind(&v["kind"]),
            relays: relays(&v["relays"]),
        }),
        other => panic!("unknown entity `{other}` in valid.json"),
    }
}

#[test]
fn valid_vectors_decode_to_their_values_and_round_trip() {
    let file: File<Valid> = serde_json::from_str(VALID).unwrap();
    assert!(file.vectors.len() >= 10);
    for v in &file.vectors {
        let decoded = decode(&v.input).unwrap_or_else(|e| panic!("{}: {e}", v.input));
        assert_eq!(decoded, expected(&v.expect), "{}", v.input);
        let encoded = decoded.encode().unwrap();
        assert_eq!(
            encoded == v.input.trim_start_matches("nostr:"),
            v.canonical,
            "{}",
            v.input
        );
        assert_eq!(nip19::decode(&encoded).unwrap(), decoded, "{}", v.input);
        // Every public entity also decodes from a `nostr:` URI, and every bare one as is.
        if !matches!(decoded, Nip19::Nsec(_)) {
            assert_eq!(
                nip19::decode_uri(&format!("nostr:{encoded}")).unwrap(),
                decoded
            );
        }
        assert_eq!(nip19::decode_uri(&encoded).unwrap(), decoded);
    }
}

#[test]
fn invalid_vectors_fail_with_their_class() {
    let file: File<Invalid> = serde_json::from_str(INVALID).unwrap();
    assert!(file.vectors.len() >= 10);
    for v in &file.vectors {
        let err = decode(&v.input).expect_err(&v.input);
        assert_eq!(class(&err), v.expect, "{}: {err}", v.input);
    }
}

#[test]
fn the_fixtures_cover_the_issue_cases() {
    let valid: File<Valid> = serde_json::from_str(VALID).unwrap();
    assert!(valid.vectors.iter().any(|v| v.input.len() == 1201
        && matches!(decode(&v.input), Ok(Nip19::Nevent(Nevent { ref relays, .. })) if relays.len() == 12)));
    assert!(
        valid
            .vectors
            .iter()
            .any(|v| v.input.bytes().all(|b| !b.is_ascii_lowercase()))
    );
    let invalid: File<Invalid> = serde_json::from_str(INVALID).unwrap();
    for class in [
        "bech32m",
        "mixed_case",
        "tlv_past_end",
        "too_long",
        "invalid_public_key",
    ] {
        assert!(
            invalid.vectors.iter().any(|v| v.expect == class),
            "no `{class}` vector"
        );
    }
    let bech32m = invalid
        .vectors
        .iter()
        .find(|v| v.expect == "bech32m")
        .unwrap();
    assert!(bech32m.input.starts_with("note1"));
    let message = nip19::decode(&bech32m.input).unwrap_err().to_string();
    assert!(message.contains("bech32m"), "{message}");
}
