//! NIP-17 private direct messages in NIP-59 gift wraps.
//!
//! A message is an unsigned *rumor* (kind 14 for a chat message), encrypted to the recipient
//! with NIP-44 inside a *seal* (kind 13, signed by the sender, no tags), itself encrypted to
//! the recipient inside a *gift wrap* (kind 1059, or 21059 for an ephemeral one that relays do
//! not store) signed by a one-time key and carrying the recipient's `p` tag. The seal and the
//! wrap are dated up to two days in the past, independently and at random, as NIP-59 and
//! NIP-17 ask; the rumor keeps the real time.
//!
//! [`unwrap`] checks, in this order, and refuses with one [`UnwrapError`] each: the wrap's
//! kind, the size of its content ([`Limits::max_wrap_content`]), that a `p` tag names the
//! recipient, that it is not dated beyond the future window ([`Limits::max_future_secs`]),
//! its id and signature; that it decrypts for the recipient; that the seal is an event of
//! kind 13 with a valid id and signature, not from the future; that the rumor decrypts, is an
//! event object with no `sig` field, is by the seal's author (otherwise anyone could put any
//! author on the inner event), has the id its fields hash to, and is not from the future.
//! Past dates are normal (the outer layers are backdated on purpose) and never refused.
//!
//! What this layer does not do: it keeps no state, so a gift wrap delivered twice unwraps
//! twice. Refusing replays is the receiver's job: it keeps the ids ([`Unwrapped::wrap_id`]) of
//! the wraps it handled. Nor does it decide whom to answer (an allow-list of senders), or talk
//! to relays.
//!
//! ```
//! use provenance::{Keys, Timestamp};
//! use provenance_dm::gift::{self, WrapKind};
//!
//! let alice = Keys::generate();
//! let bob = Keys::generate();
//! let now = Timestamp::from_secs(1_800_000_000);
//! let rumor = gift::message(&alice.public_key(), &bob.public_key(), "hello", now);
//! let wrapped = gift::wrap(&alice, &bob.public_key(), rumor, WrapKind::Stored, now)?;
//!
//! let opened = gift::unwrap(&bob, &wrapped, now)?;
//! assert_eq!(opened.sender, alice.public_key());
//! assert_eq!(opened.rumor.content, "hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use provenance::nostr::prelude::{Kind, SignEvent, Tag, UnsignedEvent};
use provenance::{Event, EventId, Keys, PublicKey, Timestamp};
use rand::{Rng, RngCore};

use crate::nip44::{self, ConversationKey, DecryptError, EncryptError, KeyError};

/// The kind of a seal.
pub const SEAL_KIND: u16 = 13;
/// The kind of a NIP-17 chat message rumor.
pub const CHAT_MESSAGE_KIND: u16 = 14;
/// The kind of a gift wrap that relays store.
pub const GIFT_WRAP_KIND: u16 = 1059;
/// The kind of an ephemeral gift wrap (relays do not store it).
pub const EPHEMERAL_GIFT_WRAP_KIND: u16 = 21059;
/// How far back the seal and the wrap are dated, at most: two days, in seconds.
pub const MAX_BACKDATE_SECS: u64 = 2 * 24 * 60 * 60;

/// The two gift wrap kinds of NIP-59.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WrapKind {
    /// Kind 1059: stored by relays, for asynchronous delivery (NIP-17 messages).
    Stored,
    /// Kind 21059: ephemeral, only for recipients connected now.
    Ephemeral,
}

impl WrapKind {
    /// The event kind number.
    pub fn as_u16(self) -> u16 {
        match self {
            Self::Stored => GIFT_WRAP_KIND,
            Self::Ephemeral => EPHEMERAL_GIFT_WRAP_KIND,
        }
    }

    /// The wrap kind of an event kind number, if it is one.
    pub fn from_u16(kind: u16) -> Option<Self> {
        match kind {
            GIFT_WRAP_KIND => Some(Self::Stored),
            EPHEMERAL_GIFT_WRAP_KIND => Some(Self::Ephemeral),
            _ => None,
        }
    }
}

/// The bounds [`unwrap_with`] enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest gift wrap `content` accepted, in bytes (base64 characters). It bounds
    /// every inner layer too. Default: 1 MiB (1,048,576), which carries a rumor of up to
    /// 458,752 bytes (448 KiB) of JSON once sealed and wrapped (NIP-44 padding makes the
    /// steps coarse).
    pub max_wrap_content: usize,
    /// How far in the future (seconds past `now`) the wrap, the seal and the rumor may be
    /// dated. Default: 600 seconds, for clock skew. Dates in the past are never refused.
    pub max_future_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_wrap_content: 1024 * 1024,
            max_future_secs: 600,
        }
    }
}

