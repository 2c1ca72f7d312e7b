//! The whole signing server (feature `server`, on by default): what `provenance serve` runs.
//!
//! One request through a [`Server`], in order:
//!
//! 1. the listener ([`App::serve`]): the connection is accepted and counts its flushes, and
//!    the request carries that count ([`crate::delivery`]);
//! 2. [`routes`]: `GET /provenance/<id>`, `GET /provenance/metrics` and the websocket of the
//!    NIP-01 relay at `/` are answered here; everything else goes on;
//! 3. [`crate::nip98::AuthLayer`], when callers must authenticate;
//! 4. [`crate::SigningLayer`]: a generation is read, forwarded, and its answer signed;
//! 5. [`proxy`]: the request goes to the model server, waiting for an upstream slot if it is
//!    a generation and all are taken.
//!
//! At start-up, [`probe`] asks the upstream what it is, for the records and the slot count.
//!
//! A Rust inference server that answers generations itself mounts the same routes around its
//! own service with [`App`] (`examples/inference_server.rs`).
//!
//! ```no_run
//! use provenance::{Keys, Model};
//! use provenance_signer::server::Server;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::builder(
//!     Keys::generate(),
//!     Model::named("gemma3:270m"),
//!     "http://127.0.0.1:8080".parse()?,
//!     "events.sqlite".into(),
//! )
//! .bind()
//! .await?;
//! eprintln!("serving on http://{}", server.local_addr());
//! server.run(std::future::pending()).await?;
//! # Ok(())
//! # }
//! ```

pub mod lightning;
pub mod local;
pub mod pay;
pub mod probe;
pub mod proxy;
pub mod routes;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::Uri;
use provenance::Keys;
use provenance::clock::SystemClock;
use provenance::record::Model;
use tokio::net::TcpListener;

pub use self::local::{LocalClient, LocalError, Mailbox, SignedAnswer};
pub use self::probe::{Engine, EngineBinary, EngineBinaryError};
pub use self::proxy::Proxy;
pub use self::routes::{App, AppBuilder};
pub use crate::listen::Limits;
use crate::nip98::{Allow, AuthLayer, Nip98Verifier};
use crate::outbox::Outbox;
use crate::relay_server::{Hub, Inbox, InboxLimits};
use crate::store::{Durability, SqliteStore, StoreError};
use crate::{Signer, SignerBuilder};

