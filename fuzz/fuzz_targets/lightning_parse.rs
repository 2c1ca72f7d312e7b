//! The Lightning inputs from outside: BOLT11 invoices from a wallet service and NIP-57 zap
//! requests from anyone calling the LNURL-pay callback. Never panics, refusals are one line,
//! and a properly signed zap request is accepted for its own amount only.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    provenance_pay::zap::fuzzing::check(data);
});
