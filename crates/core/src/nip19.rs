//! NIP-19 bech32 entities: `npub`, `nsec`, `note`, `nprofile`, `nevent`, `naddr`.
//!
//! Provenance events are shared as `nevent` strings (event id, relay hints, author, kind), so
//! this is the first parser a verifier runs on untrusted input. It follows the text of NIP-19
//! rather than any one library, and differs from the `nostr` crate's decoder where that crate
//! strays from the text:
//!
//! - **bech32 only.** A string with a bech32m checksum (BIP-350) is rejected with
//!   [`Nip19Error::Bech32m`]; accepting it would give one entity two spellings.
//! - **Up to 5,000 characters**, the limit NIP-19 recommends ([`MAX_LEN`]). An `nevent` with a
//!   dozen relay hints is easily over the 1,023 characters the `bech32` crate allows.
//! - **Unknown TLV types are ignored**, as NIP-19 requires. Known types with a wrong length,
//!   or appearing twice (other than relays), are errors: a string naming two event ids is
//!   ambiguous, and it is better to refuse it than to guess.
//! - **Upper or lower case, never mixed** (BIP-173). Encoders always write lowercase.
//! - **Public keys are checked to be on the curve** (`npub`, `nprofile`, and the author of
//!   `nevent` and `naddr`); `nsec` must be a valid secp256k1 secret key.
//! - **Relay hints and `naddr` identifiers must be UTF-8.** At most [`MAX_RELAYS`] relay
//!   hints are accepted per entity; more is an error, not a truncation.
//!
//! Decoding never panics, and allocates only in proportion to the input, which is capped
//! before any other work. Errors never contain secret key material.
//!
//! `nrelay` (deprecated in NIP-19) is not supported and decodes as
//! [`Nip19Error::UnknownHrp`].
//!
//! [`decode_uri`] also accepts a NIP-21 `nostr:` URI, and rejects one that carries an `nsec`.
//!
//! # Example
//!
//! ```
//! use provenance::nip19::{self, Nip19, Nevent};
//! use provenance::EventId;
//!
//! let nevent = Nevent {
//!     id: EventId::from_byte_array([7; 32]),
//!     relays: vec!["wss://relay.example.com".to_owned()],
//!     author: None,
//!     kind: Some(1),
//! };
//! let shared = nevent.encode()?;
//! assert!(shared.starts_with("nevent1"));
//! assert_eq!(nip19::decode_uri(&format!("nostr:{shared}"))?, Nip19::Nevent(nevent));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use nostr::prelude::{EventId, PublicKey, SecretKey};

mod bech32;

/// The longest string decoded or produced, in characters (NIP-19: "SHOULD be limited in size
/// to 5000 characters").
pub const MAX_LEN: usize = bech32::MAX_LEN;

/// The most relay hints accepted in, or written to, one `nprofile`, `nevent` or `naddr`.
///
/// NIP-19 sets no number; 64 is far more than any client writes and keeps decoded values small.
pub const MAX_RELAYS: usize = 64;

/// The longest TLV value, in bytes: its length is one byte.
const MAX_TLV_VALUE: usize = 255;

/// TLV types (NIP-19 "Shareable identifiers with extra metadata").
const TLV_SPECIAL: u8 = 0;
const TLV_RELAY: u8 = 1;
const TLV_AUTHOR: u8 = 2;
const TLV_KIND: u8 = 3;

/// A decoded NIP-19 entity.
///
/// `Debug` never shows an `nsec`'s key.
#[derive(Clone, PartialEq, Eq)]
pub enum Nip19 {
    /// `npub`: a public key.
    Npub(PublicKey),
    /// `nsec`: a secret key.
    Nsec(SecretKey),
    /// `note`: an event id.
    Note(EventId),
    /// `nevent`: an event id with hints.
    Nevent(Nevent),
    /// `nprofile`: a public key with relay hints.
    Nprofile(Nprofile),
    /// `naddr`: the coordinate of an addressable event.
    Naddr(Naddr),
}

