//! NIP-98 header checks: one accepted request per shape, and one rejection per rule, each
//! asserting the error class it must produce.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use provenance::digest::sha256;
use provenance::nostr::prelude::{Event, Keys, Kind, Tag, Timestamp, UnsignedEvent};
use provenance_signer::nip98::{
    Allow, AllowListError, AuthError, DEFAULT_MAX_HEADER_BYTES, KIND, Nip98Verifier, request_url,
};

const URL: &str = "https://ai.example.com/v1/chat/completions?stream=true";
const NOW: u64 = 1_793_491_200;
const BODY: &[u8] = br#"{"model":"gemma3:270m","messages":[{"role":"user","content":"hi"}]}"#;

fn keys() -> Keys {
    Keys::parse("0000000000000000000000000000000000000000000000000000000000000003").unwrap()
}

/// Signs an event of `kind` with the given tags at `created_at`.
fn signed(keys: &Keys, kind: u16, created_at: u64, tags: &[&[&str]]) -> Event {
    let tags = tags.iter().map(|t| Tag::parse(t.iter().copied()).unwrap());
    let unsigned = UnsignedEvent::new(
        keys.public_key(),
        Timestamp::from_secs(created_at),
        Kind::from_u16(kind),
        tags,
        "",
    );
    let id = unsigned.compute_id();
    unsigned
        .add_signature(keys.sign_schnorr(id.as_bytes()))
        .unwrap()
}

fn header(event: &Event) -> String {
    format!("Nostr {}", STANDARD.encode(event.as_json()))
}

fn get_event(keys: &Keys) -> Event {
    signed(keys, KIND, NOW, &[&["u", URL], &["method", "GET"]])
}

fn post_event(keys: &Keys, body: &[u8]) -> Event {
    let payload = sha256(body).to_hex();
    signed(
        keys,
        KIND,
        NOW,
        &[&["u", URL], &["method", "POST"], &["payload", &payload]],
    )
}

fn check(v: &Nip98Verifier, header: &str, method: &str, body: Option<&[u8]>) -> AuthError {
    check_at(v, header, method, URL, body, NOW).unwrap_err()
}

fn check_at(
    v: &Nip98Verifier,
    header: &str,
    method: &str,
    url: &str,
    body: Option<&[u8]>,
    now: u64,
) -> Result<provenance::PublicKey, AuthError> {
    v.check(
        Some(header.as_bytes()),
        method,
        url,
        body,
        Timestamp::from_secs(now),
    )
}

fn any() -> Nip98Verifier {
    Nip98Verifier::new(Allow::Any)
}

#[test]
fn valid_get_returns_the_callers_key() {
    let keys = keys();
    let got = check_at(&any(), &header(&get_event(&keys)), "GET", URL, None, NOW).unwrap();
    assert_eq!(got, keys.public_key());
}

#[test]
fn valid_post_with_payload() {
    let keys = keys();
    let h = header(&post_event(&keys, BODY));
    assert_eq!(
        check_at(&any(), &h, "POST", URL, Some(BODY), NOW).unwrap(),
        keys.public_key()
    );
}

#[test]
fn scheme_is_case_insensitive_padding_optional_spaces_tolerated() {
    let json = get_event(&keys()).as_json();
    for h in [
        format!("nostr {}", STANDARD_NO_PAD.encode(&json)),
        format!("NOSTR   {}  ", STANDARD.encode(&json)),
        format!(" Nostr {}", STANDARD.encode(&json)),
    ] {
        // A fresh verifier each time: the three headers carry the same event id.
        assert!(check_at(&any(), &h, "GET", URL, None, NOW).is_ok(), "{h}");
    }
}

#[test]
fn window_edges_are_inclusive() {
    let keys = keys();
    let h = header(&get_event(&keys));
    assert!(check_at(&any(), &h, "GET", URL, None, NOW + 60).is_ok());
    assert!(check_at(&any(), &h, "GET", URL, None, NOW - 60).is_ok());
}

