//! Compact storage of a signed event, from which its JSON is rebuilt field for field.
//!
//! An event is kept as its binary id (32 bytes), public key (32, in the `authors` table),
//! signature (64), `created_at`, and a *body*: its tags and content, exactly as signed,
//! compressed. The kind is not kept: only kind 1988 is indexed. [`event_json`] rebuilds the
//! event JSON from these fields; its id, signature, tags and content are the ones that were
//! signed, so the rebuilt event verifies exactly as the received one did (only the order of
//! the JSON fields and the escaping of strings may differ from the bytes received).
//!
//! # Body, format 1
//!
//! ```text
//! 0x01  varint(packed length)  zstd(packed, raw-content dictionary DICTIONARY)
//! packed = pack(varint(len(tags JSON)) tags JSON  content)
//! ```
//!
//! `pack` replaces every run of 16 or more lowercase hex digits (fingerprints, hashes: half
//! of a provenance event) with `0x01 n` and the `n` bytes they spell (1 ≤ n ≤ 255), and a
//! literal `0x01` with `0x01 0x00`; it is undone exactly by `unpack`. The zstd dictionary is
//! the packed form of [`DICTIONARY`], the text every provenance event repeats. Never change it
//! nor the format: add a format byte instead (stored bodies must stay readable).

use std::cell::RefCell;
use std::sync::OnceLock;

use zstd::bulk::{Compressor, Decompressor};
use zstd::dict::{DecoderDictionary, EncoderDictionary};

/// The format byte of bodies written now.
const FORMAT_ZSTD_PACKED: u8 = 1;

/// zstd level: level 3 is the library default, and higher levels gain little on bodies this
/// small while costing ingest time.
const LEVEL: i32 = 3;

/// Largest body accepted when decoding (events are at most 512 KiB).
const MAX_PACKED: usize = 1 << 20;

/// Escape byte of the packed form: never in JSON text outside an escape sequence.
const ESC: u8 = 0x01;

/// The text provenance events repeat, as the zstd dictionary of format 1. Frozen.
const DICTIONARY: &str = concat!(
    r#"[["x","0000000000000000000000000000000000000000000000000000000000000000"],"#,
    r#"["m","text/plain; charset=utf-8"],["model","model"],["L","digitalsourcetype"],"#,
    r#"["l","trainedAlgorithmicMedia","digitalsourcetype"],"#,
    r#"["alt","AI output provenance record: output of model model (kind 1988; verify with `provenance verify`)"]]"#,
    r#"{"attestation":{},"model":{"name":"model","sha256":"0000000000000000000000000000000000000000000000000000000000000000","#,
    r#""uri":"","version":""},"output":{"bytes":1000,"fingerprints":{"hashes":["#,
    r#""0000000000000000","0000000000000000","0000000000000000","0000000000000000"],"#,
    r#""k":5,"rule":"wk-v1","truncated":false,"w":4},"mime":"text/plain; charset=utf-8","#,
    r#""normalized":{"rule":"nfc-ws-v1","sha256":"0000000000000000000000000000000000000000000000000000000000000000"},"#,
    r#""sha256":"0000000000000000000000000000000000000000000000000000000000000000","tokens":100},"#,
    r#""params":{"max_tokens":100,"seed":0,"temperature":0.7,"top_k":40,"top_p":0.9},"#,
    r#""prompt":{"salted_sha256":"0000000000000000000000000000000000000000000000000000000000000000"},"v":1}"#,
);

fn dictionaries() -> &'static (EncoderDictionary<'static>, DecoderDictionary<'static>) {
    static DICTS: OnceLock<(EncoderDictionary<'static>, DecoderDictionary<'static>)> =
        OnceLock::new();
    DICTS.get_or_init(|| {
        let packed = pack(DICTIONARY.as_bytes());
        (
            EncoderDictionary::copy(&packed, LEVEL),
            DecoderDictionary::copy(&packed),
        )
    })
}

thread_local! {
    static COMPRESSOR: RefCell<Option<Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Why a stored body could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("stored event body: {0}")]
pub(crate) struct BodyError(String);

