//! Text fingerprints for finding a copied or edited part of an output.
//!
//! The exact and normalised hashes of a record ([`crate::record::Output`]) only find a copy of
//! the *whole* output. A reader who copies one paragraph of a long answer, or edits a few
//! words, needs something finer: a small set of hashes of overlapping word sequences, chosen so
//! that any long enough shared passage shares at least one of them. This module computes that
//! set; the lookup service compares sets. It does no I/O.
//!
//! # Rule `wk-v1`
//!
//! 1. Normalise the text with rule `nfc-ws-v1` ([`crate::normalize`]).
//! 2. Fold ASCII capitals `A`..`Z` to `a`..`z`. Nothing else is folded: full Unicode case
//!    mapping changes between Unicode versions and between languages, and every implementation
//!    (the browser extension among them) must agree bit for bit.
//! 3. Split on U+0020 into tokens; remove ASCII punctuation (`!` to `/`, `:` to `@`, `[` to
//!    `` ` ``, `{` to `~`) from both ends of each token, and drop tokens left empty. A copy
//!    that starts or ends inside a sentence ("long ones" out of "long ones, so") keeps its
//!    tokens; punctuation inside a token ("don't", "3.5") and non-ASCII punctuation stay.
//! 4. For each run of [`K`] consecutive tokens (a *k-gram*), join the tokens with one U+0020
//!    and hash the UTF-8 bytes with SHA-256; the k-gram hash is the first 8 bytes of the digest
//!    read as a big-endian unsigned 64-bit integer. A text of fewer than [`K`] tokens has no
//!    k-grams and no fingerprints (its normalised hash already identifies it).
//! 5. Winnow (Schleimer, Wilkerson and Aiken, SIGMOD 2003, "robust winnowing"): slide a
//!    window of [`W`] consecutive k-gram hashes over the sequence; in each window select the
//!    minimum hash, the rightmost one when several are equal; record a selection when its
//!    position differs from the previous window's. With fewer than [`W`] k-grams the single
//!    window is all of them.
//! 6. The fingerprints are the selected hashes, sorted ascending, duplicates removed, and cut to
//!    the [`MAX_HASHES`] smallest.
//!
//! Every window of the text selects one fingerprint, so two texts that share a run of at least
//! `W + K - 1` = 8 tokens share at least one fingerprint; a passage copied whole out of a
//! longer text (starting and ending at token boundaries) has *all* its fingerprints among the
//! longer text's, because each of its windows is also a window of the longer text.
//!
//! Fingerprints are written as 16 lowercase hex digits. Vectors that any other implementation
//! must reproduce are in `fixtures/fingerprint/`; the rule is documented in
//! `docs/fingerprint.md`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;

use crate::normalize;

/// The name of the fingerprint rule this module implements.
pub const RULE: &str = "wk-v1";

/// Tokens per k-gram in rule `wk-v1`.
pub const K: usize = 5;

/// Window size, in k-grams, of the winnowing in rule `wk-v1`.
pub const W: usize = 4;

/// The most fingerprints a record carries under rule `wk-v1` (the smallest are kept).
pub const MAX_HASHES: usize = 1024;

/// One fingerprint: a 64-bit k-gram hash, written as 16 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FingerprintHash(u64);

impl FingerprintHash {
    /// The fingerprint with this value.
    pub const fn from_u64(value: u64) -> Self {
        Self(value)
    }

    /// The value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for FingerprintHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Why a string is not a fingerprint.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FingerprintParseError {
    /// Not exactly 16 characters.
    #[error("expected 16 hex characters, found {found}")]
    Length {
        /// The length found, in bytes.
        found: usize,
    },
    /// A character other than `0-9a-f` (capitals are refused: one value, one spelling).
    #[error("expected lowercase hex digits")]
    NotLowerHex,
}

impl FromStr for FingerprintHash {
    type Err = FingerprintParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 16 {
            return Err(FingerprintParseError::Length { found: s.len() });
        }
        if !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(FingerprintParseError::NotLowerHex);
        }
        u64::from_str_radix(s, 16)
            .map(Self)
            .map_err(|_| FingerprintParseError::NotLowerHex)
    }
}

impl Serialize for FingerprintHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FingerprintHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for FingerprintHash {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FingerprintHash".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9a-f]{16}$",
            "description": "A k-gram hash: 16 lowercase hex characters"
        })
    }
}

/// The fingerprints of an output text, with the rule and parameters that produced them.
///
/// Carried in a record as `output.fingerprints`; see [`crate::record::Output::with_fingerprints`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Fingerprints {
    /// Name of the fingerprint rule, e.g. `wk-v1`.
    pub rule: String,
    /// Tokens per k-gram.
    pub k: u32,
    /// Winnowing window, in k-grams.
    pub w: u32,
    /// The selected k-gram hashes, sorted ascending, without duplicates.
    pub hashes: Vec<FingerprintHash>,
}

impl Fingerprints {
    /// Fingerprints `text` by rule [`RULE`].
    pub fn of(text: &str) -> Self {
        Self {
            rule: RULE.to_owned(),
            // Both constants are single digits.
            k: K as u32,
            w: W as u32,
            hashes: fingerprints(text),
        }
    }