#[test]
fn nip98_example_event_is_rejected_its_id_does_not_match() {
    // The example event of NIP-98 (reference/nips/98.md), verbatim: its id is not the hash of
    // its fields, so it must fail at the id check even at its own time and URL.
    let json = r#"{
  "id": "fe964e758903360f28d8424d092da8494ed207cba823110be3a57dfe4b578734",
  "pubkey": "63fe6318dc58583cfe16810f86dd09e18bfd76aabc24a0081ce2856f330504ed",
  "content": "",
  "kind": 27235,
  "created_at": 1682327852,
  "tags": [
    ["u", "https://api.snort.social/api/v1/n5sp/list"],
    ["method", "GET"]
  ],
  "sig": "5ed9d8ec958bc854f997bdc24ac337d005af372324747efe4a00e24f4c30437ff4dd8308684bed467d9d6be3e5a517bb43b1732cc7d33949a3aaf86705c22184"
}"#;
    // The example header of the same NIP, verbatim (it encodes the same event).
    let example_token = "eyJpZCI6ImZlOTY0ZTc1ODkwMzM2MGYyOGQ4NDI0ZDA5MmRhODQ5NGVkMjA3Y2JhODIzMTEwYmUzYTU3ZGZlNGI1Nzg3MzQiLCJwdWJrZXkiOiI2M2ZlNjMxOGRjNTg1ODNjZmUxNjgxMGY4NmRkMDllMThiZmQ3NmFhYmMyNGEwMDgxY2UyODU2ZjMzMDUwNGVkIiwiY29udGVudCI6IiIsImtpbmQiOjI3MjM1LCJjcmVhdGVkX2F0IjoxNjgyMzI3ODUyLCJ0YWdzIjpbWyJ1IiwiaHR0cHM6Ly9hcGkuc25vcnQuc29jaWFsL2FwaS92MS9uNXNwL2xpc3QiXSxbIm1ldGhvZCIsIkdFVCJdXSwic2lnIjoiNWVkOWQ4ZWM5NThiYzg1NGY5OTdiZGMyNGFjMzM3ZDAwNWFmMzcyMzI0NzQ3ZWZlNGEwMGUyNGY0YzMwNDM3ZmY0ZGQ4MzA4Njg0YmVkNDY3ZDlkNmJlM2U1YTUxN2JiNDNiMTczMmNjN2QzMzk0OWEzYWFmODY3MDVjMjIxODQifQ";
    let url = "https://api.snort.social/api/v1/n5sp/list";
    for h in [
        format!("Nostr {}", STANDARD.encode(json)),
        format!("Nostr {example_token}"),
    ] {
        let err = check_at(&any(), &h, "GET", url, None, 1_682_327_852).unwrap_err();
        assert!(matches!(err, AuthError::IdMismatch { .. }), "{err}");
    }
}

#[test]
fn wrong_url_is_rejected_without_normalisation() {
    let keys = keys();
    let h = header(&get_event(&keys));
    for url in [
        "https://ai.example.com/v1/chat/completions?stream=false",
        "https://ai.example.com/v1/chat/completions",
        "https://ai.example.com/v1/chat/completions/?stream=true",
        "http://ai.example.com/v1/chat/completions?stream=true",
        "https://AI.example.com/v1/chat/completions?stream=true",
        "https://ai.example.com:443/v1/chat/completions?stream=true",
        "https://other.example.com/v1/chat/completions?stream=true",
    ] {
        let err = check_at(&any(), &h, "GET", url, None, NOW).unwrap_err();
        assert!(matches!(err, AuthError::UrlMismatch { .. }), "{url}: {err}");
    }
}

#[test]
fn wrong_method_is_rejected_case_sensitively() {
    let keys = keys();
    let h = header(&get_event(&keys));
    for method in ["POST", "get", "HEAD"] {
        let err = check(&any(), &h, method, None);
        assert!(
            matches!(err, AuthError::MethodMismatch { .. }),
            "{method}: {err}"
        );
    }
}

