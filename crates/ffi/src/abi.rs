//! The `extern "C"` functions declared in `include/provenance.h`.
//!
//! Conventions, shared by every function:
//!
//! - Out-pointers (`char **`) are set to NULL first, so a caller may free them unconditionally
//!   with [`provenance_string_free`]; on success the strings are owned by the caller.
//! - `err` may be NULL (no message wanted); otherwise it receives a one-line message on error.
//! - Strings are NUL-terminated UTF-8; they are read up to their size limit plus one byte, so
//!   an unterminated string costs at most that much reading before it is refused.
//! - A panic (a bug) never unwinds into C: it is caught and reported as
//!   [`PROVENANCE_ERR_INTERNAL`].
#![allow(unsafe_code)]

use std::ffi::{CString, c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

use provenance::Keys;

use crate::ops::{self, Error};
use crate::{
    MAX_EVENT_JSON_BYTES, MAX_INPUT_BYTES, MAX_MIME_BYTES, MAX_RECORD_JSON_BYTES,
    MAX_SECRET_KEY_BYTES, PROVENANCE_ERR_INTERNAL, PROVENANCE_ERR_NULL, PROVENANCE_ERR_TOO_LARGE,
    PROVENANCE_ERR_UTF8, PROVENANCE_OK, PROVENANCE_VERIFY_ERROR, PROVENANCE_VERIFY_FAILS,
};

/// A signing key, opaque to C. Create with [`provenance_signer_new`], free with
/// [`provenance_signer_free`]. It is immutable, so one signer may be used from many threads
/// at once.
#[derive(Debug)]
pub struct ProvenanceSigner {
    keys: Keys,
    /// Write `output.fingerprints` for text outputs (on by default).
    fingerprints: std::sync::atomic::AtomicBool,
}

/// The library version, e.g. `"0.1.0"`: a static string, never freed.
#[unsafe(no_mangle)]
pub extern "C" fn provenance_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Creates a signer from a secret key: `nsec1...` or 64 hex characters, surrounding
/// whitespace ignored. Returns NULL on error, with a message in `*err` (which never repeats
/// the key).
///
/// # Safety
///
/// `secret_key` is NULL or a NUL-terminated string; `err` is NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn provenance_signer_new(
    secret_key: *const c_char,
    err: *mut *mut c_char,
) -> *mut ProvenanceSigner {
    // SAFETY: `err` is NULL or writable, as the caller promises.
    unsafe { clear(err) };
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `secret_key` is NULL or NUL-terminated, as the caller promises.
        let secret = unsafe { read_str(secret_key, MAX_SECRET_KEY_BYTES, "secret_key") }?
            .ok_or_else(|| Error::new(PROVENANCE_ERR_NULL, "secret_key is NULL"))?;
        // This function reports failure as NULL + message only, so the code is not seen.
        let keys = ops::keys(secret).map_err(|m| Error::new(PROVENANCE_ERR_NULL, m))?;
        Ok(Box::into_raw(Box::new(ProvenanceSigner {
            keys,
            fingerprints: std::sync::atomic::AtomicBool::new(true),
        })))
    }));
    match flatten(result) {
        Ok(signer) => signer,
        Err(e) => {
            // SAFETY: as above.
            unsafe { put(err, e.message) };
            ptr::null_mut()
        }
    }
}

/// Frees a signer. NULL is ignored.
///
/// # Safety
///
/// `signer` is NULL or was returned by [`provenance_signer_new`] and not freed yet; no other
/// thread uses it during or after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn provenance_signer_free(signer: *mut ProvenanceSigner) {
    if !signer.is_null() {
        // SAFETY: the pointer came from `Box::into_raw` in `provenance_signer_new` and is
        // freed once, as the caller promises.
        drop(unsafe { Box::from_raw(signer) });
    }
}

