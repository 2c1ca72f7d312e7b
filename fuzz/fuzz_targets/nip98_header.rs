//! NIP-98 `Authorization` header checking of arbitrary bytes (raw, and as the event JSON inside
//! a `Nostr` header): never panics, every rejection has a one-line reason, and an accepted
//! header is refused as a replay the second time.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    provenance_signer::nip98::fuzzing::check_header(data);
});
