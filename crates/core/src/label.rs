//! Third-party audit labels about provenance events: NIP-32 label events (kind 1985).
//!
//! An auditor who checked something about a provenance event (replayed the generation, hashed
//! the weights, compared the output) says so in a signed label event:
//!
//! | tag | meaning |
//! |---|---|
//! | `["L", "provenance.audit"]` | the label namespace, [`NAMESPACE`] |
//! | `["l", <value>, "provenance.audit"]` | what was found, e.g. `weights.match` (one or more) |
//! | `["e", <event id>, <relay hint>]` | the provenance event the label is about |
//! | `["p", <author>]` | that event's author, when known |
//!
//! The `content` is free text with the details (what was compared, expected vs found).
//! Suggested values are in [`VALUES`]; any value of 1 to 64 characters from `a-z`, `0-9`, `.`,
//! `_` and `-` is accepted, so auditors can say more without a new release.
//!
//! A label is a claim by a third party, never proof: a verifier reports a label by a labeller
//! it trusts as **asserted**, naming the labeller, and any other label as **unknown**
//! (informational). [`verify_label`] checks only that the label event is genuine (id,
//! signature, shape) and about the given event.
//!
//! This module builds and checks events; it does not publish or fetch them.

use nostr::prelude::{Event, EventId, Keys, Kind, PublicKey, Tag, Timestamp, UnsignedEvent};

use crate::clock::Clock;
use crate::event::Verifier;
use crate::verdict::Status;

/// The NIP-32 label kind.
pub const KIND: u16 = 1985;

/// The label namespace of provenance audits.
pub const NAMESPACE: &str = "provenance.audit";

/// Suggested label values (others that follow the value rule are accepted too).
pub const VALUES: &[&str] = &[
    "replay.match",
    "replay.mismatch",
    "weights.match",
    "weights.mismatch",
    "output.match",
    "output.mismatch",
    "prompt.match",
    "prompt.mismatch",
];

/// Longest label detail (`content`) accepted, in bytes.
pub const MAX_DETAIL_BYTES: usize = 16 * 1024;

/// Why a label could not be built or an event is not a usable label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LabelError {
    /// A label value breaks the value rule.
    #[error("label value {value:?} must be 1 to 64 characters of a-z, 0-9, '.', '_' or '-'")]
    BadValue {
        /// The value.
        value: String,
    },
    /// The detail is longer than [`MAX_DETAIL_BYTES`].
    #[error("label detail is {found} bytes, over the limit of {limit}")]
    DetailTooLong {
        /// The limit.
        limit: usize,
        /// The detail's size.
        found: usize,
    },
    /// No label value was given or found in the [`NAMESPACE`].
    #[error("no `l` tag in the {NAMESPACE} namespace")]
    NoLabel,
    /// The event is not of kind [`KIND`].
    #[error("expected kind {KIND}, found {found}")]
    WrongKind {
        /// The event's kind.
        found: u16,
    },
    /// The event's id is not the hash of its fields.
    #[error("label event id does not match its content")]
    IdMismatch,
    /// The BIP-340 signature does not verify.
    #[error("label event signature does not verify")]
    BadSignature,
    /// The label does not reference the event in question with an `e` tag.
    #[error("label is not about event {target}")]
    NotAbout {
        /// The event the label was expected to be about.
        target: EventId,
    },
    /// The signing library failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

/// An audit label to publish about one provenance event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// The provenance event the label is about.
    pub target: EventId,
    /// Its author, for the `p` tag (optional).
    pub target_author: Option<PublicKey>,
    /// A relay where the provenance event can be found, for the `e` tag (optional).
    pub relay_hint: Option<String>,
    /// The label values (at least one), e.g. `weights.match`.
    pub values: Vec<String>,
    /// Free-text detail: what was compared, expected vs found.
    pub detail: String,
}

impl Label {
    /// A label about `target` with one value and no detail, author or relay hint.
    pub fn new(target: EventId, value: &str) -> Result<Self, LabelError> {
        check_value(value)?;
        Ok(Self {
            target,
            target_author: None,
            relay_hint: None,
            values: vec![value.to_owned()],
            detail: String::new(),
        })
    }

    /// The label's tags, in the order written: `L`, each `l`, `e`, then `p` when known.
    pub fn tags(&self) -> Result<Vec<Tag>, LabelError> {
        if self.values.is_empty() {
            return Err(LabelError::NoLabel);
        }
        for value in &self.values {
            check_value(value)?;
        }
        let mut tags = vec![tag(vec!["L".into(), NAMESPACE.into()])];
        for value in &self.values {
            tags.push(tag(vec!["l".into(), value.clone(), NAMESPACE.into()]));
        }
        let mut e = vec!["e".to_owned(), self.target.to_hex()];
        if let Some(relay) = &self.relay_hint {
            e.push(relay.clone());
        }
        tags.push(tag(e));
        if let Some(author) = &self.target_author {
            tags.push(tag(vec!["p".into(), author.to_hex()]));
        }
        Ok(tags)
    }

    /// The unsigned label event by `pubkey` at `created_at`.
    pub fn unsigned_event(
        &self,
        pubkey: PublicKey,
        created_at: Timestamp,
    ) -> Result<UnsignedEvent, LabelError> {
        if self.detail.len() > MAX_DETAIL_BYTES {
            return Err(LabelError::DetailTooLong {
                limit: MAX_DETAIL_BYTES,
                found: self.detail.len(),
            });
        }
        let mut unsigned = UnsignedEvent::new(
            pubkey,
            created_at,
            Kind::from_u16(KIND),
            self.tags()?,
            self.detail.clone(),
        );
        unsigned.ensure_id();
        Ok(unsigned)
    }

