//! NIP-98 HTTP auth: callers sign each request with their Nostr key.
//!
//! A caller sends `Authorization: Nostr <base64 of a signed kind-27235 event>` whose tags name
//! the exact request (`u`: absolute URL, `method`: HTTP method, `payload`: SHA-256 of the body).
//! [`Nip98Verifier::check`] accepts the request only when all of these hold, in this order:
//!
//! 1. the header is at most [`Nip98Verifier::set_max_header_bytes`] bytes (8 KiB by default),
//!    checked before anything is decoded;
//! 2. its scheme is `Nostr` (case-insensitive, as RFC 9110 says of auth schemes) and the rest
//!    is standard base64 (padding optional) of a NIP-01 event within the core parser's limits;
//! 3. the kind is [`KIND`] (27235);
//! 4. the event id is the hash of its fields;
//! 5. `created_at` is within ±[`Nip98Verifier::set_window`] (60 s by default) of the server's
//!    `now`;
//! 6. there is exactly one `u` tag, equal byte for byte to the request URL (query included,
//!    no normalisation: no trailing-slash, case or percent-encoding leniency);
//! 7. there is exactly one `method` tag, equal to the request method (case-sensitive: HTTP
//!    methods are, per RFC 9110 section 9.1);
//! 8. a `payload` tag, when present, is the hex SHA-256 of the body (no body hashes as the
//!    empty string); when the request has a non-empty body and
//!    [`Nip98Verifier::set_require_payload`] is on (the default), the tag must be present;
//! 9. the BIP-340 signature is valid;
//! 10. the key is allowed ([`Allow`]);
//! 11. the event id has not been accepted before within the window.
//!
//! The cheap structural checks run before the signature so that garbage costs no curve
//! arithmetic. The allow list is consulted only after the signature: otherwise anyone could
//! learn whether a key is on the list by sending unsigned events in its name.
//!
//! # Why the payload is required by default
//!
//! NIP-98 makes the `payload` tag a SHOULD for clients and its check a MAY for servers. Without
//! it, whoever sees the header before the server does (a TLS-terminating load balancer, a
//! log) can swap the body within the window, and the caller's key then vouches for a prompt
//! it never sent. Requests without a body (`GET`) need no payload.
//!
//! # Replay
//!
//! Accepted event ids are remembered until they fall out of the window (`created_at` +
//! window), so an event is accepted once. The cache is bounded
//! ([`Nip98Verifier::set_replay_capacity`]); expired ids are evicted first, oldest expiry
//! first. When every remembered id is still inside its window the check fails closed with
//! [`AuthError::ReplayCacheFull`] rather than forgetting an id that could then be replayed.
//!
//! # The verifier and the layer
//!
//! [`Nip98Verifier`] does no I/O and knows no HTTP types: it is handed the header bytes,
//! method, URL, body and the current time. [`AuthLayer`] is the tower layer that does this
//! for an HTTP server and turns an [`AuthError`] into a `401` whose body is its `Display` (one
//! line, never echoing anything but the event's own public fields). Nothing here is secret:
//! the event, the URL and the body hash are all public, so no comparison needs to be
//! constant-time (the payload digest is compared in constant time anyway, being a
//! [`Sha256Digest`]). A header of another scheme (`Bearer ...`) may carry a secret, so its
//! content is never repeated in an error.
//!
//! Authenticating a caller does not put their key in the record: `request.caller` is filled
//! only when the operator enables it, where the record is built.

mod layer;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use provenance::digest::{Sha256Digest, sha256};
use provenance::event::{Limits, ParseError, parse_event_bytes};
use provenance::nostr::prelude::{Event, EventId, PublicKey, Timestamp};
use provenance::{nip19, schnorr};

pub use self::layer::{AuthLayer, AuthService};

/// The NIP-98 event kind (a reference to RFC 7235).
pub const KIND: u16 = 27235;

/// Default accepted clock difference between the caller's `created_at` and the server: 60 s,
/// the value NIP-98 suggests.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

/// Default cap on the `Authorization` header: 8 KiB, far more than a NIP-98 event needs
/// (about 600 bytes of base64 for a typical URL).
pub const DEFAULT_MAX_HEADER_BYTES: usize = 8 * 1024;

