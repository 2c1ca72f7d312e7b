//! A C ABI for signing and verifying provenance records in-process.
//!
//! Model servers written in C, C++ or Go (through cgo) link `libprovenance_ffi` (a `cdylib` and
//! a `staticlib`) and call the functions declared in `include/provenance.h`:
//!
//! - [`abi::provenance_signer_new`] / [`abi::provenance_signer_free`]: a signer holding one
//!   secret key (`nsec1...` or 64 hex characters);
//! - [`abi::provenance_sign`]: a record template (JSON without `output`) + the output bytes
//!   (+ optionally the prompt, committed to with a fresh salt) -> a signed kind-1988 event, with
//!   the same semantics as `provenance sign --record FILE --output-file FILE [--prompt FILE]`;
//! - [`abi::provenance_verify`]: event JSON -> a verdict JSON listing every claim;
//! - [`abi::provenance_string_free`]: frees every string this library returns;
//! - [`abi::provenance_version`]: the library version.
//!
//! Ownership, error codes, limits and thread safety are documented in `docs/ffi.md` and in the
//! header. Every function catches panics (a bug) and reports them as [`PROVENANCE_ERR_INTERNAL`]
//! instead of unwinding into C.
//!
//! The Rust API is the `provenance` crate; this crate adds nothing for Rust callers. The
//! `unsafe` it needs (raw pointers from C) is confined to [`abi`].
#![deny(unsafe_code)]
#![warn(missing_docs)]

use std::ffi::c_int;

pub mod abi;
mod ops;

/// Success (and, for `provenance_verify`, "the event holds").
pub const PROVENANCE_OK: c_int = 0;
/// `provenance_verify`: the event parsed, and at least one claim failed.
pub const PROVENANCE_VERIFY_FAILS: c_int = 1;
/// `provenance_verify`: the input could not be checked at all (NULL, not UTF-8, over the size
/// limit, not a NIP-01 event, or an internal error); `*err` says which.
pub const PROVENANCE_VERIFY_ERROR: c_int = 2;
/// A required pointer argument is NULL (or a byte pointer is NULL with a nonzero length).
pub const PROVENANCE_ERR_NULL: c_int = 1;
/// A string argument is not valid UTF-8.
pub const PROVENANCE_ERR_UTF8: c_int = 2;
/// An argument is over its size limit.
pub const PROVENANCE_ERR_TOO_LARGE: c_int = 3;
/// The record template is not a JSON object that, with `output` added, is a valid v1 record
/// (it has `output`, an unsupported `v`, an unknown field, a missing `model.name`, ...).
pub const PROVENANCE_ERR_RECORD: c_int = 4;
/// Signing failed (the record cannot be canonicalised).
pub const PROVENANCE_ERR_SIGN: c_int = 5;
/// A bug: a panic was caught at the boundary. Nothing was returned.
pub const PROVENANCE_ERR_INTERNAL: c_int = 99;

/// Largest secret key string read, in bytes (an `nsec` is 63 characters).
pub const MAX_SECRET_KEY_BYTES: usize = 256;
/// Largest record template read: 1 MiB, as the `provenance sign` command.
pub const MAX_RECORD_JSON_BYTES: usize = 1 << 20;
/// Largest output or prompt signed: 64 MiB, as the `provenance sign` command.
pub const MAX_INPUT_BYTES: usize = 64 << 20;
/// Largest MIME type read, in bytes.
pub const MAX_MIME_BYTES: usize = 1024;
/// Largest event JSON verified: the core parser's default limit (512 KiB).
pub const MAX_EVENT_JSON_BYTES: usize = 512 * 1024;
