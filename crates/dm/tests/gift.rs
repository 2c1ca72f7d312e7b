//! NIP-17 / NIP-59 gift wraps: what `wrap` makes, what `unwrap` accepts, and every refusal,
//! on wraps crafted layer by layer. Also the NIP-59 text's worked example, and the Rust
//! `nostr` crate's gift wraps in both directions.

use provenance::nostr::nips::nip59::{GiftWrapBuilder, UnwrappedGift};
use provenance::nostr::prelude::{FinalizeEvent, Kind, SignEvent, Tag, UnsignedEvent};
use provenance::{Event, Keys, PublicKey, SecretKey, Timestamp};
use provenance_dm::gift::{
    self, Layer, Limits, MAX_BACKDATE_SECS, Randomness, UnwrapError, WrapError, WrapKind,
};
use provenance_dm::nip44::{self, ConversationKey, DecryptError};
use serde_json::{Value, json};

const NOW: u64 = 1_800_000_000;

fn now() -> Timestamp {
    Timestamp::from_secs(NOW)
}

fn encrypt_to(author: &Keys, recipient: &PublicKey, plaintext: &str) -> String {
    let key = ConversationKey::derive(author.secret_key(), recipient).expect("valid key");
    nip44::encrypt(&key, plaintext).expect("encrypts")
}

/// A seal (kind 13 unless told otherwise) by `author` of `rumor_json`, for `recipient`.
fn seal_of(author: &Keys, recipient: &PublicKey, rumor_json: &str, kind: u16, at: u64) -> Event {
    let seal = UnsignedEvent::new(
        author.public_key(),
        Timestamp::from_secs(at),
        Kind::from_u16(kind),
        [],
        encrypt_to(author, recipient, rumor_json),
    );
    author.sign_event(seal).expect("signs")
}

/// A gift wrap of `inner_json` for `recipient`, by a fresh one-time key, with `tags`.
fn wrap_of(inner_json: &str, recipient: &PublicKey, kind: u16, at: u64, tags: Vec<Tag>) -> Event {
    let one_time = Keys::generate();
    let wrap = UnsignedEvent::new(
        one_time.public_key(),
        Timestamp::from_secs(at),
        Kind::from_u16(kind),
        tags,
        encrypt_to(&one_time, recipient, inner_json),
    );
    one_time.sign_event(wrap).expect("signs")
}

/// A whole wrap of a rumor given as JSON, sealed by `author`, for `recipient`.
fn wrap_rumor_json(author: &Keys, recipient: &PublicKey, rumor_json: &str) -> Event {
    let seal = seal_of(author, recipient, rumor_json, 13, NOW - 10);
    wrap_of(
        &seal.as_json(),
        recipient,
        1059,
        NOW - 20,
        vec![Tag::public_key(*recipient)],
    )
}

struct Parties {
    alice: Keys,
    bob: Keys,
}

fn parties() -> Parties {
    Parties {
        alice: Keys::generate(),
        bob: Keys::generate(),
    }
}

fn hello(p: &Parties) -> UnsignedEvent {
    gift::message(
        &p.alice.public_key(),
        &p.bob.public_key(),
        "hello, model",
        now(),
    )
}

fn refused(p: &Parties, wrap: &Event) -> UnwrapError {
    let error = gift::unwrap(&p.bob, wrap, now()).expect_err("must be refused");
    let text = error.to_string();
    assert!(!text.is_empty() && !text.contains('\n'), "{text:?}");
    error
}