/// Default number of accepted event ids remembered for replay detection: 65,536 (a few MiB),
/// i.e. about 1,000 accepted requests per second sustained over a 60 s window.
pub const DEFAULT_REPLAY_CAPACITY: usize = 1 << 16;

/// Standard base64 alphabet, padding optional (NIP-98's own example has none).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Longest value from an event repeated in an error message, in characters.
const MAX_ECHO_CHARS: usize = 200;

/// Which callers may authenticate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allow {
    /// Any key with a valid event (the caller is identified, not restricted).
    Any,
    /// Only these keys.
    Keys(HashSet<PublicKey>),
}

impl Allow {
    /// Parses an allow list: one `npub1...` or 64-hex public key per line; `#` starts a
    /// comment; blank lines are ignored. A list that names no key is an error (it would lock
    /// everyone out, which is never what an operator means).
    pub fn parse_list(text: &str) -> Result<Self, AllowListError> {
        let mut keys = HashSet::new();
        for (n, line) in text.lines().enumerate() {
            let entry = line.split('#').next().unwrap_or("").trim();
            if entry.is_empty() {
                continue;
            }
            // One key parser for the project (npub or hex, on the curve: a key off the curve
            // could never verify a signature).
            match nip19::parse_public_key(entry) {
                Ok(k) => keys.insert(k),
                Err(_) => return Err(AllowListError::BadKey { line: n + 1 }),
            };
        }
        if keys.is_empty() {
            return Err(AllowListError::Empty);
        }
        Ok(Self::Keys(keys))
    }

    /// Whether `key` may call.
    pub fn allows(&self, key: &PublicKey) -> bool {
        match self {
            Self::Any => true,
            Self::Keys(keys) => keys.contains(key),
        }
    }
}

/// Why an allow list did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AllowListError {
    /// A line is neither an `npub` nor a 64-hex public key on the curve.
    #[error("line {line}: not an npub or a 64-hex public key")]
    BadKey {
        /// 1-based line number.
        line: usize,
    },
    /// The list names no key.
    #[error("the allow list names no keys")]
    Empty,
}

