//! Real parts for the tests of `provenance`: an actual llama.cpp `llama-server` as a child
//! process, the models it serves, and a small HTTP/1.1 client that keeps the exact bytes.
//!
//! - [`LlamaServer`]: `llama-server` on 127.0.0.1 with a free port, ready once `/health`
//!   answers 200; dropping it kills exactly the process it started, by its PID.
//! - [`llama_server_path`], [`gemma_path`]: where `.ci/llama-server.sh` and
//!   `scripts/fetch-gemma.sh` put the binary and the Gemma 3 270M GGUF (environment variables
//!   override both). A missing file is an error that names the script, never a silent skip.
//! - [`clients_python`]: the interpreter with the official `openai` and `ollama` packages,
//!   from `.ci/python-clients.sh`, for tests/clients/*.py.
//! - [`write_tiny_model`]: the tiny random-weight llama model of `provenance-gguf` (under
//!   100 KB), which `llama-server` loads and serves: gibberish, but deterministic, for fast
//!   plumbing tests.
//! - [`CashuMint`]: Nutshell, a real Cashu mint (PyPI `cashu` 0.19.2 from
//!   `.ci/cashu-mint.sh`, FakeWallet Lightning backend), on 127.0.0.1 with a free port, and
//!   real `cashuB…` tokens minted by its own wallet CLI.
//! - [`NwcWallet`], [`lightning`]: a NIP-47 wallet service (Alby's protocol code over an
//!   in-memory Lightning ledger with real BOLT11 invoices), Alby's NWC client paying, and
//!   nostr-tools' NIP-57 zap code, under Node (`tests/differential/lightning.mjs`).
//! - [`http`]: one request per connection, returning the request and response bytes as they
//!   went over the wire, and the decoded body.
//!
//! Not published; used from `[dev-dependencies]` and by the traffic recorder
//! (`cargo run -p provenance-harness --example record-traffic`).

use std::fs;
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use provenance_gguf::write::{TinyLlama, tiny_llama};

mod cashu;
pub mod http;
mod lightning;

pub use cashu::{
    CASHU_VENV_ENV, CashuMint, MINT_STARTUP_TIMEOUT, MINT_UNITS, NUTSHELL_VERSION, TokenSummary,
    WALLET_TIMEOUT, cashu_venv,
};
pub use http::Exchange;
pub use lightning::{NWC_STARTUP_TIMEOUT, NwcWallet, lightning};

/// The environment variable that names the `llama-server` binary.
pub const LLAMA_SERVER_ENV: &str = "PROVENANCE_LLAMA_SERVER";
/// The environment variable that names the Gemma 3 270M GGUF.
pub const GEMMA_ENV: &str = "PROVENANCE_GEMMA_GGUF";
/// The environment variable that names the Python interpreter with the client packages.
pub const CLIENTS_PYTHON_ENV: &str = "PROVENANCE_CLIENTS_PYTHON";
/// The file name of the Gemma model under the models directory.
pub const GEMMA_FILE: &str = "gemma-3-270m-q4_k_m.gguf";
/// The file name [`write_tiny_model`] writes.
pub const TINY_FILE: &str = "tiny-llama-f16.gguf";

/// How long [`LlamaServer::start`] waits for `/health` to answer 200 (model loading included).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(180);

