//! The identity of a GGUF model file: which exact weights an answer came from.
//!
//! This crate reads GGUF files (llama.cpp's model format, versions 2 and 3) without trusting
//! them, and computes in one pass over the bytes:
//!
//! - the whole-file SHA-256, which is also the Hugging Face LFS oid and the Ollama blob name
//!   (`sha256-<hex>`), so a digest in a record can be checked against either store;
//! - the whole-file BLAKE3;
//! - a BLAKE3 per tensor and a Merkle root over them, so two files can be compared tensor by
//!   tensor ([`ModelIdentity::compare`]);
//! - a [`Summary`] of the metadata: architecture, name, parameter count, tensor types, file
//!   type, context length, and digests of the tokenizer and chat template.
//!
//! The exact definitions are in the [`identity`] module.
//!
//! # Which API
//!
//! - To identify a file: [`digest_file`]. To identify many, or many times, open a
//!   [`Cache`] and call [`Cache::digest_file`]: an unchanged file is then not read again.
//! - To tune the pass (buffers, parser limits, a progress callback): [`Hasher`].
//! - To read only the header (metadata and tensor layout): [`Gguf::open`] or [`Gguf::parse`].
//! - To find a model in the Ollama or Hugging Face stores: [`resolve`].
//! - To write test files: [`mod@write`] (tests and fixtures only).
//!
//! # What this crate does not do
//!
//! It does not load or run models, and it does not say whether a model is any good: equal
//! digests mean equal bytes, nothing more. It does no network I/O.
//!
//! # Example
//!
//! ```
//! use provenance_gguf::{Hasher, write};
//!
//! // A tiny random llama model, written by the test writer.
//! let file = write::tiny_llama(&write::TinyLlama::default()).build();
//! let identity = Hasher::new().hash_bytes(&file)?;
//! assert_eq!(identity.sha256, provenance::digest::sha256(&file));
//! assert_eq!(identity.summary.architecture.as_deref(), Some("llama"));
//! assert_eq!(identity.tensors.len(), 21);
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cache;
// Without `write`, only the array encoding (for metadata digests) is used.
#[cfg_attr(not(feature = "write"), allow(dead_code, unreachable_pub))]
mod encode;
mod error;
mod hash;
pub mod identity;
mod reader;
pub mod resolve;
mod types;
#[cfg(feature = "write")]
pub mod write;

pub use cache::Cache;
pub use error::{HashError, ParseError};
pub use hash::{Hasher, digest_file};
pub use identity::{ModelIdentity, Summary, TensorDifference, TensorDigest};
pub use reader::{
    Array, DEFAULT_ALIGNMENT, Gguf, Limits, MetadataEntry, StringArray, TensorInfo, Value,
};
pub use types::{BlockSize, GgmlType, ValueType, file_type_name};

/// Entry points for the fuzz targets (with the `write` feature). Not part of the stable API.
#[cfg(feature = "write")]
#[doc(hidden)]
pub mod internal {
    use crate::{Gguf, Hasher, write};

    /// Parses `data` as a whole file; when it parses, checks that re-encoding the header gives
    /// the same bytes, and that the streaming hasher agrees with the parser.
    pub fn fuzz_parse(data: &[u8]) {
        let Ok(gguf) = Gguf::parse(data) else {
            // Invalid input must be refused by the hasher too.
            assert!(hasher().hash_bytes(data).is_err());
            return;
        };
        let header = write::encode_header(&gguf);
        let len = gguf.header_len as usize;
        assert_eq!(
            &header[..len],
            &data[..len],
            "header re-encodes differently"
        );
        // The property under test: a panic here is the finding the fuzzer reports.
        let identity = hasher()
            .hash_bytes(data)
            .expect("the hasher refused a file the parser accepted");
        assert_eq!(identity.tensors.len(), gguf.tensors.len());
    }

    /// Small buffers, so that headers span several; no thread per input.
    fn hasher() -> Hasher {
        let mut hasher = Hasher::new();
        hasher.buffer_size(4096).parallel(false);
        hasher
    }
}
