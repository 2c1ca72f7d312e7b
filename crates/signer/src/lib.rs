//! A signing middleware for model servers: every answer becomes a signed provenance event.
//!
//! Put a [`SigningLayer`] in front of a service that answers OpenAI-compatible, llama.cpp or
//! Ollama requests (a reverse proxy to such a server, or the inference server itself). For
//! each generation it reads, the middleware:
//!
//! - commits to the exact prompt with a fresh salt ([`provenance::commitment`]) and hands the
//!   salt to the caller only (a response header);
//! - records the sampling settings in force (engine defaults, request, and what the engine
//!   reports), the model identity and the runtime the operator configured once;
//! - hashes the exact request body and the exact response bytes sent, streamed bytes
//!   included, and the output text extracted from them;
//! - signs the record as a kind-1988 Nostr event with the operator's key, and commits it to a
//!   [`Store`] **before** the response's end is released to the client.
//!
//! The caller learns at response start where the event will be (headers
//! [`service::HEADER_REQUEST_ID`] and [`service::HEADER_EVENT_URL`]); [`Signer::lookup`]
//! answers that URL. In inline mode the event also travels in the response (a JSON field, or
//! a last SSE / NDJSON message). Anything the adapters do not recognise passes through
//! unsigned. Wire formats and failure behaviour: `docs/signer.md`.
//!
//! The layer alone does not serve HTTP, authenticate callers or publish to relays. The
//! [`server`] module (feature `server`, on by default) is the whole signing server around it,
//! what `provenance serve` runs: reverse proxy, engine probing, the event, metrics and NIP-01
//! routes, NIP-98 auth and a listener that wires delivery.
//!
//! # Where each piece of a request lives
//!
//! | piece | module |
//! |---|---|
//! | accepting connections; counting their flushes for broken answers | [`server`] (listener), [`delivery`] |
//! | the event, metrics and NIP-01 routes | [`server::routes`] |
//! | NIP-98 caller auth: the verifier and its tower layer | [`nip98`] |
//! | recognising a generation; reading, forwarding, wrapping the answer | [`layer`], [`service`] |
//! | what each API says (OpenAI, llama.cpp, Ollama), streamed or whole | [`adapter`] |
//! | hashing the bytes sent and signing at end of stream | [`body`] |
//! | building the record | `record` (private) |
//! | committing events (SQLite, writer, checkpointer); where a request's event stands; reading a store from another process | [`store`] |
//! | forwarding to the model server, upstream slots | [`server::proxy`] |
//! | asking the model server what it is | [`server::probe`] |
//! | the box's relay server (NIP-01, live subscriptions; takes gift wraps and job requests addressed to the box, NIP-42 for reading gift wraps) | [`relay_server`] |
//! | publishing to other relays, durably | [`outbox`] |
//! | counters and timings | [`metrics`] |
//! | the JSON error body of the signer's own answers | [`reply`] |
//!
//! A server that mounts the layer itself (not [`server::App`]) should wrap each connection
//! in [`delivery::DeliveryIo`] and put its [`delivery::Delivery`] in the request extensions:
//! then an answer that breaks mid-stream reaches the client whole up to the break, as its
//! truncated event says.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use provenance::{Keys, Model};
//! use provenance_signer::{Signer, SigningLayer, SqliteStore};
//!
//! let dir = tempfile::tempdir()?;
//! let store = SqliteStore::open(&dir.path().join("events.sqlite"))?;
//! let signer = Signer::builder(Keys::generate(), Model::named("gemma3:270m"))
//!     .inline(false)
//!     .build(Arc::new(store));
//! let layer = SigningLayer::new(Arc::new(signer));
//! // `tower::ServiceBuilder::new().layer(layer).service(your_model_service)`
//! # let _ = layer;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// A failed unwrap in a unit test is a failed test.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod adapter;
pub mod body;
pub mod delivery;
pub mod layer;
#[cfg(feature = "listener")]
pub mod listen;
pub mod metrics;
pub mod nip98;
pub mod outbox;
mod record;
pub mod relay_server;
pub mod reply;
#[cfg(feature = "server")]
pub mod server;
pub mod service;
pub mod store;

use std::fmt;
use std::sync::Arc;

use provenance::clock::{FixedClock, SystemClock};
use provenance::nostr::prelude::Event;
use provenance::record::{Model, Runtime};
use provenance::{Keys, PublicKey};
use serde_json::{Map, Value};

