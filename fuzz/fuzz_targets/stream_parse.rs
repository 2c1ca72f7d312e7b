//! SSE / NDJSON stream parsing of arbitrary bytes: never panics, items stay under the cap, and
//! splitting the input into pieces never changes the items.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    provenance_signer::adapter::stream::fuzzing::check_split(data);
});