/// Why a [`Server`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The upstream is not an `http://` URL.
    #[error("the upstream must be an http:// URL (found {0})")]
    Upstream(Uri),
    /// The engine binary could not be read.
    #[error(transparent)]
    EngineBinary(#[from] EngineBinaryError),
    /// The directory of the event store could not be made.
    #[error("cannot create {}: {source}", dir.display())]
    StoreDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The event store could not be opened.
    #[error("cannot open the event store {}: {source}", path.display())]
    Store {
        /// The store.
        path: PathBuf,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The NIP-98 ids accepted before the restart could not be read from the store.
    #[error("cannot read the NIP-98 ids seen before from {}: {source}", path.display())]
    Seen {
        /// The store.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::store::StoreError,
    },
    /// The address could not be listened on.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A signing reverse proxy, bound and ready to serve; see the module. Build with
/// [`Server::builder`].
#[derive(Debug)]
pub struct Server {
    app: App,
    listener: TcpListener,
    local: SocketAddr,
    engine: Engine,
    signer: Arc<Signer>,
    limits: Limits,
    local_client: LocalClient,
    mailbox: Option<Mailbox>,
}

/// Configures a [`Server`]; every setter states its default.
pub struct ServerBuilder {
    signer: SignerBuilder,
    upstream: Uri,
    store: PathBuf,
    durability: Durability,
    listen: SocketAddr,
    relays: Vec<String>,
    engine_binary: Option<PathBuf>,
    engine_params: serde_json::Map<String, serde_json::Value>,
    upstream_concurrency: Option<usize>,
    auth: Option<Allow>,
    public_url: Option<String>,
    max_request_bytes: usize,
    limits: Limits,
    inbox: Option<InboxLimits>,
    payments: Option<Arc<pay::Payments>>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("upstream", &self.upstream)
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server signing with `keys` for answers of `model`, served by the model server at
    /// `upstream` (`http://` only), committing events to the SQLite store at `store` (made,
    /// with its directory, when absent).
    pub fn builder(keys: Keys, model: Model, upstream: Uri, store: PathBuf) -> ServerBuilder {
        ServerBuilder {
            signer: Signer::builder(keys, model),
            upstream,
            store,
            durability: Durability::Full,
            listen: SocketAddr::from(([127, 0, 0, 1], 8088)),
            relays: Vec::new(),
            engine_binary: None,
            engine_params: serde_json::Map::new(),
            upstream_concurrency: None,
            auth: None,
            public_url: None,
            max_request_bytes: 8 * 1024 * 1024,
            limits: Limits::default(),
            inbox: Some(InboxLimits::default()),
            payments: None,
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// What the upstream said it is.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The signer.
    pub fn signer(&self) -> &Arc<Signer> {
        &self.signer
    }

    /// A client that sends generation requests through this server's signing path from
    /// inside the process ([`local`]).
    pub fn local_client(&self) -> LocalClient {
        self.local_client.clone()
    }

    /// The mailbox of the box's relay ([`Mailbox`]), when it keeps events addressed to the box
    /// ([`ServerBuilder::inbox`]).
    pub fn mailbox(&self) -> Option<Mailbox> {
        self.mailbox.clone()
    }

    /// The box's relay at the listener's own address (`ws://<local address>`), which its
    /// NIP-42 `AUTH` accepts besides the public URL: programs on the box read it there.
    pub fn local_relay_url(&self) -> String {
        format!("ws://{}", self.local)
    }

    /// Serves until `shutdown`, then lets open connections finish.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.app
            .serve_with(self.listener, self.limits, shutdown)
            .await
    }
}

impl ServerBuilder {
    /// The address to listen on. `127.0.0.1:8088` by default.
    pub fn listen(mut self, address: SocketAddr) -> Self {
        self.listen = address;
        self
    }

    /// How events are made durable. [`Durability::Full`] by default.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Also publishes every event to these relays, through the store's durable outbox. None
    /// by default (rows queued by an earlier run are still delivered).
    pub fn relays(mut self, relays: Vec<String>) -> Self {
        self.relays = relays;
        self
    }

    /// The engine binary, whose SHA-256 goes into the records. None by default.
    pub fn engine_binary(mut self, path: Option<PathBuf>) -> Self {
        self.engine_binary = path;
        self
    }

    /// Engine settings the operator states, recorded in every record's `runtime.params` and,
    /// for llama.cpp, in its `replay` section: `batch`, `ubatch`, `flash_attn` (`"on"` or
    /// `"off"`), `repack` (bool), `threads`. llama-server does not report them, so without
    /// them a record cannot be replayed. What the engine itself reports (`ctx`) wins over a
    /// stated value. None by default.
    pub fn engine_params(mut self, params: serde_json::Map<String, serde_json::Value>) -> Self {
        self.engine_params = params;
        self
    }

    /// Makes llama.cpp `/completion` answers replayable ([`SignerBuilder::replayable`]):
    /// the prompt cache off and token ids asked for. Off by default.
    pub fn replayable(mut self, yes: bool) -> Self {
        self.signer = self.signer.replayable(yes);
        self
    }

    /// Generation requests sent to the upstream at once ([`Proxy::limit`]; `0`: no limit). By
    /// default one more than the engine's slot count when it tells ([`Engine::slots`]), else no
    /// limit: one request more than the slots waits in llama-server's own queue, read and
    /// ready, so that a slot that frees up starts on it at once instead of idling while the
    /// proxy sends the next one (measured: 3.93-3.95 busy slots of 4 per decode step with the
    /// slot count, 3.99 with one more, 4.00 direct). llama-server keeps at least two HTTP
    /// threads more than slots, so the extra connection is always read.
    pub fn upstream_concurrency(mut self, concurrency: Option<usize>) -> Self {
        self.upstream_concurrency = concurrency;
        self
    }

    /// Requires NIP-98 auth from the keys `allow` admits. Off by default.
    pub fn auth(mut self, allow: Option<Allow>) -> Self {
        self.auth = allow;
        self
    }

    /// The URL clients reach the server at, which NIP-98 events must name and which is the
    /// first relay hint of `nevent`s. `http://<local address>` by default.
    pub fn public_url(mut self, url: Option<String>) -> Self {
        self.public_url = url;
        self
    }

    /// The relay at `/` takes gift wraps and job requests addressed to the signing key, within
    /// `limits`, into the table `addressed_events` of the store
    /// ([`crate::relay_server::inbox`]); `None`: it refuses every `EVENT`. On, with
    /// [`InboxLimits::default`], by default.
    pub fn inbox(mut self, limits: Option<InboxLimits>) -> Self {
        self.inbox = limits;
        self
    }

    /// Largest request body read; larger ones get `413`. 8 MiB by default.
    pub fn max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes;
        self
    }

    /// Largest answer signed ([`SignerBuilder::max_response_bytes`]). 64 MiB by default.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.signer = self.signer.max_response_bytes(bytes);
        self
    }

    /// What one client may hold of the server: connections, header and body timeouts
    /// ([`Limits`], whose fields state their defaults).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Inline mode ([`SignerBuilder::inline`]). Off by default.
    pub fn inline(mut self, yes: bool) -> Self {
        self.signer = self.signer.inline(yes);
        self
    }

    /// Publishes the output text in records ([`SignerBuilder::include_text`]). Off by default.
    pub fn include_text(mut self, yes: bool) -> Self {
        self.signer = self.signer.include_text(yes);
        self
    }

    /// Writes `output.fingerprints` ([`SignerBuilder::fingerprints`]). On by default.
    pub fn fingerprints(mut self, yes: bool) -> Self {
        self.signer = self.signer.fingerprints(yes);
        self
    }

    /// References to TEE attestation evidence in every record
    /// ([`SignerBuilder::attestations`]). None by default.
    pub fn attestations(mut self, refs: Vec<provenance::record::AttestationRef>) -> Self {
        self.signer = self.signer.attestations(refs);
        self
    }

    /// Writes the authenticated caller into records ([`SignerBuilder::record_caller`]). Off by
    /// default.
    pub fn record_caller(mut self, yes: bool) -> Self {
        self.signer = self.signer.record_caller(yes);
        self
    }

    /// Charges generations on priced routes with Cashu ([`pay`]). Off by default.
    pub fn payments(mut self, payments: Option<Arc<pay::Payments>>) -> Self {
        self.payments = payments;
        self
    }

    /// Probes the upstream, opens the store, starts the outbox and listens. Call within a
    /// tokio runtime.
    pub async fn bind(self) -> Result<Server, ServerError> {
        if self.upstream.scheme_str() != Some("http") {
            return Err(ServerError::Upstream(self.upstream));
        }
        let proxy = Proxy::new(self.upstream);
        let binary = match &self.engine_binary {
            Some(path) => Some(EngineBinary::read(path).await?),
            None => None,
        };
        let engine_params = self.engine_params;
        let mut engine = probe::probe(&proxy, binary.as_ref()).await?;
        state(&mut engine, &engine_params);
        let concurrency = self
            .upstream_concurrency
            .or_else(|| engine.slots.map(|n| n + 1));
        let proxy = proxy.limit(concurrency);
        let store = open_store(&self.store, self.durability)?.publish_to(self.relays.clone());
        let store = Arc::new(store);
        // The outbox runs even without relays: rows queued by an earlier run with relays are
        // still delivered.
        let outbox = Outbox::new(store.clone(), Arc::new(SystemClock));
        // Every stored event wakes the outbox (when it is queued somewhere: see
        // `Outbox::waker`) and goes to the live subscriptions of the relay.
        let hub = Hub::default();
        let (wake, publish) = (outbox.waker(), hub.hook());
        // An upstream that did not answer gives no engine, only a guess: records carry no
        // runtime until it answers a probe again.
        let mut signer = self.signer;
        if engine.unreachable.is_none() {
            signer = signer
                .runtime(engine.runtime.clone())
                .sampling_defaults(engine.sampling_defaults.clone());
        }
        let signer = signer
            .max_request_bytes(self.max_request_bytes)
            .on_stored(Arc::new(move |event| {
                wake(event);
                publish(event);
            }));
        tokio::spawn(outbox.run());
        let seen = store.clone();
        let signer = Arc::new(signer.build(store));
        if engine.unreachable.is_some() {
            tokio::spawn(reprobe(
                proxy.clone(),
                binary,
                engine_params,
                signer.clone(),
            ));
        }
        let listener =
            TcpListener::bind(self.listen)
                .await
                .map_err(|source| ServerError::Listen {
                    address: self.listen,
                    source,
                })?;
        let local = listener
            .local_addr()
            .map_err(|source| ServerError::Listen {
                address: self.listen,
                source,
            })?;
        let public = self.public_url.unwrap_or_else(|| format!("http://{local}"));
        let own_relay = public
            .replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1);
        let own_relay = own_relay.trim_end_matches('/').to_owned();
        let inbox = match self.inbox {
            Some(limits) => Some(Arc::new(
                Inbox::open(
                    &self.store,
                    self.durability,
                    signer.public_key(),
                    &own_relay,
                    limits,
                )
                .map_err(|source| ServerError::Store {
                    path: self.store.clone(),
                    source,
                })?
                .also_named(&format!("ws://{local}")),
            )),
            None => None,
        };
        let mut relay_hints = vec![own_relay];
        relay_hints.extend(self.relays);
        let local_client = LocalClient::new(
            crate::SigningService::new(proxy.clone(), signer.clone()),
            signer.clone(),
            relay_hints.clone(),
        );
        let mailbox = inbox
            .as_ref()
            .map(|inbox| Mailbox::new(inbox.clone(), hub.clone()));
        let mut app = App::builder(signer.clone(), hub)
            .relay_hints(relay_hints)
            .inbox(inbox)
            .payments(self.payments);
        if let Some(allow) = self.auth {
            let mut verifier = Nip98Verifier::new(allow);
            // Accepted ids outlive a restart: a header accepted before it is refused after.
            verifier
                .set_seen_store(seen, provenance::nostr::prelude::Timestamp::now())
                .map_err(|source| ServerError::Seen {
                    path: self.store.clone(),
                    source,
                })?;
            app = app.auth(AuthLayer::new(verifier, &public, self.max_request_bytes));
        }
        Ok(Server {
            app: app.service(proxy),
            listener,
            local,
            engine,
            signer,
            limits: self.limits,
            local_client,
            mailbox,
        })
    }
}

