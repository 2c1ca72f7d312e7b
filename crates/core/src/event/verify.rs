//! Verifying events: id, signature, kind, record and tags, one event or a batch whose
//! signatures are checked together, each claim reported with its status.

use super::*;

/// What the caller asked for, to be checked against the event (from an `nevent`).
#[derive(Clone, Debug, Default)]
pub struct Expect {
    /// The requested event id.
    pub id: Option<EventId>,
    /// The requested author.
    pub author: Option<PublicKey>,
}

/// The outcome of verifying one event: every claim, and the verified record if all held.
#[derive(Clone, Debug)]
pub struct Verification {
    pub(super) claims: Vec<Claim>,
    /// The record as parsed, while it is not verified (a verified one lives in `verified`, so
    /// that it is held once).
    pub(super) record: Option<Record>,
    pub(super) verified: Option<VerifiedRecord>,
}

impl Verification {
    /// Every claim, in the order checked.
    pub fn claims(&self) -> &[Claim] {
        &self.claims
    }

    /// True when no claim failed.
    pub fn holds(&self) -> bool {
        self.claims.iter().all(|c| c.status != Status::Failed)
    }

    /// The verified record, present only when the event id, signature, kind, record and
    /// tags all held.
    pub fn verified(&self) -> Option<&VerifiedRecord> {
        self.verified.as_ref()
    }

    /// The record as parsed, even when verification failed (for display only: nothing in it
    /// is vouched for unless [`Verification::verified`] is `Some`).
    pub fn record(&self) -> Option<&Record> {
        match &self.verified {
            Some(verified) => Some(&verified.record),
            None => self.record.as_ref(),
        }
    }

    /// Takes back the verified record (a claim failed); the record stays for display.
    fn unverify(&mut self) {
        if let Some(verified) = self.verified.take() {
            self.record = Some(verified.record);
        }
    }

    /// Adds an evidence claim (from a [`VerifiedRecord`] check). It replaces any asserted or
    /// unknown claim on the same subject (the first two parts of the code, e.g.
    /// `output.hash`), and a failing evidence claim takes back the verified record, so that a
    /// failed check can never be reported as verified.
    pub fn add_evidence(&mut self, claim: Claim) {
        let topic = subject(claim.code);
        self.claims.retain(|c| {
            subject(c.code) != topic || !matches!(c.status, Status::Asserted | Status::Unknown)
        });
        if claim.status == Status::Failed {
            self.unverify();
        }
        self.claims.push(claim);
    }
}

impl Verification {
    /// Adds a claim without replacing any (third-party labels: several may be about the same
    /// subject). A failing claim takes back the verified record, as in
    /// [`Verification::add_evidence`].
    pub fn add_claim(&mut self, claim: Claim) {
        if claim.status == Status::Failed {
            self.unverify();
        }
        self.claims.push(claim);
    }
}

pub(super) fn subject(code: Code) -> &'static str {
    let s = code.as_str();
    let end = s.match_indices('.').nth(1).map_or(s.len(), |(i, _)| i);
    &s[..end]
}

/// Verifies an event: id, signature, kind, record and tags, reporting every claim.
///
/// To verify many events, hold a [`Verifier`] (one per thread) and call
/// [`Verifier::verify_expected`], or [`Verifier::verify_many`] on a slice of them: the checks
/// are the same, with less repeated work.
pub fn verify(event: &Event) -> Verification {
    verify_expected(event, &Expect::default())
}

/// Verifies an event like [`verify`], and also that it is the requested event (id, author).
pub fn verify_expected(event: &Event, expect: &Expect) -> Verification {
    Verifier::new().verify_expected(event, expect)
}

/// Most events whose signatures [`Verifier::verify_many`] should check together: the size
/// `docs/benchmarks.md` recommends ("BIP-340 batch verification").
pub const MAX_VERIFY_BATCH: usize = 1024;

/// Fewest events worth checking together, however many threads there are: 16 cost more than
/// one check each, 64 much less (`docs/benchmarks-history.md`, "Signatures checked in batches").
pub const MIN_VERIFY_BATCH: usize = 64;