#[test]
fn stale_and_future_events_are_rejected_with_their_age() {
    let keys = keys();
    let old = header(&signed(
        &keys,
        KIND,
        NOW - 95,
        &[&["u", URL], &["method", "GET"]],
    ));
    let err = check(&any(), &old, "GET", None);
    assert!(matches!(
        err,
        AuthError::TooOld {
            age: 95,
            window: 60
        }
    ));
    assert_eq!(
        err.to_string(),
        "authorization event is 95 s old; the window is 60 s"
    );
    let future = header(&signed(
        &keys,
        KIND,
        NOW + 61,
        &[&["u", URL], &["method", "GET"]],
    ));
    let err = check(&any(), &future, "GET", None);
    assert!(
        matches!(
            err,
            AuthError::TooNew {
                ahead: 61,
                window: 60
            }
        ),
        "{err}"
    );

    // A wider window admits it.
    let mut wide = any();
    wide.set_window(Duration::from_secs(120));
    assert!(check_at(&wide, &old, "GET", URL, None, NOW).is_ok());
}

#[test]
fn payload_missing_mismatched_or_malformed_is_rejected() {
    let keys = keys();
    // A POST with a body but no payload tag.
    let bare = header(&signed(
        &keys,
        KIND,
        NOW,
        &[&["u", URL], &["method", "POST"]],
    ));
    let err = check(&any(), &bare, "POST", Some(BODY));
    assert!(matches!(err, AuthError::PayloadMissing), "{err}");
    // Accepted when the operator does not require payload binding, and always without a body.
    let mut lenient = any();
    lenient.set_require_payload(false);
    assert!(check_at(&lenient, &bare, "POST", URL, Some(BODY), NOW).is_ok());
    assert!(check_at(&any(), &bare, "POST", URL, Some(b""), NOW).is_ok());

    // A payload for another body: rejected even when payload binding is not required.
    let other = header(&post_event(&keys, b"{}"));
    for v in [any(), lenient] {
        let err = check(&v, &other, "POST", Some(BODY));
        assert!(matches!(err, AuthError::PayloadMismatch { .. }), "{err}");
    }
    // A payload tag on a request without a body is checked against the empty body.
    let err = check(&any(), &other, "POST", None);
    assert!(matches!(err, AuthError::PayloadMismatch { .. }), "{err}");
    let empty = header(&post_event(&keys, b""));
    assert!(check_at(&any(), &empty, "POST", URL, None, NOW).is_ok());

    let malformed = header(&signed(
        &keys,
        KIND,
        NOW,
        &[&["u", URL], &["method", "POST"], &["payload", "abc"]],
    ));
    let err = check(&any(), &malformed, "POST", Some(BODY));
    assert!(matches!(err, AuthError::PayloadMalformed { .. }), "{err}");
}

#[test]
fn missing_and_duplicate_tags_are_rejected() {
    let keys = keys();
    let cases: [(&[&[&str]], &str); 4] = [
        (&[&["method", "GET"]], "missing u"),
        (&[&["u", URL]], "missing method"),
        (&[&["u", URL], &["u", URL], &["method", "GET"]], "two u"),
        (&[&["u"], &["method", "GET"]], "u without value"),
    ];
    for (tags, name) in cases {
        let err = check(
            &any(),
            &header(&signed(&keys, KIND, NOW, tags)),
            "GET",
            None,
        );
        assert!(
            matches!(
                err,
                AuthError::MissingTag { .. } | AuthError::DuplicateTag { .. }
            ),
            "{name}: {err}"
        );
    }
}

#[test]
fn wrong_kind_is_rejected() {
    let keys = keys();
    let h = header(&signed(&keys, 1, NOW, &[&["u", URL], &["method", "GET"]]));
    let err = check(&any(), &h, "GET", None);
    assert!(matches!(err, AuthError::Kind { found: 1 }), "{err}");
}

#[test]
fn bad_signature_is_rejected() {
    let keys = keys();
    let mut json: serde_json::Value = serde_json::from_str(&get_event(&keys).as_json()).unwrap();
    let sig = json["sig"].as_str().unwrap();
    let flipped = format!(
        "{}{}",
        if sig.starts_with('0') { "1" } else { "0" },
        &sig[1..]
    );
    json["sig"] = flipped.into();
    let h = format!("Nostr {}", STANDARD.encode(json.to_string()));
    let err = check(&any(), &h, "GET", None);
    assert!(matches!(err, AuthError::BadSignature { .. }), "{err}");

    // A signature by another key over the same id.
    let mut json: serde_json::Value = serde_json::from_str(&get_event(&keys).as_json()).unwrap();
    let id = get_event(&keys).id;
    json["sig"] = Keys::generate()
        .sign_schnorr(id.as_bytes())
        .to_string()
        .into();
    let h = format!("Nostr {}", STANDARD.encode(json.to_string()));
    let err = check(&any(), &h, "GET", None);
    assert!(matches!(err, AuthError::BadSignature { .. }), "{err}");
}

