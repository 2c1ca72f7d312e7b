//! "Was this text produced by a model that signs its output?": an index of provenance events
//! and its HTTP API.
//!
//! A reader finds a paragraph online. This crate keeps an index of provenance events (kind
//! 1988, see the `provenance` crate), fed by JSON Lines files, a signer's event store and relay
//! subscriptions, keyed by the exact output hash, the normalised-text hash (rule `nfc-ws-v1`)
//! and the text fingerprints (rule `wk-v1`, `provenance::fingerprint`), so that a paragraph
//! copied out of a longer answer, or an edited copy, is still found. Answers carry the verifier's claims, the
//! signer's standing in a trust list and how much of the text the event covers; never a bare
//! "AI-generated".
//!
//! - [`Index`]: the SQLite index (migrations, verified ingest, compact storage, counters);
//! - [`ingest`]: bulk ingest, verified on every core, from JSON Lines, a signer's store and
//!   relays;
//! - [`lookup()`]: the three-step lookup and its [`Answer`];
//! - [`http::router`]: the HTTP API (`POST /v1/lookup`, `GET /v1/events/{id}`, `GET /healthz`)
//!   with CORS for extensions, a body limit and per-client rate limits.
//!
//! What it deliberately does not do: trust its own database (events are verified again on
//! every answer), nor ever index an event that does not verify.
//!
//! # Example
//!
//! ```
//! use provenance::{Model, Output, Record, event};
//! use provenance_lookup::{Index, Query, TrustList, lookup};
//!
//! let text = "The sky looks blue because air scatters short wavelengths of light far more \
//!             strongly than long ones, so blue reaches the eye from every direction.";
//! let record = Record::new(Output::from_text(text).with_fingerprints(text), Model::named("m"));
//! let keys = provenance::Keys::generate();
//! let signed = event::sign(&record, &keys, &provenance::clock::SystemClock)?;
//!
//! let mut index = Index::open_in_memory()?;
//! index.ingest_json(&signed.as_json())?;
//!
//! let copied = "air scatters short wavelengths of light far more strongly than long ones";
//! let answer = lookup(&index, &TrustList::default(), &Query::from_text(copied), &Default::default())?;
//! assert_eq!(answer.matches.len(), 1);
//! assert_eq!(answer.matches[0].coverage.fraction, 1.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod codec;
mod error;
pub mod http;
mod index;
pub mod ingest;
mod lookup;
mod trust;

pub use crate::error::Error;
pub use crate::index::{Counters, DEFAULT_PENDING_FINGERPRINTS, Index, Ingested, Prepared, Stored};
pub use crate::lookup::{
    Answer, Coverage, Match, MatchKind, ModelSummary, NOTE, Options, Query, QuerySummary, Signer,
    lookup,
};
pub use crate::trust::TrustList;