/// A gift wrap opened and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwrapped {
    /// The sender: the author of the seal, and of the rumor.
    pub sender: PublicKey,
    /// The message, unsigned, with its id checked.
    pub rumor: UnsignedEvent,
    /// The gift wrap's id: what a receiver records to refuse the same wrap twice.
    pub wrap_id: EventId,
    /// Which of the two wrap kinds carried it.
    pub wrap_kind: WrapKind,
    /// The seal's (backdated) time.
    pub seal_created_at: Timestamp,
}

/// Which layer of a gift wrap an [`UnwrapError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The outer kind 1059 / 21059 event.
    Wrap,
    /// The kind 13 event inside it.
    Seal,
    /// The unsigned message inside the seal.
    Rumor,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Wrap => "gift wrap",
            Self::Seal => "seal",
            Self::Rumor => "rumor",
        })
    }
}

/// Why a gift wrap is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnwrapError {
    /// The event is not of kind 1059 or 21059.
    #[error("event of kind {0} is not a gift wrap (kind 1059 or 21059)")]
    NotGiftWrap(u16),
    /// The wrap's content is longer than [`Limits::max_wrap_content`].
    #[error("gift wrap content is {len} bytes, over the maximum of {max}")]
    TooLarge {
        /// The content's length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// No `p` tag of the wrap names the recipient.
    #[error("gift wrap is not addressed to this recipient (no p tag names {0})")]
    NotForRecipient(PublicKey),
    /// A layer is dated further in the future than [`Limits::max_future_secs`].
    #[error("{layer} is dated {ahead} s in the future, over the window of {max} s")]
    FromTheFuture {
        /// The layer.
        layer: Layer,
        /// Seconds past `now`.
        ahead: u64,
        /// The window.
        max: u64,
    },
    /// The id of the wrap or the seal is not the hash of its fields.
    #[error("{0} id does not match its content")]
    BadId(Layer),
    /// The signature of the wrap or the seal does not verify.
    #[error("{0} signature is invalid")]
    BadSignature(Layer),
    /// The author of the wrap or the seal is not a point on the curve.
    #[error("{0} author is not a valid public key: {1}")]
    BadKey(Layer, KeyError),
    /// The wrap's or the seal's content does not decrypt for the recipient.
    #[error("{0} content does not decrypt for this recipient: {1}")]
    Decrypt(Layer, DecryptError),
    /// A decrypted layer is not the JSON event it must be.
    #[error("{0} is not a valid event: {1}")]
    Malformed(Layer, String),
    /// The wrap holds an event of another kind than 13.
    #[error("gift wrap holds an event of kind {0}, not a seal (kind 13)")]
    NotSeal(u16),
    /// The rumor carries a signature: a signed inner event could be shown to third parties,
    /// which NIP-59 forbids.
    #[error("rumor is signed (it has a sig field); NIP-59 rumors are unsigned")]
    SignedRumor,
    /// The rumor names another author than the seal's signer: an impersonation attempt.
    #[error("rumor claims author {rumor} but the seal is signed by {seal}")]
    ForgedAuthor {
        /// The seal's author (who really sent it).
        seal: PublicKey,
        /// The author the rumor claims.
        rumor: PublicKey,
    },
    /// The rumor has no id (NIP-17 requires one).
    #[error("rumor has no id")]
    RumorIdMissing,
    /// The rumor's id is not the hash of its fields.
    #[error("rumor id {claimed} does not match its content (hash {computed})")]
    RumorIdMismatch {
        /// The id it carries.
        claimed: EventId,
        /// The hash of its fields.
        computed: EventId,
    },
}

/// Why a message cannot be wrapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WrapError {
    /// The rumor names another author than the sender's key.
    #[error("rumor author {rumor} is not the sender {sender}")]
    RumorAuthor {
        /// The sender's key.
        sender: PublicKey,
        /// The rumor's pubkey.
        rumor: PublicKey,
    },
    /// The rumor carries an id that is not the hash of its fields.
    #[error("rumor id does not match its content")]
    RumorId,
    /// The recipient's key is not a point on the curve.
    #[error("recipient {0}")]
    Recipient(KeyError),
    /// A layer cannot be encrypted (an empty or over-long plaintext).
    #[error("cannot encrypt the {0}: {1}")]
    Encrypt(Layer, EncryptError),
    /// The wrap would be larger than [`Limits::max_wrap_content`], so [`unwrap`] would refuse
    /// it.
    #[error("gift wrap content would be {len} bytes, over the maximum of {max}")]
    TooLarge {
        /// The content's length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// Signing failed.
    #[error("cannot sign the {0}: {1}")]
    Sign(Layer, String),
}

