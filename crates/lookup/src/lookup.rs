//! Answering "was this text produced by a model that signs its output?".
//!
//! A [`Query`] holds what the client knows about a text: its exact SHA-256, the SHA-256 of its
//! normalised form (rule `nfc-ws-v1`) and its fingerprints (rule `wk-v1`), computed here from
//! the text ([`Query::from_text`]) or by the client, so that the text never leaves it
//! ([`Query::from_hashes`]). [`lookup`] finds events in three steps:
//!
//! 1. exact output hash;
//! 2. normalised-text hash (the text was copied: whitespace or Unicode composition changed);
//! 3. fingerprints: candidates sharing fingerprints with the query, scored by *coverage*, the
//!    fraction of the query's fingerprints found in the event's (1.0 for a paragraph copied
//!    out of a longer answer, less for an edited copy).
//!
//! Every event is verified again before it is returned (the index file is not trusted), and
//! the answer carries the verifier's claims, the signer's standing in the trust list and the
//! coverage. It never says "AI-generated": a match shows that the holder of a key signed a
//! record whose output contains this text, not who wrote it first.
//!
//! # Format of an answer
//!
//! ```json
//! {
//!   "query": { "sha256": "...", "normalized_sha256": "...", "fingerprint_rule": "wk-v1",
//!              "fingerprints": 37, "tokens": 92 },
//!   "matches": [ {
//!     "id": "<event id hex>", "match": "exact" | "normalized" | "partial",
//!     "signer": { "pubkey": "<hex>", "npub": "npub1...", "trusted": true | false | null },
//!     "created_at": 1793491200, "model": { "name": "...", "sha256": "..." },
//!     "coverage": { "fraction": 0.8, "matched": 30, "total": 37,
//!                   "matched_fingerprints": ["..."], "ranges": [[0, 12]] },
//!     "holds": true, "claims": [ { "code": "event.sig.valid", "status": "proven", "detail": "..." } ],
//!     "record": { ... }, "event": { ... the signed event, to verify independently ... }
//!   } ],
//!   "note": "..."
//! }
//! ```
//!
//! `signer.trusted` is `null` when the server has no trust list. `ranges` are token ranges
//! `[first, end)` of the normalised query text (tokens as in rule `wk-v1`), present when the
//! query was text. The OpenAPI description is `schemas/lookup.openapi.json`.

use std::collections::{BTreeSet, HashMap};

use provenance::digest::Sha256Digest;
use provenance::event::{self, Limits};
use provenance::fingerprint::{self, Analysis, FingerprintHash};
use provenance::nip19;
use provenance::record::Record;
use provenance::verdict::Claim;
use provenance_verify::Verdict;
use serde::Serialize;

use crate::error::Error;
use crate::index::{Index, Stored};
use crate::trust::TrustList;

/// What every answer says about itself.
pub const NOTE: &str = "A match shows that the holder of the signing key published a signed \
record of an output containing this text (coverage: how much of it). It does not show that \
the text was AI-generated, nor who wrote it first; see the claims for what was proven.";

/// What is known about the text being looked up.
#[derive(Clone, Debug, Default)]
pub struct Query {
    sha256: Option<Sha256Digest>,
    normalized_sha256: Option<Sha256Digest>,
    fingerprints: Vec<FingerprintHash>,
    text: Option<(String, Analysis)>,
}

impl Query {
    /// A query for `text`: all three keys, and covered ranges in the answer.
    pub fn from_text(text: &str) -> Self {
        let analysis = Analysis::of(text);
        Self {
            sha256: Some(provenance::digest::sha256(text.as_bytes())),
            normalized_sha256: Some(provenance::digest::sha256(analysis.normalized.as_bytes())),
            fingerprints: analysis.hashes(),
            text: Some((text.to_owned(), analysis)),
        }
    }

