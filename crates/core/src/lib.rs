//! Signed, checkable provenance records for AI output.
//!
//! An answer from a model is just a string. This crate turns it into a claim anyone can
//! check: a [`Record`] says which output bytes were served, for which (salted, committed)
//! prompt, by which weights, engine and sampler settings; the record is serialised as
//! RFC 8785 canonical JSON and signed as a Nostr event (BIP-340 Schnorr, NIP-01) of kind
//! [`event::KIND`]. A verifier recomputes what it can and reports every claim as proven,
//! asserted or unknown ([`verdict`]).
//!
//! The crate does no I/O: it never opens a file or a socket. Relays, files and model
//! weights are handled by the other `provenance-*` crates and the `provenance` command.
//!
//! # Where to start
//!
//! - To describe an answer: [`Output::from_text`], [`Model`], [`Record::new`].
//! - To sign: [`event::sign`] with a [`Keys`] and a [`clock::Clock`].
//! - To check: [`event::parse_event`] on untrusted bytes, then [`event::verify`]; evidence
//!   checks (output bytes, disclosed prompt, weights digests) hang off the resulting
//!   [`event::VerifiedRecord`].
//! - NIP-19 strings (`npub`, `nevent`, ...): [`nip19`].
//!
//! # Example
//!
//! ```
//! use provenance::{Model, Output, Record, Keys, event, clock::SystemClock};
//!
//! let keys = Keys::generate();
//! let record = Record::new(Output::from_text("The sky is blue."), Model::named("gemma3:270m"));
//! let signed = event::sign(&record, &keys, &SystemClock)?;
//!
//! let json = signed.as_json();
//! let parsed = event::parse_event(&json, &event::Limits::default())?;
//! let verification = event::verify(&parsed);
//! assert!(verification.holds());
//! let verified = verification.verified().expect("all structural checks held");
//! assert_eq!(verified.check_output(b"The sky is blue.").status, provenance::verdict::Status::Proven);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// A failed unwrap in a unit test is a failed test.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod canonical;
pub mod clock;
pub mod commitment;
pub mod digest;
pub mod event;
pub mod fingerprint;
pub mod json;
pub mod label;
pub mod manual;
pub mod nip19;
pub mod normalize;
pub mod prompt;
pub mod record;
pub mod schnorr;
pub mod schnorr_batch;
pub mod template;
pub mod verdict;

pub use nostr;
pub use nostr::prelude::{Event, EventId, Keys, PublicKey, SecretKey, Timestamp};

pub use crate::record::{Model, Output, Record};
