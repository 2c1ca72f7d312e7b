//! Provenance events: building, signing, parsing and verifying.
//!
//! A provenance event is a NIP-01 event of the regular kind [`KIND`] whose `content` is a
//! [`Record`] in canonical JSON and whose tags let relays index it:
//!
//! | tag | meaning |
//! |---|---|
//! | `["x", <hex>]` | SHA-256 of the exact output bytes (NIP-94 meaning, so `{"#x": [h]}` finds it) |
//! | `["x", <hex>]` | SHA-256 of the normalised text, when it differs from the exact hash |
//! | `["m", <mime>]` | MIME type of the output |
//! | `["model", <name>, "sha256:<hex>"]` | the model (the digest only when known) |
//! | `["L", "digitalsourcetype"]`, `["l", "trainedAlgorithmicMedia", "digitalsourcetype"]` | NIP-32 self-label with the IPTC digital source type for AI output |
//! | `["alt", <text>]` | NIP-31 summary for clients that do not know the kind |
//!
//! Verification ([`verify`]) never returns a bare yes: it returns a [`Verification`] listing
//! every claim with its status, and a [`VerifiedRecord`] only when the event id, signature,
//! kind, record and tags all hold. Evidence checks (output bytes, disclosed prompt, model
//! digests, trust lists) are methods of [`VerifiedRecord`], so they cannot run on an event
//! that did not verify.
//!
//! Parsing ([`parse_event`]) takes untrusted bytes and enforces [`Limits`] before building
//! anything.

use std::borrow::Cow;
use std::collections::BTreeSet;

use nostr::prelude::{
    Event, EventId, Keys, Kind, PublicKey, Signature, Tag, Tags, Timestamp, UnsignedEvent,
};
use serde::Deserialize;

use crate::canonical::{self, CanonicalError};
use crate::clock::Clock;
use crate::commitment::Salt;
use crate::digest::{Blake3Digest, Sha256Digest, parse_hex32, sha256};
use crate::normalize;
use crate::record::{RECORD_VERSION, Record};
use crate::schnorr;
use crate::schnorr_batch::{BatchVerifier, Item};
use crate::verdict::{Claim, Code, Status};

/// The provenance event kind: a regular kind, so every generation is an immutable record
/// that no later event can replace.
pub const KIND: u16 = 1988;

/// NIP-32 namespace of the self-label.
pub const LABEL_NAMESPACE: &str = "digitalsourcetype";

/// NIP-32 self-label value: the IPTC digital source type for content made by a trained model.
pub const LABEL_VALUE: &str = "trainedAlgorithmicMedia";

/// Size limits applied to untrusted event JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest event JSON accepted, in bytes. Default 512 KiB.
    pub max_event_bytes: usize,
    /// Most tags accepted. Default 2,000.
    pub max_tags: usize,
    /// Most values in one tag. Default 64.
    pub max_tag_values: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_event_bytes: 512 * 1024,
            max_tags: 2_000,
            max_tag_values: 64,
        }
    }
}

/// Why bytes could not be parsed as a Nostr event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The input is larger than [`Limits::max_event_bytes`].
    #[error("event is {found} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
        /// The input size.
        found: usize,
    },
    /// The input is not UTF-8.
    #[error("event is not valid UTF-8 (first bad byte at offset {offset})")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// The input is not JSON of the NIP-01 event shape.
    #[error("event is not a NIP-01 event object: {message}")]
    Json {
        /// What serde_json said, with line and column.
        message: String,
    },
    /// A hex field has the wrong length or a non-hex character.
    #[error("event field `{field}` must be {expected} lowercase hex characters: {problem}")]
    Hex {
        /// `id`, `pubkey` or `sig`.
        field: &'static str,
        /// Expected number of hex characters.
        expected: usize,
        /// What is wrong.
        problem: String,
    },
    /// There are more tags than [`Limits::max_tags`].
    #[error("event has {found} tags, over the limit of {limit}")]
    TooManyTags {
        /// The limit.
        limit: usize,
        /// The number of tags.
        found: usize,
    },
    /// A tag is empty or has more values than [`Limits::max_tag_values`].
    #[error("tag {index} has {found} values; a tag needs 1 to {limit}")]
    BadTag {
        /// Position of the tag.
        index: usize,
        /// Number of values in it.
        found: usize,
        /// The limit.
        limit: usize,
    },
}

/// The wire shape of an event, parsed strictly (duplicate fields are an error). The hex
/// fields are borrowed from the input unless they hold escapes.
#[derive(Deserialize)]
struct WireEvent<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    pubkey: Cow<'a, str>,
    created_at: u64,
    kind: u16,
    tags: Vec<Vec<String>>,
    content: String,
    #[serde(borrow)]
    sig: Cow<'a, str>,
}