    /// A query from keys the client computed (rule `nfc-ws-v1` for the normalised hash, rule
    /// `wk-v1` for the fingerprints). Fingerprints are sorted, de-duplicated and capped here.
    pub fn from_hashes(
        sha256: Option<Sha256Digest>,
        normalized_sha256: Option<Sha256Digest>,
        mut fingerprints: Vec<FingerprintHash>,
    ) -> Self {
        fingerprints.sort_unstable();
        fingerprints.dedup();
        fingerprints.truncate(fingerprint::MAX_HASHES);
        Self {
            sha256,
            normalized_sha256,
            fingerprints,
            text: None,
        }
    }
}

/// Tuning of [`lookup`].
#[derive(Clone, Debug)]
pub struct Options {
    /// The most matches returned. Defaults to 10.
    pub limit: usize,
    /// Partial matches below this coverage are left out. Defaults to 0.2.
    pub min_coverage: f64,
    /// A fingerprint held by more events than this is too common to discriminate and is
    /// skipped (it still counts in the query's total). Defaults to 1,000.
    pub max_postings: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            limit: 10,
            min_coverage: 0.2,
            max_postings: 1000,
        }
    }
}

/// The answer to a lookup.
#[derive(Clone, Debug, Serialize)]
pub struct Answer {
    /// What was looked up.
    pub query: QuerySummary,
    /// The matching events, best first: exact, then normalised, then partial by coverage.
    pub matches: Vec<Match>,
    /// What a match means and does not mean ([`NOTE`]).
    pub note: &'static str,
}

/// What was looked up.
#[derive(Clone, Debug, Serialize)]
pub struct QuerySummary {
    /// Exact SHA-256 of the text, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256Digest>,
    /// SHA-256 of the normalised text, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normalized_sha256: Option<Sha256Digest>,
    /// The fingerprint rule compared.
    pub fingerprint_rule: &'static str,
    /// How many fingerprints the query has.
    pub fingerprints: usize,
    /// How many tokens the normalised text has, when the text was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<usize>,
}

/// How an event matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchKind {
    /// The output's exact SHA-256 equals the query's.
    Exact,
    /// The normalised text's SHA-256 equals the query's.
    Normalized,
    /// Some of the query's fingerprints are among the output's.
    Partial,
}

/// One matching event.
#[derive(Clone, Debug, Serialize)]
pub struct Match {
    /// Event id, hex.
    pub id: String,
    /// How it matched.
    #[serde(rename = "match")]
    pub kind: MatchKind,
    /// Who signed it.
    pub signer: Signer,
    /// The event's `created_at`, Unix seconds.
    pub created_at: u64,
    /// The model the record names.
    pub model: ModelSummary,
    /// How much of the query the event covers.
    pub coverage: Coverage,
    /// True when every structural claim held (id, signature, kind, record, tags). Always true
    /// in an answer: events that do not hold are never returned.
    pub holds: bool,
    /// Every claim, with its status (`proven`, `asserted`, `unknown`, `failed`).
    pub claims: Vec<Claim>,
    /// The record.
    pub record: Record,
    /// The signed event, for the client to verify itself.
    pub event: serde_json::Value,
}

/// The signer of a matching event.
#[derive(Clone, Debug, Serialize)]
pub struct Signer {
    /// Public key, hex.
    pub pubkey: String,
    /// Public key, NIP-19.
    pub npub: String,
    /// In the server's trust list (`true`/`false`), or `null` when it has none.
    pub trusted: Option<bool>,
}

/// The model a record names.
#[derive(Clone, Debug, Serialize)]
pub struct ModelSummary {
    /// Served name.
    pub name: String,
    /// Weights SHA-256, when stated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256Digest>,
}

/// How much of the query an event covers.
#[derive(Clone, Debug, Serialize)]
pub struct Coverage {
    /// `matched / total`, 1.0 for exact and normalised matches.
    pub fraction: f64,
    /// Query fingerprints found in the event.
    pub matched: usize,
    /// Query fingerprints compared (those above a capped event's largest are not).
    pub total: usize,
    /// The matched fingerprints, so that a client holding the text can highlight them.
    pub matched_fingerprints: Vec<FingerprintHash>,
    /// Token ranges `[first, end)` of the normalised query text that the event covers; only
    /// when the query was text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Vec<[usize; 2]>>,
}

