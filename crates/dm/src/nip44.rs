//! NIP-44 version 2: secp256k1 ECDH, HKDF-SHA256, padding, ChaCha20, HMAC-SHA256, base64.
//!
//! Both length prefixes are supported: a 2-byte big-endian `u16` for plaintexts of 1 to 65,535
//! bytes, and the extended 6-byte prefix (two zero bytes, then a big-endian `u32`) for
//! plaintexts of 65,536 bytes up to 2^32 − 1. Padding is the NIP's power-of-two scheme
//! ([`calc_padded_len`]) for both.
//!
//! [`decrypt`] refuses, each with its own [`DecryptError`]: a version other than 2 (including
//! the `#` flag of a future non-base64 encoding), a payload shorter than the NIP's minimum or
//! longer than the caller's maximum (checked before base64 decoding), invalid base64, a MAC
//! that does not match (compared in constant time), a length prefix or padding that does not
//! match the plaintext length, non-zero padding bytes, and a plaintext that is not UTF-8.
//!
//! Refusing non-zero padding is stricter than the NIP's pseudocode (which checks lengths only),
//! and every encoder pads with zeros; it makes the encoding canonical: for one conversation key
//! and nonce, a plaintext has exactly one payload.
//!
//! ```
//! use provenance::Keys;
//! use provenance_dm::nip44::{self, ConversationKey};
//!
//! let alice = Keys::generate();
//! let bob = Keys::generate();
//! let key = ConversationKey::derive(alice.secret_key(), &bob.public_key())?;
//! let payload = nip44::encrypt(&key, "hello")?;
//! // Bob derives the same key from his secret and Alice's public key.
//! let key = ConversationKey::derive(bob.secret_key(), &alice.public_key())?;
//! assert_eq!(nip44::decrypt(&key, &payload)?, "hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use provenance::{PublicKey, SecretKey};
use rand::RngCore;
use secp256k1::ecdh;
use sha2::Sha256;

/// The version byte this module reads and writes.
pub const VERSION: u8 = 2;
/// Plaintexts shorter than this cannot be encrypted (the NIP's `min_plaintext_size`).
pub const MIN_PLAINTEXT_LEN: usize = 1;
/// The longest plaintext the format can carry: 2^32 − 1 bytes (`max_plaintext_size`).
pub const MAX_PLAINTEXT_LEN: u64 = u32::MAX as u64;
/// Plaintexts of this length and longer use the extended 6-byte length prefix.
pub const EXTENDED_PREFIX_THRESHOLD: usize = 65_536;
/// The shortest base64 payload the NIP allows (132 characters).
pub const MIN_PAYLOAD_CHARS: usize = 132;
/// The shortest decoded payload: version, nonce, 2-byte prefix, 32 padded bytes, MAC.
pub const MIN_PAYLOAD_BYTES: usize = 99;
/// The longest base64 payload [`decrypt`] accepts: 16 MiB, about 12 MiB of plaintext.
/// [`decrypt_limited`] takes another maximum.
pub const DEFAULT_MAX_PAYLOAD_CHARS: usize = 16 * 1024 * 1024;

const NONCE_LEN: usize = 32;
const MAC_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// The long-term key between two parties: HKDF-extract (SHA-256, salt `nip44-v2`) of the
/// unhashed x coordinate of their ECDH point. The same from either side:
/// `derive(a, B) == derive(b, A)`.
#[derive(Clone, PartialEq, Eq)]
pub struct ConversationKey([u8; 32]);

impl fmt::Debug for ConversationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConversationKey(<secret>)")
    }
}

impl ConversationKey {
    /// The conversation key of `secret_key` with `public_key`.
    ///
    /// A `SecretKey` is always a scalar in `[1, n − 1]`; a `PublicKey` is 32 bytes that may
    /// not be the x coordinate of a curve point, and is then refused.
    pub fn derive(secret_key: &SecretKey, public_key: &PublicKey) -> Result<Self, KeyError> {
        // BIP-340 x-only keys stand for the point with an even y coordinate.
        let mut compressed = [0u8; 33];
        compressed[0] = 0x02;
        compressed[1..].copy_from_slice(public_key.as_bytes());
        let point =
            secp256k1::PublicKey::from_slice(&compressed).map_err(|_| KeyError(*public_key))?;
        let shared = ecdh::shared_secret_point(&point, secret_key);
        let (prk, _) = Hkdf::<Sha256>::extract(Some(b"nip44-v2"), &shared[..32]);
        Ok(Self(prk.into()))
    }