/// Parses untrusted event JSON bytes, enforcing `limits`. Nothing is verified here.
pub fn parse_event_bytes(bytes: &[u8], limits: &Limits) -> Result<Event, ParseError> {
    if bytes.len() > limits.max_event_bytes {
        return Err(ParseError::TooLarge {
            limit: limits.max_event_bytes,
            found: bytes.len(),
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| ParseError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    parse_event(text, limits)
}

/// Parses untrusted event JSON, enforcing `limits`. Nothing is verified here: call
/// [`verify`] on the result.
pub fn parse_event(json: &str, limits: &Limits) -> Result<Event, ParseError> {
    if json.len() > limits.max_event_bytes {
        return Err(ParseError::TooLarge {
            limit: limits.max_event_bytes,
            found: json.len(),
        });
    }
    let wire: WireEvent = serde_json::from_str(json).map_err(|e| ParseError::Json {
        message: e.to_string(),
    })?;
    if wire.tags.len() > limits.max_tags {
        return Err(ParseError::TooManyTags {
            limit: limits.max_tags,
            found: wire.tags.len(),
        });
    }
    let id = EventId::from_byte_array(lower_hex::<32>(&wire.id, "id")?);
    let pubkey = PublicKey::from_byte_array(lower_hex::<32>(&wire.pubkey, "pubkey")?);
    let sig = Signature::from_byte_array(lower_hex::<64>(&wire.sig, "sig")?);
    let mut tags = Vec::with_capacity(wire.tags.len());
    for (index, values) in wire.tags.into_iter().enumerate() {
        if values.is_empty() || values.len() > limits.max_tag_values {
            return Err(ParseError::BadTag {
                index,
                found: values.len(),
                limit: limits.max_tag_values,
            });
        }
        // The tag is non-empty (checked just above), the only thing `Tag::parse` rejects.
        tags.push(Tag::parse(values).map_err(|e| ParseError::Json {
            message: e.to_string(),
        })?);
    }
    Ok(Event::new(
        id,
        pubkey,
        Timestamp::from_secs(wire.created_at),
        Kind::from_u16(wire.kind),
        tags,
        wire.content,
        sig,
    ))
}

fn lower_hex<const N: usize>(s: &str, field: &'static str) -> Result<[u8; N], ParseError> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    if s.len() == 2 * N {
        let pairs = s.as_bytes().chunks_exact(2);
        if out.iter_mut().zip(pairs).all(|(byte, pair)| {
            digit(pair[0])
                .zip(digit(pair[1]))
                .map(|(hi, lo)| *byte = hi << 4 | lo)
                .is_some()
        }) {
            return Ok(out);
        }
    }
    lower_hex_slowly(s, field)
}

/// [`lower_hex`] the slow way, which names what is wrong.
fn lower_hex_slowly<const N: usize>(s: &str, field: &'static str) -> Result<[u8; N], ParseError> {
    let err = |problem: String| ParseError::Hex {
        field,
        expected: 2 * N,
        problem,
    };
    if s.len() != 2 * N {
        return Err(err(format!("found {} characters", s.chars().count())));
    }
    if let Some((offset, c)) = s
        .char_indices()
        .find(|(_, c)| !matches!(c, '0'..='9' | 'a'..='f'))
    {
        return Err(err(format!("character {c:?} at offset {offset}")));
    }
    let mut out = [0u8; N];
    // Length and alphabet were checked above, so decoding cannot fail.
    hex::decode_to_slice(s, &mut out).map_err(|e| err(e.to_string()))?;
    Ok(out)
}

/// Why a record could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The record cannot be written as canonical JSON.
    #[error("record cannot be canonicalised: {0}")]
    Canonical(#[from] CanonicalError),
    /// The record's version is not [`RECORD_VERSION`].
    #[error("record version {found} is not supported (expected {expected})")]
    Version {
        /// The supported version.
        expected: u32,
        /// The record's version.
        found: u32,
    },
    /// The signing library failed.
    #[error("signing failed: {0}")]
    Nostr(#[from] nostr::prelude::Error),
}

/// The tags a record implies, in the order they are written.
pub fn tags_for(record: &Record) -> Vec<Tag> {
    let mut tags = vec![tag(["x", &record.output.sha256.to_hex()])];
    if let Some(n) = &record.output.normalized {
        if n.sha256 != record.output.sha256 {
            tags.push(tag(["x", &n.sha256.to_hex()]));
        }
    }
    tags.push(tag(["m", &record.output.mime]));
    tags.push(model_tag(record));
    tags.push(tag(["L", LABEL_NAMESPACE]));
    tags.push(tag(["l", LABEL_VALUE, LABEL_NAMESPACE]));
    tags.push(tag([
        "alt",
        &format!(
            "AI output provenance record: output of model {} (kind {KIND}; verify with `provenance verify`)",
            record.model.name
        ),
    ]));
    tags
}

fn model_tag(record: &Record) -> Tag {
    match &record.model.sha256 {
        Some(d) => tag(["model", &record.model.name, &format!("sha256:{d}")]),
        None => tag(["model", &record.model.name]),
    }
}

fn tag<const N: usize>(values: [&str; N]) -> Tag {
    // Every call site passes at least one value, so the tag is never empty.
    Tag::parse(values).expect("non-empty tag")
}

/// The unsigned event for `record` by `pubkey` at `created_at`.
pub fn unsigned_event(
    record: &Record,
    pubkey: PublicKey,
    created_at: Timestamp,
) -> Result<UnsignedEvent, SignError> {
    if record.v != RECORD_VERSION {
        return Err(SignError::Version {
            expected: RECORD_VERSION,
            found: record.v,
        });
    }
    let content = canonical::to_canonical_json(record)?;
    let mut unsigned = UnsignedEvent::new(
        pubkey,
        created_at,
        Kind::from_u16(KIND),
        tags_for(record),
        content,
    );
    unsigned.ensure_id();
    Ok(unsigned)
}

/// Signs `record` with `keys`, stamped with `clock`'s time. The signature uses fresh
/// auxiliary randomness, as BIP-340 recommends.
pub fn sign(record: &Record, keys: &Keys, clock: &dyn Clock) -> Result<Event, SignError> {
    let unsigned = unsigned_event(record, keys.public_key(), clock.now())?;
    let id = unsigned_id(&unsigned);
    let sig = keys.sign_schnorr(id.as_bytes());
    Ok(assemble(unsigned, id, sig))
}

/// Signs like [`sign`] with given auxiliary randomness, so the event is reproducible byte for
/// byte (golden fixtures). Reusing `aux` across different records is safe in BIP-340 but
/// defeats its side-channel hardening; use [`sign`] in production.
pub fn sign_with_aux_rand(
    record: &Record,
    keys: &Keys,
    created_at: Timestamp,
    aux: &[u8; 32],
) -> Result<Event, SignError> {
    let unsigned = unsigned_event(record, keys.public_key(), created_at)?;
    let id = unsigned_id(&unsigned);
    let secp = secp256k1::Secp256k1::signing_only();
    let sig = keys.sign_schnorr_with_aux_rand(&secp, id.as_bytes(), aux);
    Ok(assemble(unsigned, id, sig))
}

/// The id [`unsigned_event`] computed (it always sets one).
fn unsigned_id(unsigned: &UnsignedEvent) -> EventId {
    unsigned.id.unwrap_or_else(|| unsigned.compute_id())
}

/// The signed event from its parts. The id was computed once by [`unsigned_event`] and the
/// signature was just made over it with the event's own key, so neither is checked again
/// here (the `nostr` crate's `add_signature` would recompute the id and verify the signature,
/// which costs more than the signing itself); debug builds still check both.
fn assemble(unsigned: UnsignedEvent, id: EventId, sig: nostr::event::Signature) -> Event {
    let event = Event::new(
        id,
        unsigned.pubkey,
        unsigned.created_at,
        unsigned.kind,
        unsigned.tags,
        unsigned.content,
        sig,
    );
    debug_assert!(event.verify().is_ok(), "a freshly signed event verifies");
    event
}

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
    claims: Vec<Claim>,
    /// The record as parsed, while it is not verified (a verified one lives in `verified`, so
    /// that it is held once).
    record: Option<Record>,
    verified: Option<VerifiedRecord>,
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

fn subject(code: Code) -> &'static str {
    let s = code.as_str();
    let end = s.match_indices('.').nth(1).map_or(s.len(), |(i, _)| i);
    &s[..end]
}

/// A record whose event passed every structural check. Only [`verify`] constructs it.
#[derive(Clone, Debug)]
pub struct VerifiedRecord {
    id: EventId,
    author: PublicKey,
    created_at: Timestamp,
    record: Record,
}

impl VerifiedRecord {
    /// The event id.
    pub fn id(&self) -> EventId {
        self.id
    }

    /// The key that signed it.
    pub fn author(&self) -> PublicKey {
        self.author
    }

    /// The event's `created_at`.
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }

    /// The record.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Checks output bytes against the record: the exact hash first, then the normalised
    /// hash (when the bytes are UTF-8 and the record has one).
    pub fn check_output(&self, output: &[u8]) -> Claim {
        let out = &self.record.output;
        let found = sha256(output);
        if found == out.sha256 {
            return Claim::new(
                Code::OutputMatch,
                format!("sha256 {found} of {} bytes matches", output.len()),
            );
        }
        if let (Some(n), Ok(text)) = (&out.normalized, std::str::from_utf8(output)) {
            if n.rule == normalize::RULE && normalize::normalized_sha256(text) == n.sha256 {
                return Claim::new(
                    Code::OutputNormalizedMatch,
                    format!(
                        "normalised text matches ({}); exact bytes differ: expected sha256 {}, found {found}",
                        n.rule, out.sha256
                    ),
                );
            }
        }
        Claim::new(
            Code::OutputMismatch,
            format!("expected sha256 {}, found {found}", out.sha256),
        )
    }

    /// Checks a disclosed prompt and salt against the commitment.
    ///
    /// The disclosure is first checked byte for byte. If that fails and the commitment's
    /// format forms its bytes from JSON (`chat.v1`, `completion.v1`, `messages`, `json`), the
    /// disclosure is also formed as that format says ([`crate::prompt::disclosed`]), so the
    /// request body as sent, or the committed JSON in any layout, opens it too; the claim says
    /// which.
    pub fn check_prompt(&self, prompt: &[u8], salt: &Salt) -> Claim {
        match &self.record.prompt {
            None => Claim::new(Code::PromptAbsent, "the record has no prompt commitment"),
            Some(c) if c.check(prompt, salt) => Claim::new(
                Code::PromptMatch,
                format!(
                    "disclosed prompt ({} bytes, format {}) opens the commitment",
                    prompt.len(),
                    c.format
                ),
            ),
            Some(c) if formed_opens(c, prompt, salt) => Claim::new(
                Code::PromptMatch,
                format!(
                    "disclosed prompt ({} bytes), formed as {} says, opens the commitment",
                    prompt.len(),
                    c.format
                ),
            ),
            Some(c) => Claim::new(
                Code::PromptMismatch,
                format!(
                    "disclosed prompt ({} bytes) and salt do not open commitment {} ({})",
                    prompt.len(),
                    c.commitment,
                    c.scheme
                ),
            ),
        }
    }

    /// Checks model digests computed from a weights file against the record. Every digest
    /// the record states and the caller computed must match; at least one must be compared.
    pub fn check_model(
        &self,
        sha256: Option<&Sha256Digest>,
        blake3: Option<&Blake3Digest>,
        tensor_root: Option<&Blake3Digest>,
    ) -> Claim {
        let m = &self.record.model;
        let mut compared = Vec::new();
        let mut mismatches = Vec::new();
        let mut cmp = |name: &str, expected: Option<String>, found: Option<String>| {
            if let (Some(e), Some(f)) = (expected, found) {
                compared.push(name.to_owned());
                if e != f {
                    mismatches.push(format!("{name}: expected {e}, found {f}"));
                }
            }
        };
        cmp(
            "sha256",
            m.sha256.map(|d| d.to_hex()),
            sha256.map(|d| d.to_hex()),
        );
        cmp(
            "blake3",
            m.blake3.map(|d| d.to_hex()),
            blake3.map(|d| d.to_hex()),
        );
        cmp(
            "tensor_root",
            m.tensor_root.map(|d| d.to_hex()),
            tensor_root.map(|d| d.to_hex()),
        );
        if !mismatches.is_empty() {
            Claim::new(Code::ModelDigestMismatch, mismatches.join("; "))
        } else if compared.is_empty() {
            Claim::new(
                Code::ModelUnidentified,
                "the record states no digest that the given weights could be compared with",
            )
        } else {
            Claim::new(
                Code::ModelDigestMatch,
                format!("{} match the given weights", compared.join(", ")),
            )
        }
    }

    /// Checks the author against a list of trusted keys.
    pub fn check_signer(&self, trusted: &[PublicKey]) -> Claim {
        if trusted.contains(&self.author) {
            Claim::new(
                Code::SignerTrusted,
                format!("{} is in the trust list", self.author),
            )
        } else {
            Claim::new(
                Code::SignerUntrusted,
                format!(
                    "{} is not in the trust list of {} keys",
                    self.author,
                    trusted.len()
                ),
            )
        }
    }
}

/// Whether `prompt`, formed as the commitment's format says, opens it (only when forming
/// changes the bytes: the exact bytes were checked already).
fn formed_opens(c: &crate::record::PromptCommitment, prompt: &[u8], salt: &Salt) -> bool {
    let formed = crate::prompt::disclosed(&c.format, prompt);
    formed.as_ref() != prompt && c.check(&formed, salt)
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
/// one check each, 64 much less (`docs/benchmarks.md`, "Batch event verification").
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
const MAX_CACHED_KEYS: usize = 4096;

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

/// Whether the recomputed id is the event's own.
fn id_claim(event: &Event, computed: EventId) -> Claim {
    if computed == event.id {
        Claim::new(
            Code::EventIdMatch,
            join(&[
                "id ",
                Hex64::of(computed.as_bytes()).as_str(),
                " recomputed",
            ]),
        )
    } else {
        Claim::new(
            Code::EventIdMismatch,
            format!("claimed id {}, computed {computed}", event.id),
        )
    }
}

/// Whether the signature over the event's (claimed) id verified.
fn sig_claim(event: &Event, valid: bool) -> Claim {
    let (code, end) = if valid {
        (Code::EventSigValid, "")
    } else {
        (Code::EventSigInvalid, " does not verify")
    };
    Claim::new(
        code,
        join(&[
            "BIP-340 signature by ",
            Hex64::of(event.pubkey.as_bytes()).as_str(),
            " over id ",
            Hex64::of(event.id.as_bytes()).as_str(),
            end,
        ]),
    )
}

/// The checks after id and signature: request, kind, record, tags, assertions.
fn finish_verification(
    event: &Event,
    expect: &Expect,
    computed: EventId,
    mut claims: Vec<Claim>,
) -> Verification {
    if let Some(id) = expect.id {
        claims.push(if id == computed {
            Claim::new(
                Code::EventIdRequested,
                format!("recomputed id equals requested {id}"),
            )
        } else {
            Claim::new(
                Code::EventIdUnrequested,
                format!("requested id {id}, recomputed {computed}"),
            )
        });
    }
    if let Some(author) = expect.author {
        claims.push(if author == event.pubkey {
            Claim::new(
                Code::EventAuthorRequested,
                format!("author is the requested {author}"),
            )
        } else {
            Claim::new(
                Code::EventAuthorUnrequested,
                format!("requested author {author}, found {}", event.pubkey),
            )
        });
    }
    if event.kind.as_u16() != KIND {
        claims.push(Claim::new(
            Code::EventKindUnexpected,
            format!("expected kind {KIND}, found {}", event.kind.as_u16()),
        ));
        return Verification {
            claims,
            record: None,
            verified: None,
        };
    }
    claims.push(Claim::new(
        Code::EventKindProvenance,
        join(&["kind ", itoa::Buffer::new().format(KIND)]),
    ));

    let record = match parse_record(&event.content) {
        Ok(record) => record,
        Err(claim) => {
            claims.push(claim);
            return Verification {
                claims,
                record: None,
                verified: None,
            };
        }
    };
    claims.push(Claim::new(
        Code::RecordValid,
        join(&[
            "canonical record, version ",
            itoa::Buffer::new().format(record.v),
        ]),
    ));
    claims.push(check_tags(&event.tags, &record));
    assertions(&record, &mut claims);

    if claims.iter().any(|c| c.status == Status::Failed) {
        return Verification {
            claims,
            record: Some(record),
            verified: None,
        };
    }
    Verification {
        claims,
        record: None,
        verified: Some(VerifiedRecord {
            id: event.id,
            author: event.pubkey,
            created_at: event.created_at,
            record,
        }),
    }
}

/// Parses event content as a record and checks that it is canonical.
fn parse_record(content: &str) -> Result<Record, Claim> {
    // The usual case, a canonical v1 record, in one pass over the text. Anything else is
    // parsed again below, by way of a JSON value, for the exact error message; both ways read
    // JSON with the same parser, so they arrive at the same record.
    if let Ok(record) = serde_json::from_str::<Record>(content) {
        if record.v == RECORD_VERSION
            && canonical::to_canonical_json(&record).is_ok_and(|c| c == content)
        {
            return Ok(record);
        }
    }
    parse_record_slowly(content)
}

/// [`parse_record`] by way of a JSON value: the version is checked before the shape, so that
/// a future version gets a clear message rather than an "unknown field" error.
fn parse_record_slowly(content: &str) -> Result<Record, Claim> {
    let invalid = |detail: String| Claim::new(Code::RecordInvalid, detail);
    let value: serde_json::Value =
        serde_json::from_str(content).map_err(|e| invalid(format!("content is not JSON: {e}")))?;
    if let Some(v) = value.get("v") {
        if v.as_u64() != Some(u64::from(RECORD_VERSION)) {
            return Err(invalid(format!(
                "record version {v} is not supported (expected {RECORD_VERSION})"
            )));
        }
    }
    let record = Record::deserialize(&value)
        .map_err(|e| invalid(format!("content is not a v1 record: {e}")))?;
    // The content must be the one serialisation of this record: canonical JSON, and nothing
    // the record drops when written (explicit nulls, empty lists, `false` flags).
    let canonical = canonical::to_canonical_json(&record).map_err(|e| invalid(e.to_string()))?;
    if canonical != content {
        let at = canonical
            .bytes()
            .zip(content.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(canonical.len().min(content.len()));
        return Err(Claim::new(
            Code::RecordNoncanonical,
            format!("content is not RFC 8785 canonical JSON (first difference at byte {at})"),
        ));
    }
    Ok(record)
}

/// Checks that the indexing tags say what the record says.
fn check_tags(tags: &Tags, record: &Record) -> Claim {
    if tags_match(tags, record) {
        return Claim::new(
            Code::EventTagsConsistent,
            "x, m and model tags match the record",
        );
    }
    describe_tag_problems(tags, record)
}

/// Whether the `x`, `m` and `model` tags are exactly those [`tags_for`] writes, each once, in
/// any order: the test [`describe_tag_problems`] makes, without building the expected tags.
fn tags_match(tags: &Tags, record: &Record) -> bool {
    let hex = |d: &Sha256Digest| Hex64::of(d.as_bytes()).0;
    let out = &record.output;
    let exact = hex(&out.sha256);
    let normalized = out
        .normalized
        .as_ref()
        .filter(|n| n.sha256 != out.sha256)
        .map(|n| hex(&n.sha256));
    let mut model_digest = [0u8; 71];
    let model_digest = record.model.sha256.map(|d| {
        model_digest[..7].copy_from_slice(b"sha256:");
        model_digest[7..].copy_from_slice(&hex(&d));
        model_digest
    });
    fn text(ascii: &[u8]) -> &str {
        // Hex digits and the ASCII prefix.
        std::str::from_utf8(ascii).expect("ASCII")
    }
    let mut x_want: [Option<&str>; 2] = [Some(text(&exact)), normalized.as_ref().map(|n| text(n))];
    let model_want = [
        Some(record.model.name.as_str()),
        model_digest.as_ref().map(|d| text(d)),
    ];
    let x_count = x_want.iter().flatten().count();
    let mut x_found = 0;
    let (mut m_found, mut model_found) = (0, 0);
    for tag in tags.iter() {
        match tag.as_slice() {
            [kind, value] if kind == "x" => {
                // Each expected value may be found once.
                match x_want.iter_mut().find(|w| **w == Some(value.as_str())) {
                    Some(slot) => *slot = None,
                    None => return false,
                }
                x_found += 1;
            }
            [kind, value] if kind == "m" && *value == out.mime => m_found += 1,
            [kind, rest @ ..] if kind == "model" => {
                let want = model_want.iter().flatten();
                if rest.len() != want.clone().count() || !rest.iter().zip(want).all(|(a, b)| a == b)
                {
                    return false;
                }
                model_found += 1;
            }
            [kind, ..] if kind == "x" || kind == "m" => return false,
            _ => {}
        }
    }
    x_found == x_count && m_found == 1 && model_found == 1
}

/// [`check_tags`] when the tags do not match: what each kind of tag should have been.
fn describe_tag_problems(tags: &Tags, record: &Record) -> Claim {
    let expected = tags_for(record);
    let values = |tags: &mut dyn Iterator<Item = &Tag>, kind: &str| -> BTreeSet<Vec<String>> {
        tags.filter(|t| t.kind() == kind)
            .map(|t| t.as_slice().to_vec())
            .collect()
    };
    let mut problems = Vec::new();
    for kind in ["x", "m", "model"] {
        let want = values(&mut expected.iter(), kind);
        let found = values(&mut tags.iter(), kind);
        let count = tags.iter().filter(|t| t.kind() == kind).count();
        if want != found || count != want.len() {
            problems.push(format!(
                "`{kind}` tags: expected {}, found {}",
                render(&want),
                render(&found)
            ));
        }
    }
    if problems.is_empty() {
        Claim::new(
            Code::EventTagsConsistent,
            "x, m and model tags match the record",
        )
    } else {
        Claim::new(Code::EventTagsInconsistent, problems.join("; "))
    }
}

fn render(set: &BTreeSet<Vec<String>>) -> String {
    if set.is_empty() {
        return "none".to_owned();
    }
    set.iter()
        .map(|t| format!("{t:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The claims a verified record makes without evidence.
fn assertions(record: &Record, claims: &mut Vec<Claim>) {
    let out = &record.output;
    claims.push(Claim::new(
        Code::OutputAsserted,
        join(&[
            "output sha256 ",
            Hex64::of(out.sha256.as_bytes()).as_str(),
            " (",
            itoa::Buffer::new().format(out.bytes),
            " bytes, ",
            &out.mime,
            ")",
        ]),
    ));
    if out.truncated {
        claims.push(Claim::new(
            Code::OutputTruncated,
            "the response was cut short; hashes cover only what was served",
        ));
    }
    claims.push(match &record.prompt {
        Some(p) => Claim::new(
            Code::PromptCommitted,
            join(&[
                &p.scheme,
                " commitment ",
                Hex64::of(p.commitment.as_bytes()).as_str(),
                " (",
                &p.format,
                ")",
            ]),
        ),
        None => Claim::new(Code::PromptAbsent, "no prompt commitment"),
    });
    let m = &record.model;
    claims.push(match (&m.sha256, &m.blake3, &m.tensor_root) {
        (None, None, None) => Claim::new(
            Code::ModelUnidentified,
            format!("model {:?} is named without a weights digest", m.name),
        ),
        (sha, _, _) => Claim::new(
            Code::ModelAsserted,
            match sha {
                Some(d) => format!("model {:?}, weights sha256 {d}", m.name),
                None => format!("model {:?}, weights identified by BLAKE3 only", m.name),
            },
        ),
    });
    if record.runtime.is_some() || record.sampling.is_some() {
        let engine = record
            .runtime
            .as_ref()
            .map_or("an unnamed engine".to_owned(), |r| match &r.version {
                Some(v) => format!("{} {v}", r.engine),
                None => r.engine.clone(),
            });
        claims.push(Claim::new(
            Code::GenerationAsserted,
            format!("runtime and sampling settings of {engine}, not replayed"),
        ));
    }
    for a in &record.attestations {
        claims.push(Claim::new(
            Code::AttestationUnchecked,
            format!("{} evidence {} not checked", a.kind, a.sha256),
        ));
    }
    claims.push(Claim::new(
        Code::SignerUnknown,
        "no trust list given: the author is whoever holds the key",
    ));
}

/// A claim detail from its parts. Details are written for every claim of every event, so
/// they are put together without the formatting machinery where that is easy.
fn join(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        s.push_str(part);
    }
    s
}

/// 32 bytes as 64 lowercase hex digits, as ids, keys and digests are displayed.
struct Hex64([u8; 64]);

impl Hex64 {
    fn of(bytes: &[u8; 32]) -> Self {
        let mut buf = [0u8; 64];
        // The buffer is exactly twice the input length.
        hex::encode_to_slice(bytes, &mut buf).expect("64 hex digits");
        Self(buf)
    }

    fn as_str(&self) -> &str {
        // Hex digits are ASCII.
        std::str::from_utf8(&self.0).expect("hex is ASCII")
    }
}

/// Checks a hex id string (64 lowercase or uppercase hex characters) into an event id.
pub fn parse_event_id(s: &str) -> Result<EventId, crate::digest::HexError> {
    parse_hex32(s).map(EventId::from_byte_array)
}

/// Properties checked by the fuzz targets (`fuzz/fuzz_targets/event_parse.rs`) and by the seed
/// tests. Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use super::{Limits, parse_event, parse_event_bytes, verify};

    /// Parses arbitrary bytes as an event; whatever parses must verify without panicking and
    /// survive a serialise-and-parse round trip unchanged, with the same verdict.
    pub fn check_parse(data: &[u8]) {
        let limits = Limits::default();
        let Ok(event) = parse_event_bytes(data, &limits) else {
            return;
        };
        let first = verify(&event);
        let again = parse_event(
            &event.as_json(),
            &Limits {
                // Re-serialisation may escape characters the input had raw (never the reverse
                // for valid JSON), so allow for growth.
                max_event_bytes: limits.max_event_bytes * 6,
                ..limits
            },
        )
        .expect("an event we serialised parses again");
        assert_eq!(again, event, "round trip changed the event");
        let second = verify(&again);
        assert_eq!(
            first.claims(),
            second.claims(),
            "round trip changed the verdict"
        );
        assert_eq!(first.verified().is_some(), first.holds());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Model, Output, PromptCommitment};

    fn record() -> Record {
        let mut r = Record::new(
            Output::from_text("  Caf\u{e9}  au lait \n"),
            Model {
                sha256: Some(sha256(b"weights")),
                ..Model::named("tiny \"llama\"")
            },
        );
        r.prompt = Some(PromptCommitment {
            scheme: "sha256-salted-v1".into(),
            format: "text".into(),
            commitment: sha256(b"prompt"),
            tokens: None,
        });
        r.sampling = Some(crate::record::Sampling {
            temperature: Some(0.7),
            top_p: Some(0.95),
            extra: [(
                "z".to_owned(),
                serde_json::json!({"b": [1.5, null], "a": -3}),
            )]
            .into(),
            ..Default::default()
        });
        r
    }

    #[test]
    fn hex_fields_decode_as_before() {
        let id = "0123456789abcdef".repeat(4);
        assert_eq!(
            lower_hex::<32>(&id, "id").unwrap().to_vec(),
            hex::decode(&id).unwrap()
        );
        let mut bad = vec![id.to_uppercase(), id[1..].to_owned(), format!("{id}0")];
        bad.push(id.replacen('0', "\u{e9}", 1)[..64].to_owned());
        bad.push(id.replacen('f', "g", 1));
        bad.push(String::new());
        for s in bad {
            assert_eq!(
                lower_hex::<32>(&s, "id").unwrap_err().to_string(),
                lower_hex_slowly::<32>(&s, "id").unwrap_err().to_string(),
                "{s}"
            );
        }
    }

    #[test]
    fn a_record_is_accepted_or_refused_alike_in_one_pass_and_by_way_of_a_value() {
        let canonical = canonical::to_canonical_json(&record()).unwrap();
        // Edits of the canonical text: (what, into what), first occurrence.
        let edits = [
            (":", ": "),
            (r#""v":1"#, r#""v":2"#),
            (r#""v":1"#, r#""v":1.0"#),
            (r#""v":1"#, r#""v":"1""#),
            (r#""v":1"#, r#""v":1,"w":0"#),
            (r#""v":1"#, r#""v":1,"v":1"#),
            (r#""v":1"#, r#""time":null,"v":1"#),
            (r#""a":-3"#, r#""a":-3,"a":-3"#),
            (r#""a":-3"#, r#""a":-3.0"#),
            ("0.7", "0.70"),
            ("0.7", "7e-1"),
            (r#"{"model""#, r#"{"attestations":[],"model""#),
            (r#""bytes""#, r#""truncated":false,"bytes""#),
            (r#""top_p":0.95"#, r#""top_p":0.95,"seed":9007199254740992"#),
            ("Caf", "Ca\\u0066"),
        ];
        let mut contents = vec![canonical.clone()];
        contents.extend(edits.iter().map(|(a, b)| canonical.replacen(a, b, 1)));
        contents.extend([
            canonical[1..].to_owned(),
            format!("{canonical} "),
            "[]".to_owned(),
            r#"{"v":7}"#.to_owned(),
        ]);
        // Members out of order.
        let (model, rest) = canonical[1..].split_once(",\"output\"").unwrap();
        contents.push(format!("{{\"output\"{},{model}}}", &rest[..rest.len() - 1]));
        for content in &contents {
            assert_eq!(
                parse_record(content),
                parse_record_slowly(content),
                "{content}"
            );
        }
        assert!(parse_record(&contents[0]).is_ok());
    }

    #[test]
    fn the_tag_test_agrees_with_the_described_tag_check() {
        let mut normalized_same = record();
        normalized_same.output = Output::from_text("same");
        let mut unnamed = record();
        unnamed.model.sha256 = None;
        for r in [record(), normalized_same, unnamed] {
            let good = tags_for(&r);
            let x = tag(["x", &"ab".repeat(32)]);
            let mut cases: Vec<Vec<Tag>> = vec![good.clone(), good.iter().rev().cloned().collect()];
            for i in 0..good.len() {
                let mut dropped = good.clone();
                dropped.remove(i);
                cases.push(dropped);
                let mut doubled = good.clone();
                doubled.push(good[i].clone());
                cases.push(doubled);
                let mut longer = good.clone();
                longer[i] =
                    Tag::parse(good[i].as_slice().iter().chain(["more".into()].iter())).unwrap();
                cases.push(longer);
                let mut bare = good.clone();
                bare[i] = tag([good[i].kind()]);
                cases.push(bare);
            }
            for extra in [
                x.clone(),
                tag(["m", "text/html"]),
                tag(["model", &r.model.name]),
                tag(["model", "other", "sha256:00"]),
                tag(["e", "anything"]),
            ] {
                let mut more = good.clone();
                more.push(extra);
                cases.push(more);
            }
            let mut swapped = good.clone();
            swapped[0] = x;
            cases.push(swapped);
            for tags in cases {
                let tags = Tags::from_list(tags);
                let described = describe_tag_problems(&tags, &r);
                assert_eq!(
                    tags_match(&tags, &r),
                    described.code == Code::EventTagsConsistent,
                    "{tags:?}: {described:?}"
                );
                assert_eq!(check_tags(&tags, &r), described);
            }
        }
    }

    #[test]
    fn a_failed_evidence_claim_takes_back_the_verified_record_but_keeps_it_for_display() {
        let keys = Keys::generate();
        let event =
            sign_with_aux_rand(&record(), &keys, Timestamp::from_secs(1), &[7; 32]).unwrap();
        let mut verification = verify(&event);
        assert!(verification.verified().is_some());
        assert_eq!(verification.record(), Some(&record()));
        // Claim details read as before.
        let details: Vec<&str> = verification
            .claims()
            .iter()
            .map(|c| c.detail.as_str())
            .collect();
        assert_eq!(details[0], format!("id {} recomputed", event.id));
        assert_eq!(
            details[1],
            format!("BIP-340 signature by {} over id {}", event.pubkey, event.id)
        );
        assert_eq!(details[2], format!("kind {KIND}"));
        assert_eq!(details[3], "canonical record, version 1");
        let out = &record().output;
        let p = record().prompt.unwrap();
        assert!(
            details.contains(
                &format!(
                    "output sha256 {} ({} bytes, {})",
                    out.sha256, out.bytes, out.mime
                )
                .as_str()
            )
        );
        assert!(details.contains(
            &format!("{} commitment {} ({})", p.scheme, p.commitment, p.format).as_str()
        ));
        let mismatch = verification.verified().unwrap().check_output(b"other");
        verification.add_evidence(mismatch);
        assert!(verification.verified().is_none());
        assert_eq!(verification.record(), Some(&record()));
    }

    #[test]
    fn verify_batch_sizes_stay_within_the_measured_bounds_and_feed_every_thread() {
        // A chunk of 4,096 on two cores: the largest batch, two per thread.
        assert_eq!(verify_batch_size(4096, 2), MAX_VERIFY_BATCH);
        // Many threads: smaller batches, so that each gets two.
        assert_eq!(verify_batch_size(4096, 16), 128);
        // Few events or very many threads: never below the size that still gains.
        assert_eq!(verify_batch_size(4096, 64), MIN_VERIFY_BATCH);
        assert_eq!(verify_batch_size(10, 2), MIN_VERIFY_BATCH);
        assert_eq!(verify_batch_size(0, 0), MIN_VERIFY_BATCH);
        for threads in [0, 1, 2, 3, 8, 16, 64, 256] {
            for items in [0, 1, 10, 300, 1000, 4096] {
                let size = verify_batch_size(items, threads);
                assert!((MIN_VERIFY_BATCH..=MAX_VERIFY_BATCH).contains(&size));
                // Every thread gets a batch, unless that would take batches below the floor.
                if items >= 2 * threads * MIN_VERIFY_BATCH {
                    assert!(items.div_ceil(size) >= threads, "{items} on {threads}");
                }
            }
        }
    }
}