impl Nip19 {
    /// The bech32 prefix of this entity (`"npub"`, `"nevent"`, ...).
    pub fn hrp(&self) -> &'static str {
        match self {
            Self::Npub(_) => Hrp::Npub.as_str(),
            Self::Nsec(_) => Hrp::Nsec.as_str(),
            Self::Note(_) => Hrp::Note.as_str(),
            Self::Nevent(_) => Hrp::Nevent.as_str(),
            Self::Nprofile(_) => Hrp::Nprofile.as_str(),
            Self::Naddr(_) => Hrp::Naddr.as_str(),
        }
    }

    /// Encodes the entity as a lowercase bech32 string.
    ///
    /// Bare keys and ids always encode; the TLV entities fail as their `encode` methods do.
    pub fn encode(&self) -> Result<String, Nip19Error> {
        Ok(match self {
            Self::Npub(public_key) => encode_npub(public_key),
            Self::Nsec(secret_key) => encode_nsec(secret_key),
            Self::Note(id) => encode_note(id),
            Self::Nevent(nevent) => nevent.encode()?,
            Self::Nprofile(nprofile) => nprofile.encode()?,
            Self::Naddr(naddr) => naddr.encode()?,
        })
    }
}

impl fmt::Debug for Nip19 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Npub(public_key) => f.debug_tuple("Npub").field(public_key).finish(),
            Self::Nsec(_) => f
                .debug_tuple("Nsec")
                .field(&format_args!("<redacted>"))
                .finish(),
            Self::Note(id) => f.debug_tuple("Note").field(id).finish(),
            Self::Nevent(nevent) => f.debug_tuple("Nevent").field(nevent).finish(),
            Self::Nprofile(nprofile) => f.debug_tuple("Nprofile").field(nprofile).finish(),
            Self::Naddr(naddr) => f.debug_tuple("Naddr").field(naddr).finish(),
        }
    }
}

/// An `nevent`: an event id, with optional hints for finding and checking the event.
///
/// # Format
///
/// TLV 0 is the 32-byte id (required), TLV 1 a relay URL (zero or more, UTF-8, each at most
/// 255 bytes), TLV 2 the author's 32-byte x-only public key, TLV 3 the kind as a big-endian
/// `u32`. [`Nevent::encode`] writes them in that order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nevent {
    /// The event id.
    pub id: EventId,
    /// Relays where the event is likely to be found (at most [`MAX_RELAYS`]).
    pub relays: Vec<String>,
    /// The event's author, if given.
    pub author: Option<PublicKey>,
    /// The event's kind, if given.
    pub kind: Option<u32>,
}

impl Nevent {
    /// Encodes as a lowercase `nevent1...` string.
    ///
    /// Fails when a relay URL is over 255 bytes, there are more than [`MAX_RELAYS`] relays,
    /// or the result would be longer than [`MAX_LEN`].
    pub fn encode(&self) -> Result<String, Nip19Error> {
        let mut tlvs = TlvWriter::new(Hrp::Nevent);
        tlvs.push(TLV_SPECIAL, self.id.as_bytes())?;
        tlvs.push_relays(&self.relays)?;
        if let Some(author) = &self.author {
            tlvs.push(TLV_AUTHOR, author.as_bytes())?;
        }
        if let Some(kind) = self.kind {
            tlvs.push(TLV_KIND, &kind.to_be_bytes())?;
        }
        tlvs.finish()
    }
}

/// An `nprofile`: a public key with relay hints.
///
/// # Format
///
/// TLV 0 is the 32-byte x-only public key (required), TLV 1 a relay URL (zero or more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nprofile {
    /// The profile's public key.
    pub pubkey: PublicKey,
    /// Relays where the profile is likely to be found (at most [`MAX_RELAYS`]).
    pub relays: Vec<String>,
}

