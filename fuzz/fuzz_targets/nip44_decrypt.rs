//! NIP-44 v2 on any bytes: decryption never panics, what decrypts re-encrypts to the same
//! payload, and what encrypts decrypts back and refuses any one-bit change.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    provenance_dm::fuzzing::check_nip44(data);
});