/// Why a request was not authorised. `Display` is the one-line reason for the `401` body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The request has no `Authorization` header.
    #[error("missing Authorization header (expected `Nostr <base64 NIP-98 event>`)")]
    Missing,
    /// The header is longer than the cap; nothing was decoded.
    #[error("Authorization header is {found} bytes, over the limit of {limit}")]
    HeaderTooLarge {
        /// The cap, in bytes.
        limit: usize,
        /// The header's length.
        found: usize,
    },
    /// The header's scheme is not `Nostr`, or no token follows it. The header's content is not
    /// kept: another scheme's token may be a secret.
    #[error("Authorization scheme must be `Nostr` followed by a base64 event")]
    Scheme,
    /// The token is not standard base64.
    #[error("Authorization token is not standard base64: {reason}")]
    Base64 {
        /// What the decoder said.
        reason: String,
    },
    /// The decoded token is not a NIP-01 event.
    #[error("authorization event does not parse: {0}")]
    Event(#[source] ParseError),
    /// The event is not of kind [`KIND`].
    #[error("authorization event has kind {found}, expected {KIND}")]
    Kind {
        /// The event's kind.
        found: u16,
    },
    /// The event id is not the hash of the event's fields.
    #[error("authorization event id {claimed} does not match its fields (computed {computed})")]
    IdMismatch {
        /// The id in the event.
        claimed: EventId,
        /// The id recomputed from the fields.
        computed: EventId,
    },
    /// `created_at` is further in the past than the window allows.
    #[error("authorization event is {age} s old; the window is {window} s")]
    TooOld {
        /// Seconds between `created_at` and the server's now.
        age: u64,
        /// The window, in seconds.
        window: u64,
    },
    /// `created_at` is further in the future than the window allows.
    #[error("authorization event is dated {ahead} s in the future; the window is {window} s")]
    TooNew {
        /// Seconds between the server's now and `created_at`.
        ahead: u64,
        /// The window, in seconds.
        window: u64,
    },
    /// A required tag (`u` or `method`) is absent or has no value.
    #[error("authorization event has no `{tag}` tag")]
    MissingTag {
        /// The tag name.
        tag: &'static str,
    },
    /// A tag that must be unique (`u`, `method`, `payload`) appears more than once.
    #[error("authorization event has {count} `{tag}` tags; at most one is allowed")]
    DuplicateTag {
        /// The tag name.
        tag: &'static str,
        /// How many there are.
        count: usize,
    },
    /// The `u` tag is not exactly the request URL.
    #[error("authorization event is for URL {found:?}, but the request URL is {expected:?}")]
    UrlMismatch {
        /// The request URL (public base URL + path + query).
        expected: String,
        /// The `u` tag (shortened to 200 characters).
        found: String,
    },
    /// The `method` tag is not exactly the request method.
    #[error("authorization event is for method {found:?}, but the request method is {expected:?}")]
    MethodMismatch {
        /// The request method.
        expected: String,
        /// The `method` tag (shortened to 200 characters).
        found: String,
    },
    /// The request has a body and the event has no `payload` tag, while payload binding is
    /// required ([`Nip98Verifier::set_require_payload`]).
    #[error("request has a body but the authorization event has no `payload` tag (its SHA-256)")]
    PayloadMissing,
    /// The `payload` tag is not 64 hex characters.
    #[error("authorization event `payload` tag is not a hex SHA-256: {found:?}")]
    PayloadMalformed {
        /// The tag value (shortened to 200 characters).
        found: String,
    },
    /// The `payload` tag is not the SHA-256 of the request body.
    #[error("authorization event `payload` is {found}, but the body's SHA-256 is {expected}")]
    PayloadMismatch {
        /// SHA-256 of the request body.
        expected: Sha256Digest,
        /// The `payload` tag.
        found: Sha256Digest,
    },
    /// The BIP-340 signature does not verify under the event's key.
    #[error("authorization event signature does not verify for key {pubkey}")]
    BadSignature {
        /// The key named in the event.
        pubkey: PublicKey,
    },
    /// The (correctly signed) key is not on the allow list.
    #[error("key {npub} is not allowed to call this server", npub = nip19::encode_npub(.pubkey))]
    KeyNotAllowed {
        /// The caller's key.
        pubkey: PublicKey,
    },
    /// This event was already accepted once.
    #[error("authorization event {id} was already used; sign a new one per request")]
    Replayed {
        /// The event id.
        id: EventId,
    },
    /// The replay cache is full of ids still inside their window, so the event cannot be
    /// remembered; refusing is the only way not to open a replay gap.
    #[error("too many recent requests ({capacity} within the window); retry shortly")]
    ReplayCacheFull {
        /// The cache capacity.
        capacity: usize,
    },
    /// The accepted id could not be written where it outlives a restart
    /// ([`Nip98Verifier::set_seen_store`]); refusing keeps a restart from being a replay window.
    #[error("cannot remember the request across restarts: {0}")]
    Remember(#[source] crate::store::StoreError),
}

/// Where accepted ids are kept so that a restart is not a replay window: they are loaded at
/// start-up and each newly accepted one is written before the request goes on. The signer's
/// [`crate::SqliteStore`] is one.
pub trait SeenStore: Send + Sync + std::fmt::Debug {
    /// The ids still inside their window at `now` (Unix seconds), with the last second each
    /// is.
    fn seen(&self, now: u64) -> Result<Vec<(EventId, u64)>, crate::store::StoreError>;
    /// Remembers `id` until `expires` (Unix seconds), forgetting what expired before `now`.
    fn remember(&self, id: EventId, expires: u64, now: u64)
    -> Result<(), crate::store::StoreError>;
}

/// Checks NIP-98 `Authorization` headers. Share one per server (it is `Sync`); the replay
/// cache lives inside.
#[derive(Debug)]
pub struct Nip98Verifier {
    allow: Allow,
    window: Duration,
    max_header_bytes: usize,
    require_payload: bool,
    replay: ReplayCache,
    seen: Option<std::sync::Arc<dyn SeenStore>>,
}

impl Nip98Verifier {
    /// A verifier for `allow` with the defaults: [`DEFAULT_WINDOW`],
    /// [`DEFAULT_MAX_HEADER_BYTES`], [`DEFAULT_REPLAY_CAPACITY`], payload binding required.
    pub fn new(allow: Allow) -> Self {
        Self {
            allow,
            window: DEFAULT_WINDOW,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            require_payload: true,
            replay: ReplayCache::new(DEFAULT_REPLAY_CAPACITY),
            seen: None,
        }
    }

    /// The accepted difference between `created_at` and now, both ways, in whole seconds.
    /// Default [`DEFAULT_WINDOW`] (60 s).
    pub fn set_window(&mut self, window: Duration) -> &mut Self {
        self.window = window;
        self
    }

    /// The largest `Authorization` header accepted, in bytes. Default
    /// [`DEFAULT_MAX_HEADER_BYTES`] (8 KiB).
    pub fn set_max_header_bytes(&mut self, limit: usize) -> &mut Self {
        self.max_header_bytes = limit;
        self
    }

    /// Whether a request with a non-empty body needs a `payload` tag. Enabled by default; see
    /// the module documentation for why. A `payload` tag that is present is always checked.
    pub fn set_require_payload(&mut self, require: bool) -> &mut Self {
        self.require_payload = require;
        self
    }

    /// How many accepted event ids are remembered (bounded memory). Default
    /// [`DEFAULT_REPLAY_CAPACITY`]. Clears the cache.
    pub fn set_replay_capacity(&mut self, capacity: usize) -> &mut Self {
        self.replay = ReplayCache::new(capacity);
        self
    }

    /// Keeps accepted ids in `store` as well as in memory, so that a header accepted before a
    /// restart is refused after it: the ids still inside their window are loaded now. None by
    /// default (a restart forgets them).
    pub fn set_seen_store(
        &mut self,
        store: std::sync::Arc<dyn SeenStore>,
        now: Timestamp,
    ) -> Result<&mut Self, crate::store::StoreError> {
        let now = now.as_secs();
        for (id, expires) in store.seen(now)? {
            // Already there or the cache full: the store still refuses it below.
            let _ = self.replay.insert(id, expires, now);
        }
        self.seen = Some(store);
        Ok(self)
    }

    /// Checks a request's `Authorization` header and returns the caller's key.
    ///
    /// `header` is the raw header value (`None` when absent; `HeaderValue::as_bytes` or a
    /// `&str`'s bytes), `method` the request method as received, `url` the absolute request
    /// URL as the caller must have signed it (see [`request_url`]), `body` the raw request
    /// body (`None` or empty when there is none), `now` the server's time. On success the
    /// event id is remembered, so the same header is refused next time.
    pub fn check(
        &self,
        header: Option<&[u8]>,
        method: &str,
        url: &str,
        body: Option<&[u8]>,
        now: Timestamp,
    ) -> Result<PublicKey, AuthError> {
        let head = self.check_head(header, method, url, now)?;
        self.check_body(head, body)
    }

    /// Every check of [`Nip98Verifier::check`] that does not need the body: a server calls
    /// it before reading the body, so that a caller who is refused anyway cannot make it read
    /// (and hold) one, then [`Nip98Verifier::check_body`] with the body.
    pub fn check_head(
        &self,
        header: Option<&[u8]>,
        method: &str,
        url: &str,
        now: Timestamp,
    ) -> Result<HeadChecked, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        if header.len() > self.max_header_bytes {
            return Err(AuthError::HeaderTooLarge {
                limit: self.max_header_bytes,
                found: header.len(),
            });
        }
        let token = token(header)?;
        let json = BASE64.decode(token).map_err(|e| AuthError::Base64 {
            reason: e.to_string(),
        })?;
        let limits = Limits {
            max_event_bytes: self.max_header_bytes,
            ..Limits::default()
        };
        let event = parse_event_bytes(&json, &limits).map_err(AuthError::Event)?;

        if event.kind.as_u16() != KIND {
            return Err(AuthError::Kind {
                found: event.kind.as_u16(),
            });
        }
        let computed = EventId::compute(
            &event.pubkey,
            &event.created_at,
            &event.kind,
            &event.tags,
            &event.content,
        );
        if computed != event.id {
            return Err(AuthError::IdMismatch {
                claimed: event.id,
                computed,
            });
        }
        let window = self.window.as_secs();
        let (created, now) = (event.created_at.as_secs(), now.as_secs());
        if now > created && now - created > window {
            return Err(AuthError::TooOld {
                age: now - created,
                window,
            });
        }
        if created > now && created - now > window {
            return Err(AuthError::TooNew {
                ahead: created - now,
                window,
            });
        }
        let u = unique_tag(&event, "u")?.ok_or(AuthError::MissingTag { tag: "u" })?;
        if u != url {
            return Err(AuthError::UrlMismatch {
                expected: url.to_owned(),
                found: shorten(u),
            });
        }
        let m = unique_tag(&event, "method")?.ok_or(AuthError::MissingTag { tag: "method" })?;
        if m != method {
            return Err(AuthError::MethodMismatch {
                expected: method.to_owned(),
                found: shorten(m),
            });
        }
        let payload = match unique_tag(&event, "payload")? {
            Some(p) => Some(
                p.parse::<Sha256Digest>()
                    .map_err(|_| AuthError::PayloadMalformed { found: shorten(p) })?,
            ),
            None => None,
        };
        if !schnorr::verify(
            event.pubkey.as_bytes(),
            event.id.as_bytes(),
            event.sig.as_bytes(),
        ) {
            return Err(AuthError::BadSignature {
                pubkey: event.pubkey,
            });
        }
        if !self.allow.allows(&event.pubkey) {
            return Err(AuthError::KeyNotAllowed {
                pubkey: event.pubkey,
            });
        }
        Ok(HeadChecked {
            pubkey: event.pubkey,
            id: event.id,
            payload,
            expires: created.saturating_add(window),
            now,
        })
    }

    /// The rest of [`Nip98Verifier::check`] for a header that passed
    /// [`Nip98Verifier::check_head`]: the `payload` tag against `body`, then the replay cache
    /// (the id is remembered only when everything holds).
    pub fn check_body(
        &self,
        head: HeadChecked,
        body: Option<&[u8]>,
    ) -> Result<PublicKey, AuthError> {
        let body = body.unwrap_or_default();
        match head.payload {
            Some(found) => {
                let expected = sha256(body);
                if found != expected {
                    return Err(AuthError::PayloadMismatch { expected, found });
                }
            }
            None if self.require_payload && !body.is_empty() => {
                return Err(AuthError::PayloadMissing);
            }
            None => {}
        }
        self.replay.insert(head.id, head.expires, head.now)?;
        if let Some(store) = &self.seen {
            store
                .remember(head.id, head.expires, head.now)
                .map_err(AuthError::Remember)?;
        }
        Ok(head.pubkey)
    }
}

