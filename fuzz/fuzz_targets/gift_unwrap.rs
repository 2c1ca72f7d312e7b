//! Gift wrap unwrapping on any bytes (as a wrap, or as the plaintext of each inner layer,
//! wrapped properly): never panics, every refusal is one line, what is accepted round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    provenance_dm::fuzzing::check_unwrap(data);
});