/// Turns the fingerprints of text outputs (`output.fingerprints`, docs/fingerprint.md) on
/// (`on` not 0, the default) or off for the signatures that follow. They let a paragraph
/// copied out of an answer be looked up, and reveal which runs of five words the text holds
/// to whoever can guess them. NULL is ignored. Safe while other threads sign with `signer`.
///
/// # Safety
///
/// `signer` is NULL or a live signer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn provenance_signer_set_fingerprints(
    signer: *const ProvenanceSigner,
    on: c_int,
) {
    // SAFETY: `signer` is NULL or a live signer, as the caller promises.
    if let Some(signer) = unsafe { signer.as_ref() } {
        signer
            .fingerprints
            .store(on != 0, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Builds a record and signs it as a provenance event.
///
/// `record_json` is a JSON object without `output` (at least `{"model":{"name":"..."}}`;
/// runtime, sampling, ... as in `docs/event-format.md`); `output` is computed from the
/// `output_len` bytes at `output` (NULL is allowed when `output_len` is 0) with MIME type
/// `mime` (NULL: `text/plain; charset=utf-8`). When `prompt` is not NULL, the record commits
/// to its `prompt_len` bytes with a fresh salt, returned in `*salt_hex_out` (64 hex
/// characters; keep it: with the prompt it opens the commitment); `salt_hex_out` must then
/// not be NULL. On success `*event_json_out` receives the event JSON.
///
/// Returns [`PROVENANCE_OK`] or an error code (`PROVENANCE_ERR_*`), with a message in `*err`.
///
/// # Safety
///
/// `signer` is NULL or a live signer; string arguments are NULL or NUL-terminated; `output`
/// and `prompt` are NULL or valid for reads of their lengths; out-pointers are NULL or valid
/// for one write.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)] // The C signature: one call per signed answer.
pub unsafe extern "C" fn provenance_sign(
    signer: *const ProvenanceSigner,
    record_json: *const c_char,
    output: *const u8,
    output_len: usize,
    mime: *const c_char,
    prompt: *const u8,
    prompt_len: usize,
    event_json_out: *mut *mut c_char,
    salt_hex_out: *mut *mut c_char,
    err: *mut *mut c_char,
) -> c_int {
    // SAFETY: each out-pointer is NULL or writable, as the caller promises.
    unsafe {
        clear(event_json_out);
        clear(salt_hex_out);
        clear(err);
    }
    let result = catch_unwind(AssertUnwindSafe(|| {
        let null = |what: &str| Error::new(PROVENANCE_ERR_NULL, format!("{what} is NULL"));
        // SAFETY: `signer` is NULL or a live signer; nothing mutates it.
        let signer = unsafe { signer.as_ref() }.ok_or_else(|| null("signer"))?;
        if event_json_out.is_null() {
            return Err(null("event_json_out"));
        }
        if !prompt.is_null() && salt_hex_out.is_null() {
            return Err(null("salt_hex_out (needed when a prompt is given)"));
        }
        // SAFETY: string arguments are NULL or NUL-terminated, byte arguments NULL or
        // readable for their lengths, as the caller promises.
        let (template, output, mime, prompt) = unsafe {
            (
                read_str(record_json, MAX_RECORD_JSON_BYTES, "record_json")?
                    .ok_or_else(|| null("record_json"))?,
                read_bytes(output, output_len, MAX_INPUT_BYTES, "output")?.unwrap_or_default(),
                read_str(mime, MAX_MIME_BYTES, "mime")?
                    .unwrap_or(provenance::record::TEXT_PLAIN_UTF8),
                read_bytes(prompt, prompt_len, MAX_INPUT_BYTES, "prompt")?,
            )
        };
        let fingerprints = signer
            .fingerprints
            .load(std::sync::atomic::Ordering::Relaxed);
        let signed = ops::sign(&signer.keys, template, output, mime, prompt, fingerprints)?;
        // SAFETY: both out-pointers were checked above (the salt one whenever a prompt, and so
        // a salt, exists).
        unsafe {
            put(event_json_out, signed.event_json);
            if let Some(salt) = signed.salt_hex {
                put(salt_hex_out, salt);
            }
        }
        Ok(PROVENANCE_OK)
    }));
    finish(result, err, PROVENANCE_ERR_INTERNAL)
}

/// Verifies an event: id, signature, kind, canonical record, tags.
///
/// Returns [`PROVENANCE_OK`] (0) when every claim holds, [`PROVENANCE_VERIFY_FAILS`] (1) when
/// one failed, both with the verdict JSON in `*verdict_json_out`:
/// `{"holds":bool,"id":hex,"author":hex,"kind":n,"claims":[{"code","status","detail"}],"record":{...}}`
/// (`record` only when the content parsed). Returns [`PROVENANCE_VERIFY_ERROR`] (2) when the
/// input could not be checked at all, with a message in `*err` and no verdict.
///
/// # Safety
///
/// `event_json` is NULL or NUL-terminated; out-pointers are NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn provenance_verify(
    event_json: *const c_char,
    verdict_json_out: *mut *mut c_char,
    err: *mut *mut c_char,
) -> c_int {
    // SAFETY: each out-pointer is NULL or writable, as the caller promises.
    unsafe {
        clear(verdict_json_out);
        clear(err);
    }
    let result = catch_unwind(AssertUnwindSafe(|| {
        let null = |what: &str| Error::new(PROVENANCE_VERIFY_ERROR, format!("{what} is NULL"));
        if verdict_json_out.is_null() {
            return Err(null("verdict_json_out"));
        }
        // SAFETY: `event_json` is NULL or NUL-terminated, as the caller promises.
        let json = unsafe { read_str(event_json, MAX_EVENT_JSON_BYTES, "event_json") }
            .map_err(|e| Error::new(PROVENANCE_VERIFY_ERROR, e.message))?
            .ok_or_else(|| null("event_json"))?;
        let (holds, verdict) = ops::verify(json)?;
        // SAFETY: checked non-NULL above.
        unsafe { put(verdict_json_out, verdict) };
        Ok(if holds {
            PROVENANCE_OK
        } else {
            PROVENANCE_VERIFY_FAILS
        })
    }));
    finish(result, err, PROVENANCE_VERIFY_ERROR)
}

/// Frees a string returned by this library. NULL is ignored.
///
/// # Safety
///
/// `s` is NULL or a string this library returned through an out-pointer, not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn provenance_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: every string handed out comes from `CString::into_raw` in `put`, and the
        // caller frees it once.
        drop(unsafe { CString::from_raw(s) });
    }
}

