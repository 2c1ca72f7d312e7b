//! Throwaway relays on loopback for end-to-end tests (feature `testing`).
//!
//! Three kinds, each giving a `ws://127.0.0.1:<port>` URL and stopping when dropped:
//!
//! - [`MockRelay`]: the in-process relay of `nostr-relay-builder` (a full NIP-01 relay with an
//!   in-memory database; [`MockRelay::start_with`] takes its builder for write policies,
//!   proof-of-work minimums and the like). It runs on the caller's tokio runtime.
//! - [`NostrRsRelay`]: the independent `nostr-rs-relay` 0.8.12 as a child process with a
//!   temporary data directory. The binary comes from `PROVENANCE_NOSTR_RS_RELAY` or
//!   `${PROVENANCE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/provenance/tools}/bin/nostr-rs-relay`,
//!   where `.ci/nostr-rs-relay.sh` builds it. A missing binary is an error naming that script,
//!   never a silent skip. The guard kills exactly the process it started, by its PID.
//! - [`ScriptedRelay`]: a websocket server that misbehaves on purpose ([`Behaviour`]): garbage,
//!   floods, oversized frames, silence, hang-ups, or a fixed script of frames.
//!
//! Every server binds 127.0.0.1 only.
//!
//! ```no_run
//! use provenance_relay::testing::{MockRelay, NostrRsRelay};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mock = MockRelay::start().await?;
//! let independent = NostrRsRelay::start()?; // fails, naming .ci/nostr-rs-relay.sh, if not built
//! let relays = vec![mock.url().to_owned(), independent.url().to_owned()];
//! // ... publish and fetch against `relays`; both stop when the guards drop.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }
//! ```

use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use nostr_relay_builder::{LocalRelay, RelayBuilder};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// The `nostr-relay-builder` crate (pinned to nostr 0.44), for [`MockRelay::start_with`].
pub use nostr_relay_builder;

/// The environment variable that names the `nostr-rs-relay` binary.
pub const NOSTR_RS_RELAY_ENV: &str = "PROVENANCE_NOSTR_RS_RELAY";

