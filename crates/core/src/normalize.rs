//! Text normalisation behind the normalised output hash.
//!
//! Copying a paragraph out of a web page changes bytes that a reader does not see: line
//! breaks become spaces, non-breaking spaces appear, combining accents get composed. The
//! normalised hash survives those changes; the exact hash ([`crate::record::Output::sha256`])
//! does not. The rule is versioned by name ([`RULE`]) in every record, and must never change
//! meaning once published: a new rule gets a new name.
//!
//! # Rule `nfc-ws-v1`
//!
//! 1. Convert the text to Unicode Normalization Form C (NFC).
//! 2. Replace every maximal run of whitespace characters with one U+0020 SPACE. Whitespace
//!    is exactly the 25 code points with the Unicode `White_Space` property: U+0009..U+000D,
//!    U+0020, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000.
//!    Nothing else counts (in particular not U+200B ZERO WIDTH SPACE nor U+FEFF, which
//!    JavaScript's `\s` includes).
//! 3. Remove a leading and a trailing U+0020, if any.
//!
//! The normalised hash is the SHA-256 of the UTF-8 bytes of the result. The rule does not
//! fold case, punctuation, quotes or dashes: two texts that differ there are different texts.
//! Vectors that any other implementation must reproduce are in `fixtures/normalize/`.

use unicode_normalization::UnicodeNormalization;

use crate::digest::{Sha256Digest, sha256};

/// The name of the normalisation rule this module implements.
pub const RULE: &str = "nfc-ws-v1";

/// Whether `c` is one of the 25 `White_Space` code points of rule `nfc-ws-v1`.
///
/// Spelled out rather than delegated to [`char::is_whitespace`] so that the rule cannot
/// drift with the Unicode version of the standard library.
pub const fn is_rule_whitespace(c: char) -> bool {
    matches!(
        c,
        '\u{0009}'..='\u{000D}'
            | '\u{0020}'
            | '\u{0085}'
            | '\u{00A0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200A}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202F}'
            | '\u{205F}'
            | '\u{3000}'
    )
}

/// Normalises `text` by rule [`RULE`].
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.nfc() {
        if is_rule_whitespace(c) {
            pending_space = true;
            continue;
        }
        // A run of whitespace becomes one space, but only between two other characters:
        // this drops leading and trailing runs at the same time.
        if pending_space && !out.is_empty() {
            out.push(' ');
        }
        pending_space = false;
        out.push(c);
    }
    out
}

/// SHA-256 of the normalised text.
pub fn normalized_sha256(text: &str) -> Sha256Digest {
    sha256(normalize(text).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_runs_and_trims() {
        assert_eq!(normalize("  a \t\n b\u{00A0}\u{3000}c  "), "a b c");
        assert_eq!(normalize(""), "");
        assert_eq!(normalize(" \n\t "), "");
    }

    #[test]
    fn composes_to_nfc() {
        // e + COMBINING ACUTE ACCENT -> U+00E9
        assert_eq!(normalize("cafe\u{0301}"), "caf\u{00E9}");
        // U+2000 EN QUAD decomposes canonically to U+2002, both whitespace.
        assert_eq!(normalize("a\u{2000}b"), "a b");
    }

    #[test]
    fn zero_width_space_and_bom_are_not_whitespace() {
        assert_eq!(normalize("a\u{200B}b"), "a\u{200B}b");
        assert_eq!(normalize("\u{FEFF}a"), "\u{FEFF}a");
    }

    #[test]
    fn the_set_is_exactly_unicode_white_space() {
        for cp in 0..=0x10FFFFu32 {
            if let Some(c) = char::from_u32(cp) {
                assert_eq!(is_rule_whitespace(c), c.is_whitespace(), "U+{cp:04X}");
            }
        }
    }
}