/// What can go wrong when starting a real part.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `llama-server` binary is not there.
    #[error(
        "llama-server not found at {path}: build it with `bash .ci/llama-server.sh` \
         (or set {LLAMA_SERVER_ENV} to its path)"
    )]
    LlamaServerMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The Gemma GGUF is not there.
    #[error(
        "Gemma 3 270M GGUF not found at {path}: install it with `bash scripts/fetch-gemma.sh` \
         (or set {GEMMA_ENV} to its path)"
    )]
    GemmaMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The Python environment with the `openai` and `ollama` packages is not there.
    #[error(
        "Python with the openai and ollama clients not found at {path}: install them with \
         `bash .ci/python-clients.sh` (or set {CLIENTS_PYTHON_ENV} to the interpreter)"
    )]
    ClientsMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The model file to serve does not exist.
    #[error("model file {path} does not exist")]
    ModelMissing {
        /// The path given.
        path: PathBuf,
    },
    /// `llama-server` exited before it was ready.
    #[error("llama-server exited during start-up ({status}); its log:\n{log}")]
    Exited {
        /// Its exit status.
        status: ExitStatus,
        /// The end of its log.
        log: String,
    },
    /// `/health` did not answer 200 in time.
    #[error("llama-server was not healthy within {after:?}; its log:\n{log}")]
    NotReady {
        /// How long it was given.
        after: Duration,
        /// The end of its log.
        log: String,
    },
    /// Nutshell's virtual environment is not there.
    #[error(
        "Nutshell (cashu {NUTSHELL_VERSION}) not found in {path}: install it with \
         `bash .ci/cashu-mint.sh` (or set {CASHU_VENV_ENV} to its virtual environment)"
    )]
    CashuMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The Cashu mint exited before it was ready.
    #[error("the Cashu mint exited during start-up ({status}); the end of its log:\n{log}")]
    MintExited {
        /// Its exit status.
        status: ExitStatus,
        /// The end of its log.
        log: String,
    },
    /// `GET /v1/info` did not answer 200 in time.
    #[error("the Cashu mint did not answer /v1/info within {after:?}; the end of its log:\n{log}")]
    MintNotReady {
        /// How long it was given.
        after: Duration,
        /// The end of its log.
        log: String,
    },
    /// A command of the Cashu wallet CLI (or a mint request made for it) did not do its job.
    #[error("Cashu wallet: `{command}` failed; its output:\n{output}")]
    Wallet {
        /// What was run.
        command: String,
        /// What it printed.
        output: String,
    },
    /// An I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// An HTTP exchange failed.
    #[error(transparent)]
    Http(#[from] http::HttpError),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// The tools directory of the `.ci` install scripts: `$PROVENANCE_TOOLS`, else
/// `$XDG_CACHE_HOME/provenance/tools`, else `$HOME/.cache/provenance/tools`.
pub fn tools_dir() -> PathBuf {
    if let Some(tools) = std::env::var_os("PROVENANCE_TOOLS") {
        return PathBuf::from(tools);
    }
    cache_dir().join("provenance").join("tools")
}

/// The models directory of `scripts/fetch-gemma.sh`: `$XDG_CACHE_HOME/provenance/models`,
/// else `$HOME/.cache/provenance/models`.
pub fn models_dir() -> PathBuf {
    cache_dir().join("provenance").join("models")
}

fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"))
}

/// `$env` if set, else `default`; `missing(path)` when no file is there.
fn locate(
    env: &str,
    default: impl FnOnce() -> PathBuf,
    missing: impl FnOnce(PathBuf) -> Error,
) -> Result<PathBuf, Error> {
    let path = std::env::var_os(env).map_or_else(default, PathBuf::from);
    if path.is_file() {
        Ok(path)
    } else {
        Err(missing(path))
    }
}

/// The `llama-server` binary: `$PROVENANCE_LLAMA_SERVER`, else `bin/llama-server` under
/// [`tools_dir`], where `.ci/llama-server.sh` installs it. An error naming that script when
/// the file is not there.
pub fn llama_server_path() -> Result<PathBuf, Error> {
    locate(
        LLAMA_SERVER_ENV,
        || tools_dir().join("bin").join("llama-server"),
        |path| Error::LlamaServerMissing { path },
    )
}

/// The Gemma 3 270M Q4_K_M GGUF: `$PROVENANCE_GEMMA_GGUF`, else [`GEMMA_FILE`] under
/// [`models_dir`], where `scripts/fetch-gemma.sh` puts it. An error naming that script when
/// the file is not there.
pub fn gemma_path() -> Result<PathBuf, Error> {
    locate(
        GEMMA_ENV,
        || models_dir().join(GEMMA_FILE),
        |path| Error::GemmaMissing { path },
    )
}

/// The Python interpreter of the virtual environment that `.ci/python-clients.sh` creates
/// (`venv/bin/python` under [`tools_dir`]), or `$PROVENANCE_CLIENTS_PYTHON`. An error naming
/// that script when the file is not there.
pub fn clients_python() -> Result<PathBuf, Error> {
    locate(
        CLIENTS_PYTHON_ENV,
        || tools_dir().join("venv").join("bin").join("python"),
        |path| Error::ClientsMissing { path },
    )
}

