//! BIP-340 batch verification against libsecp256k1 single verification, item by item: the
//! input chooses the batch size, the signers and the corruptions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    provenance::schnorr_batch::fuzzing::check_against_single(data);
});
