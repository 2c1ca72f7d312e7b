//! Encrypted direct messages over Nostr: NIP-44 version 2 payloads ([`nip44`]) and NIP-17
//! private direct messages in NIP-59 gift wraps ([`gift`]).
//!
//! Both directions are checked strictly: everything [`gift::unwrap`] refuses has its own
//! error with a one-line message, and the limits (payload size, how far in the future a
//! layer may be dated) are documented constants, adjustable through [`gift::Limits`].
//!
//! The crate does no I/O and keeps no state. Relays, deciding which senders to answer, and
//! remembering handled gift wraps (so that a replayed one is not answered twice) belong to
//! the program that uses it. `docs/dm.md` in the repository describes the whole.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// A failed unwrap in a unit test is a failed test.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod gift;
pub mod nip44;

/// Property checks for the fuzz targets in `fuzz/` (`nip44_decrypt`, `gift_unwrap`). They
/// panic only when a property does not hold, which is a bug in this crate.
pub mod fuzzing {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use provenance::nostr::prelude::{Kind, SignEvent, Tag, UnsignedEvent};
    use provenance::{Event, Keys, SecretKey, Timestamp};
    use sha2::{Digest, Sha256};

    use crate::gift::{self, Limits, Randomness, WrapKind};
    use crate::nip44::{self, ConversationKey};

    const NOW: u64 = 1_800_000_000;

    fn keys(byte: u8) -> Keys {
        match SecretKey::from_slice(&[byte; 32]) {
            Ok(secret) => Keys::new(secret),
            Err(_) => unreachable!("[{byte}; 32] is a valid secret key"),
        }
    }

