//! BIP-340 batch verification: many Schnorr signatures checked with one multi-scalar
//! multiplication.
//!
//! [`crate::schnorr::verify`] checks one signature with libsecp256k1: one double-scalar
//! multiplication per signature. A verifier of many events does better by checking them
//! together, as BIP-340's "Batch Verification" section describes: for signatures
//! `(r_i, s_i)` on messages `m_i` under keys `P_i`, with challenges
//! `e_i = int(hash_BIP0340/challenge(r_i || P_i || m_i)) mod n`, all are valid (with
//! overwhelming probability) iff
//!
//! ```text
//! (sum a_i s_i) G - sum a_i R_i - sum_i (a_i e_i) P_i = 0
//! ```
//!
//! where `R_i` is the curve point with x coordinate `r_i` and even y, `P_i` the lift of the
//! x-only key with even y, `a_1 = 1` and the other `a_i` random 128-bit integers. The whole
//! left side is one multi-scalar multiplication (Pippenger's bucket method here, with the
//! secp256k1 endomorphism to halve the full-size scalars), and items signed by the same key
//! share one `P` term: their scalars are summed first, so a batch of events by one operator
//! multiplies one key point for the whole batch. [`BatchVerifier`] is the entry point;
//! `docs/benchmarks.md` ("BIP-340 batch verification") has the measured speed and the batch
//! size to use.
//!
//! # Soundness
//!
//! secp256k1 has prime order `n` (cofactor 1), so every lifted point is in the one group and
//! no small-subgroup component can cancel. For each item let `D_i = s_i G - R_i - e_i P_i`;
//! the item is valid iff `D_i = 0` (the lift of `r_i` with even y is the unique point a valid
//! signature can name, exactly as single verification requires x(R) = r and y(R) even). The
//! batch equation is `sum a_i D_i = 0`. Errors are one-sided: when every item is valid the
//! sum is 0 whatever the coefficients, so a valid item is never rejected; the only error is
//! accepting a batch that holds a bad item.
//!
//! **The bound.** Model SHA-256 as a random oracle. The coefficients of a (sub-)batch are
//! oracle outputs on the seed, and the seed is an oracle output on every input that
//! determines the `D_i` (below). Suppose some `D_j != 0` with `j` not the first item. Fix
//! every other coefficient; `sum a_i D_i = 0` then holds for at most one residue of `a_j` mod
//! `n` (`D_j` has order `n`), and `a_j` is uniform on `[0, 2^128)`, which holds at most one
//! value of each residue since `2^128 < n`. So a fixed batch passes one check with
//! probability at most `2^-128`. (When the only bad item is the first, whose coefficient is
//! fixed to 1, the equation reads `D_1 = 0`, which is false: exact.) An attacker who tries
//! `q` candidate batches makes `q` oracle queries for their seeds, each a fresh draw, so wins
//! with probability at most `q * 2^-128` per sub-batch check: about `2^-68` for `q = 2^60`.
//! The argument needs the seed to hash every input: an input outside the seed could be
//! changed after the coefficients are known, to make `D_1 = -a_j D_j`
//! (`crates/core/tests/schnorr_batch_soundness.rs` builds such batches, and shows that all-one,
//! constant, input-independent or signature-blind coefficients accept them). A batch of one
//! item has no randomness at all and is exact.
//!
//! **What `verify_each` adds.** [`BatchVerifier::verify_each`] checks the batch and, when it
//! fails, sub-batches of it, each with its own coefficients (the sub-batch's position and
//! size enter the hash). Each check that passes marks all its items valid, so a bad item is
//! wrongly reported valid only if some sub-batch holding it passed: with bisection a bad item
//! is in at most one checked sub-batch per level, at most `1 + ceil(log2(len))` checks (11
//! for 1,024 items; 8 at the default bound, below which items are checked alone), so its
//! chance to be passed is at most that many times `2^-128` for a fixed batch, or `q` times
//! that for an attacker with `q` queries.
//! A rejection of an item always rests on an exact check (libsecp256k1 alone, or a batch of
//! one). Single checks, whether below [`BatchVerifier::single_below`] or the fallback for
//! batches with many bad items, add nothing to the bound.
//!
//! Items that fail before any arithmetic (`r >= p`, `s >= n`, `r` or the key not the x
//! coordinate of a curve point) are rejected exactly as single verification rejects them.
//!
//! # Randomness
//!
//! The coefficients are derived, as BIP-340 suggests, from a hash of all inputs: the seed is
//! SHA-256 over a domain tag and, for every item, its key, its 64-byte signature and its
//! 32-byte challenge hash (which binds `r`, the key and the message); each coefficient is half
//! of `SHA-256(seed || first || count || block)`, so every sub-batch checked while locating bad
//! items ([`BatchVerifier::verify_each`]) draws fresh coefficients. Nothing depends on an OS
//! random source, so results are reproducible, and the coefficients are unpredictable to
//! anyone who cannot find SHA-256 preimages or collisions for inputs they chose.
//!
//! # Cost of bad batches
//!
//! A failed batch equation says nothing about how many items are bad; bisection pays about
//! two batch equations of the batch's size per bad item, so many bad items would cost several
//! times their single checks. [`BatchVerifier::verify_each`] probes 16 items of a failed
//! batch one by one, bounds bisection to two more passes, and remembers a mostly bad call, so
//! that garbage costs about what single verification costs (figures in `docs/benchmarks.md`,
//! "Batch verification: bad batches"). The key cache holds at most [`KEY_CACHE_LIMIT`] keys
//! between calls, whatever their size.
//!
//! # Tests
//!
//! `crates/core/tests/schnorr_batch_*.rs`: the BIP-340 vectors; differential tests against
//! libsecp256k1 (also the fuzz target `schnorr_batch_differential`); forged batches and the
//! weakened coefficients they catch; the bounded cost, by counting checks. No other
//! batch-verification implementation publishes batch-specific test vectors that we found (see
//! `schnorr_batch_soundness.rs`).
//!
//! # What this module does not do
//!
//! It is variable-time: it handles public data only (keys, messages, signatures) and must not
//! be used with secrets. It contains no `unsafe` and never panics on any input.

use std::collections::HashMap;
use std::sync::LazyLock;

use k256::elliptic_curve::ff::PrimeField;
use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::scalar::IsHigh;
use k256::{FieldBytes, FieldElement as Fe, Scalar, U256};
use secp256k1::XOnlyPublicKey;
use sha2::{Digest, Sha256};

