//! The attestation event: a regular Nostr event of kind [`KIND`], signed by the bound key,
//! whose content is the [`Evidence`] (raw report or quote, nonce, VCEK or collateral) and
//! whose `created_at` is when the evidence was taken.
//!
//! | tag | meaning |
//! |---|---|
//! | `["tee", <platform>]` | `sev-snp` or `tdx` |
//! | `["x", <hex>]` | SHA-256 of the raw report or quote: what a record's `attestations[].sha256` names |
//! | `["alt", <text>]` | NIP-31 summary for clients that do not know the kind |
//!
//! A provenance record points at it with an attestation reference ([`attestation_ref`]):
//! `kind` the platform, `sha256` the evidence digest, `uri` `nostr:note1...` (the event id).

use nostr::prelude::{Event, Keys, Kind, Tag, Timestamp, UnsignedEvent};
use provenance::digest::{Sha256Digest, sha256};
use provenance::event::{Limits, parse_event};
use provenance::record::AttestationRef;

use crate::bundle::{Evidence, MAX_BUNDLE_BYTES};
use crate::outcome::InputError;

/// The attestation event kind: a regular kind, next to the provenance kind 1988, so an
/// attestation is an immutable record no later event replaces. Provisional, like 1988.
pub const KIND: u16 = 1989;

/// Signs `evidence` with `keys` as an attestation event stamped `created_at`.
pub fn sign(evidence: &Evidence, keys: &Keys, created_at: Timestamp) -> Result<Event, InputError> {
    let content = serde_json::to_string(evidence)
        .map_err(|e| InputError::new("event", "content", e.to_string()))?;
    let raw = evidence.raw()?;
    let tags = vec![
        tag(&["tee", evidence.platform.as_str()]),
        tag(&["x", &sha256(&raw).to_string()]),
        tag(&[
            "alt",
            &format!(
                "TEE attestation ({}) binding this key",
                evidence.platform.as_str()
            ),
        ]),
    ];
    let mut unsigned = UnsignedEvent::new(
        keys.public_key(),
        created_at,
        Kind::from_u16(KIND),
        tags,
        content,
    );
    unsigned.ensure_id();
    let id = unsigned.id.unwrap_or_else(|| unsigned.compute_id());
    let sig = keys.sign_schnorr(id.as_bytes());
    unsigned
        .add_signature(sig)
        .map_err(|e| InputError::new("event", "sig", e.to_string()))
}

fn tag(values: &[&str]) -> Tag {
    // Every call passes a non-empty list, so the tag is never empty.
    Tag::parse(values.iter().copied()).expect("non-empty tag")
}

/// An attestation event whose id, signature, kind, content and `x` tag hold.
#[derive(Clone, Debug)]
pub struct CheckedEvent {
    /// The event.
    pub event: Event,
    /// The evidence it carries.
    pub evidence: Evidence,
    /// SHA-256 of the raw report or quote.
    pub evidence_sha256: Sha256Digest,
}

/// Why an attestation event does not hold (it parsed, but a check failed).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EventFailure(pub String);

/// Parses an attestation event from JSON (unusable input is an [`InputError`]) and checks it
/// (a check that does not hold is an [`EventFailure`]).
pub fn check_json(json: &str) -> Result<Result<CheckedEvent, EventFailure>, InputError> {
    let limits = Limits {
        max_event_bytes: MAX_BUNDLE_BYTES,
        ..Limits::default()
    };
    let event =
        parse_event(json, &limits).map_err(|e| InputError::new("event", "event", e.to_string()))?;
    check(event)
}

/// Checks a parsed attestation event.
pub fn check(event: Event) -> Result<Result<CheckedEvent, EventFailure>, InputError> {
    if event.kind.as_u16() != KIND {
        return Ok(Err(EventFailure(format!(
            "kind {} is not the attestation kind {KIND}",
            event.kind.as_u16()
        ))));
    }
    if let Err(e) = event.verify() {
        return Ok(Err(EventFailure(format!(
            "id or signature does not hold: {e}"
        ))));
    }
    let evidence: Evidence = serde_json::from_str(&event.content)
        .map_err(|e| InputError::new("event", "content", format!("not evidence: {e}")))?;
    evidence.check()?;
    let raw = evidence.raw()?;
    let digest = sha256(&raw);
    let want = digest.to_string();
    let x: Vec<&str> = event
        .tags
        .iter()
        .filter(|t| t.as_slice().first().map(String::as_str) == Some("x"))
        .filter_map(|t| t.content())
        .collect();
    if x != [want.as_str()] {
        return Ok(Err(EventFailure(format!(
            "x tags {x:?} are not exactly the evidence digest {want}"
        ))));
    }
    let tee: Vec<&str> = event
        .tags
        .iter()
        .filter(|t| t.as_slice().first().map(String::as_str) == Some("tee"))
        .filter_map(|t| t.content())
        .collect();
    if tee != [evidence.platform.as_str()] {
        return Ok(Err(EventFailure(format!(
            "tee tags {tee:?} are not exactly the platform {}",
            evidence.platform.as_str()
        ))));
    }
    Ok(Ok(CheckedEvent {
        event,
        evidence,
        evidence_sha256: digest,
    }))
}

/// The reference a provenance record carries to point at this attestation event.
pub fn attestation_ref(checked: &CheckedEvent) -> AttestationRef {
    AttestationRef {
        kind: checked.evidence.platform.as_str().to_owned(),
        sha256: checked.evidence_sha256,
        uri: Some(format!(
            "nostr:{}",
            provenance::nip19::encode_note(&checked.event.id)
        )),
    }
}