impl Nprofile {
    /// Encodes as a lowercase `nprofile1...` string.
    ///
    /// Fails as [`Nevent::encode`] does.
    pub fn encode(&self) -> Result<String, Nip19Error> {
        let mut tlvs = TlvWriter::new(Hrp::Nprofile);
        tlvs.push(TLV_SPECIAL, self.pubkey.as_bytes())?;
        tlvs.push_relays(&self.relays)?;
        tlvs.finish()
    }
}

/// An `naddr`: the coordinate (kind, author, `d` tag) of an addressable event.
///
/// # Format
///
/// TLV 0 is the identifier (required, UTF-8, may be empty), TLV 1 a relay URL (zero or more),
/// TLV 2 the author's 32-byte x-only public key (required), TLV 3 the kind as a big-endian
/// `u32` (required).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naddr {
    /// The `d` tag of the event; empty for a plain replaceable event.
    pub identifier: String,
    /// The event's author.
    pub author: PublicKey,
    /// The event's kind.
    pub kind: u32,
    /// Relays where the event is likely to be found (at most [`MAX_RELAYS`]).
    pub relays: Vec<String>,
}

impl Naddr {
    /// Encodes as a lowercase `naddr1...` string.
    ///
    /// Fails as [`Nevent::encode`] does, and when the identifier is over 255 bytes.
    pub fn encode(&self) -> Result<String, Nip19Error> {
        let mut tlvs = TlvWriter::new(Hrp::Naddr);
        tlvs.push(TLV_SPECIAL, self.identifier.as_bytes())?;
        tlvs.push_relays(&self.relays)?;
        tlvs.push(TLV_AUTHOR, self.author.as_bytes())?;
        tlvs.push(TLV_KIND, &self.kind.to_be_bytes())?;
        tlvs.finish()
    }
}

