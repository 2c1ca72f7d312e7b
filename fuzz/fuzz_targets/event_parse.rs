//! Event parsing of arbitrary bytes: never panics, and whatever parses verifies without
//! panicking and round-trips with the same verdict.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    provenance::event::fuzzing::check_parse(data);
});