#[test]
fn a_message_round_trips_in_both_wrap_kinds() {
    let p = parties();
    for kind in [WrapKind::Stored, WrapKind::Ephemeral] {
        let rumor = hello(&p);
        let wrap =
            gift::wrap(&p.alice, &p.bob.public_key(), rumor.clone(), kind, now()).expect("wraps");
        assert_eq!(wrap.kind.as_u16(), kind.as_u16());
        assert!(wrap.verify().is_ok());
        assert_ne!(
            wrap.pubkey,
            p.alice.public_key(),
            "the wrap hides the sender"
        );
        let tags: Vec<Vec<String>> = wrap.tags.iter().map(|t| t.as_slice().to_vec()).collect();
        assert_eq!(tags, [vec!["p".to_owned(), p.bob.public_key().to_hex()]]);
        assert!(wrap.created_at.as_secs() <= NOW);
        assert!(wrap.created_at.as_secs() >= NOW - MAX_BACKDATE_SECS);

        let opened = gift::unwrap(&p.bob, &wrap, now()).expect("unwraps");
        assert_eq!(opened.sender, p.alice.public_key());
        assert_eq!(opened.rumor, rumor);
        assert_eq!(opened.rumor.kind.as_u16(), gift::CHAT_MESSAGE_KIND);
        assert_eq!(opened.wrap_id, wrap.id);
        assert_eq!(opened.wrap_kind, kind);
        assert!(opened.seal_created_at.as_secs() <= NOW);
        assert!(opened.seal_created_at.as_secs() >= NOW - MAX_BACKDATE_SECS);

        // The seal inside: kind 13, no tags, by Alice.
        let key = ConversationKey::derive(p.bob.secret_key(), &wrap.pubkey).expect("key");
        let seal = Event::from_json(nip44::decrypt(&key, &wrap.content).expect("opens"))
            .expect("seal JSON");
        assert_eq!(seal.kind.as_u16(), 13);
        assert!(seal.tags.is_empty());
        assert_eq!(seal.pubkey, p.alice.public_key());
    }
}

#[test]
fn outer_dates_are_random_and_in_the_past() {
    let p = parties();
    let mut wrap_times = std::collections::BTreeSet::new();
    let mut seal_times = std::collections::BTreeSet::new();
    for _ in 0..16 {
        let wrap = gift::wrap(
            &p.alice,
            &p.bob.public_key(),
            hello(&p),
            WrapKind::Stored,
            now(),
        )
        .expect("wraps");
        let opened = gift::unwrap(&p.bob, &wrap, now()).expect("unwraps");
        wrap_times.insert(wrap.created_at.as_secs());
        seal_times.insert(opened.seal_created_at.as_secs());
        assert_eq!(
            opened.rumor.created_at,
            now(),
            "the rumor keeps the real time"
        );
    }
    // Sixteen draws from 172,801 values: a repeat of all of them means no randomness.
    assert!(wrap_times.len() > 8, "{wrap_times:?}");
    assert!(seal_times.len() > 8, "{seal_times:?}");
    assert!(wrap_times.iter().chain(&seal_times).all(|&t| t <= NOW));
}

#[test]
fn fixed_randomness_gives_the_same_wrap_contents() {
    let p = parties();
    let random = Randomness {
        wrap_keys: Keys::generate(),
        seal_backdate: 100,
        wrap_backdate: 200,
        seal_nonce: [5; 32],
        wrap_nonce: [6; 32],
    };
    let a = gift::wrap_with(
        &p.alice,
        &p.bob.public_key(),
        hello(&p),
        WrapKind::Stored,
        now(),
        &random,
        &Limits::default(),
    )
    .expect("wraps");
    assert_eq!(a.created_at.as_secs(), NOW - 200);
    assert_eq!(a.pubkey, random.wrap_keys.public_key());
    let opened = gift::unwrap(&p.bob, &a, now()).expect("unwraps");
    assert_eq!(opened.seal_created_at.as_secs(), NOW - 100);
}

#[test]
fn a_replayed_wrap_unwraps_again_with_the_same_id() {
    // Replay refusal is the receiver's job (it keeps handled wrap ids): this layer has no
    // state, and says so by giving the same id twice.
    let p = parties();
    let wrap = gift::wrap(
        &p.alice,
        &p.bob.public_key(),
        hello(&p),
        WrapKind::Stored,
        now(),
    )
    .expect("wraps");
    let first = gift::unwrap(&p.bob, &wrap, now()).expect("unwraps");
    let second = gift::unwrap(&p.bob, &wrap, now()).expect("unwraps again");
    assert_eq!(first.wrap_id, second.wrap_id);
}