/// Looks `query` up in `index`.
pub fn lookup(
    index: &Index,
    trust: &TrustList,
    query: &Query,
    opts: &Options,
) -> Result<Answer, Error> {
    let mut matches: Vec<Match> = Vec::new();
    let mut seen: BTreeSet<i64> = BTreeSet::new();
    let total = query.fingerprints.len();
    let whole = Coverage {
        fraction: 1.0,
        matched: total,
        total,
        matched_fingerprints: query.fingerprints.clone(),
        ranges: query.text.as_ref().map(|(_, a)| {
            if a.tokens.is_empty() {
                Vec::new()
            } else {
                vec![[0, a.tokens.len()]]
            }
        }),
    };
    let steps = [
        (MatchKind::Exact, query.sha256),
        (MatchKind::Normalized, query.normalized_sha256),
    ];
    for (kind, hash) in steps {
        let Some(hash) = hash else { continue };
        let found = match kind {
            MatchKind::Exact => index.by_exact(hash.as_bytes(), opts.limit)?,
            _ => index.by_normalized(hash.as_bytes(), opts.limit)?,
        };
        for stored in found {
            if matches.len() >= opts.limit || seen.contains(&stored.seq) {
                continue;
            }
            let Some(m) = answer_for(&stored, kind, whole.clone(), trust, query) else {
                continue;
            };
            // The index keys are hash prefixes: only the full hash in the verified record
            // makes a match.
            let output = &m.record.output;
            let full = match kind {
                MatchKind::Exact => Some(output.sha256),
                _ => output
                    .normalized
                    .as_ref()
                    .filter(|n| n.rule == provenance::normalize::RULE)
                    .map(|n| n.sha256),
            };
            if full == Some(hash) {
                seen.insert(stored.seq);
                matches.push(m);
            }
        }
    }

    // Partial: count, per event, the query fingerprints it holds.
    let mut postings: HashMap<i64, Vec<FingerprintHash>> = HashMap::new();
    for &h in &query.fingerprints {
        let events = index.by_fingerprint(h, opts.max_postings + 1)?;
        if events.len() > opts.max_postings {
            continue;
        }
        for seq in events {
            if !seen.contains(&seq) {
                postings.entry(seq).or_default().push(h);
            }
        }
    }
    let mut candidates: Vec<(i64, Vec<FingerprintHash>)> = postings.into_iter().collect();
    // Most shared fingerprints first; only the best few are read back and scored, which
    // bounds the work for a query made of common phrases.
    candidates.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    candidates.truncate(opts.limit.saturating_mul(5));
    let mut partial: Vec<(f64, i64, Coverage)> = Vec::new();
    for (seq, matched) in candidates {
        // Scored from the fingerprint columns alone: only the events returned are read whole.
        let Some((count, max)) = index.fingerprint_set(seq)? else {
            continue;
        };
        // A capped event kept only its smallest fingerprints: compare only those ranges.
        let total = match max {
            Some(max) if count as usize >= fingerprint::MAX_HASHES => {
                query.fingerprints.iter().filter(|&&h| h <= max).count()
            }
            _ => query.fingerprints.len(),
        };
        let fraction = matched.len() as f64 / total.max(1) as f64;
        if fraction < opts.min_coverage {
            continue;
        }
        let set: BTreeSet<FingerprintHash> = matched.iter().copied().collect();
        let ranges = query.text.as_ref().map(|(_, a)| {
            a.covered_ranges(|h| set.contains(&h))
                .into_iter()
                .map(|(first, end)| [first, end])
                .collect()
        });
        let mut matched = matched;
        matched.sort_unstable();
        let coverage = Coverage {
            fraction,
            matched: matched.len(),
            total,
            matched_fingerprints: matched,
            ranges,
        };
        partial.push((fraction, seq, coverage));
    }
    partial.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, seq, coverage) in partial {
        if matches.len() >= opts.limit {
            break;
        }
        let Some(stored) = index.by_seq(seq)? else {
            continue;
        };
        matches.extend(answer_for(
            &stored,
            MatchKind::Partial,
            coverage,
            trust,
            query,
        ));
    }

    Ok(Answer {
        query: QuerySummary {
            sha256: query.sha256,
            normalized_sha256: query.normalized_sha256,
            fingerprint_rule: fingerprint::RULE,
            fingerprints: query.fingerprints.len(),
            tokens: query.text.as_ref().map(|(_, a)| a.tokens.len()),
        },
        matches,
        note: NOTE,
    })
}

