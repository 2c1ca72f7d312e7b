//! NIP-19 decoding of arbitrary UTF-8: never panics, and whatever decodes round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(input) = std::str::from_utf8(data) {
        provenance::nip19::fuzzing::check_round_trip(input);
    }
});