/// The body of an event with these tags (as JSON) and content.
pub(crate) fn encode_body(tags_json: &str, content: &str) -> Vec<u8> {
    let mut plain = Vec::with_capacity(tags_json.len() + content.len() + 4);
    put_varint(&mut plain, tags_json.len() as u64);
    plain.extend_from_slice(tags_json.as_bytes());
    plain.extend_from_slice(content.as_bytes());
    let packed = pack(&plain);
    let compressed = COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        let c = match &mut *c {
            Some(c) => c,
            None => c.insert(
                Compressor::with_prepared_dictionary(&dictionaries().0)
                    .expect("zstd compressor with a prepared dictionary"),
            ),
        };
        c.compress(&packed)
            .expect("zstd compression into a growable buffer")
    });
    let mut body = Vec::with_capacity(compressed.len() + 4);
    body.push(FORMAT_ZSTD_PACKED);
    put_varint(&mut body, packed.len() as u64);
    body.extend_from_slice(&compressed);
    body
}

/// The tags JSON and content of a stored body.
pub(crate) fn decode_body(body: &[u8]) -> Result<(String, String), BodyError> {
    let err = |m: &str| BodyError(m.to_owned());
    let (&format, rest) = body.split_first().ok_or_else(|| err("empty"))?;
    if format != FORMAT_ZSTD_PACKED {
        return Err(BodyError(format!("unknown format {format}")));
    }
    let (len, rest) = get_varint(rest).ok_or_else(|| err("bad length"))?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= MAX_PACKED)
        .ok_or_else(|| err("too long"))?;
    let packed = DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        let d = match &mut *d {
            Some(d) => d,
            None => new_decompressor(&mut d)?,
        };
        d.decompress(rest, len)
            .map_err(|e| BodyError(format!("zstd: {e}")))
    })?;
    if packed.len() != len {
        return Err(err("wrong length"));
    }
    let plain = unpack(&packed).ok_or_else(|| err("bad packing"))?;
    let (tags_len, rest) = get_varint(&plain).ok_or_else(|| err("bad tags length"))?;
    let tags_len = usize::try_from(tags_len)
        .ok()
        .filter(|&l| l <= rest.len())
        .ok_or_else(|| err("bad tags length"))?;
    let (tags, content) = rest.split_at(tags_len);
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| err("not UTF-8"));
    Ok((text(tags)?, text(content)?))
}

fn new_decompressor<'a>(
    slot: &'a mut Option<Decompressor<'static>>,
) -> Result<&'a mut Decompressor<'static>, BodyError> {
    let d = Decompressor::with_prepared_dictionary(&dictionaries().1)
        .map_err(|e| BodyError(format!("zstd: {e}")))?;
    Ok(slot.insert(d))
}

/// The event JSON rebuilt from its stored fields (kind 1988).
pub(crate) fn event_json(
    id: &[u8],
    pubkey: &[u8],
    created_at: i64,
    sig: &[u8],
    body: &[u8],
) -> Result<String, BodyError> {
    let (tags, content) = decode_body(body)?;
    // The tags are checked to be JSON here: the database is not trusted, and a broken
    // fragment must not make the rebuilt text parse as something else.
    serde_json::from_str::<Vec<Vec<String>>>(&tags).map_err(|e| BodyError(e.to_string()))?;
    let content = serde_json::to_string(&content).map_err(|e| BodyError(e.to_string()))?;
    Ok(format!(
        r#"{{"id":"{}","pubkey":"{}","created_at":{created_at},"kind":{},"tags":{tags},"content":{content},"sig":"{}"}}"#,
        hex(id),
        hex(pubkey),
        provenance::event::KIND,
        hex(sig),
    ))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

fn nibble(b: u8) -> u8 {
    if b.is_ascii_digit() {
        b - b'0'
    } else {
        b - b'a' + 10
    }
}

/// Replaces runs of 16+ lowercase hex digits by their bytes; see the module docs.
fn pack(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let run = input[i..].iter().take_while(|&&b| is_hex(b)).count();
        if run >= 16 {
            // Whole bytes only; an odd last digit stays literal.
            let mut left = run / 2;
            while left > 0 {
                let n = left.min(255);
                out.push(ESC);
                out.push(n as u8);
                for pair in input[i..i + 2 * n].chunks_exact(2) {
                    out.push(nibble(pair[0]) << 4 | nibble(pair[1]));
                }
                i += 2 * n;
                left -= n;
            }
            continue;
        }
        let literal = run.max(1);
        for &b in &input[i..i + literal] {
            out.push(b);
            if b == ESC {
                out.push(0);
            }
        }
        i += literal;
    }
    out
}

