//! Bech32 (BIP-173) with the NIP-19 length limit.
//!
//! Only the original bech32 checksum (constant 1) is accepted. The bech32m constant (BIP-350)
//! is recognised solely to say so in the error: NIP-19 strings are bech32, and a decoder that
//! quietly accepted bech32m would let two different strings name the same entity.
//!
//! BIP-173 caps strings at 90 characters; NIP-19 raises that to 5,000 (the `bech32` crate's
//! checked decoder stops at 1,023, which rejects real `nevent`s with many relays). The cap is
//! applied to the byte length before anything else, so no work or allocation depends on more
//! than [`MAX_LEN`] bytes of input.

use super::Nip19Error;

/// Longest string accepted or produced, in bytes (bech32 is ASCII, so also characters).
pub(crate) const MAX_LEN: usize = 5_000;

/// Longest human-readable part (BIP-173).
pub(crate) const MAX_HRP_LEN: usize = 83;

/// Checksum length in 5-bit groups.
const CHECKSUM_LEN: usize = 6;

const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/// Final polymod value of a valid bech32 string (BIP-173).
const BECH32_CONST: u32 = 1;

/// Final polymod value of a valid bech32m string (BIP-350); only used to name the error.
const BECH32M_CONST: u32 = 0x2bc8_30a3;

/// Decodes `s` into its lowercase human-readable part and its data bytes.
pub(crate) fn decode(s: &str) -> Result<(String, Vec<u8>), Nip19Error> {
    if s.len() > MAX_LEN {
        return Err(Nip19Error::TooLong {
            limit: MAX_LEN,
            found: s.len(),
        });
    }
    // Every byte must be printable US-ASCII; the first offender is reported by position
    // (all bytes before it are ASCII, so the byte offset is the character offset).
    if let Some((position, character)) = s
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii() && (33..=126).contains(&(c as u32))))
    {
        return Err(Nip19Error::InvalidCharacter {
            position,
            character,
        });
    }
    let bytes = s.as_bytes();
    let has_lower = bytes.iter().any(u8::is_ascii_lowercase);
    let has_upper = bytes.iter().any(u8::is_ascii_uppercase);
    if has_lower && has_upper {
        return Err(Nip19Error::MixedCase);
    }
    let separator = bytes
        .iter()
        .rposition(|&b| b == b'1')
        .ok_or(Nip19Error::MissingSeparator)?;
    let hrp = s[..separator].to_ascii_lowercase();
    if hrp.is_empty() || hrp.len() > MAX_HRP_LEN {
        return Err(Nip19Error::HrpLength {
            max: MAX_HRP_LEN,
            found: hrp.len(),
        });
    }
    let data_part = &bytes[separator + 1..];
    if data_part.len() < CHECKSUM_LEN {
        return Err(Nip19Error::TooShort {
            found: data_part.len(),
        });
    }
    let mut values = Vec::with_capacity(data_part.len());
    for (i, &b) in data_part.iter().enumerate() {
        let lower = b.to_ascii_lowercase();
        let value =
            CHARSET
                .iter()
                .position(|&c| c == lower)
                .ok_or(Nip19Error::InvalidCharacter {
                    position: separator + 1 + i,
                    character: char::from(b),
                })?;
        // A position in a 32-entry table always fits in five bits.
        values.push(value as u8);
    }
    match polymod(hrp.as_bytes(), &values) {
        BECH32_CONST => {}
        BECH32M_CONST => return Err(Nip19Error::Bech32m),
        _ => return Err(Nip19Error::Checksum),
    }
    values.truncate(values.len() - CHECKSUM_LEN);
    let data = from_five_bits(&values)?;
    Ok((hrp, data))
}

/// Encodes `data` under `hrp` (which must be lowercase) with the bech32 checksum.
///
/// No length limit is applied here; callers that produce entities check [`MAX_LEN`].
pub(crate) fn encode(hrp: &str, data: &[u8]) -> String {
    encode_five_bits(hrp, &to_five_bits(data), BECH32_CONST)
}

/// Encodes with the bech32m checksum, to build the strings NIP-19 decoders must reject.
#[cfg(test)]
pub(crate) fn encode_bech32m(hrp: &str, data: &[u8]) -> String {
    encode_five_bits(hrp, &to_five_bits(data), BECH32M_CONST)
}