    /// Signs the label with `keys`, stamped with `clock`'s time.
    pub fn sign(&self, keys: &Keys, clock: &dyn Clock) -> Result<Event, LabelError> {
        let unsigned = self.unsigned_event(keys.public_key(), clock.now())?;
        let id = unsigned.compute_id();
        unsigned
            .add_signature(keys.sign_schnorr(id.as_bytes()))
            .map_err(|e| LabelError::Sign(e.to_string()))
    }
}

/// A label event whose id and signature hold and which is about the given event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedLabel {
    /// The label event's id.
    pub id: EventId,
    /// Who labelled.
    pub labeller: PublicKey,
    /// When.
    pub created_at: Timestamp,
    /// The values in the [`NAMESPACE`].
    pub values: Vec<String>,
    /// The free-text detail (the event's content).
    pub detail: String,
}

impl VerifiedLabel {
    /// The status a verifier gives this label: asserted when the labeller is trusted,
    /// unknown otherwise. Never proven: the verifier did not redo the labeller's check.
    pub fn status(&self, trusted: &[PublicKey]) -> Status {
        if trusted.contains(&self.labeller) {
            Status::Asserted
        } else {
            Status::Unknown
        }
    }
}

/// Checks that `event` is a genuine audit label about `target`: kind, id, signature, an `e`
/// tag naming `target`, and at least one value in the [`NAMESPACE`] (values that break the
/// value rule make the label unusable).
pub fn verify_label(
    event: &Event,
    target: &EventId,
    verifier: &mut Verifier,
) -> Result<VerifiedLabel, LabelError> {
    if event.kind.as_u16() != KIND {
        return Err(LabelError::WrongKind {
            found: event.kind.as_u16(),
        });
    }
    let (computed, _, sig) = verifier.check_id_and_sig(event);
    if computed != event.id {
        return Err(LabelError::IdMismatch);
    }
    if sig.status != Status::Proven {
        return Err(LabelError::BadSignature);
    }
    let target_hex = target.to_hex();
    let about = event.tags.iter().any(|t| {
        let v = t.as_slice();
        v.len() >= 2 && v[0] == "e" && v[1] == target_hex
    });
    if !about {
        return Err(LabelError::NotAbout { target: *target });
    }
    let mut values = Vec::new();
    for t in event.tags.iter() {
        let v = t.as_slice();
        if v.len() >= 3 && v[0] == "l" && v[2] == NAMESPACE {
            check_value(&v[1])?;
            values.push(v[1].clone());
        }
    }
    if values.is_empty() {
        return Err(LabelError::NoLabel);
    }
    Ok(VerifiedLabel {
        id: event.id,
        labeller: event.pubkey,
        created_at: event.created_at,
        values,
        detail: event.content.clone(),
    })
}

fn check_value(value: &str) -> Result<(), LabelError> {
    let ok = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(LabelError::BadValue {
            value: value.chars().take(80).collect(),
        })
    }
}

fn tag(values: Vec<String>) -> Tag {
    // Every call site passes a non-empty vector, the only thing `Tag::parse` rejects.
    Tag::parse(values).expect("non-empty tag")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;

    fn label() -> (Keys, Event, EventId) {
        let keys = Keys::generate();
        let target = EventId::from_byte_array([7; 32]);
        let mut label = Label::new(target, "weights.match").unwrap();
        label.relay_hint = Some("ws://127.0.0.1:7777".into());
        label.target_author = Some(Keys::generate().public_key());
        label.detail = "sha256 and tensor root match".into();
        let event = label
            .sign(&keys, &FixedClock(Timestamp::from_secs(1_800_000_000)))
            .unwrap();
        (keys, event, target)
    }

    #[test]
    fn a_signed_label_verifies_with_its_tags() {
        let (keys, event, target) = label();
        let kinds: Vec<&str> = event
            .tags
            .iter()
            .map(|t| t.as_slice()[0].as_str())
            .collect();
        assert_eq!(kinds, ["L", "l", "e", "p"]);
        let verified = verify_label(&event, &target, &mut Verifier::new()).unwrap();
        assert_eq!(verified.values, ["weights.match"]);
        assert_eq!(verified.labeller, keys.public_key());
        assert_eq!(verified.status(&[keys.public_key()]), Status::Asserted);
        assert_eq!(verified.status(&[]), Status::Unknown);
    }

    #[test]
    fn labels_about_other_events_or_tampered_are_refused() {
        let (_, event, target) = label();
        let other = EventId::from_byte_array([8; 32]);
        assert_eq!(
            verify_label(&event, &other, &mut Verifier::new()),
            Err(LabelError::NotAbout { target: other })
        );
        let mut tampered = event.clone();
        tampered.content = "mismatch".into();
        assert_eq!(
            verify_label(&tampered, &target, &mut Verifier::new()),
            Err(LabelError::IdMismatch)
        );
    }

    #[test]
    fn values_follow_the_rule() {
        let target = EventId::from_byte_array([7; 32]);
        for bad in ["", "Weights", "a b", &"x".repeat(65)] {
            assert!(Label::new(target, bad).is_err(), "{bad:?}");
        }
        for good in VALUES {
            assert!(Label::new(target, good).is_ok(), "{good}");
        }
    }
}