/// Support for the `schnorr_batch_differential` fuzz target and its seeded test; not a stable
/// API.
#[doc(hidden)]
pub mod fuzzing;
#[doc(hidden)]
pub mod soundness_testing;

use soundness_testing::Weakness;

/// Batches (and, in [`BatchVerifier::verify_each`], sub-batches) with fewer items than this
/// are checked one signature at a time with libsecp256k1; see [`BatchVerifier::single_below`].
///
/// Measured (`docs/benchmarks.md`): a batch of 8 by one signer already costs less per
/// signature than libsecp256k1; with all-distinct signers the batch breaks even near 32.
pub const DEFAULT_SINGLE_BELOW: usize = 8;

/// At most this many keys (valid or not) stay cached between calls (about 200 bytes each); a
/// call that leaves more clears the cache. One call may hold more while it runs: a batch needs
/// all of its keys at once.
pub const KEY_CACHE_LIMIT: usize = 1 << 14;

/// How many items [`BatchVerifier::verify_each`] checks one by one to estimate how many of a
/// failed batch are bad; see [`BatchVerifier::verify_each`].
const PROBE: usize = 16;

/// Bad items among the [`PROBE`] that make single checks cheaper than locating them: one bad
/// in 16 suggests a batch with dozens of bad items, and bisection costs about two batch
/// equations of the batch's size for each (measured in `docs/benchmarks.md`: locating one
/// bad item in 1,024 already costs 1.2 times the single checks with distinct signers).
const PROBE_BAD: usize = 1;

/// One signature to check: BIP-340 over `msg` (any length; events use their 32-byte id).
#[derive(Clone, Copy, Debug)]
pub struct Item<'a> {
    /// The x-only public key.
    pub pubkey: &'a [u8; 32],
    /// The signed message.
    pub msg: &'a [u8],
    /// The signature `r || s`.
    pub sig: &'a [u8; 64],
}

/// Checks many BIP-340 signatures at once, caching lifted public keys across calls.
///
/// Methods take `&mut self` (the key cache and scratch buffers are reused): give each thread
/// its own.
///
/// ```
/// use provenance::schnorr_batch::{BatchVerifier, Item};
///
/// let mut verifier = BatchVerifier::new();
/// let items: Vec<Item<'_>> = Vec::new();
/// assert!(verifier.verify_all(&items));
/// assert!(verifier.verify_each(&items).is_empty());
/// ```
#[derive(Debug)]
pub struct BatchVerifier {
    /// Key bytes to an index into `lifted`, or `None` when the bytes are not a valid key.
    keys: HashMap<[u8; 32], Option<u32>>,
    lifted: Vec<LiftedKey>,
    single_below: usize,
    /// Always [`Coefficients::Hashed`], except in a verifier built by
    /// [`soundness_testing`], which never leaves that module.
    coefficients: Coefficients,
    /// The last [`Self::verify_each`] found so many bad items that it checked them one by one.
    mostly_bad: bool,
    counts: CheckCounts,
    scratch: Scratch,
}

/// How many checks a [`BatchVerifier`] has run since it was made: what a batch of bad
/// signatures cost, without timing it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckCounts {
    /// Signatures checked one by one with libsecp256k1.
    pub single: u64,
    /// Batch equations (multi-scalar multiplications) evaluated, sub-batches included.
    pub batch: u64,
    /// Items in those batch equations, summed.
    pub batch_items: u64,
}

impl Default for BatchVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchVerifier {
    /// A verifier with an empty key cache and [`DEFAULT_SINGLE_BELOW`].
    pub fn new() -> Self {
        Self::with_coefficients(Coefficients::Hashed)
    }

    fn with_coefficients(coefficients: Coefficients) -> Self {
        Self {
            keys: HashMap::new(),
            lifted: Vec::new(),
            single_below: DEFAULT_SINGLE_BELOW,
            coefficients,
            mostly_bad: false,
            counts: CheckCounts::default(),
            scratch: Scratch::default(),
        }
    }

    /// Batches of fewer than `items` signatures are checked one at a time with libsecp256k1,
    /// which is faster there than a multi-scalar multiplication; the same bound ends the
    /// bisection of [`Self::verify_each`]. `0` sends every batch, even of one item, through
    /// the batch equation, and turns off [`Self::verify_each`]'s switch to single checks for
    /// batches with many bad items. The default is [`DEFAULT_SINGLE_BELOW`], chosen by
    /// measurement.
    pub fn single_below(&mut self, items: usize) -> &mut Self {
        self.single_below = items;
        self
    }

    /// How many keys the cache holds now: at most [`KEY_CACHE_LIMIT`] between calls.
    pub fn cached_keys(&self) -> usize {
        self.keys.len()
    }

    /// How many single and batch checks this verifier has run.
    pub fn counts(&self) -> CheckCounts {
        self.counts
    }