#[test]
fn other_kinds_are_not_gift_wraps() {
    let p = parties();
    let wrap = gift::wrap(
        &p.alice,
        &p.bob.public_key(),
        hello(&p),
        WrapKind::Stored,
        now(),
    )
    .expect("wraps");
    for kind in [1u16, 13, 14, 1058, 1060, 20059, 21058] {
        let mut other = wrap_of(
            "{}",
            &p.bob.public_key(),
            kind,
            NOW,
            vec![Tag::public_key(p.bob.public_key())],
        );
        assert_eq!(refused(&p, &other), UnwrapError::NotGiftWrap(kind));
        other.kind = wrap.kind;
        assert_eq!(refused(&p, &other), UnwrapError::BadId(Layer::Wrap));
    }
}

#[test]
fn an_altered_wrap_is_refused() {
    let p = parties();
    let wrap = gift::wrap(
        &p.alice,
        &p.bob.public_key(),
        hello(&p),
        WrapKind::Stored,
        now(),
    )
    .expect("wraps");
    let mut altered = wrap.clone();
    altered.created_at = Timestamp::from_secs(wrap.created_at.as_secs() - 1);
    assert_eq!(refused(&p, &altered), UnwrapError::BadId(Layer::Wrap));

    // A valid signature by another key over the same id.
    let mut resigned = wrap.clone();
    resigned.sig = Keys::generate().sign_schnorr(resigned.id.as_bytes());
    assert_eq!(
        refused(&p, &resigned),
        UnwrapError::BadSignature(Layer::Wrap)
    );
}

#[test]
fn a_wrap_for_someone_else_is_refused() {
    let p = parties();
    let carol = Keys::generate();
    let wrap = gift::wrap(
        &p.alice,
        &carol.public_key(),
        hello(&p),
        WrapKind::Stored,
        now(),
    )
    .expect("wraps");
    assert_eq!(
        refused(&p, &wrap),
        UnwrapError::NotForRecipient(p.bob.public_key())
    );

    // No p tag at all.
    let rumor = hello(&p).as_json();
    let seal = seal_of(&p.alice, &p.bob.public_key(), &rumor, 13, NOW);
    let untagged = wrap_of(&seal.as_json(), &p.bob.public_key(), 1059, NOW, vec![]);
    assert_eq!(
        refused(&p, &untagged),
        UnwrapError::NotForRecipient(p.bob.public_key())
    );

    // Tagged for Bob but encrypted to Carol: it does not decrypt for Bob.
    let seal = seal_of(&p.alice, &carol.public_key(), &rumor, 13, NOW);
    let mislabelled = wrap_of(
        &seal.as_json(),
        &carol.public_key(),
        1059,
        NOW,
        vec![Tag::public_key(p.bob.public_key())],
    );
    assert_eq!(
        refused(&p, &mislabelled),
        UnwrapError::Decrypt(Layer::Wrap, DecryptError::Mac)
    );
}

#[test]
fn a_bad_seal_is_refused() {
    let p = parties();
    let bob = p.bob.public_key();
    let rumor = hello(&p).as_json();
    let seal = seal_of(&p.alice, &bob, &rumor, 13, NOW);

    // Signature by another key.
    let mut forged = seal.clone();
    forged.sig = Keys::generate().sign_schnorr(forged.id.as_bytes());
    let wrap = wrap_of(
        &forged.as_json(),
        &bob,
        1059,
        NOW,
        vec![Tag::public_key(bob)],
    );
    assert_eq!(refused(&p, &wrap), UnwrapError::BadSignature(Layer::Seal));

    // Content changed after signing.
    let mut altered = seal.clone();
    altered.content = encrypt_to(&p.alice, &bob, &rumor);
    let wrap = wrap_of(
        &altered.as_json(),
        &bob,
        1059,
        NOW,
        vec![Tag::public_key(bob)],
    );
    assert_eq!(refused(&p, &wrap), UnwrapError::BadId(Layer::Seal));

    // Not a seal.
    let note = seal_of(&p.alice, &bob, &rumor, 1, NOW);
    let wrap = wrap_of(&note.as_json(), &bob, 1059, NOW, vec![Tag::public_key(bob)]);
    assert_eq!(refused(&p, &wrap), UnwrapError::NotSeal(1));

    // Not an event.
    for inner in ["not json", "[]", "{}", r#"{"kind":13}"#] {
        let wrap = wrap_of(inner, &bob, 1059, NOW, vec![Tag::public_key(bob)]);
        assert!(
            matches!(refused(&p, &wrap), UnwrapError::Malformed(Layer::Seal, _)),
            "{inner}"
        );
    }

    // Seal content that is not a NIP-44 payload.
    let garbage = UnsignedEvent::new(
        p.alice.public_key(),
        now(),
        Kind::from_u16(13),
        [],
        "A".repeat(200) + "!",
    );
    let garbage = p.alice.sign_event(garbage).expect("signs");
    let wrap = wrap_of(
        &garbage.as_json(),
        &bob,
        1059,
        NOW,
        vec![Tag::public_key(bob)],
    );
    assert!(matches!(
        refused(&p, &wrap),
        UnwrapError::Decrypt(Layer::Seal, DecryptError::Base64(_))
    ));
}