/// How long [`NostrRsRelay::start`] waits for the relay to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a test relay could not be started.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TestRelayError {
    /// The `nostr-rs-relay` binary is not there.
    #[error(
        "nostr-rs-relay not found at {path}: build it with .ci/nostr-rs-relay.sh \
         (or set {NOSTR_RS_RELAY_ENV} to its path)"
    )]
    BinaryMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The relay process exited during start-up.
    #[error("nostr-rs-relay exited during start-up ({status}); its log:\n{log}")]
    Exited {
        /// How it exited.
        status: std::process::ExitStatus,
        /// The end of its output.
        log: String,
    },
    /// Setting up files, sockets or the process failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The in-process relay failed to start.
    #[error("mock relay: {0}")]
    Mock(#[from] nostr_relay_builder::Error),
    /// The relay did not accept connections in time.
    #[error("nostr-rs-relay did not accept connections within {after:?}; its log:\n{log}")]
    NotReady {
        /// How long it was given.
        after: Duration,
        /// The end of its output.
        log: String,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> TestRelayError {
    let context = context.into();
    move |source| TestRelayError::Io { context, source }
}

/// The in-process `nostr-relay-builder` relay on 127.0.0.1; shut down on drop.
#[derive(Debug)]
pub struct MockRelay {
    relay: LocalRelay,
    url: String,
}

impl MockRelay {
    /// Starts a relay with `nostr-relay-builder`'s defaults (in-memory database, accepts
    /// everything that verifies). Needs a tokio runtime.
    pub async fn start() -> Result<Self, TestRelayError> {
        Self::start_with(RelayBuilder::default()).await
    }

    /// Starts a relay from `builder`, forcing its address to 127.0.0.1.
    ///
    /// `nostr-relay-builder` picks a random port, checks that it is free, releases it and
    /// binds it again; a test binding port 0 in between can take it. A start that fails with
    /// "address in use" is therefore retried on a fresh random port, up to eight times.
    pub async fn start_with(builder: RelayBuilder) -> Result<Self, TestRelayError> {
        const TRIES: usize = 8;
        let builder = builder.addr(Ipv4Addr::LOCALHOST.into());
        let mut attempt = 1;
        loop {
            let relay = LocalRelay::new(builder.clone());
            match relay.run().await {
                Ok(()) => {
                    let url = relay.url().await.to_string();
                    return Ok(Self { relay, url });
                }
                Err(nostr_relay_builder::Error::IO(e))
                    if e.kind() == std::io::ErrorKind::AddrInUse && attempt < TRIES =>
                {
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The relay's `ws://` URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for MockRelay {
    fn drop(&mut self) {
        self.relay.shutdown();
    }
}

/// Where the `nostr-rs-relay` binary is expected: `$PROVENANCE_NOSTR_RS_RELAY`, else
/// `bin/nostr-rs-relay` under `$PROVENANCE_TOOLS`, `$XDG_CACHE_HOME/provenance/tools` or
/// `$HOME/.cache/provenance/tools` (the first that is set), the install root of
/// `.ci/nostr-rs-relay.sh`.
pub fn nostr_rs_relay_path() -> PathBuf {
    if let Some(path) = std::env::var_os(NOSTR_RS_RELAY_ENV) {
        return PathBuf::from(path);
    }
    let tools = if let Some(tools) = std::env::var_os("PROVENANCE_TOOLS") {
        PathBuf::from(tools)
    } else {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
            .unwrap_or_else(|| PathBuf::from(".cache"));
        cache.join("provenance").join("tools")
    };
    tools.join("bin").join("nostr-rs-relay")
}

/// `nostr-rs-relay` running as a child process on 127.0.0.1 with its own temporary data
/// directory. Drop kills the process (by the PID it was started with, nothing else) and
/// removes the directory.
#[derive(Debug)]
pub struct NostrRsRelay {
    child: Child,
    url: String,
    /// Removed when dropped, after `Drop::drop` has killed the process.
    _dir: tempfile::TempDir,
}

impl NostrRsRelay {
    /// Starts the relay on a free port and waits (up to 30 seconds) until it accepts
    /// connections. Blocking; fine to call from an async test.
    pub fn start() -> Result<Self, TestRelayError> {
        let binary = nostr_rs_relay_path();
        if !binary.is_file() {
            return Err(TestRelayError::BinaryMissing { path: binary });
        }
        let dir = tempfile::Builder::new()
            .prefix("provenance-nostr-rs-relay-")
            .tempdir()
            .map_err(io("creating a temporary directory"))?;
        // The port is picked by binding port 0 and releasing it; another process could take
        // it in between, so a start that fails is retried on a fresh port.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::start_in(&binary, dir.path()) {
                Ok((child, url)) => {
                    return Ok(Self {
                        child,
                        url,
                        _dir: dir,
                    });
                }
                Err(error) if attempt >= 3 => return Err(error),
                Err(_) => {}
            }
        }
    }

    fn start_in(binary: &Path, dir: &Path) -> Result<(Child, String), TestRelayError> {
        let port = StdListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .map_err(io("picking a free port"))?
            .port();
        let data = dir.join("data");
        fs::create_dir_all(&data).map_err(io("creating the relay data directory"))?;
        let url = format!("ws://127.0.0.1:{port}/");
        // Keys from nostr-rs-relay's config.toml: [info] relay_url, [database] data_directory,
        // [network] address and port.
        let config = format!(
            "[info]\nrelay_url = {url:?}\nname = \"provenance test relay\"\n\n\
             [database]\ndata_directory = {data:?}\n\n\
             [network]\naddress = \"127.0.0.1\"\nport = {port}\n",
            data = data.display().to_string(),
        );
        let config_path = dir.join("config.toml");
        fs::write(&config_path, config).map_err(io("writing config.toml"))?;
        let log_path = dir.join("relay.log");
        let log = fs::File::create(&log_path).map_err(io("creating relay.log"))?;
        let log_err = log.try_clone().map_err(io("duplicating relay.log"))?;
        let mut child = Command::new(binary)
            .arg("--config")
            .arg(&config_path)
            .arg("--db")
            .arg(&data)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(io(format!("starting {}", binary.display())))?;
        let started = Instant::now();
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = log_tail(&log_path);
                return Err(TestRelayError::Exited { status, log });
            }
            if StdStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok((child, url));
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                kill(&mut child);
                let log = log_tail(&log_path);
                return Err(TestRelayError::NotReady {
                    after: STARTUP_TIMEOUT,
                    log,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The relay's `ws://` URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The PID of the relay process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for NostrRsRelay {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// Kills and reaps a child this module started (by its PID, via the `Child` handle).
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The last 4 KiB of a log file, for error messages.
fn log_tail(path: &Path) -> String {
    let mut bytes = Vec::new();
    let _ = fs::File::open(path).and_then(|mut file| file.read_to_end(&mut bytes));
    let start = bytes.len().saturating_sub(4096);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// How a [`ScriptedRelay`] treats every connection.
///
/// Unless stated otherwise the relay first completes the websocket handshake and waits for the
/// client's first message (its `REQ` or `EVENT`); `$SUB` in scripted frames stands for the
/// subscription id of that `REQ`. Events it makes up have the right shape but fake ids and
/// signatures (the client under test does not verify).
#[non_exhaustive]
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Sends `events` made-up events, then closes the websocket with a close frame (code 1001,
    /// reason "going away").
    CloseAfter {
        /// Events sent first.
        events: usize,
    },
    /// Sends `events` made-up events, then drops the TCP connection without a close frame.
    DropAfter {
        /// Events sent first.
        events: usize,
    },
    /// Sends `events` made-up events (each with a distinct id), then `EOSE`.
    Flood {
        /// How many.
        events: usize,
    },
    /// Accepts TCP connections and never answers the websocket handshake.
    NoHandshake,
    /// Sends one text frame of exactly `bytes` bytes (a `NOTICE`), then stays silent.
    Oversize {
        /// Frame size in bytes (at least 13).
        bytes: usize,
    },
    /// Sends these frames in order, then stays silent with the connection open.
    Script(Vec<Frame>),
    /// Never answers after the handshake (but keeps reading, and answers pings).
    Silent,
    /// Sends `pings` pings of 125 bytes and never reads again, so the pongs the client owes
    /// pile up on the client's side; then stays silent with the connection open.
    PingFlood {
        /// How many pings.
        pings: usize,
    },
}

/// A frame sent by [`Behaviour::Script`].
#[derive(Debug, Clone)]
pub enum Frame {
    /// A binary frame.
    Binary(Vec<u8>),
    /// A text frame; `$SUB` is replaced by the client's subscription id.
    Text(String),
}

/// A misbehaving websocket relay on 127.0.0.1, stopped (with all its connections) on drop.
#[derive(Debug)]
pub struct ScriptedRelay {
    url: String,
    task: JoinHandle<()>,
}

impl ScriptedRelay {
    /// Starts serving `behaviour` to every connection. Needs a tokio runtime.
    pub async fn start(behaviour: Behaviour) -> Result<Self, TestRelayError> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(io("binding a scripted relay"))?;
        let port = listener
            .local_addr()
            .map_err(io("reading the scripted relay's address"))?
            .port();
        let behaviour = Arc::new(behaviour);
        let task = tokio::spawn(async move {
            // Connections live in the set, so aborting this task stops them too.
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.spawn(serve(stream, Arc::clone(&behaviour)));
            }
        });
        Ok(Self {
            url: format!("ws://127.0.0.1:{port}"),
            task,
        })
    }

    /// The relay's `ws://` URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for ScriptedRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A made-up event with a distinct id for `index`.
fn fake_event(subscription: &str, index: usize) -> String {
    let zeros = "0".repeat(64);
    format!(
        r#"["EVENT",{subscription:?},{{"id":"{index:064x}","pubkey":"{zeros}","created_at":0,"kind":1988,"tags":[],"content":"made up","sig":"{zeros}{zeros}"}}]"#
    )
}

async fn serve(mut stream: TcpStream, behaviour: Arc<Behaviour>) {
    if let Behaviour::NoHandshake = *behaviour {
        // Read and discard until the client gives up.
        let mut sink = [0u8; 1024];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
        return;
    }
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let first = loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => break text,
            Some(Ok(_)) => continue,
            _ => return,
        }
    };
    let subscription = serde_json::from_str::<Vec<serde_json::Value>>(&first)
        .ok()
        .and_then(|message| message.get(1)?.as_str().map(str::to_owned))
        .unwrap_or_default();
    let sent = match &*behaviour {
        Behaviour::CloseAfter { events } => {
            let frame = CloseFrame {
                code: CloseCode::Away,
                reason: "going away".into(),
            };
            send_events(&mut ws, &subscription, *events).await
                && ws.close(Some(frame)).await.is_ok()
        }
        Behaviour::DropAfter { events } => {
            send_events(&mut ws, &subscription, *events).await;
            return;
        }
        Behaviour::Flood { events } => {
            let eose = format!(r#"["EOSE",{subscription:?}]"#);
            send_events(&mut ws, &subscription, *events).await
                && ws.send(Message::text(eose)).await.is_ok()
        }
        Behaviour::NoHandshake | Behaviour::Silent => true,
        Behaviour::PingFlood { pings } => {
            for _ in 0..*pings {
                if ws
                    .send(Message::Ping(vec![b'p'; 125].into()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            // Hold the connection without reading until the client leaves (or the relay is
            // dropped, which aborts this task).
            std::future::pending::<()>().await;
            return;
        }
        Behaviour::Oversize { bytes } => {
            let filler = "x".repeat(bytes.saturating_sub(13));
            let frame = format!(r#"["NOTICE",{filler:?}]"#);
            ws.send(Message::text(frame)).await.is_ok()
        }
        Behaviour::Script(frames) => {
            let mut ok = true;
            for frame in frames {
                let message = match frame {
                    Frame::Binary(bytes) => Message::binary(bytes.clone()),
                    Frame::Text(text) => Message::text(text.replace("$SUB", &subscription)),
                };
                if ws.send(message).await.is_err() {
                    ok = false;
                    break;
                }
            }
            ok
        }
    };
    if sent {
        // Stay connected, reading (which also answers pings), until the client leaves.
        while let Some(Ok(_)) = ws.next().await {}
    }
}

async fn send_events(
    ws: &mut WebSocketStream<TcpStream>,
    subscription: &str,
    events: usize,
) -> bool {
    for index in 0..events {
        if ws
            .send(Message::text(fake_event(subscription, index)))
            .await
            .is_err()
        {
            return false;
        }
    }
    true
}