/// Sets `*out` to NULL when `out` is not NULL.
///
/// # Safety
///
/// `out` is NULL or valid for one write.
unsafe fn clear(out: *mut *mut c_char) {
    if !out.is_null() {
        // SAFETY: non-NULL and writable, as the caller promises.
        unsafe { out.write(ptr::null_mut()) };
    }
}

/// Hands `s` to C through `out` (ignored when `out` is NULL). NUL characters, which C strings
/// cannot hold, become U+FFFD; JSON output never has any (serde escapes them).
///
/// # Safety
///
/// `out` is NULL or valid for one write.
unsafe fn put(out: *mut *mut c_char, s: String) {
    if out.is_null() {
        return;
    }
    let s = if s.contains('\0') {
        s.replace('\0', "\u{fffd}")
    } else {
        s
    };
    // The string has no NUL (replaced just above), so `CString::new` cannot fail.
    let c = CString::new(s).unwrap_or_default();
    // SAFETY: non-NULL and writable, as the caller promises.
    unsafe { out.write(c.into_raw()) };
}

/// Reads a NUL-terminated UTF-8 string of at most `limit` bytes; `None` for NULL.
///
/// # Safety
///
/// `p` is NULL or points to a NUL-terminated string, or to at least `limit + 1` readable
/// bytes.
unsafe fn read_str<'a>(
    p: *const c_char,
    limit: usize,
    what: &str,
) -> Result<Option<&'a str>, Error> {
    if p.is_null() {
        return Ok(None);
    }
    let p = p.cast::<u8>();
    let mut len = 0;
    // Bounded strlen: stop at the limit rather than read an unterminated string to the end.
    // SAFETY: every byte up to and including the NUL (or the byte past the limit) is
    // readable, as the caller promises.
    while unsafe { p.add(len).read() } != 0 {
        if len == limit {
            return Err(Error::new(
                PROVENANCE_ERR_TOO_LARGE,
                format!("{what} is over the limit of {limit} bytes"),
            ));
        }
        len += 1;
    }
    // SAFETY: the `len` bytes before the NUL were just read through the same pointer.
    let bytes = unsafe { std::slice::from_raw_parts(p, len) };
    std::str::from_utf8(bytes).map(Some).map_err(|e| {
        Error::new(
            PROVENANCE_ERR_UTF8,
            format!(
                "{what} is not UTF-8 (first bad byte at offset {})",
                e.valid_up_to()
            ),
        )
    })
}

/// Borrows `len` bytes at `p` (at most `limit`); `None` for NULL with length 0.
///
/// # Safety
///
/// `p` is NULL or valid for reads of `len` bytes that nothing mutates during the call.
unsafe fn read_bytes<'a>(
    p: *const u8,
    len: usize,
    limit: usize,
    what: &str,
) -> Result<Option<&'a [u8]>, Error> {
    if len > limit {
        return Err(Error::new(
            PROVENANCE_ERR_TOO_LARGE,
            format!("{what} is {len} bytes, over the limit of {limit}"),
        ));
    }
    if p.is_null() {
        if len == 0 {
            return Ok(None);
        }
        return Err(Error::new(
            PROVENANCE_ERR_NULL,
            format!("{what} is NULL with a length of {len}"),
        ));
    }
    // SAFETY: non-NULL, readable for `len` bytes as the caller promises, and `len` is at most
    // the limit, far below `isize::MAX`.
    Ok(Some(unsafe { std::slice::from_raw_parts(p, len) }))
}

fn flatten<T>(result: std::thread::Result<Result<T, Error>>) -> Result<T, Error> {
    result.unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(Error::new(
            PROVENANCE_ERR_INTERNAL,
            format!("internal error (a bug in provenance-ffi): {what}"),
        ))
    })
}

/// Turns the outcome into the return code, writing the message of an error to `err`.
/// `internal` is the code a caught panic gets.
fn finish(
    result: std::thread::Result<Result<c_int, Error>>,
    err: *mut *mut c_char,
    internal: c_int,
) -> c_int {
    match flatten(result) {
        Ok(code) => code,
        Err(e) => {
            let code = if e.code == PROVENANCE_ERR_INTERNAL {
                internal
            } else {
                e.code
            };
            // SAFETY: `err` is NULL or writable, as every public function's caller promises.
            unsafe { put(err, e.message) };
            code
        }
    }
}