/// A header that passed every check but those of the body
/// ([`Nip98Verifier::check_head`]); [`Nip98Verifier::check_body`] finishes it.
#[derive(Debug)]
pub struct HeadChecked {
    pubkey: PublicKey,
    id: EventId,
    payload: Option<Sha256Digest>,
    expires: u64,
    now: u64,
}

/// The absolute URL a caller signs: the server's configured public base URL (scheme, host,
/// optional port and path prefix, as clients reach it) joined with the request's path and
/// query, exactly as received. One slash between them, whether or not `base` ends in one.
pub fn request_url(base: &str, path_and_query: &str) -> String {
    let base = base.strip_suffix('/').unwrap_or(base);
    if path_and_query.starts_with('/') {
        format!("{base}{path_and_query}")
    } else {
        format!("{base}/{path_and_query}")
    }
}

/// Splits `Nostr <token>` and returns the token. The scheme is case-insensitive (RFC 9110
/// section 11.1); spaces around the token are ignored.
fn token(header: &[u8]) -> Result<&[u8], AuthError> {
    let header = header.trim_ascii();
    let (scheme, rest) = header.split_at_checked(5).ok_or(AuthError::Scheme)?;
    if !scheme.eq_ignore_ascii_case(b"nostr") || rest.first() != Some(&b' ') {
        return Err(AuthError::Scheme);
    }
    let token = rest.trim_ascii_start();
    if token.is_empty() {
        return Err(AuthError::Scheme);
    }
    Ok(token)
}

