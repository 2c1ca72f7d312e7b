//! Events verified and prepared for the index (their keys and fingerprints), on any thread
//! ahead of the single writer.

use super::*;

/// An event checked and encoded for [`Index::add`]: what the index stores, and its keys.
/// Made by [`Prepared::verify`] or [`Prepared::verify_many_json`], which may run on any thread.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub(super) row: Row,
    pub(super) exact: [u8; 32],
    pub(super) normalized: Option<[u8; 32]>,
    pub(super) fingerprints: Vec<FingerprintHash>,
}

/// The stored form of an event.
#[derive(Clone, Debug)]
pub(super) struct Row {
    pub(super) id: [u8; 32],
    pub(super) author: [u8; 32],
    pub(super) created_at: i64,
    pub(super) sig: [u8; 64],
    pub(super) body: Vec<u8>,
    pub(super) fp_count: i64,
    pub(super) fp_max: Option<i64>,
}

impl Row {
    /// Encodes `ev`, whose record (verified by the caller) holds `fps`.
    pub(super) fn new(ev: &Event, fps: &[FingerprintHash]) -> Result<Self, String> {
        let tags =
            serde_json::to_string(&ev.tags).map_err(|e| format!("tags of {}: {e}", ev.id))?;
        Ok(Self {
            id: *ev.id.as_bytes(),
            author: ev.pubkey.to_bytes(),
            created_at: ev.created_at.as_secs() as i64,
            sig: *ev.sig.as_ref(),
            body: codec::encode_body(&tags, &ev.content),
            fp_count: fps.len() as i64,
            // Only a capped set needs its largest (see `crate::lookup`); NULL saves 8 bytes.
            fp_max: fps
                .iter()
                .max()
                .filter(|_| fps.len() >= fingerprint::MAX_HASHES)
                .map(|h| h.as_u64() as i64),
        })
    }

    pub(super) fn insert(
        &self,
        tx: &Connection,
        table: &str,
        seq: Option<i64>,
        author: i64,
    ) -> Result<i64, Error> {
        tx.prepare_cached(&format!(
            "INSERT INTO {table} (seq, id, author, created_at, sig, body, fp_count, fp_max) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        ))?
        .execute(params![
            seq,
            self.id.as_slice(),
            author,
            self.created_at,
            self.sig.as_slice(),
            self.body,
            self.fp_count,
            self.fp_max,
        ])?;
        Ok(tx.last_insert_rowid())
    }
}

/// The fingerprints of the rule this index compares, from a record's canonical JSON; none
/// when it has another rule or does not parse (the caller verified it).
pub(super) fn record_fingerprints(content: &str) -> Vec<FingerprintHash> {
    match serde_json::from_str::<provenance::Record>(content) {
        Ok(record) => fingerprints_of(&record).to_vec(),
        Err(_) => Vec::new(),
    }
}

pub(super) fn fingerprints_of(record: &provenance::Record) -> &[FingerprintHash] {
    match &record.output.fingerprints {
        // Only the rule this index compares; other rules are indexed without them.
        Some(f) if f.rule == fingerprint::RULE => &f.hashes,
        _ => &[],
    }
}

impl Prepared {
    /// Verifies `ev` (id, signature, kind, record, tags) and encodes it; `Err` gives the
    /// reason it is refused, for the log.
    pub fn verify(verifier: &mut event::Verifier, ev: &Event) -> Result<Self, String> {
        let verification = verifier.verify_expected(ev, &event::Expect::default());
        Self::from_verification(ev, &verification)
    }

    /// Parses and verifies event JSON; see [`Prepared::verify`].
    pub fn verify_json(verifier: &mut event::Verifier, json: &str) -> Result<Self, String> {
        Self::verify(verifier, &parse(json)?)
    }

    /// Parses and verifies several inputs at once: event JSON, or why an input is no event
    /// (passed through as the reason). The signatures of the events that parse are checked
    /// together by BIP-340 batch verification ([`event::Verifier::verify_many`]), which costs
    /// less per event than one check each; a bad signature is still found and refused alone.
    /// Gives, in input order, exactly what [`Prepared::verify_json`] gives for each.
    pub fn verify_many_json<S: AsRef<str>>(
        verifier: &mut event::Verifier,
        inputs: impl IntoIterator<Item = Result<S, String>>,
    ) -> Vec<Result<Self, String>> {
        let parsed: Vec<Result<Event, String>> = inputs
            .into_iter()
            .map(|input| parse(input?.as_ref()))
            .collect();
        let none = event::Expect::default();
        let events: Vec<(&Event, &event::Expect)> = parsed
            .iter()
            .filter_map(|ev| Some((ev.as_ref().ok()?, &none)))
            .collect();
        let mut verifications = verifier.verify_many(&events).into_iter();
        parsed
            .into_iter()
            .map(|ev| {
                let ev = ev?;
                // `verify_many` gives one verification per event, in order.
                let verification = verifications
                    .next()
                    .ok_or_else(|| format!("{}: internal error: not verified", ev.id))?;
                Self::from_verification(&ev, &verification)
            })
            .collect()
    }

    /// Encodes `ev` if `verification` (of `ev`) holds; otherwise the failed claims are the
    /// reason it is refused.
    pub(super) fn from_verification(
        ev: &Event,
        verification: &event::Verification,
    ) -> Result<Self, String> {
        let Some(verified) = verification.verified().filter(|_| verification.holds()) else {
            let failed: Vec<&str> = verification
                .claims()
                .iter()
                .filter(|c| c.status == provenance::verdict::Status::Failed)
                .map(|c| c.code.as_str())
                .collect();
            return Err(format!("{}: {}", ev.id, failed.join(", ")));
        };
        let output = &verified.record().output;
        let fps = fingerprints_of(verified.record());
        Ok(Self {
            row: Row::new(ev, fps)?,
            exact: *output.sha256.as_bytes(),
            normalized: output
                .normalized
                .as_ref()
                .filter(|n| n.rule == provenance::normalize::RULE)
                .map(|n| *n.sha256.as_bytes()),
            fingerprints: fps.to_vec(),
        })
    }
}

/// Event JSON as an event, or the reason it is refused.
pub(super) fn parse(json: &str) -> Result<Event, String> {
    event::parse_event(json, &Limits::default()).map_err(|e| format!("unparsable event: {e}"))
}
