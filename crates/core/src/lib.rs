//! Signed, checkable provenance records for AI output.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod digest;
pub mod nip19;

pub use nostr;