/// Adds the engine settings the operator stated to what the engine reported; what it reported
/// wins.
fn state(engine: &mut Engine, params: &serde_json::Map<String, serde_json::Value>) {
    for (key, value) in params {
        engine
            .runtime
            .params
            .entry(key.clone())
            .or_insert_with(|| value.clone());
    }
}

/// How often an upstream that did not answer at start-up is probed again.
const REPROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Probes the upstream again until it answers, then gives the signer its runtime and sampling
/// defaults (records signed before carry no runtime: never a guessed engine).
async fn reprobe(
    proxy: Proxy,
    binary: Option<EngineBinary>,
    params: serde_json::Map<String, serde_json::Value>,
    signer: Arc<Signer>,
) {
    loop {
        tokio::time::sleep(REPROBE_EVERY).await;
        match probe::probe(&proxy, binary.as_ref()).await {
            Ok(mut engine) if engine.unreachable.is_none() => {
                state(&mut engine, &params);
                let line = format!(
                    "provenance: the upstream answers now: {} {}",
                    engine.runtime.engine,
                    engine
                        .runtime
                        .version
                        .as_deref()
                        .unwrap_or("version unknown")
                );
                signer.set_engine(Some(engine.runtime), engine.sampling_defaults);
                // Not eprintln!: a closed stderr must not end the task.
                let _ = writeln!(std::io::stderr(), "{line}");
                return;
            }
            Ok(_) => {}
            Err(e) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "provenance: the upstream answers now, but {e}; records carry no runtime"
                );
                return;
            }
        }
    }
}

fn open_store(path: &Path, durability: Durability) -> Result<SqliteStore, ServerError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| ServerError::StoreDir {
            dir: dir.to_owned(),
            source,
        })?;
    }
    SqliteStore::open_with(path, durability).map_err(|source| ServerError::Store {
        path: path.to_owned(),
        source,
    })
}