/// Encodes already-grouped 5-bit values, to build strings with malformed padding.
#[cfg(test)]
pub(crate) fn encode_raw(hrp: &str, values: &[u8]) -> String {
    encode_five_bits(hrp, values, BECH32_CONST)
}

fn encode_five_bits(hrp: &str, values: &[u8], constant: u32) -> String {
    let mut checked = Vec::with_capacity(values.len() + CHECKSUM_LEN);
    checked.extend_from_slice(values);
    checked.extend_from_slice(&[0; CHECKSUM_LEN]);
    let checksum = polymod(hrp.as_bytes(), &checked) ^ constant;
    for (i, slot) in checked[values.len()..].iter_mut().enumerate() {
        *slot = ((checksum >> (5 * (CHECKSUM_LEN - 1 - i))) & 31) as u8;
    }
    let mut out = String::with_capacity(hrp.len() + 1 + checked.len());
    out.push_str(hrp);
    out.push('1');
    out.extend(checked.iter().map(|&v| char::from(CHARSET[usize::from(v)])));
    out
}

/// BIP-173 checksum over the expanded human-readable part followed by `values`.
fn polymod(hrp: &[u8], values: &[u8]) -> u32 {
    const GENERATOR: [u32; 5] = [
        0x3b6a_57b2,
        0x2650_8e6d,
        0x1ea1_19fa,
        0x3d42_33dd,
        0x2a14_62b3,
    ];
    let expanded_hrp = hrp
        .iter()
        .map(|b| b >> 5)
        .chain([0])
        .chain(hrp.iter().map(|b| b & 31));
    let mut checksum: u32 = 1;
    for value in expanded_hrp.chain(values.iter().copied()) {
        let top = checksum >> 25;
        checksum = ((checksum & 0x01ff_ffff) << 5) ^ u32::from(value);
        for (i, g) in GENERATOR.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                checksum ^= g;
            }
        }
    }
    checksum
}

/// Regroups bytes into 5-bit values, zero-padding the last one.
fn to_five_bits(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity((data.len() * 8).div_ceil(5));
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &byte in data {
        acc = (acc << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(((acc >> bits) & 31) as u8);
        }
    }
    if bits > 0 {
        out.push(((acc << (5 - bits)) & 31) as u8);
    }
    out
}