/// Why a string is not a valid NIP-19 entity, or an entity cannot be encoded.
///
/// No variant carries secret key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Nip19Error {
    /// The checksum is bech32m (BIP-350); NIP-19 strings must be bech32 (BIP-173).
    #[error("checksum is bech32m, expected bech32 (NIP-19 does not allow bech32m)")]
    Bech32m,
    /// The checksum is neither bech32 nor bech32m: the string was mistyped or altered.
    #[error("invalid bech32 checksum")]
    Checksum,
    /// A TLV type that may appear only once appears again.
    #[error("`{hrp}` has TLV type {tlv_type} more than once, expected at most one")]
    DuplicateTlv {
        /// The entity's prefix.
        hrp: &'static str,
        /// The repeated TLV type.
        tlv_type: u8,
    },
    /// The human-readable part (before the last `1`) is empty or too long.
    #[error("human-readable part is {found} characters, expected 1 to {max}")]
    HrpLength {
        /// The longest allowed (83, BIP-173).
        max: usize,
        /// Its length.
        found: usize,
    },
    /// A character that bech32 does not allow: outside printable US-ASCII, or not in the
    /// bech32 alphabet after the separator.
    #[error("invalid character {character:?} at position {position}")]
    InvalidCharacter {
        /// Its position in characters from the start of the string (after any `nostr:`).
        position: usize,
        /// The character.
        character: char,
    },
    /// The data does not regroup into whole bytes: more than 4 padding bits, or non-zero ones.
    #[error("invalid bech32 padding, expected at most 4 zero bits")]
    InvalidPadding,
    /// A public key is not the x coordinate of a point on secp256k1.
    #[error("`{hrp}` public key is not a valid secp256k1 x-only key")]
    InvalidPublicKey {
        /// The entity's prefix.
        hrp: &'static str,
    },
    /// An `nsec` is zero or not below the secp256k1 group order.
    #[error("`nsec` is not a valid secp256k1 secret key")]
    InvalidSecretKey,
    /// There is no separator `1` between the human-readable part and the data.
    #[error("no separator `1` found, expected `<prefix>1<data>`")]
    MissingSeparator,
    /// A required TLV is absent.
    #[error("`{hrp}` has no TLV type {tlv_type} ({name}), expected one")]
    MissingTlv {
        /// The entity's prefix.
        hrp: &'static str,
        /// The missing TLV type.
        tlv_type: u8,
        /// What it holds (`"id"`, `"author"`, ...).
        name: &'static str,
    },
    /// Both upper- and lower-case letters appear (BIP-173 forbids mixing them).
    #[error("mixed upper and lower case, expected one or the other")]
    MixedCase,
    /// A relay hint or `naddr` identifier is not UTF-8.
    #[error("`{hrp}` TLV type {tlv_type} at byte {offset} is not valid UTF-8")]
    NotUtf8 {
        /// The entity's prefix.
        hrp: &'static str,
        /// The TLV type.
        tlv_type: u8,
        /// Offset of the TLV in the decoded data.
        offset: usize,
    },
    /// A `nostr:` URI carries an `nsec`, which NIP-21 forbids.
    #[error("`nostr:` URI carries an `nsec`, expected a public entity (NIP-21)")]
    NsecInUri,
    /// A bare key or id is not 32 bytes.
    #[error("`{hrp}` payload is {found} bytes, expected {expected}")]
    PayloadLength {
        /// The entity's prefix.
        hrp: &'static str,
        /// The required length.
        expected: usize,
        /// The decoded length.
        found: usize,
    },
    /// A known TLV has the wrong length (an id, key or kind).
    #[error("`{hrp}` TLV type {tlv_type} is {found} bytes, expected {expected}")]
    TlvLength {
        /// The entity's prefix.
        hrp: &'static str,
        /// The TLV type.
        tlv_type: u8,
        /// The required length.
        expected: usize,
        /// Its length.
        found: usize,
    },
    /// A TLV's header or declared length runs past the end of the data.
    #[error("`{hrp}` TLV at byte {offset} needs {needed} bytes, found {remaining}")]
    TlvPastEnd {
        /// The entity's prefix.
        hrp: &'static str,
        /// Offset of the TLV in the decoded data.
        offset: usize,
        /// Bytes the TLV needs: 2 for the header, plus its declared length once that is known.
        needed: usize,
        /// Bytes left from `offset`.
        remaining: usize,
    },
    /// The string is over [`MAX_LEN`] characters (decoding) or would be (encoding).
    #[error("bech32 string is {found} characters, over the limit of {limit}")]
    TooLong {
        /// The limit, [`MAX_LEN`].
        limit: usize,
        /// The length (in bytes when decoding; non-ASCII input fails later regardless).
        found: usize,
    },
    /// More relay hints than [`MAX_RELAYS`].
    #[error("{found} relay hints, over the limit of {limit}")]
    TooManyRelays {
        /// The limit, [`MAX_RELAYS`].
        limit: usize,
        /// How many there are.
        found: usize,
    },
    /// The data part is shorter than the 6-character checksum.
    #[error("data part is {found} characters, expected at least 6 (the checksum)")]
    TooShort {
        /// Characters after the separator.
        found: usize,
    },
    /// The prefix is not one NIP-19 defines (`nrelay`, deprecated, is not supported).
    #[error("unknown prefix `{found}`, expected npub, nsec, note, nprofile, nevent or naddr")]
    UnknownHrp {
        /// The prefix, lowercased.
        found: String,
    },
    /// A value to encode does not fit a TLV (its length is one byte).
    #[error("`{hrp}` TLV type {tlv_type} value is {found} bytes, over the limit of {limit}")]
    ValueTooLong {
        /// The entity's prefix.
        hrp: &'static str,
        /// The TLV type.
        tlv_type: u8,
        /// The limit, 255.
        limit: usize,
        /// The value's length.
        found: usize,
    },
    /// A typed decoder ([`decode_npub`], ...) was given another kind of entity.
    #[error("prefix is `{found}`, expected `{expected}`")]
    WrongHrp {
        /// The prefix the caller asked for.
        expected: &'static str,
        /// The prefix found, lowercased.
        found: String,
    },
}

