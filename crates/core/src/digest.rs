//! Digest newtypes: SHA-256 and BLAKE3 outputs, compared in constant time.
//!
//! A digest is 32 bytes. It prints and parses as 64 lowercase hex characters (parsing also
//! accepts uppercase), serialises as that hex string, and compares in constant time so that a
//! digest used as a secret-dependent value (a prompt commitment, say) leaks nothing through
//! timing. There is deliberately no `Deref`/`AsRef<[u8]>`: use [`Sha256Digest::as_bytes`] when
//! the bytes are needed, so that digests of different algorithms are never mixed up silently.
//!
//! This module computes SHA-256 ([`sha256`]); BLAKE3 is computed by the crates that need it
//! (the GGUF hasher) and only carried here.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;
use subtle::ConstantTimeEq;

/// Why a hex digest did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HexError {
    /// The string is not 64 characters long.
    #[error("expected 64 hex characters, found {found}")]
    Length {
        /// Number of characters found.
        found: usize,
    },
    /// The string contains a character that is not a hex digit.
    #[error("invalid hex character {character:?} at offset {offset}")]
    Character {
        /// The offending character.
        character: char,
        /// Its byte offset.
        offset: usize,
    },
}

/// Parses 64 hex characters into 32 bytes.
pub(crate) fn parse_hex32(s: &str) -> Result<[u8; 32], HexError> {
    if s.len() != 64 {
        return Err(HexError::Length {
            found: s.chars().count(),
        });
    }
    let mut out = [0u8; 32];
    let bytes = s.as_bytes();
    for (i, byte) in out.iter_mut().enumerate() {
        let hi = hex_val(bytes[2 * i]).ok_or_else(|| bad_char(s, 2 * i))?;
        let lo = hex_val(bytes[2 * i + 1]).ok_or_else(|| bad_char(s, 2 * i + 1))?;
        *byte = (hi << 4) | lo;
    }
    Ok(out)
}

fn bad_char(s: &str, offset: usize) -> HexError {
    // `offset` may fall inside a multi-byte character; report the character that starts at or
    // before it.
    let start = (0..=offset)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    HexError::Character {
        character: s[start..].chars().next().unwrap_or('\u{fffd}'),
        offset: start,
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

macro_rules! digest_type {
    ($(#[$meta:meta])* $name:ident, $algo:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy)]
        pub struct $name([u8; 32]);

        impl $name {
            /// Wraps 32 digest bytes.
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The 32 digest bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// Lowercase hex, 64 characters.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// The algorithm name used in prefixed forms such as `sha256:<hex>`.
            pub const ALGORITHM: &'static str = $algo;
        }

        impl PartialEq for $name {
            /// Constant-time comparison.
            fn eq(&self, other: &Self) -> bool {
                self.0.ct_eq(&other.0).into()
            }
        }

        impl Eq for $name {}

        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.0.hash(state)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut buf = [0u8; 64];
                // The buffer is exactly twice the input length, so encoding cannot fail.
                hex::encode_to_slice(self.0, &mut buf).map_err(|_| fmt::Error)?;
                // Hex digits are ASCII.
                f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl FromStr for $name {
            type Err = HexError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hex32(s).map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        #[cfg(feature = "schema")]
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "pattern": "^[0-9a-f]{64}$",
                    "description": concat!("A ", $algo, " digest: 64 lowercase hex characters")
                })
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

digest_type!(
    /// A SHA-256 digest.
    ///
    /// The whole-file SHA-256 of a GGUF file is the same value as its Hugging Face LFS oid and
    /// its Ollama blob name (`sha256-<hex>`).
    Sha256Digest,
    "sha256"
);

digest_type!(
    /// A BLAKE3 digest (32-byte default output length).
    Blake3Digest,
    "blake3"
);

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Sha256Digest {
    Sha256Digest(sha2::Sha256::digest(data).into())
}

/// An incremental SHA-256, for data that arrives in pieces (streamed responses).
#[derive(Clone, Default)]
pub struct Sha256Hasher(sha2::Sha256);

impl Sha256Hasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds more bytes.
    pub fn update(&mut self, data: &[u8]) -> &mut Self {
        self.0.update(data);
        self
    }

    /// The digest of everything fed so far.
    pub fn finalize(self) -> Sha256Digest {
        Sha256Digest(self.0.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_input_is_the_known_constant() {
        assert_eq!(
            sha256(b"").to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn hex_round_trip_and_uppercase() {
        let d = sha256(b"abc");
        let upper = d.to_string().to_uppercase();
        assert_eq!(upper.parse::<Sha256Digest>().unwrap(), d);
        assert_eq!(d.to_string().parse::<Sha256Digest>().unwrap(), d);
    }

    #[test]
    fn bad_hex_is_a_clear_error() {
        assert_eq!(
            "abc".parse::<Sha256Digest>().unwrap_err(),
            HexError::Length { found: 3 }
        );
        let mut s = "0".repeat(63);
        s.push('g');
        assert_eq!(
            s.parse::<Sha256Digest>().unwrap_err(),
            HexError::Character {
                character: 'g',
                offset: 63
            }
        );
        // A multi-byte character never panics the parser.
        let s = format!("{}é", "0".repeat(62));
        assert!(s.parse::<Sha256Digest>().is_err());
    }

    #[test]
    fn incremental_equals_one_shot() {
        let mut h = Sha256Hasher::new();
        h.update(b"ab").update(b"c");
        assert_eq!(h.finalize(), sha256(b"abc"));
    }
}
