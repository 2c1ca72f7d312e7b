//! Parsing untrusted event JSON under [`Limits`], and event ids written in hex.

use super::*;

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
pub(super) struct WireEvent<'a> {
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

pub(super) fn lower_hex<const N: usize>(
    s: &str,
    field: &'static str,
) -> Result<[u8; N], ParseError> {
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
pub(super) fn lower_hex_slowly<const N: usize>(
    s: &str,
    field: &'static str,
) -> Result<[u8; N], ParseError> {
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

/// Checks a hex id string (64 lowercase or uppercase hex characters) into an event id.
pub fn parse_event_id(s: &str) -> Result<EventId, crate::digest::HexError> {
    parse_hex32(s).map(EventId::from_byte_array)
}