/// Decodes any NIP-19 entity.
///
/// The input must be the bare bech32 string; use [`decode_uri`] for `nostr:` URIs.
pub fn decode(s: &str) -> Result<Nip19, Nip19Error> {
    let (hrp, data) = bech32::decode(s)?;
    from_parts(Hrp::parse(hrp)?, &data)
}

/// Decodes a NIP-21 `nostr:` URI, or a bare NIP-19 string.
///
/// The scheme is matched case-insensitively. A URI carrying an `nsec` is rejected
/// ([`Nip19Error::NsecInUri`]) before the key is decoded; a bare `nsec` decodes as in
/// [`decode`].
pub fn decode_uri(s: &str) -> Result<Nip19, Nip19Error> {
    let Some(rest) = s
        .get(..6)
        .filter(|scheme| scheme.eq_ignore_ascii_case("nostr:"))
    else {
        return decode(s);
    };
    let (hrp, data) = bech32::decode(&s[rest.len()..])?;
    let hrp = Hrp::parse(hrp)?;
    if hrp == Hrp::Nsec {
        return Err(Nip19Error::NsecInUri);
    }
    from_parts(hrp, &data)
}

/// Decodes an `npub`; any other prefix is [`Nip19Error::WrongHrp`].
pub fn decode_npub(s: &str) -> Result<PublicKey, Nip19Error> {
    parse_npub(&decode_expecting(s, Hrp::Npub)?)
}

/// Decodes an `nsec`; any other prefix is [`Nip19Error::WrongHrp`].
pub fn decode_nsec(s: &str) -> Result<SecretKey, Nip19Error> {
    parse_nsec(&decode_expecting(s, Hrp::Nsec)?)
}

/// Decodes a `note`; any other prefix is [`Nip19Error::WrongHrp`].
pub fn decode_note(s: &str) -> Result<EventId, Nip19Error> {
    parse_note(&decode_expecting(s, Hrp::Note)?)
}

/// Decodes an `nevent`; any other prefix is [`Nip19Error::WrongHrp`].
pub fn decode_nevent(s: &str) -> Result<Nevent, Nip19Error> {
    parse_nevent(&decode_expecting(s, Hrp::Nevent)?)
}

/// Why [`parse_public_key`] refused a string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublicKeyError {
    /// The string starts like an `npub` and is not a valid one.
    #[error(transparent)]
    Npub(#[from] Nip19Error),
    /// The string is neither an `npub` nor 64 hex digits of a point on secp256k1.
    #[error("not an npub or a 64-hex public key")]
    NotAKey,
}

/// Parses a public key as people write one (in trust lists, allow lists and flags):
/// `npub1...` or 64 hex digits. Either way the key must be the x coordinate of a point on
/// secp256k1, or no signature could ever verify under it. The one parser of written keys in
/// the workspace.
pub fn parse_public_key(s: &str) -> Result<PublicKey, PublicKeyError> {
    if s.starts_with("npub1") {
        return Ok(decode_npub(s)?);
    }
    PublicKey::from_hex(s)
        .ok()
        .filter(|k| k.xonly().is_ok())
        .ok_or(PublicKeyError::NotAKey)
}

/// Encodes a public key as `npub1...`.
pub fn encode_npub(public_key: &PublicKey) -> String {
    bech32::encode(Hrp::Npub.as_str(), public_key.as_bytes())
}

/// Encodes a secret key as `nsec1...`.
pub fn encode_nsec(secret_key: &SecretKey) -> String {
    bech32::encode(Hrp::Nsec.as_str(), secret_key.as_secret_bytes())
}

/// Encodes an event id as `note1...`.
pub fn encode_note(id: &EventId) -> String {
    bech32::encode(Hrp::Note.as_str(), id.as_bytes())
}