/// The value of the only tag named `name`, `None` when there is none (or it has no value).
fn unique_tag<'a>(event: &'a Event, name: &'static str) -> Result<Option<&'a str>, AuthError> {
    let mut found = event
        .tags
        .iter()
        .map(|t| t.as_slice())
        .filter(|t| t.first().is_some_and(|k| k == name));
    let first = found.next();
    let extra = found.count();
    if extra > 0 {
        return Err(AuthError::DuplicateTag {
            tag: name,
            count: extra + 1,
        });
    }
    Ok(first.and_then(|t| t.get(1)).map(String::as_str))
}

/// An attacker-chosen value, cut to a length fit for an error message.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(MAX_ECHO_CHARS) {
        Some((end, _)) => format!("{}...", &s[..end]),
        None => s.to_owned(),
    }
}

/// Accepted event ids, each until its `created_at` + window has passed.
#[derive(Debug)]
struct ReplayCache {
    capacity: usize,
    inner: Mutex<ReplayInner>,
}

#[derive(Debug, Default)]
struct ReplayInner {
    /// Id -> last second (Unix) at which the event is still inside the window.
    expiry: HashMap<EventId, u64>,
    /// The same entries ordered by expiry, for eviction.
    by_expiry: BTreeSet<(u64, EventId)>,
}

