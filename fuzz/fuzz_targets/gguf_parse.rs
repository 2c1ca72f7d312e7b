//! GGUF parsing of arbitrary bytes: never panics or over-allocates; whatever parses re-encodes
//! to the same header bytes, and the streaming hasher accepts exactly what the parser accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    provenance_gguf::internal::fuzz_parse(data);
});