#[test]
fn replay_of_an_accepted_event_is_rejected() {
    let keys = keys();
    let v = any();
    let h = header(&get_event(&keys));
    assert!(check_at(&v, &h, "GET", URL, None, NOW).is_ok());
    let err = check_at(&v, &h, "GET", URL, None, NOW + 1).unwrap_err();
    assert!(matches!(err, AuthError::Replayed { .. }), "{err}");
    // The same event re-encoded differently is still the same id.
    let h2 = format!(
        "Nostr {}",
        STANDARD_NO_PAD.encode(get_event(&keys).as_json())
    );
    let err = check_at(&v, &h2, "GET", URL, None, NOW + 2).unwrap_err();
    assert!(matches!(err, AuthError::Replayed { .. }), "{err}");
}

#[test]
fn rejected_events_are_not_remembered() {
    // A failed check must not consume the event: otherwise a bad body could burn a caller's
    // header before the real request arrives.
    let keys = keys();
    let v = any();
    let h = header(&post_event(&keys, BODY));
    assert!(check_at(&v, &h, "POST", URL, Some(b"tampered"), NOW).is_err());
    assert!(check_at(&v, &h, "POST", URL, Some(BODY), NOW).is_ok());
}

#[test]
fn replay_cache_is_bounded_and_fails_closed_until_ids_expire() {
    let keys = keys();
    let mut v = any();
    v.set_replay_capacity(2);
    let at = |t: u64, n: &str| {
        header(&signed(
            &keys,
            KIND,
            t,
            &[&["u", URL], &["method", "GET"], &["nonce", n]],
        ))
    };
    assert!(check_at(&v, &at(NOW, "a"), "GET", URL, None, NOW).is_ok());
    assert!(check_at(&v, &at(NOW, "b"), "GET", URL, None, NOW).is_ok());
    let err = check_at(&v, &at(NOW, "c"), "GET", URL, None, NOW).unwrap_err();
    assert!(
        matches!(err, AuthError::ReplayCacheFull { capacity: 2 }),
        "{err}"
    );
    // Once the first two are out of their window they are forgotten.
    assert!(check_at(&v, &at(NOW + 61, "d"), "GET", URL, None, NOW + 61).is_ok());
}

#[test]
fn concurrent_replays_admit_exactly_one() {
    let keys = keys();
    let v = Arc::new(any());
    let h = Arc::new(header(&get_event(&keys)));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (v, h) = (Arc::clone(&v), Arc::clone(&h));
            std::thread::spawn(move || check_at(&v, &h, "GET", URL, None, NOW).is_ok())
        })
        .collect();
    let accepted = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|ok| *ok)
        .count();
    assert_eq!(accepted, 1);
}

#[test]
fn oversized_header_is_rejected_before_decoding() {
    let h = format!("Nostr {}", "A".repeat(DEFAULT_MAX_HEADER_BYTES));
    let err = check(&any(), &h, "GET", None);
    assert!(
        matches!(
            err,
            AuthError::HeaderTooLarge {
                limit: DEFAULT_MAX_HEADER_BYTES,
                ..
            }
        ),
        "{err}"
    );
    // A smaller cap applies to a valid header too.
    let mut tight = any();
    tight.set_max_header_bytes(100);
    let err = check(&tight, &header(&get_event(&keys())), "GET", None);
    assert!(
        matches!(err, AuthError::HeaderTooLarge { limit: 100, .. }),
        "{err}"
    );
}