    /// A conversation key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// The per-message keys: HKDF-expand (SHA-256) of the conversation key with the nonce as
/// `info`, 76 bytes sliced into the ChaCha20 key, the ChaCha20 nonce and the HMAC key.
#[derive(Clone, PartialEq, Eq)]
pub struct MessageKeys {
    /// Bytes 0..32.
    pub chacha_key: [u8; 32],
    /// Bytes 32..44.
    pub chacha_nonce: [u8; 12],
    /// Bytes 44..76.
    pub hmac_key: [u8; 32],
}

impl fmt::Debug for MessageKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageKeys(<secret>)")
    }
}

impl MessageKeys {
    /// The message keys for `nonce` under `key`.
    pub fn derive(key: &ConversationKey, nonce: &[u8; 32]) -> Self {
        let mut okm = [0u8; 76];
        let hkdf = match Hkdf::<Sha256>::from_prk(&key.0) {
            Ok(hkdf) => hkdf,
            Err(_) => unreachable!("a 32-byte PRK is long enough for SHA-256"),
        };
        if hkdf.expand(nonce, &mut okm).is_err() {
            unreachable!("76 bytes is within HKDF-SHA256's 8,160-byte limit");
        }
        let mut keys = Self {
            chacha_key: [0; 32],
            chacha_nonce: [0; 12],
            hmac_key: [0; 32],
        };
        keys.chacha_key.copy_from_slice(&okm[0..32]);
        keys.chacha_nonce.copy_from_slice(&okm[32..44]);
        keys.hmac_key.copy_from_slice(&okm[44..76]);
        keys
    }

    fn mac(&self, nonce: &[u8], ciphertext: &[u8]) -> HmacSha256 {
        let mut mac = match HmacSha256::new_from_slice(&self.hmac_key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(nonce);
        mac.update(ciphertext);
        mac
    }

    fn apply_keystream(&self, data: &mut [u8]) {
        let mut cipher = ChaCha20::new(&self.chacha_key.into(), &self.chacha_nonce.into());
        cipher.apply_keystream(data);
    }
}

/// The padded length of a plaintext of `len` bytes (without the length prefix): 32 for up to
/// 32 bytes, then multiples of a chunk that grows with the next power of two (32 up to 256,
/// then an eighth of the next power of two). For `len` up to 2^32 − 1 the result is at most
/// 2^32, hence `u64`.
pub fn calc_padded_len(len: u64) -> u64 {
    if len <= 32 {
        return 32;
    }
    let next_power = 1u64 << (u64::BITS - (len - 1).leading_zeros());
    let chunk = if next_power <= 256 {
        32
    } else {
        next_power / 8
    };
    chunk * ((len - 1) / chunk + 1)
}

/// The length-prefix size for a plaintext of `len` bytes: 2, or 6 from 65,536 bytes on.
pub fn prefix_len(len: u64) -> usize {
    if len < EXTENDED_PREFIX_THRESHOLD as u64 {
        2
    } else {
        6
    }
}

/// A public key that is not the x coordinate of a secp256k1 point.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("public key {0} is not a point on secp256k1")]
pub struct KeyError(pub PublicKey);

/// Why a plaintext cannot be encrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncryptError {
    /// The plaintext is empty: NIP-44 carries 1 to 2^32 − 1 bytes.
    #[error("NIP-44 cannot encrypt an empty plaintext (the minimum is 1 byte)")]
    Empty,
    /// The plaintext is longer than 2^32 − 1 bytes.
    #[error("the plaintext is {len} bytes, over NIP-44's maximum of 4,294,967,295")]
    TooLong {
        /// Its length in bytes.
        len: u64,
    },
}

/// Why a payload does not decrypt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    /// An empty payload, a payload starting with `#` (the flag of a future non-base64
    /// encoding), or a version byte other than 2.
    #[error("unsupported NIP-44 version {0} (only version 2 is supported)")]
    UnsupportedVersion(Version),
    /// Fewer than 132 base64 characters or 99 decoded bytes.
    #[error("NIP-44 payload too short: {len} {unit}, the minimum is {min}")]
    TooShort {
        /// The length found.
        len: usize,
        /// `characters` (base64) or `bytes` (decoded).
        unit: &'static str,
        /// The minimum in that unit.
        min: usize,
    },
    /// More base64 characters than the caller allows (checked before decoding).
    #[error("NIP-44 payload too long: {len} characters, the maximum here is {max}")]
    TooLong {
        /// The length found.
        len: usize,
        /// The maximum accepted.
        max: usize,
    },
    /// Not standard padded base64.
    #[error("NIP-44 payload is not valid base64: {0}")]
    Base64(String),
    /// The MAC does not match: wrong key, or the payload was altered.
    #[error("NIP-44 MAC does not match (wrong key or altered payload)")]
    Mac,
    /// The length prefix or the padding does not match the plaintext length.
    #[error("NIP-44 padding is invalid: {0}")]
    Padding(&'static str),
    /// The plaintext is not UTF-8.
    #[error("NIP-44 plaintext is not valid UTF-8")]
    Utf8,
}