#[test]
fn a_forged_inner_author_is_refused() {
    // Mallory seals a rumor that claims Alice wrote it: NIP-17's impersonation case.
    let p = parties();
    let mallory = Keys::generate();
    let mut claimed = hello(&p);
    claimed.id = None;
    claimed.ensure_id();
    let wrap = wrap_rumor_json(&mallory, &p.bob.public_key(), &claimed.as_json());
    assert_eq!(
        refused(&p, &wrap),
        UnwrapError::ForgedAuthor {
            seal: mallory.public_key(),
            rumor: p.alice.public_key(),
        }
    );
}

#[test]
fn a_signed_rumor_is_refused() {
    let p = parties();
    let signed = p.alice.sign_event(hello(&p)).expect("signs");
    let wrap = wrap_rumor_json(&p.alice, &p.bob.public_key(), &signed.as_json());
    assert_eq!(refused(&p, &wrap), UnwrapError::SignedRumor);

    // Any sig field, even null or empty, marks it.
    for sig in [Value::Null, json!("")] {
        let mut rumor: Value = serde_json::from_str(&hello(&p).as_json()).expect("json");
        rumor["sig"] = sig;
        let wrap = wrap_rumor_json(&p.alice, &p.bob.public_key(), &rumor.to_string());
        assert_eq!(refused(&p, &wrap), UnwrapError::SignedRumor);
    }
}

#[test]
fn a_rumor_must_carry_its_own_id() {
    let p = parties();
    let mut rumor: Value = serde_json::from_str(&hello(&p).as_json()).expect("json");
    let id = rumor["id"].clone();

    rumor.as_object_mut().expect("object").remove("id");
    let wrap = wrap_rumor_json(&p.alice, &p.bob.public_key(), &rumor.to_string());
    assert_eq!(refused(&p, &wrap), UnwrapError::RumorIdMissing);

    rumor["id"] = id;
    rumor["content"] = json!("changed after the id was computed");
    let wrap = wrap_rumor_json(&p.alice, &p.bob.public_key(), &rumor.to_string());
    assert!(matches!(
        refused(&p, &wrap),
        UnwrapError::RumorIdMismatch { .. }
    ));

    for inner in ["[1]", "\"text\"", "{\"pubkey\": 1}"] {
        let wrap = wrap_rumor_json(&p.alice, &p.bob.public_key(), inner);
        assert!(
            matches!(refused(&p, &wrap), UnwrapError::Malformed(Layer::Rumor, _)),
            "{inner}"
        );
    }
}