impl ReplayCache {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(ReplayInner::default()),
        }
    }

    /// Remembers `id` until `expires`, unless it is already remembered.
    fn insert(&self, id: EventId, expires: u64, now: u64) -> Result<(), AuthError> {
        // Nothing panics while the lock is held, so a poisoned lock still holds a consistent
        // cache.
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let ReplayInner { expiry, by_expiry } = &mut *inner;
        while let Some(&(at, old)) = by_expiry.first() {
            if at >= now {
                break;
            }
            by_expiry.pop_first();
            expiry.remove(&old);
        }
        if expiry.contains_key(&id) {
            return Err(AuthError::Replayed { id });
        }
        if expiry.len() >= self.capacity {
            return Err(AuthError::ReplayCacheFull {
                capacity: self.capacity,
            });
        }
        expiry.insert(id, expires);
        by_expiry.insert((expires, id));
        Ok(())
    }
}

/// Property checked by the `nip98_header` fuzz target and its seed test. Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use base64::Engine as _;

    use super::{Allow, AuthError, Nip98Verifier, Timestamp, general_purpose};

    /// The time and URL the seeds are signed for (those of the NIP-98 example event).
    pub const NOW: u64 = 1_682_327_852;
    /// See [`NOW`].
    pub const URL: &str = "https://api.snort.social/api/v1/n5sp/list";
    /// The body of the `POST` requests tried.
    pub const BODY: &[u8] = b"{}";

    /// Checks arbitrary bytes as a header value, and as the event JSON inside a `Nostr`
    /// header, for a `GET` without a body and a `POST` of [`BODY`]: never panics, every
    /// rejection has a one-line reason, and an accepted header is refused the second time.
    /// Returns whether any form was accepted.
    pub fn check_header(data: &[u8]) -> bool {
        let wrapped = format!("Nostr {}", general_purpose::STANDARD.encode(data));
        let mut accepted = false;
        for header in [data, wrapped.as_bytes()] {
            for (method, body) in [("GET", None), ("POST", Some(BODY))] {
                let verifier = Nip98Verifier::new(Allow::Any);
                let now = Timestamp::from_secs(NOW);
                match verifier.check(Some(header), method, URL, body, now) {
                    Ok(_) => {
                        accepted = true;
                        let again = verifier.check(Some(header), method, URL, body, now);
                        assert!(
                            matches!(again, Err(AuthError::Replayed { .. })),
                            "{again:?}"
                        );
                    }
                    Err(e) => {
                        let reason = e.to_string();
                        assert!(!reason.is_empty() && !reason.contains('\n'), "{reason:?}");
                    }
                }
            }
        }
        accepted
    }
}