pub use crate::body::SigningBody;
pub use crate::layer::SigningLayer;
pub use crate::metrics::Metrics;
pub use crate::service::SigningService;
use crate::store::Registry;
pub use crate::store::{Durability, Lookup, RequestId, SqliteStore, Store, StoreError};

/// What was paid for a request, stated by a payment layer in front of the signer: put it in
/// the request extensions and the record carries it as `payment` (`docs/pay.md`).
#[derive(Clone, Debug, PartialEq)]
pub struct PaymentNote(pub provenance::record::Payment);

/// A caller authenticated by a layer in front of the signer (NIP-98). Put it in the request
/// extensions; it is written to the record only with [`SignerBuilder::record_caller`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller(pub PublicKey);

/// The time source of the signer, in Unix milliseconds (records carry millisecond times;
/// event `created_at` is the end time in seconds). Implemented for the core crate's clocks.
pub trait Clock: Send + Sync + 'static {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

impl Clock for FixedClock {
    fn now_ms(&self) -> u64 {
        self.0.as_secs().saturating_mul(1000)
    }
}

/// A hook called with every event right after it is stored (for a relay outbox).
pub type OnStored = Arc<dyn Fn(&Event) + Send + Sync>;

/// The signing configuration and state shared by every request: key, model identity,
/// runtime, store. Build with [`Signer::builder`].
pub struct Signer {
    keys: Keys,
    model: Model,
    /// The runtime and the engine's sampling defaults; replaced when an upstream that did not
    /// answer at start-up is probed again ([`Signer::set_engine`]).
    engine: std::sync::RwLock<Arc<EngineState>>,
    clock: Arc<dyn Clock>,
    store: Arc<dyn Store>,
    registry: Registry,
    metrics: Metrics,
    inline: bool,
    include_text: bool,
    fingerprints: bool,
    attestations: Vec<provenance::record::AttestationRef>,
    record_caller: bool,
    replayable: bool,
    max_request_bytes: usize,
    max_response_bytes: usize,
    event_path: String,
    on_stored: Option<OnStored>,
}

/// What the signer knows of the engine, for every record.
#[derive(Debug, Default)]
pub(crate) struct EngineState {
    pub(crate) runtime: Option<Runtime>,
    pub(crate) sampling_defaults: Map<String, Value>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("Signer")
            .field("public_key", &self.keys.public_key().to_hex())
            .field("model", &self.model.name)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Replaces the runtime and the engine's sampling defaults written to the records signed
    /// from now on: for an upstream probed again once it answers.
    pub fn set_engine(&self, runtime: Option<Runtime>, sampling_defaults: Map<String, Value>) {
        let state = Arc::new(EngineState {
            runtime,
            sampling_defaults,
        });
        *self.engine.write().unwrap_or_else(|e| e.into_inner()) = state;
    }

    /// The runtime written to records now.
    pub fn runtime(&self) -> Option<Runtime> {
        self.engine_state().runtime.clone()
    }

    pub(crate) fn engine_state(&self) -> Arc<EngineState> {
        self.engine
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Starts a configuration signing with `keys` for answers of `model`.
    pub fn builder(keys: Keys, model: Model) -> SignerBuilder {
        SignerBuilder {
            keys,
            model,
            runtime: None,
            sampling_defaults: Map::new(),
            clock: Arc::new(SystemClock),
            inline: false,
            include_text: false,
            fingerprints: true,
            attestations: Vec::new(),
            record_caller: false,
            replayable: false,
            max_request_bytes: 8 * 1024 * 1024,
            max_response_bytes: 64 * 1024 * 1024,
            event_path: "/provenance/".to_owned(),
            on_stored: None,
        }
    }

    /// The model whose answers it signs.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The signer's public key.
    pub fn public_key(&self) -> PublicKey {
        self.keys.public_key()
    }

    /// Where the event of request `id` stands.
    pub fn lookup(&self, id: RequestId) -> Result<Lookup, StoreError> {
        // Store first: an event is stored before its id leaves the registry.
        if let Some(json) = self.store.get(id)? {
            return Ok(Lookup::Done(json));
        }
        if let Some(state) = self.registry.state(id) {
            return Ok(state);
        }
        // It may have been stored between the two looks.
        Ok(match self.store.get(id)? {
            Some(json) => Lookup::Done(json),
            None => Lookup::Unknown,
        })
    }

    /// What the signer has counted and timed so far.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The store events are committed to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The path the event of request `id` is served at.
    pub fn event_url(&self, id: RequestId) -> String {
        format!("{}{id}", self.event_path)
    }
}

/// Configures a [`Signer`]; every setter states its default.
pub struct SignerBuilder {
    keys: Keys,
    model: Model,
    runtime: Option<Runtime>,
    sampling_defaults: Map<String, Value>,
    clock: Arc<dyn Clock>,
    inline: bool,
    include_text: bool,
    fingerprints: bool,
    attestations: Vec<provenance::record::AttestationRef>,
    record_caller: bool,
    replayable: bool,
    max_request_bytes: usize,
    max_response_bytes: usize,
    event_path: String,
    on_stored: Option<OnStored>,
}

impl fmt::Debug for SignerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerBuilder")
            .field("model", &self.model.name)
            .finish_non_exhaustive()
    }
}