    fn digest(parts: &[&[u8]]) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in parts {
            h.update(part);
        }
        h.finalize().into()
    }

    fn one_line(error: &impl std::fmt::Display) {
        let text = error.to_string();
        assert!(
            !text.is_empty() && !text.contains('\n'),
            "refusal is not one line: {text:?}"
        );
    }

    /// NIP-44 on any input, under a fixed conversation key:
    ///
    /// - read as a payload, it never panics; a refusal is one line; a payload that decrypts
    ///   re-encrypts, with its own nonce, to exactly the same payload (the encoding is
    ///   canonical);
    /// - read as a plaintext (lossy UTF-8, with a nonce derived from it), it encrypts, decrypts
    ///   to itself, and every one-bit change of the raw payload is refused.
    pub fn check_nip44(data: &[u8]) {
        let key = ConversationKey::from_bytes(digest(&[b"fuzz key"]));
        if let Ok(payload) = std::str::from_utf8(data) {
            match nip44::decrypt_with_nonce(&key, payload, 1 << 20) {
                Ok((nonce, plaintext)) => {
                    let again = nip44::encrypt_to_bytes(&key, &plaintext, &nonce)
                        .expect("a decrypted plaintext re-encrypts");
                    assert_eq!(BASE64.encode(again), payload, "re-encryption differs");
                }
                Err(e) => one_line(&e),
            }
        }
        let plaintext = String::from_utf8_lossy(data);
        let nonce = digest(&[b"fuzz nonce", data]);
        match nip44::encrypt_with_nonce(&key, &plaintext, &nonce) {
            Err(e) => {
                assert!(plaintext.is_empty(), "refused a non-empty plaintext: {e}");
                one_line(&e);
            }
            Ok(payload) => {
                assert_eq!(
                    nip44::decrypt(&key, &payload).as_deref(),
                    Ok(&*plaintext),
                    "round trip"
                );
                let mut raw = BASE64.decode(&payload).expect("own payload is base64");
                let bit = usize::from(nonce[0]) | usize::from(nonce[1]) << 8;
                let bit = bit % (raw.len() * 8);
                raw[bit / 8] ^= 1 << (bit % 8);
                let altered = BASE64.encode(&raw);
                assert!(
                    nip44::decrypt(&key, &altered).is_err(),
                    "a payload with bit {bit} flipped decrypted"
                );
            }
        }
    }

    /// Gift wrap unwrapping on any input, with fixed keys; the first byte picks what the rest
    /// is (`byte % 4`):
    ///
    /// 0. a wrap event's JSON;
    /// 1. the plaintext of a wrap's content (the seal), wrapped and signed properly;
    /// 2. the plaintext of a seal's content (the rumor), sealed and wrapped properly;
    /// 3. the text of a message, wrapped by [`gift::wrap_with`].
    ///
    /// Unwrapping never panics and every refusal is one line. In case 2, a rumor that is
    /// accepted wraps and unwraps again to the same rumor; in case 3, the message always
    /// unwraps, to the same text, sender and id.
    pub fn check_unwrap(data: &[u8]) {
        let Some((&mode, rest)) = data.split_first() else {
            return;
        };
        let sender = keys(1);
        let recipient = keys(2);
        let one_time = keys(3);
        let now = Timestamp::from_secs(NOW);
        let limits = Limits::default();
        let text = String::from_utf8_lossy(rest);

        let wrapped = match mode % 4 {
            0 => match Event::from_json(rest) {
                Ok(event) => event,
                Err(_) => return,
            },
            1 => match wrap_plaintext(&one_time, &recipient, &text) {
                Some(event) => event,
                None => return,
            },
            2 => {
                let seal_key =
                    ConversationKey::derive(sender.secret_key(), &recipient.public_key())
                        .expect("fixed keys are valid");
                let Ok(content) = nip44::encrypt(&seal_key, &text) else {
                    return;
                };
                let seal = UnsignedEvent::new(
                    sender.public_key(),
                    now,
                    Kind::from_u16(gift::SEAL_KIND),
                    [],
                    content,
                );
                let seal = sender.sign_event(seal).expect("signs");
                match wrap_plaintext(&one_time, &recipient, &seal.as_json()) {
                    Some(event) => event,
                    None => return,
                }
            }
            _ => {
                let rumor =
                    gift::message(&sender.public_key(), &recipient.public_key(), &text, now);
                let random = Randomness {
                    wrap_keys: one_time.clone(),
                    seal_backdate: u64::from(mode),
                    wrap_backdate: 3600,
                    seal_nonce: digest(&[b"seal", rest]),
                    wrap_nonce: digest(&[b"wrap", rest]),
                };
                match gift::wrap_with(
                    &sender,
                    &recipient.public_key(),
                    rumor.clone(),
                    WrapKind::Stored,
                    now,
                    &random,
                    &limits,
                ) {
                    Ok(event) => {
                        let opened = gift::unwrap(&recipient, &event, now)
                            .expect("a message wrapped here unwraps");
                        assert_eq!(opened.rumor, rumor);
                        assert_eq!(opened.sender, sender.public_key());
                        return;
                    }
                    Err(e) => {
                        one_line(&e);
                        return;
                    }
                }
            }
        };
        match gift::unwrap_with(&recipient, &wrapped, now, &limits) {
            Err(e) => one_line(&e),
            Ok(opened) => {
                assert_eq!(opened.sender, sender.public_key(), "only the sender seals");
                if mode % 4 == 2 {
                    let again = gift::wrap(
                        &sender,
                        &recipient.public_key(),
                        opened.rumor.clone(),
                        WrapKind::Ephemeral,
                        now,
                    )
                    .expect("an accepted rumor wraps again");
                    let reopened = gift::unwrap(&recipient, &again, now).expect("and unwraps");
                    assert_eq!(reopened.rumor, opened.rumor);
                }
            }
        }
    }

    /// A kind 1059 event by `one_time` to `recipient` whose content encrypts `plaintext`.
    fn wrap_plaintext(one_time: &Keys, recipient: &Keys, plaintext: &str) -> Option<Event> {
        let key = ConversationKey::derive(one_time.secret_key(), &recipient.public_key())
            .expect("fixed keys are valid");
        let content = nip44::encrypt(&key, plaintext).ok()?;
        let wrap = UnsignedEvent::new(
            one_time.public_key(),
            Timestamp::from_secs(NOW),
            Kind::from_u16(gift::GIFT_WRAP_KIND),
            [Tag::public_key(recipient.public_key())],
            content,
        );
        Some(one_time.sign_event(wrap).expect("signs"))
    }
}