    /// True when this set was cut to [`MAX_HASHES`]: hashes above the largest one kept may
    /// have been dropped, so a comparison must ignore them.
    pub fn is_capped(&self) -> bool {
        self.hashes.len() >= MAX_HASHES
    }
}

/// A token of the normalised text: its byte range there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    /// Byte offset of the first byte in the normalised text (after leading punctuation).
    pub start: usize,
    /// Byte offset just past the last byte (before trailing punctuation).
    pub end: usize,
}

/// A winnowed fingerprint and where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selected {
    /// The k-gram hash.
    pub hash: FingerprintHash,
    /// Index of the k-gram's first token; it covers tokens `token..token + K`.
    pub token: usize,
}

/// A text prepared for fingerprinting: its normalised form, tokens and winnowed k-grams.
///
/// For a lookup, where the covered parts of the query text are wanted too; to describe an
/// output, [`Fingerprints::of`] is enough.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// The text normalised by rule `nfc-ws-v1` (not case-folded).
    pub normalized: String,
    /// The tokens, in order.
    pub tokens: Vec<Token>,
    /// Every winnowing selection, in text order (a hash may appear more than once).
    pub selected: Vec<Selected>,
}

impl Analysis {
    /// Normalises, tokenises and winnows `text` by rule [`RULE`].
    pub fn of(text: &str) -> Self {
        let normalized = normalize::normalize(text);
        let folded = normalized.to_ascii_lowercase();
        let mut tokens = Vec::new();
        let mut start = 0;
        for piece in folded.split(' ') {
            let trimmed = piece.trim_matches(|c: char| c.is_ascii_punctuation());
            if !trimmed.is_empty() {
                // `trimmed` is a sub-slice of `piece`: its offset within it is exact.
                let offset = trimmed.as_ptr() as usize - piece.as_ptr() as usize;
                tokens.push(Token {
                    start: start + offset,
                    end: start + offset + trimmed.len(),
                });
            }
            start += piece.len() + 1;
        }
        let mut gram = String::new();
        let hashes: Vec<u64> = tokens
            .windows(K)
            .map(|window| {
                gram.clear();
                for (i, t) in window.iter().enumerate() {
                    if i > 0 {
                        gram.push(' ');
                    }
                    gram.push_str(&folded[t.start..t.end]);
                }
                kgram_hash(gram.as_bytes())
            })
            .collect();
        let selected = winnow(&hashes)
            .into_iter()
            .map(|token| Selected {
                hash: FingerprintHash(hashes[token]),
                token,
            })
            .collect();
        Self {
            normalized,
            tokens,
            selected,
        }
    }

    /// The fingerprint set: sorted, de-duplicated, cut to [`MAX_HASHES`].
    pub fn hashes(&self) -> Vec<FingerprintHash> {
        let mut out: Vec<FingerprintHash> = self.selected.iter().map(|s| s.hash).collect();
        out.sort_unstable();
        out.dedup();
        out.truncate(MAX_HASHES);
        out
    }

    /// The parts of the text covered by the k-grams whose hash satisfies `matched`, as token
    /// ranges `(first, end)` (tokens `first..end`), merged where they overlap or touch.
    /// [`Analysis::byte_range`] turns one into a byte range of the normalised text.
    pub fn covered_ranges(&self, matched: impl Fn(FingerprintHash) -> bool) -> Vec<(usize, usize)> {
        let mut ranges: Vec<(usize, usize)> = self
            .selected
            .iter()
            .filter(|s| matched(s.hash))
            .map(|s| (s.token, s.token + K))
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
        for (first, end) in ranges {
            match merged.last_mut() {
                Some(last) if first <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((first, end)),
            }
        }
        merged
    }

    /// The byte range of the normalised text spanned by tokens `first..end`, or `None` when
    /// the range is empty or out of bounds.
    pub fn byte_range(&self, (first, end): (usize, usize)) -> Option<(usize, usize)> {
        if first >= end || end > self.tokens.len() {
            return None;
        }
        Some((self.tokens[first].start, self.tokens[end - 1].end))
    }
}

/// The fingerprints of `text` by rule [`RULE`]: sorted, de-duplicated, at most
/// [`MAX_HASHES`].
pub fn fingerprints(text: &str) -> Vec<FingerprintHash> {
    Analysis::of(text).hashes()
}