/// The stored event's entry in an answer, or `None` when it no longer verifies.
fn answer_for(
    stored: &Stored,
    kind: MatchKind,
    coverage: Coverage,
    trust: &TrustList,
    query: &Query,
) -> Option<Match> {
    // For a whole-text match the server holds the text: the output hash is then proven, not
    // merely asserted.
    let evidence = match kind {
        MatchKind::Exact | MatchKind::Normalized => query.text.as_ref().map(|(t, _)| t.as_str()),
        MatchKind::Partial => None,
    };
    Some(VerifiedEvent::check(&stored.json, trust, evidence)?.into_match(kind, coverage))
}

/// An event from the index, verified again, with its claims.
pub(crate) struct VerifiedEvent {
    id: String,
    signer: Signer,
    created_at: u64,
    record: Record,
    claims: Vec<Claim>,
    event: serde_json::Value,
}

impl VerifiedEvent {
    /// Parses and verifies a stored event, with the output text as evidence when given;
    /// `None` when it does not hold.
    pub(crate) fn check(json: &str, trust: &TrustList, output: Option<&str>) -> Option<Self> {
        let ev = event::parse_event(json, &Limits::default()).ok()?;
        let mut verification = event::verify(&ev);
        if !verification.holds() {
            return None;
        }
        let verified = verification.verified()?.clone();
        if let Some(text) = output {
            verification.add_evidence(verified.check_output(text.as_bytes()));
        }
        let trusted = if trust.is_empty() {
            None
        } else {
            let claim = verified.check_signer(trust.keys());
            let listed = claim.status == provenance::verdict::Status::Proven;
            verification.add_evidence(claim);
            Some(listed)
        };
        // The verdict every reporting path builds; the answer carries its claims and record.
        let verdict = Verdict::new(&ev, &verification);
        Some(Self {
            id: verdict.id.to_hex(),
            signer: Signer {
                pubkey: verdict.author.to_hex(),
                npub: nip19::encode_npub(&verdict.author),
                trusted,
            },
            created_at: verified.created_at().as_secs(),
            record: verdict.record?,
            claims: verdict.claims,
            event: serde_json::from_str(json).ok()?,
        })
    }

    pub(crate) fn into_match(self, kind: MatchKind, coverage: Coverage) -> Match {
        Match {
            id: self.id,
            kind,
            signer: self.signer,
            created_at: self.created_at,
            model: ModelSummary {
                name: self.record.model.name.clone(),
                sha256: self.record.model.sha256,
            },
            coverage,
            holds: true,
            claims: self.claims,
            record: self.record,
            event: self.event,
        }
    }

    /// The event's entry for `GET /v1/events/{id}`: everything but a match.
    pub(crate) fn into_value(self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "signer": self.signer,
            "created_at": self.created_at,
            "model": ModelSummary { name: self.record.model.name.clone(), sha256: self.record.model.sha256 },
            "holds": true,
            "claims": self.claims,
            "record": self.record,
            "event": self.event,
            "note": NOTE,
        })
    }
}