/// The random choices of one [`wrap`]: the one-time key, the two backdating offsets and the
/// two NIP-44 nonces. [`Randomness::generate`] draws them from the operating system's CSPRNG;
/// fixed values exist for reproducible fixtures and tests only.
#[derive(Debug, Clone)]
pub struct Randomness {
    /// The one-time key that signs the wrap.
    pub wrap_keys: Keys,
    /// Seconds the seal is dated before `now` (at most [`MAX_BACKDATE_SECS`] is usual).
    pub seal_backdate: u64,
    /// Seconds the wrap is dated before `now`.
    pub wrap_backdate: u64,
    /// The NIP-44 nonce of the seal's content.
    pub seal_nonce: [u8; 32],
    /// The NIP-44 nonce of the wrap's content.
    pub wrap_nonce: [u8; 32],
}

impl Randomness {
    /// Fresh values: a new key, offsets uniform in `0..=MAX_BACKDATE_SECS`, random nonces.
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let mut seal_nonce = [0u8; 32];
        let mut wrap_nonce = [0u8; 32];
        rng.fill_bytes(&mut seal_nonce);
        rng.fill_bytes(&mut wrap_nonce);
        Self {
            wrap_keys: Keys::generate(),
            seal_backdate: rng.random_range(0..=MAX_BACKDATE_SECS),
            wrap_backdate: rng.random_range(0..=MAX_BACKDATE_SECS),
            seal_nonce,
            wrap_nonce,
        }
    }
}

/// A NIP-17 chat message (kind 14) from `sender` to `recipient`, dated `now`, with its id.
pub fn message(
    sender: &PublicKey,
    recipient: &PublicKey,
    text: &str,
    now: Timestamp,
) -> UnsignedEvent {
    let mut rumor = UnsignedEvent::new(
        *sender,
        now,
        Kind::from_u16(CHAT_MESSAGE_KIND),
        [Tag::public_key(*recipient)],
        text,
    );
    rumor.ensure_id();
    rumor
}

/// Seals `rumor` (whose author must be `sender`) and wraps it for `recipient`, with fresh
/// randomness. The result is ready to publish to the recipient's relays.
pub fn wrap(
    sender: &Keys,
    recipient: &PublicKey,
    rumor: UnsignedEvent,
    kind: WrapKind,
    now: Timestamp,
) -> Result<Event, WrapError> {
    wrap_with(
        sender,
        recipient,
        rumor,
        kind,
        now,
        &Randomness::generate(),
        &Limits::default(),
    )
}

/// [`wrap`] with given randomness and limits.
pub fn wrap_with(
    sender: &Keys,
    recipient: &PublicKey,
    mut rumor: UnsignedEvent,
    kind: WrapKind,
    now: Timestamp,
    random: &Randomness,
    limits: &Limits,
) -> Result<Event, WrapError> {
    let sender_pk = sender.public_key();
    if rumor.pubkey != sender_pk {
        return Err(WrapError::RumorAuthor {
            sender: sender_pk,
            rumor: rumor.pubkey,
        });
    }
    match rumor.id {
        None => rumor.ensure_id(),
        Some(id) if id != rumor.compute_id() => return Err(WrapError::RumorId),
        Some(_) => {}
    }
    let seal_key =
        ConversationKey::derive(sender.secret_key(), recipient).map_err(WrapError::Recipient)?;
    let sealed = nip44::encrypt_with_nonce(&seal_key, &rumor.as_json(), &random.seal_nonce)
        .map_err(|e| WrapError::Encrypt(Layer::Rumor, e))?;
    let seal = UnsignedEvent::new(
        sender_pk,
        backdate(now, random.seal_backdate),
        Kind::from_u16(SEAL_KIND),
        [],
        sealed,
    );
    let seal = sender
        .sign_event(seal)
        .map_err(|e| WrapError::Sign(Layer::Seal, e.to_string()))?;

    let wrap_key = ConversationKey::derive(random.wrap_keys.secret_key(), recipient)
        .map_err(WrapError::Recipient)?;
    let wrapped = nip44::encrypt_with_nonce(&wrap_key, &seal.as_json(), &random.wrap_nonce)
        .map_err(|e| WrapError::Encrypt(Layer::Seal, e))?;
    if wrapped.len() > limits.max_wrap_content {
        return Err(WrapError::TooLarge {
            len: wrapped.len(),
            max: limits.max_wrap_content,
        });
    }
    let wrap = UnsignedEvent::new(
        random.wrap_keys.public_key(),
        backdate(now, random.wrap_backdate),
        Kind::from_u16(kind.as_u16()),
        [Tag::public_key(*recipient)],
        wrapped,
    );
    random
        .wrap_keys
        .sign_event(wrap)
        .map_err(|e| WrapError::Sign(Layer::Wrap, e.to_string()))
}

fn backdate(now: Timestamp, secs: u64) -> Timestamp {
    Timestamp::from_secs(now.as_secs().saturating_sub(secs))
}