/// The k-gram hash of rule `wk-v1`: the first 8 bytes of SHA-256, big-endian.
pub fn kgram_hash(bytes: &[u8]) -> u64 {
    let digest = sha2::Sha256::digest(bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// Robust winnowing over `hashes` with window [`W`]: the positions selected, in order.
fn winnow(hashes: &[u64]) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    if hashes.is_empty() {
        return out;
    }
    let windows = hashes.len().saturating_sub(W) + 1;
    let width = W.min(hashes.len());
    for start in 0..windows {
        let mut best = start;
        for i in start..start + width {
            // `<=`: the rightmost minimum wins ties.
            if hashes[i] <= hashes[best] {
                best = i;
            }
        }
        if out.last() != Some(&best) {
            out.push(best);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every position's minimum over each window, computed the slow way.
    fn reference_winnow(hashes: &[u64]) -> Vec<usize> {
        let width = W.min(hashes.len());
        let mut out = Vec::new();
        for start in 0..=hashes.len().saturating_sub(width) {
            if hashes.is_empty() {
                break;
            }
            let window = &hashes[start..start + width];
            let min = *window.iter().min().unwrap();
            let best = start + window.iter().rposition(|&h| h == min).unwrap();
            if out.last() != Some(&best) {
                out.push(best);
            }
        }
        out
    }

    #[test]
    fn winnowing_matches_the_reference() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..40 {
            for _ in 0..20 {
                let hashes: Vec<u64> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        // Few distinct values, so that ties happen.
                        state % 7
                    })
                    .collect();
                assert_eq!(winnow(&hashes), reference_winnow(&hashes), "{hashes:?}");
            }
        }
    }

    #[test]
    fn short_texts_have_no_fingerprints() {
        assert!(fingerprints("").is_empty());
        assert!(fingerprints("one two three four").is_empty());
        assert_eq!(fingerprints("one two three four five").len(), 1);
    }

    #[test]
    fn kgram_hash_is_the_sha256_prefix() {
        let expected = crate::digest::sha256(b"a b c d e").to_hex();
        assert_eq!(format!("{:016x}", kgram_hash(b"a b c d e")), expected[..16]);
    }

    #[test]
    fn ascii_case_and_whitespace_do_not_matter_but_other_case_does() {
        let a = fingerprints("The Sky is  blue\nand the sea is green.");
        let b = fingerprints("the sky is blue and THE SEA IS GREEN.");
        assert_eq!(a, b);
        let c = fingerprints("\u{c9}cole sky is blue and the sea is green.");
        let d = fingerprints("\u{e9}cole sky is blue and the sea is green.");
        assert_ne!(c, d);
    }

    #[test]
    fn a_copied_passage_has_all_its_fingerprints_in_the_whole() {
        let whole = "Rayleigh scattering explains the colour of the sky. Air molecules scatter \
            short wavelengths of sunlight much more strongly than long ones, so blue light \
            reaches the eye from every direction. At sunset the light crosses more air and \
            the blue is scattered away, leaving reds and oranges.";
        let all = fingerprints(whole);
        let part = "air molecules scatter short wavelengths of sunlight much more strongly than \
            long ones, so blue light reaches the eye";
        let some = fingerprints(part);
        assert!(!some.is_empty());
        assert!(some.iter().all(|h| all.binary_search(h).is_ok()));
    }

    #[test]
    fn covered_ranges_point_into_the_normalised_text() {
        let a = Analysis::of("  One two three four FIVE ");
        assert_eq!(a.covered_ranges(|_| true), vec![(0, 5)]);
        assert_eq!(a.byte_range((0, 5)), Some((0, a.normalized.len())));
        assert_eq!(a.byte_range((1, 2)), Some((4, 7)));
        assert_eq!(a.byte_range((2, 2)), None);
        assert_eq!(a.byte_range((0, 6)), None);
        assert!(a.covered_ranges(|_| false).is_empty());
        let b = Analysis::of("one two three four five six seven eight nine ten eleven twelve");
        let ranges = b.covered_ranges(|_| true);
        assert!(!ranges.is_empty());
        assert!(ranges.windows(2).all(|r| r[0].1 < r[1].0));
        assert!(
            ranges
                .iter()
                .all(|&(first, end)| first + K <= end && end <= 12)
        );
    }

    #[test]
    fn ascii_punctuation_at_token_ends_is_ignored() {
        let a = Analysis::of("(Long) ones, so \"blue\"... don't -- 3.5 \u{201c}x\u{201d}");
        let tokens: Vec<&str> = a
            .tokens
            .iter()
            .map(|t| &a.normalized[t.start..t.end])
            .collect();
        assert_eq!(
            tokens,
            [
                "Long",
                "ones",
                "so",
                "blue",
                "don't",
                "3.5",
                "\u{201c}x\u{201d}"
            ]
        );
        assert_eq!(
            fingerprints("long ones so blue don't"),
            fingerprints("long ones, so \"blue\"! don't.")
        );
    }

    #[test]
    fn hex_round_trip_and_refusals() {
        let h: FingerprintHash = "00ff00ff00ff00ff".parse().unwrap();
        assert_eq!(h.as_u64(), 0x00ff_00ff_00ff_00ff);
        assert_eq!(h.to_string(), "00ff00ff00ff00ff");
        assert_eq!(
            "00FF00FF00FF00FF".parse::<FingerprintHash>(),
            Err(FingerprintParseError::NotLowerHex)
        );
        assert_eq!(
            "+0ff00ff00ff00ff".parse::<FingerprintHash>(),
            Err(FingerprintParseError::NotLowerHex)
        );
        assert_eq!(
            "00".parse::<FingerprintHash>(),
            Err(FingerprintParseError::Length { found: 2 })
        );
    }
}
