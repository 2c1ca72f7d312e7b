/*
 * provenance.h: C ABI of libprovenance_ffi (crate `provenance-ffi`).
 *
 * Sign the provenance of a model's answer in-process: a record template (JSON without
 * `output`) + the output bytes (+ optionally the prompt, committed to with a fresh salt)
 * become a signed Nostr event of kind 1988; and verify such events. See docs/ffi.md.
 *
 * Ownership: every `char *` this library hands out through an out-pointer belongs to the
 * caller and is freed with provenance_string_free(). Out-pointers are set to NULL first, so
 * freeing them unconditionally is safe. A ProvenanceSigner is freed with
 * provenance_signer_free(). provenance_version() returns a static string (never freed).
 *
 * Errors: functions return 0 on success or a PROVENANCE_ERR_* code, and write a one-line,
 * NUL-terminated UTF-8 message to *err when `err` is not NULL (free it too).
 *
 * Threads: every function is thread-safe; one signer may be used by many threads at once.
 *
 * Strings are NUL-terminated UTF-8. Byte buffers are (pointer, length) pairs.
 */
#ifndef PROVENANCE_H
#define PROVENANCE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes of provenance_sign(). */
#define PROVENANCE_OK 0
/* A required pointer is NULL (or a byte pointer is NULL with a nonzero length). */
#define PROVENANCE_ERR_NULL 1
/* A string argument is not valid UTF-8. */
#define PROVENANCE_ERR_UTF8 2
/* An argument is over its size limit (see the PROVENANCE_MAX_* values). */
#define PROVENANCE_ERR_TOO_LARGE 3
/* The record template is not a JSON object that, with `output` added, is a valid v1 record
 * (it contains `output`, an unsupported `v`, an unknown field, no `model.name`, ...). */
#define PROVENANCE_ERR_RECORD 4
/* Signing failed (the record cannot be canonicalised). */
#define PROVENANCE_ERR_SIGN 5
/* A bug: a panic was caught at the boundary. */
#define PROVENANCE_ERR_INTERNAL 99

/* Return codes of provenance_verify(). */
/* 0 (PROVENANCE_OK): every claim holds. */
#define PROVENANCE_VERIFY_FAILS 1 /* the event parsed and at least one claim failed */
#define PROVENANCE_VERIFY_ERROR 2 /* the input could not be checked at all; see *err */

/* Size limits, in bytes (strings: without the terminating NUL). */
#define PROVENANCE_MAX_SECRET_KEY_BYTES 256
#define PROVENANCE_MAX_RECORD_JSON_BYTES (1 << 20)
#define PROVENANCE_MAX_INPUT_BYTES (64 << 20) /* output and prompt, each */
#define PROVENANCE_MAX_MIME_BYTES 1024
#define PROVENANCE_MAX_EVENT_JSON_BYTES (512 * 1024)

/* A signing key. Opaque; immutable after creation but for its fingerprints setting. */
typedef struct ProvenanceSigner ProvenanceSigner;

/* The library version, e.g. "0.1.0". Static: do not free. */
const char *provenance_version(void);

/* Creates a signer from a secret key: "nsec1..." or 64 hex characters (surrounding
 * whitespace ignored). Returns NULL on error, with a message in *err that never repeats the
 * key. Free the signer with provenance_signer_free(). */
ProvenanceSigner *provenance_signer_new(const char *secret_key, char **err);

/* Frees a signer. NULL is ignored. No thread may use the signer during or after the call. */
void provenance_signer_free(ProvenanceSigner *signer);

/* Turns the fingerprints of text outputs (output.fingerprints, docs/fingerprint.md) on (`on`
 * not 0, the default) or off for the signatures that follow. They let a paragraph copied out
 * of an answer be looked up, and reveal which runs of five words the text holds to whoever
 * can guess them. NULL is ignored. Safe while other threads sign with the signer. */
void provenance_signer_set_fingerprints(const ProvenanceSigner *signer, int on);

/* Builds a record and signs it as a provenance event (kind 1988), like
 * `provenance sign --record FILE --output-file FILE [--prompt FILE]`.
 *
 * record_json  JSON object without "output", e.g. {"model":{"name":"gemma3:270m"}}; may add
 *              "runtime", "sampling", "request", "time", ... (docs/event-format.md).
 * output       the exact output bytes served; NULL allowed when output_len is 0.
 * mime         MIME type of the output; NULL means "text/plain; charset=utf-8".
 * prompt       NULL: no prompt commitment. Otherwise the record commits to these prompt_len
 *              bytes as SHA-256(salt || prompt) with a fresh 32-byte salt.
 * event_json_out  receives the signed event JSON (required).
 * salt_hex_out    receives the salt as 64 hex characters when prompt is not NULL (then
 *                 required); keep it: with the prompt it opens the commitment. Left NULL
 *                 when there is no prompt.
 * err          NULL, or receives a one-line message on error.
 *
 * Returns PROVENANCE_OK or a PROVENANCE_ERR_* code. */
int provenance_sign(const ProvenanceSigner *signer,
                    const char *record_json,
                    const uint8_t *output,
                    size_t output_len,
                    const char *mime,
                    const uint8_t *prompt,
                    size_t prompt_len,
                    char **event_json_out,
                    char **salt_hex_out,
                    char **err);

/* Verifies an event: id, BIP-340 signature, kind, canonical record, tags.
 *
 * Returns PROVENANCE_OK (0) when every claim holds and PROVENANCE_VERIFY_FAILS (1) when one
 * failed, both with a verdict in *verdict_json_out:
 *   {"id":"<hex>","author":"<hex>","kind":1988,"holds":true,
 *    "claims":[{"code":"event.sig.valid","status":"proven","detail":"..."}, ...],
 *    "record":{...}}   ("record" only when the content parsed as a record)
 * Returns PROVENANCE_VERIFY_ERROR (2) when the input could not be checked at all (NULL, not
 * UTF-8, too large, not a NIP-01 event), with a message in *err and no verdict. */
int provenance_verify(const char *event_json, char **verdict_json_out, char **err);

/* Frees a string returned by this library. NULL is ignored. */
void provenance_string_free(char *s);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* PROVENANCE_H */