/// How many of `items` events each of `threads` threads should pass to one
/// [`Verifier::verify_many`] call: as many as batch verification still gains from
/// ([`MAX_VERIFY_BATCH`]), few enough that every thread gets two batches (a thread that
/// finishes early takes over another's second), and never fewer than [`MIN_VERIFY_BATCH`].
pub fn verify_batch_size(items: usize, threads: usize) -> usize {
    items
        .div_ceil(2 * threads.max(1))
        .clamp(MIN_VERIFY_BATCH, MAX_VERIFY_BATCH)
}

/// Most parsed keys a [`Verifier`] keeps; past this the cache starts over.
pub(super) const MAX_CACHED_KEYS: usize = 4096;

/// Verifies events, reusing work across them.
///
/// It keeps the public keys it has parsed (one operator signs many events, and lifting a key
/// to a curve point is about a tenth of the cost of a verification) and one buffer for the
/// NIP-01 serialisation behind the id. It makes exactly the checks [`verify_expected`] makes:
/// that function is this type with an empty cache. [`Verifier::verify_many`] checks the
/// signatures of a slice of events together. Not `Sync`: use one per thread.
#[derive(Debug, Default)]
pub struct Verifier {
    keys: std::collections::HashMap<[u8; 32], Option<secp256k1::XOnlyPublicKey>>,
    buf: Vec<u8>,
    /// For [`Verifier::verify_many`] (it keeps its own cache of lifted keys).
    batch: BatchVerifier,
}

impl Verifier {
    /// A verifier with an empty key cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Verifies an event: id, signature, kind, record and tags; see [`verify_expected`].
    pub fn verify_expected(&mut self, event: &Event, expect: &Expect) -> Verification {
        let (computed, id_claim, sig_claim) = self.check_id_and_sig(event);
        let mut claims = Vec::with_capacity(12);
        claims.push(id_claim);
        claims.push(sig_claim);
        finish_verification(event, expect, computed, claims)
    }

    /// Verifies several events at once: for each, exactly the [`Verification`] that
    /// [`Verifier::verify_expected`] gives, with the signatures checked together by BIP-340
    /// batch verification ([`crate::schnorr_batch`]), which costs less per signature than
    /// one check each. A bad signature in the slice is located and reported as alone; the
    /// rest of the slice is unaffected. Slices of a few dozen to a few hundred events gain
    /// most (see `docs/benchmarks.md`).
    pub fn verify_many(&mut self, events: &[(&Event, &Expect)]) -> Vec<Verification> {
        let computed: Vec<EventId> = events.iter().map(|(ev, _)| self.id_of(ev)).collect();
        let items: Vec<Item<'_>> = events
            .iter()
            .map(|(ev, _)| Item {
                pubkey: ev.pubkey.as_bytes(),
                msg: ev.id.as_bytes(),
                sig: ev.sig.as_bytes(),
            })
            .collect();
        let valid = self.batch.verify_each(&items);
        events
            .iter()
            .zip(computed)
            .zip(valid)
            .map(|(((event, expect), computed), valid)| {
                let mut claims = Vec::with_capacity(12);
                claims.push(id_claim(event, computed));
                claims.push(sig_claim(event, valid));
                finish_verification(event, expect, computed, claims)
            })
            .collect()
    }

    /// Recomputes the id and checks the BIP-340 signature of any event (of any kind): the two
    /// checks every Nostr event needs, as claims. Returns the recomputed id too.
    pub fn check_id_and_sig(&mut self, event: &Event) -> (EventId, Claim, Claim) {
        let computed = self.id_of(event);
        if self.keys.len() >= MAX_CACHED_KEYS {
            self.keys.clear();
        }
        let key = *self
            .keys
            .entry(event.pubkey.to_bytes())
            .or_insert_with(|| schnorr::parse_key(event.pubkey.as_bytes()));
        let valid = key.is_some_and(|key| {
            schnorr::verify_parsed(&key, event.id.as_bytes(), event.sig.as_bytes())
        });
        (computed, id_claim(event, computed), sig_claim(event, valid))
    }

    /// The event's id as recomputed from its NIP-01 serialisation.
    fn id_of(&mut self, event: &Event) -> EventId {
        self.buf.clear();
        // Serialising strings and integers into a Vec cannot fail.
        serde_json::to_writer(
            &mut self.buf,
            &(
                0u8,
                &event.pubkey,
                &event.created_at,
                &event.kind,
                &event.tags,
                &event.content,
            ),
        )
        .expect("NIP-01 serialisation of event fields");
        EventId::from_byte_array(*sha256(&self.buf).as_bytes())
    }
}
