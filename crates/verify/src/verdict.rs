//! The verdict on one event, as every reporting path serialises it.
//!
//! `provenance verify --json` writes it as the `data` of each `verdict` message (with the
//! input that named the event), the C ABI's `provenance_verify` returns it (without an input),
//! and the lookup server answers with its `holds`, `claims` and `record`.
//!
//! # Format
//!
//! ```json
//! {"input":"events.jsonl:3","id":"<hex>","author":"<hex>","kind":1988,"holds":true,
//!  "claims":[{"code":"event.sig.valid","status":"proven","detail":"..."}],"record":{...}}
//! ```
//!
//! Fields in this order; `input` is left out when there is none, `record` when the event
//! carries no record that parsed.

use provenance::event::Verification;
use provenance::record::Record;
use provenance::verdict::Claim;
use provenance::{Event, EventId, PublicKey};
use serde::{Serialize, Serializer};

/// What a verification came to, ready to serialise.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Verdict {
    /// What named the event (a file and line, a relay and the id asked for), if anything did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// The event's id as it claims it (the claims say whether it is the recomputed one).
    #[serde(serialize_with = "hex_id")]
    pub id: EventId,
    /// The key that claims to have signed the event.
    #[serde(serialize_with = "hex_key")]
    pub author: PublicKey,
    /// The event kind.
    pub kind: u16,
    /// True when no claim failed.
    pub holds: bool,
    /// Every claim, in the order checked.
    pub claims: Vec<Claim>,
    /// The record, when the content parsed as one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<Record>,
}

impl Verdict {
    /// The verdict on `event` (with the evidence and labels `verification` was given).
    pub fn new(event: &Event, verification: &Verification) -> Self {
        Self {
            input: None,
            id: event.id,
            author: event.pubkey,
            kind: event.kind.as_u16(),
            holds: verification.holds(),
            claims: verification.claims().to_vec(),
            record: verification.record().cloned(),
        }
    }

    /// The verdict, naming the input the event came from.
    pub fn with_input(mut self, input: impl Into<String>) -> Self {
        self.input = Some(input.into());
        self
    }
}

fn hex_id<S: Serializer>(id: &EventId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&id.to_hex())
}

fn hex_key<S: Serializer>(key: &PublicKey, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&key.to_hex())
}