/// Support for the `nip19_decode` fuzz target and its seed test; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use super::{decode, decode_uri};

    /// Checks the round-trip property on any input: if `input` decodes (bare or as a `nostr:`
    /// URI), the value re-encodes, the encoding decodes to the same value, and encoding again
    /// gives the same string, no longer than the input.
    ///
    /// # Panics
    ///
    /// When the property does not hold, which is a bug in this module.
    pub fn check_round_trip(input: &str) {
        let bare = decode(input);
        let Ok(decoded) = decode_uri(input) else {
            assert!(
                bare.is_err(),
                "decode accepts what decode_uri refuses: {input:?}"
            );
            return;
        };
        if let Ok(bare) = bare {
            assert_eq!(bare, decoded, "decode and decode_uri disagree on {input:?}");
        }
        // A decoded value has at most MAX_RELAYS relays of at most 255 bytes, and dropping
        // unknown TLVs only shortens it, so it always fits again.
        let encoded = decoded.encode().expect("a decoded entity re-encodes");
        assert!(
            encoded.len() <= input.len(),
            "{encoded:?} is longer than {input:?}"
        );
        // What the encoders write is what the decoder accepts.
        let again = decode(&encoded).expect("an encoded entity decodes");
        assert_eq!(
            again, decoded,
            "{input:?} does not round-trip through {encoded:?}"
        );
        assert_eq!(
            again.encode().as_ref(),
            Ok(&encoded),
            "encoding is not canonical"
        );
    }
}

/// The prefixes this module decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hrp {
    Npub,
    Nsec,
    Note,
    Nevent,
    Nprofile,
    Naddr,
}

