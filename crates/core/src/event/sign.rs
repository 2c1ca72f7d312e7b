//! Building and signing provenance events: the record as canonical content, the tags
//! relays index it by, the id and the BIP-340 signature.

use super::*;

/// Why a record could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The record cannot be written as canonical JSON.
    #[error("record cannot be canonicalised: {0}")]
    Canonical(#[from] CanonicalError),
    /// The record's version is not [`RECORD_VERSION`].
    #[error("record version {found} is not supported (expected {expected})")]
    Version {
        /// The supported version.
        expected: u32,
        /// The record's version.
        found: u32,
    },
    /// The signing library failed.
    #[error("signing failed: {0}")]
    Nostr(#[from] nostr::prelude::Error),
}

/// The tags a record implies, in the order they are written.
pub fn tags_for(record: &Record) -> Vec<Tag> {
    let mut tags = vec![tag(["x", &record.output.sha256.to_hex()])];
    if let Some(n) = &record.output.normalized {
        if n.sha256 != record.output.sha256 {
            tags.push(tag(["x", &n.sha256.to_hex()]));
        }
    }
    tags.push(tag(["m", &record.output.mime]));
    tags.push(model_tag(record));
    tags.push(tag(["L", LABEL_NAMESPACE]));
    tags.push(tag(["l", LABEL_VALUE, LABEL_NAMESPACE]));
    tags.push(tag([
        "alt",
        &format!(
            "AI output provenance record: output of model {} (kind {KIND}; verify with `provenance verify`)",
            record.model.name
        ),
    ]));
    tags
}

pub(super) fn model_tag(record: &Record) -> Tag {
    match &record.model.sha256 {
        Some(d) => tag(["model", &record.model.name, &format!("sha256:{d}")]),
        None => tag(["model", &record.model.name]),
    }
}

pub(super) fn tag<const N: usize>(values: [&str; N]) -> Tag {
    // Every call site passes at least one value, so the tag is never empty.
    Tag::parse(values).expect("non-empty tag")
}

/// The unsigned event for `record` by `pubkey` at `created_at`.
pub fn unsigned_event(
    record: &Record,
    pubkey: PublicKey,
    created_at: Timestamp,
) -> Result<UnsignedEvent, SignError> {
    if record.v != RECORD_VERSION {
        return Err(SignError::Version {
            expected: RECORD_VERSION,
            found: record.v,
        });
    }
    let content = canonical::to_canonical_json(record)?;
    let mut unsigned = UnsignedEvent::new(
        pubkey,
        created_at,
        Kind::from_u16(KIND),
        tags_for(record),
        content,
    );
    unsigned.ensure_id();
    Ok(unsigned)
}

/// Signs `record` with `keys`, stamped with `clock`'s time. The signature uses fresh
/// auxiliary randomness, as BIP-340 recommends.
pub fn sign(record: &Record, keys: &Keys, clock: &dyn Clock) -> Result<Event, SignError> {
    let unsigned = unsigned_event(record, keys.public_key(), clock.now())?;
    let id = unsigned_id(&unsigned);
    let sig = keys.sign_schnorr(id.as_bytes());
    Ok(assemble(unsigned, id, sig))
}

/// Signs like [`sign`] with given auxiliary randomness, so the event is reproducible byte for
/// byte (golden fixtures). Reusing `aux` across different records is safe in BIP-340 but
/// defeats its side-channel hardening; use [`sign`] in production.
pub fn sign_with_aux_rand(
    record: &Record,
    keys: &Keys,
    created_at: Timestamp,
    aux: &[u8; 32],
) -> Result<Event, SignError> {
    let unsigned = unsigned_event(record, keys.public_key(), created_at)?;
    let id = unsigned_id(&unsigned);
    let secp = secp256k1::Secp256k1::signing_only();
    let sig = keys.sign_schnorr_with_aux_rand(&secp, id.as_bytes(), aux);
    Ok(assemble(unsigned, id, sig))
}

/// The id [`unsigned_event`] computed (it always sets one).
pub(super) fn unsigned_id(unsigned: &UnsignedEvent) -> EventId {
    unsigned.id.unwrap_or_else(|| unsigned.compute_id())
}

/// The signed event from its parts. The id was computed once by [`unsigned_event`] and the
/// signature was just made over it with the event's own key, so neither is checked again
/// here (the `nostr` crate's `add_signature` would recompute the id and verify the signature,
/// which costs more than the signing itself); debug builds still check both.
pub(super) fn assemble(
    unsigned: UnsignedEvent,
    id: EventId,
    sig: nostr::event::Signature,
) -> Event {
    let event = Event::new(
        id,
        unsigned.pubkey,
        unsigned.created_at,
        unsigned.kind,
        unsigned.tags,
        unsigned.content,
        sig,
    );
    debug_assert!(event.verify().is_ok(), "a freshly signed event verifies");
    event
}
