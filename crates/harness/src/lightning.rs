//! The Lightning side of the payment tests, under Node (`tests/differential/lightning.mjs`):
//! a NIP-47 wallet service (Alby's `NWCWalletService` protocol code over an in-memory
//! Lightning ledger with real BOLT11 invoices), Alby's `NWCClient` paying as a customer, and
//! nostr-tools' NIP-57 zap requests and zap receipt checks.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

/// How long `lightning.mjs` may take to start its wallet service.
pub const NWC_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

fn dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/differential");
    assert!(
        dir.join("node_modules/@getalby/sdk").is_dir(),
        "@getalby/sdk is not installed: run `npm ci --prefix tests/differential`"
    );
    dir
}

/// The NIP-47 wallet-service double, running until dropped.
#[derive(Debug)]
pub struct NwcWallet {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The connection URI for the box (starts with no balance; its invoices get paid).
    pub box_uri: String,
    /// The connection URI for a customer (starts with the balance given).
    pub customer_uri: String,
    /// The wallet service's public key, hex.
    pub wallet_pubkey: String,
}

impl NwcWallet {
    /// Starts the wallet service on `relay` with a customer holding `customer_msat`. Panics
    /// (test support) when Node or the packages are missing or it does not come up.
    pub fn start(relay: &str, customer_msat: u64) -> Self {
        let mut child = Command::new("node")
            .args(["lightning.mjs", "serve", relay, &customer_msat.to_string()])
            .current_dir(dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `node` (Node.js 20.19 or later): {e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(NWC_STARTUP_TIMEOUT).unwrap_or_default();
        let Ok(info) = serde_json::from_str::<serde_json::Value>(&line) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("lightning.mjs serve did not start on {relay}: {line:?}");
        };
        let field = |name: &str| info[name].as_str().unwrap_or_default().to_string();
        Self {
            stdin: child.stdin.take(),
            box_uri: field("box"),
            customer_uri: field("customer"),
            wallet_pubkey: field("wallet_pubkey"),
            child,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for NwcWallet {
    fn drop(&mut self) {
        // Closing stdin ends the service; kill it by its own handle if it lingers.
        drop(self.stdin.take());
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `node lightning.mjs ARGS...` once and returns its JSON answer (`pay`, `balance`,
/// `zap-request`, `check-receipt`). Panics (test support) when it fails.
pub fn lightning(args: &[&str]) -> serde_json::Value {
    let output = Command::new("node")
        .arg("lightning.mjs")
        .args(args)
        .current_dir(dir())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `node` (Node.js 20.19 or later): {e}"));
    assert!(
        output.status.success(),
        "lightning.mjs {} failed ({}): {}",
        args.first().copied().unwrap_or_default(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("lightning.mjs answered no JSON ({e}): {text}"))
}