#[test]
fn sizes_are_bounded() {
    let p = parties();
    let limits = Limits::default();
    assert_eq!(limits.max_wrap_content, 1 << 20);

    // A wrap over the limit is refused before any cryptography.
    let mut big = gift::wrap(
        &p.alice,
        &p.bob.public_key(),
        hello(&p),
        WrapKind::Stored,
        now(),
    )
    .expect("wraps");
    big.content = "A".repeat(limits.max_wrap_content + 1);
    assert_eq!(
        refused(&p, &big),
        UnwrapError::TooLarge {
            len: limits.max_wrap_content + 1,
            max: limits.max_wrap_content
        }
    );

    // The largest rumor the default limit carries: 458,752 bytes of JSON (padding makes the
    // steps coarse: one byte more pads the seal, then the wrap, to the next bucket).
    let base = gift::message(&p.alice.public_key(), &p.bob.public_key(), "", now())
        .as_json()
        .len();
    let fits = "x".repeat(458_752 - base);
    let rumor = gift::message(&p.alice.public_key(), &p.bob.public_key(), &fits, now());
    assert_eq!(rumor.as_json().len(), 458_752);
    let wrap = gift::wrap(
        &p.alice,
        &p.bob.public_key(),
        rumor,
        WrapKind::Stored,
        now(),
    )
    .expect("the largest rumor wraps");
    assert!(gift::unwrap(&p.bob, &wrap, now()).is_ok());
    let over = fits + "x";
    let rumor = gift::message(&p.alice.public_key(), &p.bob.public_key(), &over, now());
    assert!(matches!(
        gift::wrap(
            &p.alice,
            &p.bob.public_key(),
            rumor,
            WrapKind::Stored,
            now()
        ),
        Err(WrapError::TooLarge { .. })
    ));

    // A message too large for the limit is refused when wrapping, not sent to be refused.
    let text = "x".repeat(600 * 1024);
    let rumor = gift::message(&p.alice.public_key(), &p.bob.public_key(), &text, now());
    assert!(matches!(
        gift::wrap(
            &p.alice,
            &p.bob.public_key(),
            rumor.clone(),
            WrapKind::Stored,
            now()
        ),
        Err(WrapError::TooLarge { .. })
    ));

    // A large message under a raised limit goes through (and uses NIP-44's 6-byte prefix).
    let raised = Limits {
        max_wrap_content: 4 << 20,
        ..Limits::default()
    };
    let wrap = gift::wrap_with(
        &p.alice,
        &p.bob.public_key(),
        rumor.clone(),
        WrapKind::Ephemeral,
        now(),
        &Randomness::generate(),
        &raised,
    )
    .expect("wraps");
    assert!(matches!(
        gift::unwrap(&p.bob, &wrap, now()),
        Err(UnwrapError::TooLarge { .. })
    ));
    let opened = gift::unwrap_with(&p.bob, &wrap, now(), &raised).expect("unwraps");
    assert_eq!(opened.rumor.content, text);

    // Tight limits refuse what default limits accept.
    let small = gift::wrap(
        &p.alice,
        &p.bob.public_key(),
        hello(&p),
        WrapKind::Stored,
        now(),
    )
    .expect("wraps");
    let tight = Limits {
        max_wrap_content: small.content.len() - 1,
        ..Limits::default()
    };
    assert!(matches!(
        gift::unwrap_with(&p.bob, &small, now(), &tight),
        Err(UnwrapError::TooLarge { .. })
    ));
}

#[test]
fn the_future_window() {
    let p = parties();
    let bob = p.bob.public_key();
    let window = Limits::default().max_future_secs;
    assert_eq!(window, 600);
    let rumor = hello(&p).as_json();
    let seal = seal_of(&p.alice, &bob, &rumor, 13, NOW).as_json();

    // The wrap: at the edge of the window it is fine, one second past it is not.
    let edge = wrap_of(&seal, &bob, 1059, NOW + window, vec![Tag::public_key(bob)]);
    assert!(gift::unwrap(&p.bob, &edge, now()).is_ok());
    let late = wrap_of(
        &seal,
        &bob,
        1059,
        NOW + window + 1,
        vec![Tag::public_key(bob)],
    );
    assert_eq!(
        refused(&p, &late),
        UnwrapError::FromTheFuture {
            layer: Layer::Wrap,
            ahead: window + 1,
            max: window
        }
    );

    // The seal.
    let future_seal = seal_of(&p.alice, &bob, &rumor, 13, NOW + 3600).as_json();
    let wrap = wrap_of(&future_seal, &bob, 1059, NOW, vec![Tag::public_key(bob)]);
    assert!(matches!(
        refused(&p, &wrap),
        UnwrapError::FromTheFuture {
            layer: Layer::Seal,
            ..
        }
    ));

    // The rumor.
    let mut future = gift::message(
        &p.alice.public_key(),
        &bob,
        "later",
        Timestamp::from_secs(NOW + 86_400),
    );
    future.ensure_id();
    let wrap = wrap_rumor_json(&p.alice, &bob, &future.as_json());
    assert!(matches!(
        refused(&p, &wrap),
        UnwrapError::FromTheFuture {
            layer: Layer::Rumor,
            ..
        }
    ));

    // Far in the past is normal.
    let old_seal = seal_of(&p.alice, &bob, &rumor, 13, 1_000_000_000).as_json();
    let old = wrap_of(
        &old_seal,
        &bob,
        1059,
        1_000_000_000,
        vec![Tag::public_key(bob)],
    );
    assert!(gift::unwrap(&p.bob, &old, now()).is_ok());
}