/// Opens and checks a gift wrap addressed to `recipient`, with the default [`Limits`];
/// `now` is the receiver's clock, for the future window.
pub fn unwrap(recipient: &Keys, wrap: &Event, now: Timestamp) -> Result<Unwrapped, UnwrapError> {
    unwrap_with(recipient, wrap, now, &Limits::default())
}

/// [`unwrap`] with the given limits.
pub fn unwrap_with(
    recipient: &Keys,
    wrap: &Event,
    now: Timestamp,
    limits: &Limits,
) -> Result<Unwrapped, UnwrapError> {
    let kind = wrap.kind.as_u16();
    let wrap_kind = WrapKind::from_u16(kind).ok_or(UnwrapError::NotGiftWrap(kind))?;
    if wrap.content.len() > limits.max_wrap_content {
        return Err(UnwrapError::TooLarge {
            len: wrap.content.len(),
            max: limits.max_wrap_content,
        });
    }
    let me = recipient.public_key();
    let me_hex = me.to_hex();
    let addressed = wrap
        .tags
        .iter()
        .any(|tag| tag.kind() == "p" && tag.content() == Some(me_hex.as_str()));
    if !addressed {
        return Err(UnwrapError::NotForRecipient(me));
    }
    not_future(Layer::Wrap, wrap.created_at, now, limits)?;
    check_signed(Layer::Wrap, wrap)?;

    let seal_json = open(Layer::Wrap, recipient, &wrap.pubkey, &wrap.content, limits)?;
    let seal = Event::from_json(&seal_json)
        .map_err(|e| UnwrapError::Malformed(Layer::Seal, one_line(&e.to_string())))?;
    if seal.kind.as_u16() != SEAL_KIND {
        return Err(UnwrapError::NotSeal(seal.kind.as_u16()));
    }
    check_signed(Layer::Seal, &seal)?;
    not_future(Layer::Seal, seal.created_at, now, limits)?;

    let rumor_json = open(Layer::Seal, recipient, &seal.pubkey, &seal.content, limits)?;
    let value: serde_json::Value = serde_json::from_str(&rumor_json)
        .map_err(|e| UnwrapError::Malformed(Layer::Rumor, one_line(&e.to_string())))?;
    let Some(object) = value.as_object() else {
        return Err(UnwrapError::Malformed(
            Layer::Rumor,
            "not a JSON object".to_owned(),
        ));
    };
    if object.contains_key("sig") {
        return Err(UnwrapError::SignedRumor);
    }
    let rumor: UnsignedEvent = serde_json::from_value(value)
        .map_err(|e| UnwrapError::Malformed(Layer::Rumor, one_line(&e.to_string())))?;
    if rumor.pubkey != seal.pubkey {
        return Err(UnwrapError::ForgedAuthor {
            seal: seal.pubkey,
            rumor: rumor.pubkey,
        });
    }
    let claimed = rumor.id.ok_or(UnwrapError::RumorIdMissing)?;
    let computed = rumor.compute_id();
    if claimed != computed {
        return Err(UnwrapError::RumorIdMismatch { claimed, computed });
    }
    not_future(Layer::Rumor, rumor.created_at, now, limits)?;

    Ok(Unwrapped {
        sender: seal.pubkey,
        rumor,
        wrap_id: wrap.id,
        wrap_kind,
        seal_created_at: seal.created_at,
    })
}

fn not_future(
    layer: Layer,
    created_at: Timestamp,
    now: Timestamp,
    limits: &Limits,
) -> Result<(), UnwrapError> {
    let ahead = created_at.as_secs().saturating_sub(now.as_secs());
    if ahead > limits.max_future_secs {
        return Err(UnwrapError::FromTheFuture {
            layer,
            ahead,
            max: limits.max_future_secs,
        });
    }
    Ok(())
}

fn check_signed(layer: Layer, event: &Event) -> Result<(), UnwrapError> {
    if !event.verify_id() {
        return Err(UnwrapError::BadId(layer));
    }
    if !event.verify_signature() {
        return Err(UnwrapError::BadSignature(layer));
    }
    Ok(())
}

/// Decrypts the content of `layer`, written by `author`, for `recipient`.
fn open(
    layer: Layer,
    recipient: &Keys,
    author: &PublicKey,
    content: &str,
    limits: &Limits,
) -> Result<String, UnwrapError> {
    let key = ConversationKey::derive(recipient.secret_key(), author)
        .map_err(|e| UnwrapError::BadKey(layer, e))?;
    nip44::decrypt_limited(&key, content, limits.max_wrap_content)
        .map_err(|e| UnwrapError::Decrypt(layer, e))
}

/// Parser messages may quote input; keep a refusal on one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
