//! Design notes that ship with the code: what verification means, and what it does not.
//!
//! # Threat model
//!
//! A provenance event proves that **the holder of a key published exactly this record**. It
//! does not prove the record is true: an operator can sign a record naming weights they did
//! not run. What the event does is make the claim falsifiable and attributable:
//!
//! - anyone holding the output can check it is the output the record names (exact or
//!   normalised hash);
//! - anyone the caller discloses prompt and salt to can check the prompt commitment; nobody
//!   else learns anything about the prompt, not even for a short, guessable prompt, because
//!   the commitment is salted with 32 random bytes;
//! - anyone holding the weights can check the model digests; a deterministic replay or a
//!   hardware attestation can go further and check the generation itself.
//!
//! Everything a verifier could not recompute is reported as **asserted**, never as proven.
//!
//! # Canonicalisation
//!
//! The record is RFC 8785 canonical JSON and must be byte-for-byte canonical, so each record
//! has one signed form. The event id is NIP-01's SHA-256 over
//! `[0, pubkey, created_at, kind, tags, content]` with JSON's standard escaping, the same as
//! JavaScript's `JSON.stringify` (tested against `nostr-tools`).
//!
//! # Defaults
//!
//! - Event JSON is limited to 512 KiB, 2,000 tags and 64 values per tag
//!   ([`crate::event::Limits`]).
//! - NIP-19 strings are limited to 5,000 characters; bech32m is refused.
//! - Output text is not published in the record unless the operator opts in.