/// Regroups 5-bit values into bytes; BIP-173 allows at most 4 padding bits, all zero.
fn from_five_bits(values: &[u8]) -> Result<Vec<u8>, Nip19Error> {
    let mut out = Vec::with_capacity(values.len() * 5 / 8);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &value in values {
        acc = ((acc << 5) | u32::from(value)) & 0xfff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    if bits >= 5 || (acc << (8 - bits)) & 0xff != 0 {
        return Err(Nip19Error::InvalidPadding);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests {
    use super::*;

    /// Whether an error is the one a vector expects.
    type Check = fn(&Nip19Error) -> bool;

    /// BIP-173 "Test vectors": valid bech32 strings.
    const BIP173_VALID: &[&str] = &[
        "A12UEL5L",
        "a12uel5l",
        "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
        "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
        "11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
        "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
        "?1ezyfcl",
    ];

    #[test]
    fn bip173_valid_strings_decode() {
        for s in BIP173_VALID {
            // These carry arbitrary 5-bit data, so only the checksum layer is checked here:
            // some have padding that is not a whole number of bytes.
            let (hrp, values) = split_checked(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(hrp, s[..s.rfind('1').unwrap()].to_ascii_lowercase());
            assert_eq!(polymod(hrp.as_bytes(), &values), BECH32_CONST, "{s}");
            // Re-encoding the 5-bit values gives the lowercase string back.
            let data = &values[..values.len() - CHECKSUM_LEN];
            assert_eq!(encode_raw(&hrp, data), s.to_ascii_lowercase());
        }
    }

    /// Runs `decode` up to and including the checksum, returning the 5-bit values.
    fn split_checked(s: &str) -> Result<(String, Vec<u8>), Nip19Error> {
        match decode(s) {
            Ok(_) | Err(Nip19Error::InvalidPadding) => {}
            Err(e) => return Err(e),
        }
        let separator = s.rfind('1').unwrap();
        let values = s[separator + 1..]
            .bytes()
            .map(|b| {
                CHARSET
                    .iter()
                    .position(|&c| c == b.to_ascii_lowercase())
                    .unwrap() as u8
            })
            .collect();
        Ok((s[..separator].to_ascii_lowercase(), values))
    }

    #[test]
    fn bip173_invalid_strings_are_rejected_for_the_stated_reason() {
        let cases: &[(&str, Check)] = &[
            // HRP character out of range.
            ("\u{20}1nwldj5", |e| {
                matches!(e, Nip19Error::InvalidCharacter { position: 0, .. })
            }),
            ("\u{7f}1axkwrx", |e| {
                matches!(e, Nip19Error::InvalidCharacter { position: 0, .. })
            }),
            ("\u{80}1eym55h", |e| {
                matches!(e, Nip19Error::InvalidCharacter { position: 0, .. })
            }),
            // Overall maximum length exceeded (BIP-173's 90); under NIP-19's cap the
            // 84-character human-readable part is what fails.
            (
                "an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pvx",
                |e| matches!(e, Nip19Error::HrpLength { found: 84, .. }),
            ),
            // No separator character.
            ("pzry9x0s0muk", |e| {
                matches!(e, Nip19Error::MissingSeparator)
            }),
            // Empty HRP.
            ("1pzry9x0s0muk", |e| {
                matches!(e, Nip19Error::HrpLength { found: 0, .. })
            }),
            // Invalid data character.
            ("x1b4n0q5v", |e| {
                matches!(e, Nip19Error::InvalidCharacter { character: 'b', .. })
            }),
            // Too short checksum.
            ("li1dgmt3", |e| {
                matches!(e, Nip19Error::TooShort { found: 5 })
            }),
            // Invalid character in checksum.
            ("de1lg7wt\u{ff}", |e| {
                matches!(e, Nip19Error::InvalidCharacter { position: 8, .. })
            }),
            // Checksum calculated with uppercase form of HRP.
            ("A1G7SGD8", |e| matches!(e, Nip19Error::Checksum)),
            // Empty HRP.
            ("10a06t8", |e| {
                matches!(e, Nip19Error::HrpLength { found: 0, .. })
            }),
            ("1qzzfhee", |e| {
                matches!(e, Nip19Error::HrpLength { found: 0, .. })
            }),
        ];
        for (s, expected) in cases {
            let err = decode(s).expect_err(s);
            assert!(expected(&err), "{s:?}: unexpected error {err:?}");
        }
    }

    #[test]
    fn bech32m_checksum_is_named() {
        let s = encode_bech32m("note", &[7; 32]);
        assert!(matches!(decode(&s), Err(Nip19Error::Bech32m)));
        // The same data with the bech32 constant decodes.
        assert_eq!(decode(&encode("note", &[7; 32])).unwrap().1, vec![7; 32]);
    }

    #[test]
    fn bytes_round_trip_at_every_length_up_to_a_few_blocks() {
        for len in 0..=45 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let s = encode("x", &data);
            assert_eq!(decode(&s).unwrap(), ("x".to_owned(), data.clone()));
            assert_eq!(
                decode(&s.to_ascii_uppercase()).unwrap(),
                ("x".to_owned(), data)
            );
        }
    }

    #[test]
    fn nonzero_or_long_padding_is_rejected() {
        // One 5-bit group cannot hold a byte: 5 bits of padding.
        assert!(matches!(
            decode(&encode_raw("x", &[0])),
            Err(Nip19Error::InvalidPadding)
        ));
        // Two groups hold one byte with 2 padding bits, which must be zero.
        assert_eq!(decode(&encode_raw("x", &[31, 28])).unwrap().1, vec![0xff]);
        assert!(matches!(
            decode(&encode_raw("x", &[31, 29])),
            Err(Nip19Error::InvalidPadding)
        ));
    }

    #[test]
    fn length_cap_is_checked_first() {
        let s = "q".repeat(MAX_LEN + 1);
        assert!(matches!(
            decode(&s),
            Err(Nip19Error::TooLong {
                limit: MAX_LEN,
                found: 5001
            })
        ));
        // At the cap, decoding proceeds (and fails later for another reason).
        let s = format!("x1{}", "q".repeat(MAX_LEN - 2));
        assert!(matches!(decode(&s), Err(Nip19Error::Checksum)));
    }
}
