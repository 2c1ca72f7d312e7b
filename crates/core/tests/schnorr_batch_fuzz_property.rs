//! The property of the `schnorr_batch_differential` fuzz target
//! ([`provenance::schnorr_batch::fuzzing::check_against_single`]: batch verification agrees
//! with libsecp256k1 item by item) over seeded random inputs, so that it runs in every
//! `cargo test` without a nightly compiler: batches of every size up to the maximum, one, a
//! few or one signer per item, each small-batch bound, and from no corruption to many, of
//! every kind.

use provenance::schnorr_batch::fuzzing::{MAX_ITEMS, check_against_single};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// An input: header (size, signers, key seed, small-batch bound), then `corruptions` records
/// of (item, kind, parameter).
fn input(rng: &mut StdRng, size: u8, corruptions: usize) -> Vec<u8> {
    let mut data = vec![size, rng.random(), rng.random(), rng.random()];
    for _ in 0..corruptions {
        data.extend_from_slice(&[rng.random(), rng.random(), rng.random()]);
    }
    data
}

#[test]
fn batch_agrees_with_libsecp256k1_on_seeded_inputs() {
    let mut rng = StdRng::seed_from_u64(0xba7c_f022);
    for round in 0..120 {
        // Sizes spread over the whole range, with small ones (around the small-batch bound)
        // often.
        let size = if round % 3 == 0 {
            rng.random_range(0..=16)
        } else {
            rng.random_range(0..=MAX_ITEMS as u8)
        };
        let corruptions = match round % 4 {
            0 => 0,
            1 => 1,
            2 => rng.random_range(2..=5),
            _ => rng.random_range(0..=usize::from(size) + 8),
        };
        check_against_single(&input(&mut rng, size, corruptions));
    }
}

#[test]
fn every_corruption_kind_alone() {
    // Kind k of 17 is chosen by a second byte of k (mod 17); each kind once per signer mode,
    // with parameters from the generator, in a batch of 24.
    let mut rng = StdRng::seed_from_u64(17);
    for kind in 0..17u8 {
        for signers in [0u8, 100, 255] {
            for bound in 0..3u8 {
                let data = [
                    24,
                    signers,
                    rng.random(),
                    bound,
                    rng.random(),
                    kind,
                    rng.random(),
                ];
                check_against_single(&data);
            }
        }
    }
}

#[test]
fn short_and_empty_inputs() {
    // Missing bytes read as zero: nothing panics, whatever is cut off.
    check_against_single(&[]);
    check_against_single(&[5]);
    check_against_single(&[200, 255, 1]);
    check_against_single(&[40, 0, 0, 1, 3, 12]);
}