#[test]
fn malformed_headers_are_rejected_by_class() {
    let v = any();
    let err = v
        .check(None, "GET", URL, None, Timestamp::from_secs(NOW))
        .unwrap_err();
    assert!(matches!(err, AuthError::Missing), "{err}");

    for h in ["Bearer sk-secret-token", "Nostr", "Nostr ", "Nostrabc", ""] {
        let err = check(&v, h, "GET", None);
        assert!(matches!(err, AuthError::Scheme), "{h:?}: {err}");
        // Another scheme's token may be a credential: never echoed.
        assert!(!err.to_string().contains("sk-secret"));
    }
    let err = check(&v, "Nostr !!!not-base64!!!", "GET", None);
    assert!(matches!(err, AuthError::Base64 { .. }), "{err}");
    // Not the standard alphabet: URL-safe characters.
    let err = check(&v, "Nostr ab-_", "GET", None);
    assert!(matches!(err, AuthError::Base64 { .. }), "{err}");

    for json in ["not json", "[]", "{}", r#"{"kind":27235}"#] {
        let h = format!("Nostr {}", STANDARD.encode(json));
        let err = check(&v, &h, "GET", None);
        assert!(matches!(err, AuthError::Event(_)), "{json}: {err}");
    }
    let err = check(
        &v,
        &format!("Nostr {}", STANDARD.encode([0xff, 0xfe])),
        "GET",
        None,
    );
    assert!(matches!(err, AuthError::Event(_)), "{err}");
}

#[test]
fn key_not_in_allow_list_is_rejected_after_its_signature_checks() {
    let allowed = Keys::generate();
    let list = format!(
        "# operators\n{}\n\n{}  # hex form\n",
        provenance::nip19::encode_npub(&allowed.public_key()),
        keys().public_key().to_hex()
    );
    let allow = Allow::parse_list(&list).unwrap();
    let v = Nip98Verifier::new(allow);
    assert!(check_at(&v, &header(&get_event(&allowed)), "GET", URL, None, NOW).is_ok());
    assert!(check_at(&v, &header(&get_event(&keys())), "GET", URL, None, NOW).is_ok());

    let stranger = Keys::generate();
    let err = check(&v, &header(&get_event(&stranger)), "GET", None);
    assert!(matches!(err, AuthError::KeyNotAllowed { .. }), "{err}");
    assert!(err.to_string().contains("npub1"), "{err}");

    // Whoever does not hold a key cannot learn whether it is on the list: a forged event in
    // the name of an unlisted key fails at the signature, like one in the name of a listed key.
    for named in [&stranger, &allowed] {
        let mut json: serde_json::Value =
            serde_json::from_str(&get_event(named).as_json()).unwrap();
        json["sig"] = Keys::generate()
            .sign_schnorr(get_event(named).id.as_bytes())
            .to_string()
            .into();
        let h = format!("Nostr {}", STANDARD.encode(json.to_string()));
        let err = check(&v, &h, "GET", None);
        assert!(matches!(err, AuthError::BadSignature { .. }), "{err}");
    }
}

#[test]
fn allow_list_parse_errors() {
    assert_eq!(
        Allow::parse_list("# nobody\n\n"),
        Err(AllowListError::Empty)
    );
    assert_eq!(
        Allow::parse_list("npub1xyz\n"),
        Err(AllowListError::BadKey { line: 1 })
    );
    // 64 hex characters that are not the x coordinate of a curve point (x = 5 is not on
    // secp256k1).
    let off_curve = format!("{:0>64}", "5");
    assert_eq!(
        Allow::parse_list(&format!("# ok\n{off_curve}\n")),
        Err(AllowListError::BadKey { line: 2 })
    );
}

#[test]
fn every_reason_is_one_line_and_values_are_shortened() {
    let keys = keys();
    let long = format!("{URL}&pad={}\nX-Injected: 1", "a".repeat(5000));
    let h = header(&signed(
        &keys,
        KIND,
        NOW,
        &[&["u", &long], &["method", "GET"]],
    ));
    let err = check(&any(), &h, "GET", None);
    let reason = err.to_string();
    assert!(matches!(err, AuthError::UrlMismatch { .. }), "{reason}");
    assert!(!reason.contains('\n'), "{reason}");
    assert!(reason.len() < 600, "{} bytes", reason.len());
}

#[test]
fn request_url_joins_base_and_path() {
    assert_eq!(
        request_url("https://ai.example.com", "/v1/chat/completions?stream=true"),
        URL
    );
    assert_eq!(
        request_url(
            "https://ai.example.com/",
            "/v1/chat/completions?stream=true"
        ),
        URL
    );
    assert_eq!(
        request_url("https://ai.example.com/api/", "v1/models"),
        "https://ai.example.com/api/v1/models"
    );
}