impl Hrp {
    fn parse(hrp: String) -> Result<Self, Nip19Error> {
        Ok(match hrp.as_str() {
            "npub" => Self::Npub,
            "nsec" => Self::Nsec,
            "note" => Self::Note,
            "nevent" => Self::Nevent,
            "nprofile" => Self::Nprofile,
            "naddr" => Self::Naddr,
            _ => return Err(Nip19Error::UnknownHrp { found: hrp }),
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Npub => "npub",
            Self::Nsec => "nsec",
            Self::Note => "note",
            Self::Nevent => "nevent",
            Self::Nprofile => "nprofile",
            Self::Naddr => "naddr",
        }
    }
}

/// Decodes the bech32 layer and checks the prefix before looking at the data.
fn decode_expecting(s: &str, expected: Hrp) -> Result<Vec<u8>, Nip19Error> {
    let (hrp, data) = bech32::decode(s)?;
    if hrp != expected.as_str() {
        return Err(Nip19Error::WrongHrp {
            expected: expected.as_str(),
            found: hrp,
        });
    }
    Ok(data)
}

fn from_parts(hrp: Hrp, data: &[u8]) -> Result<Nip19, Nip19Error> {
    Ok(match hrp {
        Hrp::Npub => Nip19::Npub(parse_npub(data)?),
        Hrp::Nsec => Nip19::Nsec(parse_nsec(data)?),
        Hrp::Note => Nip19::Note(parse_note(data)?),
        Hrp::Nevent => Nip19::Nevent(parse_nevent(data)?),
        Hrp::Nprofile => Nip19::Nprofile(parse_nprofile(data)?),
        Hrp::Naddr => Nip19::Naddr(parse_naddr(data)?),
    })
}

fn bare32(hrp: Hrp, data: &[u8]) -> Result<[u8; 32], Nip19Error> {
    data.try_into().map_err(|_| Nip19Error::PayloadLength {
        hrp: hrp.as_str(),
        expected: 32,
        found: data.len(),
    })
}

fn parse_npub(data: &[u8]) -> Result<PublicKey, Nip19Error> {
    public_key(Hrp::Npub, bare32(Hrp::Npub, data)?)
}

fn parse_nsec(data: &[u8]) -> Result<SecretKey, Nip19Error> {
    let bytes = bare32(Hrp::Nsec, data)?;
    SecretKey::from_slice(&bytes).map_err(|_| Nip19Error::InvalidSecretKey)
}

fn parse_note(data: &[u8]) -> Result<EventId, Nip19Error> {
    Ok(EventId::from_byte_array(bare32(Hrp::Note, data)?))
}

fn parse_nevent(data: &[u8]) -> Result<Nevent, Nip19Error> {
    let hrp = Hrp::Nevent;
    let tlvs = Tlvs::read(hrp, data)?;
    let id = tlvs.required(TLV_SPECIAL, "id")?;
    Ok(Nevent {
        id: EventId::from_byte_array(tlv32(hrp, TLV_SPECIAL, id)?),
        relays: tlvs.relays,
        author: tlvs
            .author
            .map(|(_, a)| public_key(hrp, tlv32(hrp, TLV_AUTHOR, a)?))
            .transpose()?,
        kind: tlvs.kind.map(|(_, k)| kind(hrp, k)).transpose()?,
    })
}

fn parse_nprofile(data: &[u8]) -> Result<Nprofile, Nip19Error> {
    let hrp = Hrp::Nprofile;
    let tlvs = Tlvs::read(hrp, data)?;
    let pubkey = tlvs.required(TLV_SPECIAL, "pubkey")?;
    Ok(Nprofile {
        pubkey: public_key(hrp, tlv32(hrp, TLV_SPECIAL, pubkey)?)?,
        relays: tlvs.relays,
    })
}

fn parse_naddr(data: &[u8]) -> Result<Naddr, Nip19Error> {
    let hrp = Hrp::Naddr;
    let tlvs = Tlvs::read(hrp, data)?;
    let (offset, identifier) = tlvs.special.ok_or(Nip19Error::MissingTlv {
        hrp: hrp.as_str(),
        tlv_type: TLV_SPECIAL,
        name: "identifier",
    })?;
    let identifier = utf8(hrp, TLV_SPECIAL, offset, identifier)?.to_owned();
    let author = tlvs.required(TLV_AUTHOR, "author")?;
    let kind_bytes = tlvs.required(TLV_KIND, "kind")?;
    Ok(Naddr {
        identifier,
        author: public_key(hrp, tlv32(hrp, TLV_AUTHOR, author)?)?,
        kind: kind(hrp, kind_bytes)?,
        relays: tlvs.relays,
    })
}

/// A public key whose bytes are checked to be a curve point: `PublicKey::from_slice` does not
/// check, and a verifier must not report an author that no signature can come from.
fn public_key(hrp: Hrp, bytes: [u8; 32]) -> Result<PublicKey, Nip19Error> {
    secp256k1::XOnlyPublicKey::from_byte_array(&bytes)
        .map_err(|_| Nip19Error::InvalidPublicKey { hrp: hrp.as_str() })?;
    Ok(PublicKey::from_byte_array(bytes))
}

fn tlv32(hrp: Hrp, tlv_type: u8, value: &[u8]) -> Result<[u8; 32], Nip19Error> {
    value.try_into().map_err(|_| Nip19Error::TlvLength {
        hrp: hrp.as_str(),
        tlv_type,
        expected: 32,
        found: value.len(),
    })
}

fn kind(hrp: Hrp, value: &[u8]) -> Result<u32, Nip19Error> {
    let bytes: [u8; 4] = value.try_into().map_err(|_| Nip19Error::TlvLength {
        hrp: hrp.as_str(),
        tlv_type: TLV_KIND,
        expected: 4,
        found: value.len(),
    })?;
    Ok(u32::from_be_bytes(bytes))
}

fn utf8(hrp: Hrp, tlv_type: u8, offset: usize, value: &[u8]) -> Result<&str, Nip19Error> {
    std::str::from_utf8(value).map_err(|_| Nip19Error::NotUtf8 {
        hrp: hrp.as_str(),
        tlv_type,
        offset,
    })
}

/// The TLVs of one entity, borrowed from the decoded data, each known one with its offset.
struct Tlvs<'a> {
    hrp: Hrp,
    special: Option<(usize, &'a [u8])>,
    relays: Vec<String>,
    author: Option<(usize, &'a [u8])>,
    kind: Option<(usize, &'a [u8])>,
}

impl<'a> Tlvs<'a> {
    fn read(hrp: Hrp, data: &'a [u8]) -> Result<Self, Nip19Error> {
        let mut tlvs = Self {
            hrp,
            special: None,
            relays: Vec::new(),
            author: None,
            kind: None,
        };
        let mut relay_count = 0;
        let mut offset = 0;
        let mut rest = data;
        while !rest.is_empty() {
            let past_end = |needed| Nip19Error::TlvPastEnd {
                hrp: hrp.as_str(),
                offset,
                needed,
                remaining: rest.len(),
            };
            let [tlv_type, length, tail @ ..] = rest else {
                return Err(past_end(2));
            };
            let length = usize::from(*length);
            let (value, next) = tail.split_at_checked(length).ok_or(past_end(2 + length))?;
            // `nprofile` defines only types 0 and 1; its other types are unknown, so ignored.
            let slot = match (*tlv_type, hrp) {
                (TLV_SPECIAL, _) => Some(&mut tlvs.special),
                (TLV_AUTHOR | TLV_KIND, Hrp::Nprofile) => None,
                (TLV_AUTHOR, _) => Some(&mut tlvs.author),
                (TLV_KIND, _) => Some(&mut tlvs.kind),
                (TLV_RELAY, _) => {
                    relay_count += 1;
                    if relay_count <= MAX_RELAYS {
                        tlvs.relays
                            .push(utf8(hrp, TLV_RELAY, offset, value)?.to_owned());
                    }
                    None
                }
                _ => None,
            };
            if let Some(slot) = slot {
                if slot.is_some() {
                    return Err(Nip19Error::DuplicateTlv {
                        hrp: hrp.as_str(),
                        tlv_type: *tlv_type,
                    });
                }
                *slot = Some((offset, value));
            }
            offset += 2 + length;
            rest = next;
        }
        if relay_count > MAX_RELAYS {
            return Err(Nip19Error::TooManyRelays {
                limit: MAX_RELAYS,
                found: relay_count,
            });
        }
        Ok(tlvs)
    }

    fn required(&self, tlv_type: u8, name: &'static str) -> Result<&'a [u8], Nip19Error> {
        let slot = match tlv_type {
            TLV_SPECIAL => self.special,
            TLV_AUTHOR => self.author,
            _ => self.kind,
        };
        slot.map(|(_, value)| value).ok_or(Nip19Error::MissingTlv {
            hrp: self.hrp.as_str(),
            tlv_type,
            name,
        })
    }
}

/// Builds a TLV payload and checks the limits on the way.
struct TlvWriter {
    hrp: Hrp,
    data: Vec<u8>,
}

impl TlvWriter {
    fn new(hrp: Hrp) -> Self {
        Self {
            hrp,
            data: Vec::new(),
        }
    }

    fn push(&mut self, tlv_type: u8, value: &[u8]) -> Result<(), Nip19Error> {
        let length = u8::try_from(value.len()).map_err(|_| Nip19Error::ValueTooLong {
            hrp: self.hrp.as_str(),
            tlv_type,
            limit: MAX_TLV_VALUE,
            found: value.len(),
        })?;
        self.data.push(tlv_type);
        self.data.push(length);
        self.data.extend_from_slice(value);
        Ok(())
    }

    fn push_relays(&mut self, relays: &[String]) -> Result<(), Nip19Error> {
        if relays.len() > MAX_RELAYS {
            return Err(Nip19Error::TooManyRelays {
                limit: MAX_RELAYS,
                found: relays.len(),
            });
        }
        relays
            .iter()
            .try_for_each(|relay| self.push(TLV_RELAY, relay.as_bytes()))
    }

    fn finish(self) -> Result<String, Nip19Error> {
        let hrp = self.hrp.as_str();
        // prefix, separator, data in 5-bit groups, 6-group checksum
        let length = hrp.len() + 1 + (self.data.len() * 8).div_ceil(5) + 6;
        if length > MAX_LEN {
            return Err(Nip19Error::TooLong {
                limit: MAX_LEN,
                found: length,
            });
        }
        Ok(bech32::encode(hrp, &self.data))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests;