/// The version a refused payload announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// An empty payload.
    Empty,
    /// A payload starting with `#`: a non-base64 encoding.
    NonBase64,
    /// A decoded version byte.
    Byte(u8),
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("(empty payload)"),
            Self::NonBase64 => f.write_str("'#' (non-base64 encoding)"),
            Self::Byte(b) => write!(f, "{b}"),
        }
    }
}

/// Encrypts `plaintext` with a fresh random nonce from the operating system's CSPRNG.
pub fn encrypt(key: &ConversationKey, plaintext: &str) -> Result<String, EncryptError> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    encrypt_with_nonce(key, plaintext, &nonce)
}

/// Encrypts `plaintext` with the given nonce. A nonce must never be used twice with one
/// conversation key; this form exists for test vectors and reproducible fixtures.
pub fn encrypt_with_nonce(
    key: &ConversationKey,
    plaintext: &str,
    nonce: &[u8; 32],
) -> Result<String, EncryptError> {
    Ok(BASE64.encode(encrypt_to_bytes(key, plaintext.as_bytes(), nonce)?))
}

/// The padded plaintext: length prefix, plaintext, zeros.
pub fn pad(plaintext: &[u8]) -> Result<Vec<u8>, EncryptError> {
    let len = plaintext.len() as u64;
    if len < MIN_PLAINTEXT_LEN as u64 {
        return Err(EncryptError::Empty);
    }
    if len > MAX_PLAINTEXT_LEN {
        return Err(EncryptError::TooLong { len });
    }
    let prefix = prefix_len(len);
    let total = prefix + usize::try_from(calc_padded_len(len)).unwrap_or(usize::MAX);
    let mut padded = Vec::with_capacity(total);
    if prefix == 2 {
        padded.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        padded.extend_from_slice(&[0, 0]);
        padded.extend_from_slice(&(len as u32).to_be_bytes());
    }
    padded.extend_from_slice(plaintext);
    padded.resize(total, 0);
    Ok(padded)
}

/// The raw (not base64) payload: version, nonce, ciphertext of the padded plaintext, MAC.
pub(crate) fn encrypt_to_bytes(
    key: &ConversationKey,
    plaintext: &[u8],
    nonce: &[u8; 32],
) -> Result<Vec<u8>, EncryptError> {
    let padded = pad(plaintext)?;
    let keys = MessageKeys::derive(key, nonce);
    let mut out = Vec::with_capacity(1 + NONCE_LEN + padded.len() + MAC_LEN);
    out.push(VERSION);
    out.extend_from_slice(nonce);
    let start = out.len();
    out.extend_from_slice(&padded);
    keys.apply_keystream(&mut out[start..]);
    let tag = keys.mac(nonce, &out[start..]).finalize().into_bytes();
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Decrypts a payload of at most [`DEFAULT_MAX_PAYLOAD_CHARS`] characters.
pub fn decrypt(key: &ConversationKey, payload: &str) -> Result<String, DecryptError> {
    decrypt_limited(key, payload, DEFAULT_MAX_PAYLOAD_CHARS)
}

/// Decrypts a payload of at most `max_chars` base64 characters.
pub fn decrypt_limited(
    key: &ConversationKey,
    payload: &str,
    max_chars: usize,
) -> Result<String, DecryptError> {
    let (_, plaintext) = decrypt_with_nonce(key, payload, max_chars)?;
    String::from_utf8(plaintext).map_err(|_| DecryptError::Utf8)
}

/// Decrypts and also returns the payload's nonce (for re-encryption checks).
pub(crate) fn decrypt_with_nonce(
    key: &ConversationKey,
    payload: &str,
    max_chars: usize,
) -> Result<([u8; 32], Vec<u8>), DecryptError> {
    let data = decode_payload(payload, max_chars)?;
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&data[1..1 + NONCE_LEN]);
    let mac_start = data.len() - MAC_LEN;
    let keys = MessageKeys::derive(key, &nonce);
    keys.mac(&nonce, &data[1 + NONCE_LEN..mac_start])
        .verify_slice(&data[mac_start..])
        .map_err(|_| DecryptError::Mac)?;
    let mut padded = data[1 + NONCE_LEN..mac_start].to_vec();
    keys.apply_keystream(&mut padded);
    Ok((nonce, unpad(padded)?))
}

