//! Batch verification with unsound coefficients, so that a test can show the soundness tests
//! (`crates/core/tests/schnorr_batch_soundness.rs`) fail without random coefficients that
//! depend on every input. Not a stable API, and nothing for production: every function here
//! builds its own verifier and drops it, so no [`BatchVerifier`] a caller holds can be
//! weakened.

use k256::Scalar;

use super::{BatchVerifier, Coefficients, Item};

/// A way to draw the coefficients `a_i` that is not sound. `None` where one is taken means
/// the real, hashed coefficients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weakness {
    /// Every `a_i` is 1: errors that sum to zero cancel.
    AllOne,
    /// `a_1 = 1` and every other `a_i` is `+-magnitude`: a guessable coefficient.
    Constant {
        /// The size of the coefficient.
        magnitude: u128,
        /// Whether it is negated (`-1` is `magnitude: 1, negative: true`).
        negative: bool,
    },
    /// The seed hashes nothing but the domain tag: the coefficients are the same for every
    /// batch of the same size, so an attacker computes them in advance.
    IgnoreInputs,
    /// The seed hashes the keys and challenges but not the signatures: `s` can be changed
    /// after the coefficients are known.
    SeedWithoutSignatures,
}

fn verifier(weakness: Option<Weakness>, single_below: usize) -> BatchVerifier {
    let mut verifier =
        BatchVerifier::with_coefficients(weakness.map_or(Coefficients::Hashed, Coefficients::Weak));
    verifier.single_below(single_below);
    verifier
}

/// [`BatchVerifier::verify_all`] with `weakness` and [`BatchVerifier::single_below`].
pub fn verify_all(weakness: Option<Weakness>, single_below: usize, items: &[Item<'_>]) -> bool {
    verifier(weakness, single_below).verify_all(items)
}

/// [`BatchVerifier::verify_each`] with `weakness` and [`BatchVerifier::single_below`].
pub fn verify_each(
    weakness: Option<Weakness>,
    single_below: usize,
    items: &[Item<'_>],
) -> Vec<bool> {
    verifier(weakness, single_below).verify_each(items)
}

/// The coefficients the batch equation of the whole batch uses with `weakness`, one per item,
/// as big-endian scalars; `None` when an item does not parse. They are public knowledge (a
/// deterministic function of the inputs), which is what an attacker needs to try to cancel
/// one bad item with another.
pub fn coefficients(weakness: Option<Weakness>, items: &[Item<'_>]) -> Option<Vec<[u8; 32]>> {
    let mut verifier = verifier(weakness, 0);
    let prepared = verifier.prepare(items, true)?;
    let count = prepared.items.len();
    let mut block = [0u128; 2];
    Some(
        (0..count)
            .map(|t| {
                let (a, negative) =
                    verifier
                        .coefficients
                        .at(&prepared.seed, 0, count, t, &mut block);
                let a = if negative {
                    -Scalar::from(a)
                } else {
                    Scalar::from(a)
                };
                a.to_bytes().into()
            })
            .collect(),
    )
}
