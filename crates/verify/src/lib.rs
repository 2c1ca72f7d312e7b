//! Verifying provenance events in bulk: evidence, relay copies and audit labels, reported
//! through a trait the caller implements.
//!
//! The core crate verifies one event ([`provenance::event::verify`]); this crate is the
//! pipeline around it that `provenance verify` runs and that library users can run too:
//!
//! - [`Pipeline`]: chunked batch verification on every core, for files and stdin
//!   ([`Pipeline::verify_files`]), for items already in hand ([`Pipeline::verify_batches`]),
//!   for an event asked for by id across relays, keeping the best copy
//!   ([`Pipeline::check_remote`]), and for the events of a relay query
//!   ([`Pipeline::check_query`]);
//! - [`Evidence`]: what is checked against every verified record: the output, a disclosed
//!   prompt, the weights ([`ModelEvidence`]), a trust list and an engine to replay the
//!   generation on ([`ReplayEvidence`]), and TEE attestation bundles (feature `attest`,
//!   `AttestationEvidence`);
//! - [`labels`]: NIP-32 audit labels about each event, as claims;
//! - [`Report`] and [`Sink`]: how results come back. The pipeline never renders; the CLI's
//!   text and `--json` output, the C ABI and the lookup server are implementations, and all
//!   of them describe one event with the same serialisable [`Verdict`];
//! - [`trust`]: the trust-list file format, with NIP-05 names;
//! - [`source`]: reading events from JSON and JSON Lines files, and the capped line reader.
//!
//! What it does not do: decide what a verdict means for a person (exit codes, wording) or
//! fetch trust material on its own; trust lists and evidence are inputs.
//!
//! # Example
//!
//! ```
//! use provenance_verify::{Evidence, Item, Options, Pipeline, Verdicts};
//!
//! let generator = provenance_fixtures::generate::EventGenerator::new();
//! let event = generator.event(0);
//! let pipeline = Pipeline::new(Evidence::default(), Options::default());
//! let items = vec![Item::new("example".into(), Ok(event.as_json()))];
//! let reports = pipeline.verify_batches(items, &|_| Verdicts::default());
//! let verdict = reports[0].items[0].clone()?;
//! assert!(verdict.holds);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "attest")]
pub mod attest;
pub mod evidence;
pub mod job;
pub mod labels;
mod pipeline;
mod relays;
mod report;
pub mod source;
pub mod trust;
mod verdict;

#[cfg(feature = "attest")]
pub use crate::attest::AttestationEvidence;
pub use crate::evidence::{
    Evidence, ModelError, ModelEvidence, PromptEvidence, ReferenceModel, ReplayEvidence,
};
pub use crate::pipeline::{CHUNK_BYTES, CHUNK_EVENTS, Options, Pipeline, error_report};
pub use crate::relays::QueryEnd;
pub use crate::report::{ItemError, Report, Sink, Verdicts};
pub use crate::source::Item;
pub use crate::trust::TrustList;
pub use crate::verdict::Verdict;