impl SignerBuilder {
    /// The runtime written to every record (engine, version, binary digest, parameters).
    /// None by default.
    pub fn runtime(mut self, runtime: Runtime) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// The engine's default sampling settings, by llama.cpp's names (its `/props`
    /// `default_generation_settings`), under what requests and responses say. Empty by
    /// default.
    pub fn sampling_defaults(mut self, defaults: Map<String, Value>) -> Self {
        self.sampling_defaults = defaults;
        self
    }

    /// The clock. [`SystemClock`] by default.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Inline mode: the event also travels in the response. Off by default.
    pub fn inline(mut self, yes: bool) -> Self {
        self.inline = yes;
        self
    }

    /// Publishes the output text in the record. Off by default (the record carries hashes).
    pub fn include_text(mut self, yes: bool) -> Self {
        self.include_text = yes;
        self
    }

    /// Writes `output.fingerprints` (docs/fingerprint.md) into records of text answers, so
    /// that a paragraph copied out of an answer, or an edited copy, can be looked up. On by
    /// default; they reveal which runs of five words the text holds to anyone who can guess
    /// them, so an operator whose answers must not be probable that way turns them off.
    pub fn fingerprints(mut self, yes: bool) -> Self {
        self.fingerprints = yes;
        self
    }

    /// References to TEE attestation evidence binding the signing key (an attestation event,
    /// `docs/attest.md`), written into every record's `attestations`. None by default.
    pub fn attestations(mut self, refs: Vec<provenance::record::AttestationRef>) -> Self {
        self.attestations = refs;
        self
    }

    /// Makes llama.cpp `/completion` answers replayable: the forwarded request gets
    /// `cache_prompt: false` (the whole prompt computed, never taken from the prompt cache)
    /// and `return_tokens: true` (the token ids a replay compares), so that the record's
    /// `replay` section can be filled. The record's `request.sha256` stays the hash of the
    /// body as received. Costs the prompt cache: every request computes its whole prompt.
    /// Off by default.
    pub fn replayable(mut self, yes: bool) -> Self {
        self.replayable = yes;
        self
    }

    /// Writes the authenticated [`Caller`] into the record. Off by default (privacy).
    pub fn record_caller(mut self, yes: bool) -> Self {
        self.record_caller = yes;
        self
    }

    /// Largest request body read; larger ones get `413`. 8 MiB by default.
    pub fn max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes;
        self
    }

    /// Largest response body signed, 64 MiB by default. A larger non-streamed body gets
    /// `502` (it is held whole to be read). A longer stream is passed on to the client
    /// unchanged, but is read for the record only up to the cap: past it, what was held of
    /// it is dropped and nothing is signed (`GET` on its event URL answers `410` saying so,
    /// and `provenance_answers_unsigned_total` counts it).
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// The path prefix of event URLs. `/provenance/` by default.
    pub fn event_path(mut self, prefix: &str) -> Self {
        self.event_path = prefix.to_owned();
        self
    }

    /// A hook called with every event right after it is stored. None by default.
    pub fn on_stored(mut self, hook: OnStored) -> Self {
        self.on_stored = Some(hook);
        self
    }

    /// The signer, committing events to `store`.
    pub fn build(self, store: Arc<dyn Store>) -> Signer {
        Signer {
            keys: self.keys,
            model: self.model,
            engine: std::sync::RwLock::new(Arc::new(EngineState {
                runtime: self.runtime,
                sampling_defaults: self.sampling_defaults,
            })),
            clock: self.clock,
            store,
            registry: Registry::default(),
            metrics: Metrics::default(),
            inline: self.inline,
            include_text: self.include_text,
            fingerprints: self.fingerprints,
            attestations: self.attestations,
            record_caller: self.record_caller,
            replayable: self.replayable,
            max_request_bytes: self.max_request_bytes,
            max_response_bytes: self.max_response_bytes,
            event_path: self.event_path,
            on_stored: self.on_stored,
        }
    }
}