    /// True iff every item is a valid signature (false acceptance probability <= 2^-128).
    /// An empty batch is true.
    pub fn verify_all(&mut self, items: &[Item<'_>]) -> bool {
        let holds = if items.len() < self.single_below {
            items.iter().all(|item| self.verify_single(item))
        } else if let Some(prepared) = self.prepare(items, true) {
            let holds = self.batch_holds(&prepared.items, &prepared.seed, 0);
            self.scratch.prepared = prepared.items;
            holds
        } else {
            false
        };
        self.bound_cache();
        holds
    }

    /// For each item, whether it is valid: exactly what [`crate::schnorr::verify`] says for
    /// each one alone (up to the 2^-128 bound per sub-batch an item takes part in; see the
    /// module documentation).
    ///
    /// The whole batch is checked first; when it holds, that is all. When it fails:
    ///
    /// - Sixteen items at positions drawn from the coefficient seed are checked one by
    ///   one; if one of them is bad, the batch probably holds more bad items than bisection
    ///   can locate cheaply, and every item is checked one by one.
    /// - Otherwise the batch is halved and each half checked again (a half known to hold a
    ///   bad item because its sibling passed is split without a check), down to
    ///   [`Self::single_below`] items, which are checked one by one. The lifts and
    ///   challenges are computed once and reused by every sub-batch. Bisection may put at
    ///   most twice as many items as the batch has through batch equations; past that, the
    ///   items still undecided are checked one by one.
    /// - A call that ended up checking one by one marks the verifier: the next call first
    ///   checks its first 16 items one by one, and checks the rest one by one too (with no
    ///   batch equation at all) if one of them is bad.
    ///
    /// So a batch of garbage costs its single checks plus one batch equation, a stream of
    /// garbage batches costs their single checks, and no batch costs more than its single
    /// checks plus three batch equations of its size. [`Self::counts`] shows what ran.
    /// With [`Self::single_below`]`(0)` none of this applies: pure bisection.
    pub fn verify_each(&mut self, items: &[Item<'_>]) -> Vec<bool> {
        let mut valid = vec![false; items.len()];
        if items.len() < self.single_below.max(1) {
            self.verify_singles(items, &mut valid);
        } else if self.mostly_bad && self.single_below > 0 {
            let probe = PROBE.min(items.len());
            let (head, rest) = items.split_at(probe);
            let (head_valid, rest_valid) = valid.split_at_mut(probe);
            let bad = self.verify_singles(head, head_valid);
            if bad >= PROBE_BAD {
                self.verify_singles(rest, rest_valid);
            } else if rest.len() < self.single_below {
                self.verify_singles(rest, rest_valid);
                self.mostly_bad = false;
            } else {
                self.mostly_bad = self.verify_each_batched(rest, rest_valid);
            }
        } else {
            self.mostly_bad = self.verify_each_batched(items, &mut valid);
        }
        self.bound_cache();
        valid
    }

    /// [`Self::verify_each`] for a batch of at least [`Self::single_below`] items, without the
    /// mark of the previous call. True when it fell back to single checks.
    fn verify_each_batched(&mut self, items: &[Item<'_>], valid: &mut [bool]) -> bool {
        let Some(prepared) = self.prepare(items, false) else {
            return false;
        };
        let list = &prepared.items;
        let mut fell_back = false;
        if self.batch_holds(list, &prepared.seed, 0) {
            for p in list {
                if let Some(out) = valid.get_mut(p.index) {
                    *out = true;
                }
            }
        } else if self.single_below == 0 {
            let mut budget = usize::MAX;
            self.locate(items, list, &prepared.seed, 0, true, &mut budget, valid);
        } else if self.probe_bad(items, list, &prepared.seed, valid) >= PROBE_BAD {
            // The probed items are checked again here: 16 checks at most, against the cost
            // of a second pass over the list to skip them.
            self.verify_prepared_singles(items, list, valid);
            fell_back = true;
        } else {
            // Locating one bad item checks about 1.4 times the batch (each half on the way down,
            // and the sibling of each half that failed); two budgets' worth stops bisection
            // once it is clear that the bad items are several.
            let mut budget = 2 * list.len();
            fell_back = self.locate(items, list, &prepared.seed, 0, true, &mut budget, valid);
        }
        self.scratch.prepared = prepared.items;
        fell_back
    }

    /// Checks [`PROBE`] items of `list` one by one, at positions drawn from `seed` (one in
    /// each of 16 equal slices); returns how many are bad. Their results stay in `valid`.
    fn probe_bad(
        &mut self,
        items: &[Item<'_>],
        list: &[Prepared],
        seed: &[u8; 32],
        valid: &mut [bool],
    ) -> usize {
        let slices = PROBE.min(list.len());
        let mut draw = Sha256::new();
        draw.update(seed);
        draw.update(b"probe");
        let draw: [u8; 32] = draw.finalize().into();
        let mut bad = 0;
        for (k, pair) in draw.chunks_exact(2).take(slices).enumerate() {
            let start = k * list.len() / slices;
            let end = (k + 1) * list.len() / slices;
            let offset = usize::from(u16::from_le_bytes([pair[0], pair[1]])) % (end - start);
            let Some(p) = list.get(start + offset) else {
                continue;
            };
            if let (Some(item), Some(out)) = (items.get(p.index), valid.get_mut(p.index)) {
                *out = self.verify_single(item);
                bad += usize::from(!*out);
            }
        }
        bad
    }

    /// Checks every item one by one into `valid`; returns how many are bad.
    fn verify_singles(&mut self, items: &[Item<'_>], valid: &mut [bool]) -> usize {
        let mut bad = 0;
        for (out, item) in valid.iter_mut().zip(items) {
            *out = self.verify_single(item);
            bad += usize::from(!*out);
        }
        bad
    }

    /// Checks the items of `list` one by one into `valid`.
    fn verify_prepared_singles(
        &mut self,
        items: &[Item<'_>],
        list: &[Prepared],
        valid: &mut [bool],
    ) {
        for p in list {
            if let (Some(item), Some(out)) = (items.get(p.index), valid.get_mut(p.index)) {
                *out = self.verify_single(item);
            }
        }
    }

    /// One signature through libsecp256k1, with the key from the cache.
    fn verify_single(&mut self, item: &Item<'_>) -> bool {
        self.counts.single += 1;
        match self.key(item.pubkey) {
            Some(index) => self
                .lifted
                .get(index as usize)
                .is_some_and(|key| crate::schnorr::verify_parsed(&key.xonly, item.msg, item.sig)),
            None => false,
        }
    }

    /// Marks in `valid` the items of `sub` (which starts at `first` in the prepared list) that
    /// hold. `known_bad`: `sub` is known to contain an invalid item, so checking it whole
    /// would be wasted. `budget`: how many more items may go through batch equations; a
    /// sub-batch that does not fit is checked one by one. True when that happened.
    #[allow(clippy::too_many_arguments)]
    fn locate(
        &mut self,
        items: &[Item<'_>],
        sub: &[Prepared],
        seed: &[u8; 32],
        first: usize,
        known_bad: bool,
        budget: &mut usize,
        valid: &mut [bool],
    ) -> bool {
        if sub.is_empty() {
            return false;
        }
        if sub.len() < self.single_below {
            self.verify_prepared_singles(items, sub, valid);
            return false;
        }
        // A batch of one has no random coefficient and is exact, so every rejection below
        // rests on an exact check.
        let check = sub.len() == 1 || !known_bad;
        if check && sub.len() > *budget {
            self.verify_prepared_singles(items, sub, valid);
            return true;
        }
        if check {
            *budget -= sub.len();
        }
        let holds = check && self.batch_holds(sub, seed, first);
        if holds {
            for p in sub {
                if let Some(out) = valid.get_mut(p.index) {
                    *out = true;
                }
            }
            return false;
        }
        if sub.len() == 1 {
            return false;
        }
        let (left, right) = sub.split_at(sub.len() / 2);
        let left_fell_back = self.locate(items, left, seed, first, false, budget, valid);
        let left_all_valid = left
            .iter()
            .all(|p| valid.get(p.index).copied().unwrap_or(false));
        let right_first = first + left.len();
        let right_fell_back = self.locate(
            items,
            right,
            seed,
            right_first,
            left_all_valid,
            budget,
            valid,
        );
        left_fell_back || right_fell_back
    }

    /// Clears the key cache when it holds more than [`KEY_CACHE_LIMIT`] keys; called at the
    /// end of every public call, so that the bound holds between calls whatever their size.
    fn bound_cache(&mut self) {
        if self.keys.len() > KEY_CACHE_LIMIT {
            self.keys.clear();
            self.lifted.clear();
            self.scratch.key_slot.clear();
        }
    }

    /// Parses and lifts every item. With `all_or_nothing`, returns `None` as soon as one item
    /// fails to parse; otherwise such items are left out (and so reported invalid).
    fn prepare(&mut self, items: &[Item<'_>], all_or_nothing: bool) -> Option<PreparedBatch> {
        let mut prepared = std::mem::take(&mut self.scratch.prepared);
        prepared.clear();
        prepared.reserve(items.len());
        let mut seed = Sha256::new();
        seed.update(SEED_TAG);
        for (index, item) in items.iter().enumerate() {
            match self.prepare_one(index, item, &mut seed) {
                Some(p) => prepared.push(p),
                None if all_or_nothing => {
                    self.scratch.prepared = prepared;
                    return None;
                }
                None => {}
            }
        }
        Some(PreparedBatch {
            items: prepared,
            seed: seed.finalize().into(),
        })
    }

    fn prepare_one(
        &mut self,
        index: usize,
        item: &Item<'_>,
        seed: &mut Sha256,
    ) -> Option<Prepared> {
        let key = self.key(item.pubkey)?;
        let (r_bytes, s_bytes) = split_sig(item.sig);
        let s = Option::<Scalar>::from(Scalar::from_repr(FieldBytes::from(s_bytes)))?;
        let r = lift_x(&r_bytes)?;
        let constants = &*CONSTANTS;
        let mut challenge = constants.challenge.clone();
        challenge.update(r_bytes);
        challenge.update(item.pubkey);
        challenge.update(item.msg);
        let digest: [u8; 32] = challenge.finalize().into();
        let e = <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(digest));
        self.coefficients
            .absorb(seed, item.pubkey, item.sig, &digest);
        Some(Prepared {
            index,
            key,
            r,
            s,
            e,
        })
    }

    /// The cache index of the lifted key, lifting and caching it on first sight; `None` when
    /// the bytes are not the x coordinate of a curve point.
    fn key(&mut self, pubkey: &[u8; 32]) -> Option<u32> {
        if let Some(cached) = self.keys.get(pubkey) {
            return *cached;
        }
        let lifted = crate::schnorr::parse_key(pubkey).and_then(|xonly| {
            let index = u32::try_from(self.lifted.len()).ok()?;
            let point = lift_x(pubkey)?;
            self.lifted.push(LiftedKey { xonly, point });
            Some(index)
        });
        self.keys.insert(*pubkey, lifted);
        lifted
    }

    /// Whether the batch equation holds for `sub`, with coefficients drawn for the sub-batch
    /// starting at `first`.
    fn batch_holds(&mut self, sub: &[Prepared], seed: &[u8; 32], first: usize) -> bool {
        if sub.is_empty() {
            return true;
        }
        self.counts.batch += 1;
        self.counts.batch_items += sub.len() as u64;
        let constants = &*CONSTANTS;
        let coefficients = self.coefficients;
        let scratch = &mut self.scratch;
        scratch.terms.clear();
        scratch.key_sums.clear();
        scratch.key_slot.resize(self.lifted.len(), u32::MAX);

        let mut s_sum = Scalar::ZERO;
        let mut block = [0u128; 2];
        for (t, p) in sub.iter().enumerate() {
            let (a, negative) = coefficients.at(seed, first, sub.len(), t, &mut block);
            let a_scalar = if negative {
                -Scalar::from(a)
            } else {
                Scalar::from(a)
            };
            s_sum += a_scalar * p.s;
            let ae = a_scalar * p.e;
            let slot = &mut scratch.key_slot[p.key as usize];
            if *slot == u32::MAX {
                *slot = scratch.key_sums.len() as u32;
                scratch.key_sums.push((p.key, ae));
            } else if let Some(sum) = scratch.key_sums.get_mut(*slot as usize) {
                sum.1 += ae;
            }
            // -a R, with the sign of a folded into the point.
            scratch.terms.push(Term {
                point: if negative { p.r } else { p.r.neg() },
                scalar: [a as u64, (a >> 64) as u64, 0, 0],
            });
        }
        push_glv(&mut scratch.terms, &constants.g, &s_sum);
        for &(key, sum) in &scratch.key_sums {
            scratch.key_slot[key as usize] = u32::MAX;
            if let Some(lifted) = self.lifted.get(key as usize) {
                push_glv(&mut scratch.terms, &lifted.point, &-sum);
            }
        }
        let terms = std::mem::take(&mut scratch.terms);
        let holds = msm(&terms, scratch).infinity;
        scratch.terms = terms;
        holds
    }
}

/// How the coefficients `a_i` are drawn. Production verifiers use [`Coefficients::Hashed`]
/// only; [`soundness_testing`] builds verifiers with a [`Weakness`] to show that the
/// soundness tests catch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Coefficients {
    /// `a_1 = 1`, the others 128-bit halves of SHA-256 over a seed that hashes every input.
    Hashed,
    Weak(Weakness),
}

impl Coefficients {
    /// Hashes one item into the coefficient seed.
    fn absorb(self, seed: &mut Sha256, pubkey: &[u8; 32], sig: &[u8; 64], challenge: &[u8; 32]) {
        match self {
            Self::Weak(Weakness::IgnoreInputs) => {}
            Self::Weak(Weakness::SeedWithoutSignatures) => {
                seed.update(pubkey);
                seed.update(challenge);
            }
            _ => {
                seed.update(pubkey);
                seed.update(sig);
                seed.update(challenge);
            }
        }
    }

    /// Coefficient `t` of the sub-batch of `count` items starting at `first`, as a magnitude
    /// and a sign (negative only for [`Weakness::Constant`]). `block` caches the hash of the
    /// pair that `t` belongs to: call with `t = 0, 1, 2, ...` in order.
    fn at(
        self,
        seed: &[u8; 32],
        first: usize,
        count: usize,
        t: usize,
        block: &mut [u128; 2],
    ) -> (u128, bool) {
        if t == 0 {
            return (1, false);
        }
        match self {
            Self::Weak(Weakness::AllOne) => (1, false),
            Self::Weak(Weakness::Constant {
                magnitude,
                negative,
            }) => (magnitude, negative),
            _ => {
                if t % 2 == 0 || t == 1 {
                    *block = coefficient_block(seed, first, count, t / 2);
                }
                (block[t % 2], false)
            }
        }
    }
}

/// The domain tag hashed first into the coefficient seed.
const SEED_TAG: &[u8] = b"provenance/bip340-batch/v1";

/// A key seen before, lifted both ways.
#[derive(Debug)]
struct LiftedKey {
    /// For single verification through libsecp256k1.
    xonly: XOnlyPublicKey,
    /// For the batch equation.
    point: Affine,
}

/// An item that parsed, with what the batch equation needs.
#[derive(Clone, Copy, Debug)]
struct Prepared {
    /// Position in the caller's slice.
    index: usize,
    /// Index into [`BatchVerifier::lifted`].
    key: u32,
    r: Affine,
    s: Scalar,
    e: Scalar,
}

#[derive(Debug)]
struct PreparedBatch {
    items: Vec<Prepared>,
    seed: [u8; 32],
}

/// Buffers kept between calls.
#[derive(Debug, Default)]
struct Scratch {
    prepared: Vec<Prepared>,
    terms: Vec<Term>,
    /// Per distinct key of the sub-batch: cache index and summed scalar.
    key_sums: Vec<(u32, Scalar)>,
    /// Per cached key: its position in `key_sums`, or `u32::MAX`.
    key_slot: Vec<u32>,
    digits: Vec<i16>,
    buckets: Vec<Jacobian>,
}

fn split_sig(sig: &[u8; 64]) -> ([u8; 32], [u8; 32]) {
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&sig[..32]);
    s.copy_from_slice(&sig[32..]);
    (r, s)
}

/// Coefficients `2 * block` and `2 * block + 1` of the sub-batch of `count` items starting at
/// `first`.
fn coefficient_block(seed: &[u8; 32], first: usize, count: usize, block: usize) -> [u128; 2] {
    let mut hasher = Sha256::new();
    hasher.update(seed);
    hasher.update((first as u64).to_le_bytes());
    hasher.update((count as u64).to_le_bytes());
    hasher.update((block as u64).to_le_bytes());
    let out: [u8; 32] = hasher.finalize().into();
    let mut lo = [0u8; 16];
    let mut hi = [0u8; 16];
    lo.copy_from_slice(&out[..16]);
    hi.copy_from_slice(&out[16..]);
    [u128::from_le_bytes(lo), u128::from_le_bytes(hi)]
}

// ---------------------------------------------------------------------------------------
// Curve arithmetic. Field elements are k256's, which normalise lazily: every value carries a
// magnitude (how many times p it may exceed), `mul`/`square` accept magnitudes up to 8 and
// return 1, `a + b` adds magnitudes, `negate(m)` needs m >= the magnitude and returns m + 1.
// The comments give the magnitude of each intermediate value. The formulas are
// libsecp256k1's variable-time ones (`secp256k1_gej_double_var`, `secp256k1_gej_add_var`,
// `secp256k1_gej_add_ge_var`).

/// A curve point (never infinity) in affine coordinates, both of magnitude 1.
#[derive(Clone, Copy, Debug)]
struct Affine {
    x: Fe,
    y: Fe,
}

impl Affine {
    fn neg(&self) -> Self {
        Self {
            x: self.x,
            y: self.y.negate(1).normalize_weak(),
        }
    }

    /// `lambda * self`, by the endomorphism `(x, y) -> (beta x, y)`.
    fn endomorphism(&self) -> Self {
        Self {
            x: self.x.mul(&CONSTANTS.beta),
            y: self.y,
        }
    }
}

/// A point in Jacobian coordinates `(X / Z^2, Y / Z^3)`. Magnitudes: x <= 6, y <= 4, z <= 2.
#[derive(Clone, Copy, Debug)]
struct Jacobian {
    x: Fe,
    y: Fe,
    z: Fe,
    infinity: bool,
}

impl Jacobian {
    const INFINITY: Self = Self {
        x: Fe::ZERO,
        y: Fe::ZERO,
        z: Fe::ZERO,
        infinity: true,
    };

    fn from_affine(p: &Affine) -> Self {
        Self {
            x: p.x,
            y: p.y,
            z: Fe::ONE,
            infinity: false,
        }
    }

    /// `2 * self`: 3 multiplications, 4 squarings. (secp256k1 has no point of order 2, so y
    /// is never zero and the result is infinity only for infinity.)
    fn double(&self) -> Self {
        if self.infinity {
            return *self;
        }
        let z = self.z.mul(&self.y).double(); // 2: Z' = 2YZ
        let t1 = self.x.square().mul_single(3); // 3: 3X^2
        let t2 = t1.square(); // 1: 9X^4
        let t3 = self.y.square().double(); // 2: 2Y^2
        let t4 = t3.square().double(); // 2: 8Y^4
        let t3 = t3.mul(&self.x); // 1: 2XY^2
        let x = t3.mul_single(4).negate(4) + t2; // 6: 9X^4 - 8XY^2
        let t3 = t3.mul_single(6) + t2.negate(1); // 8: 12XY^2 - 9X^4
        let y = t1.mul(&t3) + t4.negate(2); // 4: 36X^3Y^2 - 27X^6 - 8Y^4
        Self {
            x,
            y,
            z,
            infinity: false,
        }
    }

    /// `self + b` for an affine `b`: 8 multiplications, 3 squarings.
    fn add_affine(&self, b: &Affine) -> Self {
        if self.infinity {
            return Self::from_affine(b);
        }
        let z12 = self.z.square(); // 1
        let u1 = self.x.normalize_weak(); // 1
        let u2 = b.x.mul(&z12); // 1
        let s1 = self.y.normalize_weak(); // 1
        let s2 = b.y.mul(&z12).mul(&self.z); // 1
        self.finish_add(&u1, &u2, &s1, &s2, None)
    }

    /// `self + b`: 12 multiplications, 4 squarings.
    fn add(&self, b: &Self) -> Self {
        if self.infinity {
            return *b;
        }
        if b.infinity {
            return *self;
        }
        let z22 = b.z.square(); // 1
        let z12 = self.z.square(); // 1
        let u1 = self.x.mul(&z22); // 1
        let u2 = b.x.mul(&z12); // 1
        let s1 = self.y.mul(&z22).mul(&b.z); // 1
        let s2 = b.y.mul(&z12).mul(&self.z); // 1
        self.finish_add(&u1, &u2, &s1, &s2, Some(&b.z))
    }

    /// The shared part of both additions: `self + b` from `u1 = X1 Z2^2`, `u2 = X2 Z1^2`,
    /// `s1 = Y1 Z2^3`, `s2 = Y2 Z1^3` (all of magnitude 1) and `b`'s `Z2` (`None`: 1).
    fn finish_add(&self, u1: &Fe, u2: &Fe, s1: &Fe, s2: &Fe, b_z: Option<&Fe>) -> Self {
        let h = u1.negate(1) + u2; // 3: u2 - u1
        let i = s2.negate(1) + s1; // 3: s1 - s2
        if bool::from(h.normalizes_to_zero()) {
            if bool::from(i.normalizes_to_zero()) {
                return self.double();
            }
            return Self::INFINITY;
        }
        let z = match b_z {
            Some(b_z) => self.z.mul(&h.mul(b_z)), // 1
            None => self.z.mul(&h),               // 1
        };
        let h2 = h.square().negate(1); // 2: -h^2
        let h3 = h2.mul(&h); // 1: -h^3
        let t = u1.mul(&h2); // 1: -u1 h^2
        let x = i.square() + h3 + t + t; // 4: i^2 - h^3 - 2 u1 h^2
        let t = t + x; // 5: x - u1 h^2
        let y = t.mul(&i) + h3.mul(s1); // 2: (u1 h^2 - x)(s2 - s1) - s1 h^3
        Self {
            x,
            y,
            z,
            infinity: false,
        }
    }
}

/// The point with x coordinate `x` and even y, or `None` when `x >= p` or `x^3 + 7` is not a
/// square (BIP-340's `lift_x`).
fn lift_x(x: &[u8; 32]) -> Option<Affine> {
    let x = Option::<Fe>::from(Fe::from_bytes(&FieldBytes::from(*x)))?;
    let y2 = x.square().mul(&x) + CONSTANTS.seven; // 2
    let y = Option::<Fe>::from(y2.sqrt())?.normalize();
    let y = if bool::from(y.is_odd()) {
        y.negate(1).normalize()
    } else {
        y
    };
    Some(Affine { x, y })
}

/// One `scalar * point` of a multi-scalar multiplication: a non-negative scalar as
/// little-endian 64-bit limbs (signs are folded into the point).
#[derive(Clone, Copy, Debug)]
struct Term {
    point: Affine,
    scalar: [u64; 4],
}

/// Pushes `k * point` as two terms of about 128 bits each, `k1 * point + k2 * lambda * point`
/// with `k = k1 + k2 lambda mod n` (the GLV decomposition of libsecp256k1's
/// `secp256k1_scalar_split_lambda`, whose proof bounds both halves below 2^128 in absolute
/// value). The identity holds whatever the rounding, so correctness never depends on the
/// bound; only the speed does.
fn push_glv(terms: &mut Vec<Term>, point: &Affine, k: &Scalar) {
    let constants = &*CONSTANTS;
    let limbs = scalar_limbs(k);
    let c1 = Scalar::from(mul_shift_384(&limbs, &constants.g1));
    let c2 = Scalar::from(mul_shift_384(&limbs, &constants.g2));
    let k2 = c1 * constants.minus_b1 + c2 * constants.minus_b2;
    let k1 = *k + k2 * constants.minus_lambda;
    push_signed(terms, *point, &k1);
    push_signed(terms, point.endomorphism(), &k2);
}

/// Pushes `k * point`, as `(-k) * (-point)` when `k` is above `n / 2`.
fn push_signed(terms: &mut Vec<Term>, point: Affine, k: &Scalar) {
    if bool::from(k.is_zero()) {
        return;
    }
    let term = if bool::from(k.is_high()) {
        Term {
            point: point.neg(),
            scalar: scalar_limbs(&-*k),
        }
    } else {
        Term {
            point,
            scalar: scalar_limbs(k),
        }
    };
    terms.push(term);
}

fn scalar_limbs(k: &Scalar) -> [u64; 4] {
    let bytes = k.to_bytes();
    let mut limbs = [0u64; 4];
    for (i, limb) in limbs.iter_mut().enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[32 - 8 * (i + 1)..32 - 8 * i]);
        *limb = u64::from_be_bytes(word);
    }
    limbs
}

/// `round(a * b / 2^384)` for 256-bit `a` and `b`.
fn mul_shift_384(a: &[u64; 4], b: &[u64; 4]) -> u128 {
    let mut wide = [0u64; 8];
    for (i, &ai) in a.iter().enumerate() {
        let mut carry = 0u128;
        for (j, &bj) in b.iter().enumerate() {
            let cell = u128::from(ai) * u128::from(bj) + u128::from(wide[i + j]) + carry;
            wide[i + j] = cell as u64;
            carry = cell >> 64;
        }
        wide[i + 4] = carry as u64;
    }
    let high = u128::from(wide[6]) | (u128::from(wide[7]) << 64);
    high.wrapping_add(u128::from(wide[5] >> 63))
}

/// `sum scalar_i * point_i` by Pippenger's bucket method with signed digits.
fn msm(terms: &[Term], scratch: &mut Scratch) -> Jacobian {
    let bits = terms
        .iter()
        .map(|t| bit_length(&t.scalar))
        .max()
        .unwrap_or(0);
    if bits == 0 {
        return Jacobian::INFINITY;
    }
    let c = window_bits(terms.len(), bits);
    // Signed digits in [-2^(c-1), 2^(c-1)]: one extra bit for the final carry.
    let windows = (bits + 1).div_ceil(c);
    let digits = &mut scratch.digits;
    digits.clear();
    digits.resize(terms.len() * windows, 0);
    for (t, term) in terms.iter().enumerate() {
        recode(&term.scalar, c, &mut digits[t * windows..(t + 1) * windows]);
    }
    let buckets = &mut scratch.buckets;
    let mut acc = Jacobian::INFINITY;
    for w in (0..windows).rev() {
        for _ in 0..c {
            acc = acc.double();
        }
        buckets.clear();
        buckets.resize(1 << (c - 1), Jacobian::INFINITY);
        for (t, term) in terms.iter().enumerate() {
            let digit = digits[t * windows + w];
            let slot = (digit.unsigned_abs() as usize).wrapping_sub(1);
            if let Some(bucket) = buckets.get_mut(slot) {
                *bucket = if digit > 0 {
                    bucket.add_affine(&term.point)
                } else {
                    bucket.add_affine(&term.point.neg())
                };
            }
        }
        // sum_j (j + 1) * bucket_j as a running sum from the top.
        let mut running = Jacobian::INFINITY;
        let mut sum = Jacobian::INFINITY;
        for bucket in buckets.iter().rev() {
            running = running.add(bucket);
            sum = sum.add(&running);
        }
        acc = acc.add(&sum);
    }
    acc
}

fn bit_length(limbs: &[u64; 4]) -> usize {
    limbs
        .iter()
        .rposition(|&l| l != 0)
        .map_or(0, |i| 64 * i + 64 - limbs[i].leading_zeros() as usize)
}

/// The window width that minimises the estimated cost of `n` terms of `bits` bits: per window,
/// one mixed addition per term and two Jacobian additions per bucket. (The weights are
/// roughly field multiplications; the Jacobian one is set below its 16 because many buckets
/// are still empty when added, and because instruction counts under callgrind favoured it.)
fn window_bits(n: usize, bits: usize) -> usize {
    const ADD_AFFINE: usize = 11;
    const ADD_JACOBIAN: usize = 11;
    (2..=14)
        .min_by_key(|&c| (bits + 1).div_ceil(c) * (n * ADD_AFFINE + (1 << c) * ADD_JACOBIAN))
        .unwrap_or(4)
}

/// Writes the signed base-2^c digits of `scalar` (least significant first) into `out`, each
/// in `[-2^(c-1), 2^(c-1)]`; `out` must be long enough to absorb the final carry.
fn recode(scalar: &[u64; 4], c: usize, out: &mut [i16]) {
    let half = 1i32 << (c - 1);
    let mut carry = 0i32;
    for (w, digit) in out.iter_mut().enumerate() {
        let bits = window(scalar, w * c, c) as i32 + carry;
        if bits > half {
            *digit = (bits - (1 << c)) as i16;
            carry = 1;
        } else {
            *digit = bits as i16;
            carry = 0;
        }
    }
}

/// Bits `pos .. pos + c` of `scalar` (`c <= 16`).
fn window(scalar: &[u64; 4], pos: usize, c: usize) -> u32 {
    let limb = pos / 64;
    let shift = pos % 64;
    let Some(&low) = scalar.get(limb) else {
        return 0;
    };
    let mut value = low >> shift;
    if shift + c > 64 {
        if let Some(&next) = scalar.get(limb + 1) {
            value |= next << (64 - shift);
        }
    }
    (value & ((1u64 << c) - 1)) as u32
}

/// Constants, built once.
struct Constants {
    /// The generator G.
    g: Affine,
    /// beta, a cube root of unity mod p: `lambda * (x, y) = (beta * x, y)`.
    beta: Fe,
    seven: Fe,
    minus_lambda: Scalar,
    minus_b1: Scalar,
    minus_b2: Scalar,
    g1: [u64; 4],
    g2: [u64; 4],
    /// SHA-256 after absorbing `SHA-256("BIP0340/challenge")` twice.
    challenge: Sha256,
}

static CONSTANTS: LazyLock<Constants> = LazyLock::new(|| {
    let tag = Sha256::digest(b"BIP0340/challenge");
    let mut challenge = Sha256::new();
    challenge.update(tag);
    challenge.update(tag);
    Constants {
        g: Affine {
            x: fe_const("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"),
            y: fe_const("483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8"),
        },
        beta: fe_const("7ae96a2b657c07106e64479eac3434e99cf0497512f58995c1396c28719501ee"),
        seven: Fe::from_u64(7),
        minus_lambda: scalar_const(
            "ac9c52b33fa3cf1f5ad9e3fd77ed9ba4a880b9fc8ec739c2e0cfc810b51283cf",
        ),
        minus_b1: scalar_const("00000000000000000000000000000000e4437ed6010e88286f547fa90abfe4c3"),
        minus_b2: scalar_const("fffffffffffffffffffffffffffffffe8a280ac50774346dd765cda83db1562c"),
        g1: scalar_limbs(&scalar_const(
            "3086d221a7d46bcde86c90e49284eb153daa8a1471e8ca7fe893209a45dbb031",
        )),
        g2: scalar_limbs(&scalar_const(
            "e4437ed6010e88286f547fa90abfe4c4221208ac9df506c61571b4ae8ac47f71",
        )),
        challenge,
    }
});

fn const_bytes(hex_str: &str) -> FieldBytes {
    let mut bytes = [0u8; 32];
    // The constants above are 64 hex digits: a failure here is a typo, caught by every test.
    hex::decode_to_slice(hex_str, &mut bytes).expect("constant is 32 bytes of hex");
    FieldBytes::from(bytes)
}

fn fe_const(hex_str: &str) -> Fe {
    Option::from(Fe::from_bytes(&const_bytes(hex_str))).expect("constant is below p")
}

fn scalar_const(hex_str: &str) -> Scalar {
    Option::from(Scalar::from_repr(const_bytes(hex_str))).expect("constant is below n")
}

#[cfg(test)]
mod tests {
    use k256::elliptic_curve::sec1::ToEncodedPoint;
    use k256::{AffinePoint, ProjectivePoint};

    use super::*;

    /// Deterministic test scalars: SHA-256 of a counter, reduced.
    fn scalar(i: u64) -> Scalar {
        let digest: [u8; 32] = Sha256::digest(i.to_le_bytes()).into();
        <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(digest))
    }

    fn from_k256(p: &AffinePoint) -> Affine {
        let encoded = p.to_encoded_point(false);
        Affine {
            x: Option::from(Fe::from_bytes(encoded.x().unwrap())).unwrap(),
            y: Option::from(Fe::from_bytes(encoded.y().unwrap())).unwrap(),
        }
    }

    /// `(x, y)` bytes of a Jacobian point, `None` for infinity.
    fn coordinates(p: &Jacobian) -> Option<([u8; 32], [u8; 32])> {
        if p.infinity {
            return None;
        }
        let zi = Option::<Fe>::from(p.z.invert()).unwrap();
        let zi2 = zi.square();
        let x = p.x.mul(&zi2).normalize();
        let y = p.y.mul(&zi2.mul(&zi)).normalize();
        Some((x.to_bytes().into(), y.to_bytes().into()))
    }

    fn k256_coordinates(p: &ProjectivePoint) -> Option<([u8; 32], [u8; 32])> {
        if bool::from(k256::elliptic_curve::group::Group::is_identity(p)) {
            return None;
        }
        let encoded = p.to_affine().to_encoded_point(false);
        Some((
            (*encoded.x().unwrap()).into(),
            (*encoded.y().unwrap()).into(),
        ))
    }

    fn terms_of(pairs: &[(ProjectivePoint, Scalar)]) -> Vec<Term> {
        let mut terms = Vec::new();
        for (point, k) in pairs {
            push_glv(&mut terms, &from_k256(&point.to_affine()), k);
        }
        terms
    }

    #[test]
    fn msm_matches_k256() {
        let mut scratch = Scratch::default();
        for n in [1usize, 2, 3, 7, 40, 300] {
            let pairs: Vec<(ProjectivePoint, Scalar)> = (0..n as u64)
                .map(|i| (ProjectivePoint::GENERATOR * scalar(1000 + i), scalar(i)))
                .collect();
            let expected = pairs
                .iter()
                .fold(ProjectivePoint::IDENTITY, |acc, (p, k)| acc + *p * k);
            let got = msm(&terms_of(&pairs), &mut scratch);
            assert_eq!(coordinates(&got), k256_coordinates(&expected), "{n} terms");
        }
    }

    #[test]
    fn msm_handles_equal_and_opposite_points() {
        // Equal points meet in a bucket (a doubling inside an addition), opposite points
        // cancel to infinity, and a whole sum can be infinity.
        let mut scratch = Scratch::default();
        let p = ProjectivePoint::GENERATOR * scalar(5);
        let q = ProjectivePoint::GENERATOR * scalar(6);
        let k = scalar(7);
        let cases: [(Vec<(ProjectivePoint, Scalar)>, ProjectivePoint); 4] = [
            (vec![(p, k), (p, k)], p * (k + k)),
            (vec![(p, k), (-p, k), (q, k)], q * k),
            (vec![(p, k), (-p, k)], ProjectivePoint::IDENTITY),
            (
                vec![(p, k), (q, Scalar::ZERO), (p, -k)],
                ProjectivePoint::IDENTITY,
            ),
        ];
        for (i, (pairs, expected)) in cases.iter().enumerate() {
            let got = msm(&terms_of(pairs), &mut scratch);
            assert_eq!(coordinates(&got), k256_coordinates(expected), "case {i}");
        }
        assert!(msm(&[], &mut scratch).infinity);
    }

    #[test]
    fn point_operations_match_k256() {
        let p = ProjectivePoint::GENERATOR * scalar(1);
        let q = ProjectivePoint::GENERATOR * scalar(2);
        let (a, b) = (from_k256(&p.to_affine()), from_k256(&q.to_affine()));
        let ja = Jacobian::from_affine(&a);
        let jb = Jacobian::from_affine(&b).double().add_affine(&a);
        let checks = [
            (ja.double(), p.double()),
            (ja.double().double().double(), p.double().double().double()),
            (ja.add_affine(&b), p + q),
            (ja.add_affine(&a), p.double()),
            (ja.add_affine(&a.neg()), ProjectivePoint::IDENTITY),
            (jb, q.double() + p),
            (jb.add(&ja.double()), q.double() + p.double() + p),
            (jb.add(&jb), (q.double() + p).double()),
            (Jacobian::INFINITY.add(&jb), q.double() + p),
            (jb.add(&Jacobian::INFINITY), q.double() + p),
            (Jacobian::INFINITY.add_affine(&a), p),
            (
                Jacobian::from_affine(&a.endomorphism()),
                p * CONSTANTS.minus_lambda.negate(),
            ),
        ];
        for (i, (got, expected)) in checks.iter().enumerate() {
            assert_eq!(coordinates(got), k256_coordinates(expected), "check {i}");
        }
    }

    #[test]
    fn glv_halves_fit_128_bits_and_recombine() {
        let edge = [
            Scalar::ZERO,
            Scalar::ONE,
            -Scalar::ONE,
            Scalar::from(u128::MAX),
            CONSTANTS.minus_lambda,
            -CONSTANTS.minus_lambda,
        ];
        let g = ProjectivePoint::GENERATOR;
        for (i, k) in edge.into_iter().chain((0..200).map(scalar)).enumerate() {
            let mut terms = Vec::new();
            push_glv(&mut terms, &from_k256(&g.to_affine()), &k);
            for term in &terms {
                assert!(
                    bit_length(&term.scalar) <= 128,
                    "scalar {i}: {:?}",
                    term.scalar
                );
            }
            let got = msm(&terms, &mut Scratch::default());
            assert_eq!(coordinates(&got), k256_coordinates(&(g * k)), "scalar {i}");
        }
    }

    #[test]
    fn recoding_reconstructs_the_scalar() {
        for c in 2..=14 {
            for i in 0..20 {
                let limbs = scalar_limbs(&scalar(i));
                let bits = bit_length(&limbs);
                let windows = (bits + 1).div_ceil(c);
                let mut digits = vec![0i16; windows];
                recode(&limbs, c, &mut digits);
                let half = 1i16 << (c - 1);
                assert!(digits.iter().all(|d| (-half..=half).contains(d)), "c = {c}");
                // Horner's rule in the scalar field gives the scalar back.
                let radix = Scalar::from(1u64 << c);
                let value = digits.iter().rev().fold(Scalar::ZERO, |acc, &d| {
                    let magnitude = Scalar::from(u64::from(d.unsigned_abs()));
                    acc * radix + if d < 0 { -magnitude } else { magnitude }
                });
                assert_eq!(value, scalar(i), "c = {c}, scalar {i}");
            }
        }
    }
}
