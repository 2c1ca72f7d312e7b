//! Provenance events: building, signing, parsing and verifying.
//!
//! A provenance event is a NIP-01 event of the regular kind [`KIND`] whose `content` is a
//! [`Record`] in canonical JSON and whose tags let relays index it:
//!
//! | tag | meaning |
//! |---|---|
//! | `["x", <hex>]` | SHA-256 of the exact output bytes (NIP-94 meaning, so `{"#x": [h]}` finds it) |
//! | `["x", <hex>]` | SHA-256 of the normalised text, when it differs from the exact hash |
//! | `["m", <mime>]` | MIME type of the output |
//! | `["model", <name>, "sha256:<hex>"]` | the model (the digest only when known) |
//! | `["L", "digitalsourcetype"]`, `["l", "trainedAlgorithmicMedia", "digitalsourcetype"]` | NIP-32 self-label with the IPTC digital source type for AI output |
//! | `["alt", <text>]` | NIP-31 summary for clients that do not know the kind |
//!
//! Verification ([`verify`]) never returns a bare yes: it returns a [`Verification`] listing
//! every claim with its status, and a [`VerifiedRecord`] only when the event id, signature,
//! kind, record and tags all hold. Evidence checks (output bytes, disclosed prompt, model
//! digests, trust lists) are methods of [`VerifiedRecord`], so they cannot run on an event
//! that did not verify.
//!
//! Parsing ([`parse_event`]) takes untrusted bytes and enforces [`Limits`] before building
//! anything.
//!
//! Each job has its own file: `parse` (untrusted JSON under [`Limits`]), `sign` (tags, id,
//! signature), `verify` ([`Verification`], [`Verifier`], batches), `claims` (the claims of the
//! structural checks) and `verified` ([`VerifiedRecord`] and its evidence checks); everything
//! is re-exported here, so callers name `provenance::event::...` as before.

use std::borrow::Cow;
use std::collections::BTreeSet;

use nostr::prelude::{
    Event, EventId, Keys, Kind, PublicKey, Signature, Tag, Tags, Timestamp, UnsignedEvent,
};
use serde::Deserialize;

use crate::canonical::{self, CanonicalError};
use crate::clock::Clock;
use crate::commitment::Salt;
use crate::digest::{Blake3Digest, Sha256Digest, parse_hex32, sha256};
use crate::normalize;
use crate::record::{RECORD_VERSION, Record};
use crate::schnorr;
use crate::schnorr_batch::{BatchVerifier, Item};
use crate::verdict::{Claim, Code, Status};

/// The provenance event kind: a regular kind, so every generation is an immutable record
/// that no later event can replace.
pub const KIND: u16 = 1988;

/// NIP-32 namespace of the self-label.
pub const LABEL_NAMESPACE: &str = "digitalsourcetype";

/// NIP-32 self-label value: the IPTC digital source type for content made by a trained model.
pub const LABEL_VALUE: &str = "trainedAlgorithmicMedia";

mod claims;
mod parse;
mod sign;
mod verified;
mod verify;

use self::claims::*;
pub use self::parse::*;
pub use self::sign::*;
pub use self::verified::*;
pub use self::verify::*;

/// Properties checked by the fuzz targets (`fuzz/fuzz_targets/event_parse.rs`) and by the seed
/// tests. Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use super::{Limits, parse_event, parse_event_bytes, verify};

    /// Parses arbitrary bytes as an event; whatever parses must verify without panicking and
    /// survive a serialise-and-parse round trip unchanged, with the same verdict.
    pub fn check_parse(data: &[u8]) {
        let limits = Limits::default();
        let Ok(event) = parse_event_bytes(data, &limits) else {
            return;
        };
        let first = verify(&event);
        let again = parse_event(
            &event.as_json(),
            &Limits {
                // Re-serialisation may escape characters the input had raw (never the reverse
                // for valid JSON), so allow for growth.
                max_event_bytes: limits.max_event_bytes * 6,
                ..limits
            },
        )
        .expect("an event we serialised parses again");
        assert_eq!(again, event, "round trip changed the event");
        let second = verify(&again);
        assert_eq!(
            first.claims(),
            second.claims(),
            "round trip changed the verdict"
        );
        assert_eq!(first.verified().is_some(), first.holds());
    }
}

#[cfg(test)]
mod tests;
