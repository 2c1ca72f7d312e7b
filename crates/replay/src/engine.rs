//! The replay engine: `llama-server` started as a child on 127.0.0.1 with exactly the
//! recorded settings, one slot and no prompt cache; dropped, it kills the process it started
//! (by its handle, nothing else).

use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::Refusal;
use crate::http::Endpoint;
use crate::plan::EngineSettings;

/// How long the engine may take to load the model and answer `/health`.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(180);

/// A `llama-server` child process.
#[derive(Debug)]
pub struct Engine {
    child: Child,
    endpoint: Endpoint,
    args: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Engine {
    /// Starts `binary` serving `model` with `settings` and waits until it is healthy.
    pub fn start(binary: &Path, model: &Path, settings: &EngineSettings) -> Result<Self, Refusal> {
        let model = model
            .canonicalize()
            .map_err(|e| Refusal::Engine(format!("model {}: {e}", model.display())))?;
        let (Some(model_dir), Some(model_file)) = (model.parent(), model.file_name()) else {
            return Err(Refusal::Engine(format!("model {}", model.display())));
        };
        let dir = tempfile::Builder::new()
            .prefix("provenance-replay-")
            .tempdir()
            .map_err(|e| Refusal::Engine(format!("temporary directory: {e}")))?;
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| Refusal::Engine(format!("picking a port: {e}")))?
            .port();
        let log_path = dir.path().join("llama-server.log");
        let log =
            fs::File::create(&log_path).map_err(|e| Refusal::Engine(format!("log file: {e}")))?;
        let log_err = log
            .try_clone()
            .map_err(|e| Refusal::Engine(format!("log file: {e}")))?;
        let mut args: Vec<String> = vec![
            "--model".into(),
            model_file.to_string_lossy().into_owned(),
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
        ];
        args.extend(settings.args());
        // The process runs in the model's directory, so nothing it reports names this
        // machine's paths.
        let child = Command::new(binary)
            .args(&args)
            .current_dir(model_dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| Refusal::Engine(format!("cannot start {}: {e}", binary.display())))?;
        let endpoint = Endpoint::from_address(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
        let mut engine = Self {
            child,
            endpoint,
            args,
            _dir: dir,
        };
        engine.wait_healthy(&log_path)?;
        Ok(engine)
    }

    fn wait_healthy(&mut self, log: &Path) -> Result<(), Refusal> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Refusal::Engine(format!(
                    "llama-server exited during start-up ({status}): {}",
                    last_line(log)
                )));
            }
            if self.endpoint.get("/health", Duration::from_secs(2)).is_ok() {
                return Ok(());
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                return Err(Refusal::Engine(format!(
                    "llama-server was not healthy within {}s: {}",
                    STARTUP_TIMEOUT.as_secs(),
                    last_line(log)
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Where it listens.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The arguments it was started with (after the binary).
    pub fn args(&self) -> &[String] {
        &self.args
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last non-empty line of the engine's log, for a one-line error.
fn last_line(path: &Path) -> String {
    let mut bytes = Vec::new();
    let _ = fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes));
    let text = String::from_utf8_lossy(&bytes);
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output")
        .trim()
        .chars()
        .take(300)
        .collect()
}