/// Base64-decodes and splits a payload after the NIP's checks, in the NIP's order.
fn decode_payload(payload: &str, max_chars: usize) -> Result<Vec<u8>, DecryptError> {
    if payload.is_empty() {
        return Err(DecryptError::UnsupportedVersion(Version::Empty));
    }
    if payload.starts_with('#') {
        return Err(DecryptError::UnsupportedVersion(Version::NonBase64));
    }
    if payload.len() < MIN_PAYLOAD_CHARS {
        return Err(DecryptError::TooShort {
            len: payload.len(),
            unit: "characters",
            min: MIN_PAYLOAD_CHARS,
        });
    }
    if payload.len() > max_chars {
        return Err(DecryptError::TooLong {
            len: payload.len(),
            max: max_chars,
        });
    }
    let data = BASE64
        .decode(payload)
        .map_err(|e| DecryptError::Base64(e.to_string()))?;
    if data.len() < MIN_PAYLOAD_BYTES {
        return Err(DecryptError::TooShort {
            len: data.len(),
            unit: "bytes",
            min: MIN_PAYLOAD_BYTES,
        });
    }
    if data[0] != VERSION {
        return Err(DecryptError::UnsupportedVersion(Version::Byte(data[0])));
    }
    Ok(data)
}

/// Removes the length prefix and the padding, checking both.
pub fn unpad(mut padded: Vec<u8>) -> Result<Vec<u8>, DecryptError> {
    if padded.len() < 2 {
        return Err(DecryptError::Padding("no length prefix"));
    }
    let short = u16::from_be_bytes([padded[0], padded[1]]);
    let (prefix, len) = if short != 0 {
        (2usize, u64::from(short))
    } else {
        if padded.len() < 6 {
            return Err(DecryptError::Padding("extended length prefix cut short"));
        }
        let long = u32::from_be_bytes([padded[2], padded[3], padded[4], padded[5]]);
        if (long as usize) < EXTENDED_PREFIX_THRESHOLD {
            return Err(DecryptError::Padding(
                "extended length prefix below 65,536 (zero, or a length the 2-byte form carries)",
            ));
        }
        (6usize, u64::from(long))
    };
    let expected = prefix as u64 + calc_padded_len(len);
    if padded.len() as u64 != expected {
        return Err(DecryptError::Padding(
            "padded length does not match the plaintext length",
        ));
    }
    // `expected` fits: it equals `padded.len()`.
    let end = prefix + len as usize;
    if padded[end..].iter().any(|&b| b != 0) {
        return Err(DecryptError::Padding("padding bytes are not zero"));
    }
    padded.truncate(end);
    padded.drain(..prefix);
    Ok(padded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_lengths_around_the_prefix_switch() {
        assert_eq!(calc_padded_len(1), 32);
        assert_eq!(calc_padded_len(33), 64);
        assert_eq!(calc_padded_len(257), 320);
        assert_eq!(calc_padded_len(65_535), 65_536);
        assert_eq!(calc_padded_len(65_536), 65_536);
        assert_eq!(calc_padded_len(65_537), 81_920);
        assert_eq!(calc_padded_len(MAX_PLAINTEXT_LEN), 1 << 32);
        assert_eq!(prefix_len(65_535), 2);
        assert_eq!(prefix_len(65_536), 6);
    }

    #[test]
    fn unpad_refuses_an_extended_prefix_for_a_short_length() {
        // Zero, then 100 in the u32: a length the 2-byte form must carry.
        let mut padded = vec![0, 0, 0, 0, 0, 100];
        padded.resize(6 + 128, b'x');
        assert!(matches!(unpad(padded), Err(DecryptError::Padding(_))));
        let padded = vec![0u8; 6 + 32];
        assert!(matches!(unpad(padded), Err(DecryptError::Padding(_))));
    }

    #[test]
    fn unpad_refuses_nonzero_padding() {
        let mut padded = pad(b"abc").unwrap();
        assert_eq!(unpad(padded.clone()).unwrap(), b"abc");
        let last = padded.len() - 1;
        padded[last] = 1;
        assert_eq!(
            unpad(padded),
            Err(DecryptError::Padding("padding bytes are not zero"))
        );
    }
}
