//! JSON string escaping, shared by the canonical writer ([`crate::canonical`]) and the
//! `provenance` command's `--json` output.
//!
//! The escaping is the minimal one that `JSON.stringify` (RFC 8785 section 3.2.2.2) and
//! `serde_json` both write: `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, `\u00xx` (lowercase hex)
//! for the other control characters below U+0020, and every other character as itself. A Rust
//! string cannot hold a lone surrogate, the one case where the two writers would differ.
//!
//! Most strings met here (hex ids and digests, model names, claim details) need no escape, so
//! [`needs_escape`] checks eight bytes at a time and a plain string is copied whole; the
//! others go byte by byte.

/// The escape for each ASCII byte: 0 for none, `u` for `\u00xx`, else the letter after the
/// backslash.
const ESCAPE: [u8; 128] = {
    let mut table = [0u8; 128];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Where escaped text goes: a `String` or a byte buffer. Only whole UTF-8 strings and ASCII
/// bytes are written.
trait Sink {
    fn text(&mut self, s: &str);
    fn ascii(&mut self, b: u8);
}

impl Sink for String {
    fn text(&mut self, s: &str) {
        self.push_str(s);
    }
    fn ascii(&mut self, b: u8) {
        self.push(char::from(b));
    }
}

impl Sink for Vec<u8> {
    fn text(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
    fn ascii(&mut self, b: u8) {
        self.push(b);
    }
}

/// Whether any byte of `bytes` needs an escape (a control character, `"` or `\`), eight bytes
/// at a time.
pub fn needs_escape(bytes: &[u8]) -> bool {
    let words = bytes.chunks_exact(8);
    let tail = words.remainder();
    let mut found = false;
    for word in words {
        // `chunks_exact` gives eight bytes.
        found |= word_needs_escape(u64::from_le_bytes(word.try_into().expect("eight bytes")));
    }
    // The last few bytes, padded with a letter that needs no escape.
    let mut last = [b'a'; 8];
    last[..tail.len()].copy_from_slice(tail);
    found | word_needs_escape(u64::from_le_bytes(last))
}

/// Whether any of the eight bytes of `word` is a control character, `"` or `\`.
fn word_needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte below 0x20, or one equal to `"` or `\` (zero after the XOR): the classic
    // "has less than" bit trick, exact for the word as a whole.
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH;
    below(word, 0x20) | below(word ^ (ONES * 0x22), 1) | below(word ^ (ONES * 0x5c), 1) != 0
}

/// Appends `s` as a JSON string, quotes included.
pub fn push_str(out: &mut String, s: &str) {
    quoted(out, s);
}

/// Appends `s` escaped, without quotes: for a string that arrives in pieces (a `Display`
/// value written through `fmt::Write`).
pub fn push_str_contents(out: &mut String, s: &str) {
    contents(out, s);
}

/// [`push_str`] into a byte buffer.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    quoted(out, s);
}

fn quoted<S: Sink>(out: &mut S, s: &str) {
    out.ascii(b'"');
    contents(out, s);
    out.ascii(b'"');
}

fn contents<S: Sink>(out: &mut S, s: &str) {
    if !needs_escape(s.as_bytes()) {
        out.text(s);
        return;
    }
    let mut copied = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        let escape = ESCAPE.get(usize::from(b)).copied().unwrap_or(0);
        if escape == 0 {
            continue;
        }
        // Escaped bytes are ASCII, so `copied..i` starts and ends on character boundaries.
        out.text(&s[copied..i]);
        out.ascii(b'\\');
        out.ascii(escape);
        if escape == b'u' {
            out.text("00");
            out.ascii(HEX[usize::from(b >> 4)]);
            out.ascii(HEX[usize::from(b & 0xf)]);
        }
        copied = i + 1;
    }
    out.text(&s[copied..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_escape_finds_exactly_the_bytes_json_escapes() {
        for b in 0u8..=255 {
            for at in 0..8 {
                let mut word = [b'a'; 8];
                word[at] = b;
                let expected = b < 0x20 || b == b'"' || b == b'\\';
                assert_eq!(
                    word_needs_escape(u64::from_le_bytes(word)),
                    expected,
                    "{b:#x} at {at}"
                );
            }
        }
    }

    /// Every ASCII character and some wider ones, at every offset from a word boundary and in
    /// strings of every length up to past two words: the same bytes as serde_json, on both
    /// sinks, with and without quotes.
    #[test]
    fn escapes_as_serde_json_does() {
        let mut samples: Vec<String> = (0u8..128).map(|b| char::from(b).to_string()).collect();
        samples.extend(["é", "€", "😀", "\u{2028}", "\u{7f}", "\u{ffff}"].map(String::from));
        let mut cases = Vec::new();
        for sample in &samples {
            for before in 0..9 {
                for after in [0, 1, 7, 8] {
                    cases.push(format!(
                        "{}{sample}{}",
                        "a".repeat(before),
                        "z".repeat(after)
                    ));
                }
            }
        }
        cases.push(String::new());
        cases.push("\"\\\n\u{0}\u{1f} mixed \t é \r\u{8}\u{c}".repeat(3));
        for case in &cases {
            let expected = serde_json::to_string(case).unwrap();
            let mut text = String::from("x");
            push_str(&mut text, case);
            assert_eq!(&text[1..], expected, "{case:?}");
            let mut bytes = b"x".to_vec();
            write_str(&mut bytes, case);
            assert_eq!(&bytes[1..], expected.as_bytes(), "{case:?}");
            let mut inner = String::new();
            push_str_contents(&mut inner, case);
            assert_eq!(inner, expected[1..expected.len() - 1], "{case:?}");
            assert_eq!(
                needs_escape(case.as_bytes()),
                expected.len() != case.len() + 2,
                "{case:?}"
            );
        }
    }
}