#[test]
fn wrap_refuses_a_rumor_it_cannot_vouch_for() {
    let p = parties();
    let mallory = Keys::generate();
    assert!(matches!(
        gift::wrap(
            &mallory,
            &p.bob.public_key(),
            hello(&p),
            WrapKind::Stored,
            now()
        ),
        Err(WrapError::RumorAuthor { .. })
    ));
    let mut wrong_id = hello(&p);
    wrong_id.content.push('!');
    assert_eq!(
        gift::wrap(
            &p.alice,
            &p.bob.public_key(),
            wrong_id,
            WrapKind::Stored,
            now()
        ),
        Err(WrapError::RumorId)
    );
    // A rumor without an id gets one.
    let mut no_id = hello(&p);
    no_id.id = None;
    let wrap = gift::wrap(
        &p.alice,
        &p.bob.public_key(),
        no_id,
        WrapKind::Stored,
        now(),
    )
    .expect("wraps");
    assert_eq!(
        gift::unwrap(&p.bob, &wrap, now()).expect("unwraps").rumor,
        hello(&p)
    );
    // A recipient key off the curve.
    let off_curve = PublicKey::from_byte_array([0xff; 32]);
    assert!(matches!(
        gift::wrap(&p.alice, &off_curve, hello(&p), WrapKind::Stored, now()),
        Err(WrapError::Recipient(_))
    ));
}

