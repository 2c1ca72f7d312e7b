//! SEV-SNP report, TDX quote and attestation bundle parsing of arbitrary bytes: never panics,
//! and every rejection is a non-empty one-line reason.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    provenance_attest::fuzzing::check_parse(data);
});