/// Runs nostr-tools, the independent Nostr implementation of the tests
/// (`tests/differential/dm-oracle.mjs` under Node: gift wraps, NIP-44, NIP-04, signing), on
/// one JSON request and returns its JSON answer. Panics, naming the install command, when
/// Node or nostr-tools is missing or the script fails: this is test support.
pub fn dm_oracle(request: &serde_json::Value) -> serde_json::Value {
    use std::io::Write as _;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/differential");
    assert!(
        dir.join("node_modules/nostr-tools").is_dir(),
        "nostr-tools is not installed: run `npm ci --prefix tests/differential`"
    );
    let mut child = std::process::Command::new("node")
        .arg("dm-oracle.mjs")
        .current_dir(&dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `node` (Node.js 20.19 or later is needed): {e}"));
    let input = serde_json::to_vec(request).unwrap_or_default();
    let Some(mut stdin) = child.stdin.take() else {
        panic!("no stdin for dm-oracle.mjs");
    };
    // From another thread, so that a large request cannot block on a full pipe.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("dm-oracle.mjs: {e}"));
    if let Ok(Err(e)) = writer.join() {
        panic!("writing to dm-oracle.mjs: {e}");
    }
    assert!(
        output.status.success(),
        "dm-oracle.mjs failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("dm-oracle.mjs answered no JSON: {e}"))
}

/// Writes the default tiny llama model of `provenance-gguf` ([`TinyLlama::default`]: 2 layers,
/// width 32, F16, 323 tokens, a chat template) to `dir/`[`TINY_FILE`] and returns its path.
/// The bytes are the same on every run (the weights come from a fixed PRNG seed).
pub fn write_tiny_model(dir: &Path) -> Result<PathBuf, Error> {
    let path = dir.join(TINY_FILE);
    fs::write(&path, tiny_llama(&TinyLlama::default()).build())
        .map_err(io_err(format!("writing {}", path.display())))?;
    Ok(path)
}

/// A directory under the system temporary directory, removed on drop.
#[derive(Debug)]
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    /// Creates a fresh directory whose name starts with `provenance-<prefix>-`.
    pub fn new(prefix: &str) -> Result<Self, Error> {
        tempfile::Builder::new()
            .prefix(&format!("provenance-{prefix}-"))
            .tempdir()
            .map(Self)
            .map_err(io_err("creating a temporary directory"))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// `llama-server` running as a child process on 127.0.0.1, serving one model.
///
/// The process runs in the model's directory and is given the model by file name, so that
/// nothing it reports (`/props`' `model_path`, `/v1/models`' ids) contains the absolute path
/// of this machine. Its output goes to a log file in a temporary directory
/// ([`LlamaServer::log`]). Drop kills the process by the PID it was started with (nothing
/// else) and removes the directory.
#[derive(Debug)]
pub struct LlamaServer {
    child: Child,
    address: SocketAddr,
    log: PathBuf,
    _dir: TempDir,
}

impl LlamaServer {
    /// Starts [`llama_server_path`] on a free port serving `model`, with `extra_args` after
    /// `--model`, `--host` and `--port` (for example `["--ctx-size", "2048", "--seed", "1"]`),
    /// and waits until `/health` answers 200. Blocking.
    pub fn start(model: &Path, extra_args: &[&str]) -> Result<Self, Error> {
        let binary = llama_server_path()?;
        if !model.is_file() {
            return Err(Error::ModelMissing {
                path: model.to_owned(),
            });
        }
        let model = model
            .canonicalize()
            .map_err(io_err(format!("resolving {}", model.display())))?;
        let dir = TempDir::new("llama-server")?;
        // The port is picked by binding port 0 and releasing it; another process could take it
        // in between, so a start that fails is retried on a fresh port.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::start_once(&binary, &model, extra_args, dir.path()) {
                Ok((child, address, log)) => {
                    return Ok(Self {
                        child,
                        address,
                        log,
                        _dir: dir,
                    });
                }
                Err(Error::Exited { .. }) if attempt < 3 => {}
                Err(error) => return Err(error),
            }
        }
    }

    fn start_once(
        binary: &Path,
        model: &Path,
        extra_args: &[&str],
        dir: &Path,
    ) -> Result<(Child, SocketAddr, PathBuf), Error> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .map_err(io_err("picking a free port"))?
            .port();
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let log_path = dir.join(format!("llama-server-{port}.log"));
        let log = fs::File::create(&log_path).map_err(io_err("creating the log file"))?;
        let log_err = log
            .try_clone()
            .map_err(io_err("duplicating the log file"))?;
        let (model_dir, model_file) = match (model.parent(), model.file_name()) {
            (Some(dir), Some(file)) => (dir, file),
            _ => {
                return Err(Error::ModelMissing {
                    path: model.to_owned(),
                });
            }
        };
        let mut child = Command::new(binary)
            .arg("--model")
            .arg(model_file)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(extra_args)
            .current_dir(model_dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(io_err(format!("starting {}", binary.display())))?;
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(Error::Exited {
                    status,
                    log: log_tail(&log_path),
                });
            }
            if let Ok(exchange) = http::get(address, "/health")
                && exchange.status == 200
            {
                return Ok((child, address, log_path));
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                kill(&mut child);
                return Err(Error::NotReady {
                    after: STARTUP_TIMEOUT,
                    log: log_tail(&log_path),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The socket address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The PID of the `llama-server` process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The end (up to 16 KiB) of its log so far.
    pub fn log(&self) -> String {
        log_tail(&self.log)
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Result<Exchange, Error> {
        Ok(http::get(self.address, path)?)
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> Result<Exchange, Error> {
        Ok(http::post_json(
            self.address,
            path,
            body.to_string().as_bytes(),
        )?)
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// Kills and reaps a child this crate started (by its PID, via the `Child` handle).
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The last 16 KiB of a log file, for error messages.
fn log_tail(path: &Path) -> String {
    let mut bytes = Vec::new();
    let _ = fs::File::open(path).and_then(|mut file| file.read_to_end(&mut bytes));
    let start = bytes.len().saturating_sub(16 * 1024);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}