/// Undoes [`pack`]; `None` when the input is not a packed form.
fn unpack(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() * 2);
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        i += 1;
        if b != ESC {
            out.push(b);
            continue;
        }
        let n = usize::from(*input.get(i)?);
        i += 1;
        if n == 0 {
            out.push(ESC);
            continue;
        }
        for &b in input.get(i..i + n)? {
            out.extend_from_slice(hex(&[b]).as_bytes());
        }
        i += n;
    }
    Some(out)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(input: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    for (i, &b) in input.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, &input[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn pack_round_trips_hex_runs_escapes_and_odd_lengths() {
        for s in [
            "",
            "plain text",
            "\u{1}\u{1}x\u{1}",
            "0123456789abcde",
            "0123456789abcdef",
            "0123456789abcdef0",
            "ABCDEF0123456789abcdef",
            &"ab".repeat(600),
            &format!("x{}y\u{1}{}", "0f".repeat(300), "e".repeat(33)),
        ] {
            let packed = pack(s.as_bytes());
            assert_eq!(unpack(&packed).unwrap(), s.as_bytes(), "{s:?}");
        }
        assert_eq!(pack(b"0123456789abcdef").len(), 10);
        assert_eq!(unpack(&[ESC, 5, 1]), None);
        assert_eq!(unpack(&[ESC]), None);
    }

    #[test]
    fn body_round_trips_and_is_smaller() {
        let tags = r#"[["x","83b9cea61cf74a9bfd5c8112455f6710bf0e3d654f9ec065c99f1aac8a2399ed"]]"#;
        let content = r#"{"v":1,"output":{"sha256":"83b9cea61cf74a9bfd5c8112455f6710bf0e3d654f9ec065c99f1aac8a2399ed"},"odd":"\u0001 é"}"#;
        let body = encode_body(tags, content);
        assert!(
            body.len() < (tags.len() + content.len()) / 2,
            "{}",
            body.len()
        );
        assert_eq!(
            decode_body(&body).unwrap(),
            (tags.to_owned(), content.to_owned())
        );
    }

    #[test]
    fn a_body_written_by_format_1_still_decodes() {
        // Written once by `encode_body` for these tags and content: a change to the dictionary
        // or the packing that would strand stored bodies fails here.
        const TAGS: &str = r#"[["m","text/plain; charset=utf-8"],["L","digitalsourcetype"]]"#;
        const CONTENT: &str = r#"{"model":{"name":"synthetic"},"output":{"bytes":614,"fingerprints":{"hashes":["00e753b7252e36d3","00f421882231b7e9"],"k":5,"rule":"wk-v1","w":4},"v":1}"#;
        const STORED: &str = "01c90128b52ffd20c9fd010034023d5b5d7b73796e746865746963363134e753\
            b7252e36d3f421882231b7e976223a317d0800094406368865c0606a8866d810dfb123662c29eaf0\
            2629b0";
        let stored: Vec<u8> = (0..STORED.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&STORED[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(
            decode_body(&stored).unwrap(),
            (TAGS.to_owned(), CONTENT.to_owned())
        );
        // Under half the text, 16 bytes of it random.
        assert!(
            stored.len() * 2 < TAGS.len() + CONTENT.len(),
            "{}",
            stored.len()
        );
    }

    #[test]
    fn damaged_bodies_are_errors_not_panics() {
        let body = encode_body("[]", "content");
        for bad in [
            &[][..],
            &[9, 1, 2][..],
            &body[..body.len() - 1],
            &[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
        ] {
            assert!(decode_body(bad).is_err(), "{bad:?}");
        }
        assert!(event_json(&[0; 32], &[0; 32], 1, &[0; 64], &encode_body("{", "c")).is_err());
    }
}