/// The worked example of NIP-59 ("An Example"), with its keys.
#[test]
fn the_nip59_example_unwraps() {
    let recipient = Keys::new(
        SecretKey::from_hex("e108399bd8424357a710b606ae0c13166d853d327e47a6e5e038197346bdbf45")
            .expect("key"),
    );
    let sender = Keys::new(
        SecretKey::from_hex("0beebd062ec8735f4243466049d7747ef5d6594ee838de147f8aab842b15e273")
            .expect("key"),
    );
    let wrap = Event::from_json(
        r#"{"content":"AhC3Qj/QsKJFWuf6xroiYip+2yK95qPwJjVvFujhzSguJWb/6TlPpBW0CGFwfufCs2Zyb0JeuLmZhNlnqecAAalC4ZCugB+I9ViA5pxLyFfQjs1lcE6KdX3euCHBLAnE9GL/+IzdV9vZnfJH6atVjvBkNPNzxU+OLCHO/DAPmzmMVx0SR63frRTCz6Cuth40D+VzluKu1/Fg2Q1LSst65DE7o2efTtZ4Z9j15rQAOZfE9jwMCQZt27rBBK3yVwqVEriFpg2mHXc1DDwHhDADO8eiyOTWF1ghDds/DxhMcjkIi/o+FS3gG1dG7gJHu3KkGK5UXpmgyFKt+421m5o++RMD/BylS3iazS1S93IzTLeGfMCk+7IKxuSCO06k1+DaasJJe8RE4/rmismUvwrHu/HDutZWkvOAhd4z4khZo7bJLtiCzZCZ74lZcjOB4CYtuAX2ZGpc4I1iOKkvwTuQy9BWYpkzGg3ZoSWRD6ty7U+KN+fTTmIS4CelhBTT15QVqD02JxfLF7nA6sg3UlYgtiGw61oH68lSbx16P3vwSeQQpEB5JbhofW7t9TLZIbIW/ODnI4hpwj8didtk7IMBI3Ra3uUP7ya6vptkd9TwQkd/7cOFaSJmU+BIsLpOXbirJACMn+URoDXhuEtiO6xirNtrPN8jYqpwvMUm5lMMVzGT3kMMVNBqgbj8Ln8VmqouK0DR+gRyNb8fHT0BFPwsHxDskFk5yhe5c/2VUUoKCGe0kfCcX/EsHbJLUUtlHXmTqaOJpmQnW1tZ/siPwKRl6oEsIJWTUYxPQmrM2fUpYZCuAo/29lTLHiHMlTbarFOd6J/ybIbICy2gRRH/LFSryty3Cnf6aae+A9uizFBUdCwTwffc3vCBae802+R92OL78bbqHKPbSZOXNC+6ybqziezwG+OPWHx1Qk39RYaF0aFsM4uZWrFic97WwVrH5i+/Nsf/OtwWiuH0gV/SqvN1hnkxCTF/+XNn/laWKmS3e7wFzBsG8+qwqwmO9aVbDVMhOmeUXRMkxcj4QreQkHxLkCx97euZpC7xhvYnCHarHTDeD6nVK+xzbPNtzeGzNpYoiMqxZ9bBJwMaHnEoI944Vxoodf51cMIIwpTmmRvAzI1QgrfnOLOUS7uUjQ/IZ1Qa3lY08Nqm9MAGxZ2Ou6R0/Z5z30ha/Q71q6meAs3uHQcpSuRaQeV29IASmye2A2Nif+lmbhV7w8hjFYoaLCRsdchiVyNjOEM4VmxUhX4VEvw6KoCAZ/XvO2eBF/SyNU3Of4SO","kind":1059,"created_at":1703021488,"pubkey":"18b1a75918f1f2c90c23da616bce317d36e348bcf5f7ba55e75949319210c87c","id":"5c005f3ccf01950aa8d131203248544fb1e41a0d698e846bd419cec3890903ac","sig":"35fabdae4634eb630880a1896a886e40fd6ea8a60958e30b89b33a93e6235df750097b04f9e13053764251b8bc5dd7e8e0794a3426a90b6bcc7e5ff660f54259","tags":[["p","166bf3765ebd1fc55decfe395beff2ea3b2a4e0a8946e7eb578512b555737c99"]]}"#,
    )
    .expect("the example is an event");
    let opened =
        gift::unwrap(&recipient, &wrap, Timestamp::from_secs(1_703_021_488)).expect("unwraps");
    assert_eq!(opened.sender, sender.public_key());
    assert_eq!(opened.rumor.kind.as_u16(), 1);
    assert_eq!(opened.rumor.content, "Are you going to the party tonight?");
    assert_eq!(
        opened.rumor.id.expect("id").to_hex(),
        "9dd003c6d3b73b74a85a9ab099469ce251653a7af76f523671ab828acd2a0ef9"
    );
    assert_eq!(opened.seal_created_at.as_secs(), 1_703_015_180);
}

/// The Rust `nostr` crate (0.45.6) wraps kind 1059 only; both directions for that kind.
#[test]
fn the_nostr_crate_agrees_on_kind_1059() {
    let p = parties();
    // nostr dates its layers from the real clock; so must the rumor be.
    let real_now = Timestamp::now();
    let rumor = gift::message(&p.alice.public_key(), &p.bob.public_key(), "hi", real_now);
    let theirs = GiftWrapBuilder::new(p.bob.public_key(), rumor.clone())
        .finalize(&p.alice)
        .expect("nostr wraps");
    let opened = gift::unwrap(&p.bob, &theirs, real_now).expect("we unwrap theirs");
    assert_eq!(opened.sender, p.alice.public_key());
    assert_eq!(opened.rumor.content, rumor.content);

    let ours = gift::wrap(
        &p.alice,
        &p.bob.public_key(),
        rumor.clone(),
        WrapKind::Stored,
        real_now,
    )
    .expect("wraps");
    let unwrapped = UnwrappedGift::from_gift_wrap(&p.bob, &ours).expect("nostr unwraps ours");
    assert_eq!(unwrapped.sender, p.alice.public_key());
    assert_eq!(unwrapped.rumor, rumor);
}
