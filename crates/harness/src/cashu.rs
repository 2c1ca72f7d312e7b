//! A real Cashu mint for tests: Nutshell (PyPI `cashu` 0.19.2, installed by
//! `.ci/cashu-mint.sh`) as a child process on loopback, and real ecash tokens from it.

use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{Error, Exchange, TempDir, http, io_err, kill, log_tail, tools_dir};

/// The Nutshell release that `.ci/cashu-mint.sh` installs.
pub const NUTSHELL_VERSION: &str = "0.19.2";
/// The environment variable that names Nutshell's virtual environment.
pub const CASHU_VENV_ENV: &str = "PROVENANCE_CASHU_VENV";
/// How long [`CashuMint::start`] waits for `GET /v1/info` to answer 200.
pub const MINT_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one command of the wallet CLI (or the token decoder) may run.
pub const WALLET_TIMEOUT: Duration = Duration::from_secs(60);
/// How often [`CashuMint::mint_token`] asks the mint for the proofs of a quote that
/// FakeWallet has not marked paid yet.
const MINT_ATTEMPTS: u32 = 10;
/// The units the mint has keysets for, each backed by FakeWallet.
pub const MINT_UNITS: &[&str] = &["sat", "usd"];

/// Nutshell's virtual environment: `$PROVENANCE_CASHU_VENV`, else `cashu-0.19.2` under
/// [`tools_dir`], where `.ci/cashu-mint.sh` creates it. An error naming that script unless
/// both entry points, `bin/mint` and `bin/cashu`, are there.
pub fn cashu_venv() -> Result<PathBuf, Error> {
    let venv = std::env::var_os(CASHU_VENV_ENV).map_or_else(
        || tools_dir().join(format!("cashu-{NUTSHELL_VERSION}")),
        PathBuf::from,
    );
    if ["mint", "cashu", "python"]
        .iter()
        .all(|name| venv.join("bin").join(name).is_file())
    {
        Ok(venv)
    } else {
        Err(Error::CashuMissing { path: venv })
    }
}

/// What [`CashuMint::decode_token`] reads from a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSummary {
    /// The mint URL the token names.
    pub mint: String,
    /// Its unit (`sat`, `usd`).
    pub unit: String,
    /// The sum of its proofs, in the unit's smallest denomination (sat, cent).
    pub amount: u64,
    /// `Y = hash_to_curve(secret)` of each proof, hex (compressed point): the keys of NUT-07.
    pub ys: Vec<String>,
}

/// The Nutshell mint running as a child process on 127.0.0.1.
///
/// What runs is the `mint` entry point of Nutshell 0.19.2 (`.ci/cashu-mint.sh`), started
/// with a cleared environment and these variables:
///
/// - `MINT_BACKEND_BOLT11_SAT=FakeWallet`, `MINT_BACKEND_BOLT11_USD=FakeWallet`: the
///   Lightning backend is Nutshell's FakeWallet, which marks every invoice paid at once
///   (`FAKEWALLET_DELAY_INCOMING_PAYMENT=0`) without a Lightning node. The tests exercise
///   the real mint and real ecash cryptography (blind signatures, keysets, the spent-proof
///   database), but no real Lightning payment.
/// - `MINT_DERIVATION_PATH_LIST=["m/0'/2'/0'"]`: a second keyset, unit `usd` (Nutshell
///   reads the unit from the path's second index: 0 sat, 2 usd), next to the default
///   `sat` keyset at `m/0'/0'/0'`. So a test can hold a token of another unit.
/// - `MINT_PRIVATE_KEY`: the seed of the keysets: 32 random bytes, hex, per mint unless
///   [`CashuMint::start_with_private_key`] gives one (the same key gives the same keysets).
/// - `MINT_INPUT_FEE_PPK=0`: no input fees, so a token of N redeems for N.
/// - `MINT_DATABASE`, `MINT_AUTH_DATABASE`, `CASHU_DIR`, `HOME`: a temporary directory
///   (SQLite), removed on drop; the process also runs there, so no `.env` file of the
///   machine is read.
///
/// The port is picked free and passed as `--host 127.0.0.1 --port N`; a start whose process
/// exits before it answers (the port was taken in between) is retried on a fresh port, twice.
/// Drop kills the process by the PID it was started with (nothing else).
///
/// Tokens come from Nutshell's own wallet CLI (`bin/cashu`), each in a fresh wallet
/// directory under the mint's (`HOME` and `CASHU_DIR`), all with
/// `cashu --host URL --unit UNIT --yes`: `invoice AMOUNT --no-check` asks for a mint quote,
/// which FakeWallet marks paid; `invoice AMOUNT --id QUOTE` mints the proofs (blinded
/// messages signed by the mint); then `send AMOUNT` prints a `cashuB…` token (V4, CBOR,
/// base64url), or `cashuA…` (V3, JSON) with `--legacy`. A token takes three starts of the
/// Python CLI, a second or more each. The CLI takes `usd` amounts in dollars;
/// [`CashuMint::mint_token_in_unit`] takes cents and converts.
#[derive(Debug)]
pub struct CashuMint {
    child: Child,
    address: SocketAddr,
    venv: PathBuf,
    private_key: String,
    log: PathBuf,
    wallets: AtomicU64,
    dir: TempDir,
}

impl CashuMint {
    /// Starts the mint with a fresh random private key and waits until `GET /v1/info`
    /// answers 200 (at most [`MINT_STARTUP_TIMEOUT`]). Blocking.
    pub fn start() -> Result<Self, Error> {
        Self::start_with_private_key(&random_key()?)
    }

    /// [`CashuMint::start`] with a given `MINT_PRIVATE_KEY`: two mints started with the same
    /// key have the same keysets (ids and public keys).
    pub fn start_with_private_key(private_key: &str) -> Result<Self, Error> {
        let venv = cashu_venv()?;
        let dir = TempDir::new("cashu-mint")?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match start_once(&venv, private_key, dir.path()) {
                Ok((child, address, log)) => {
                    return Ok(Self {
                        child,
                        address,
                        venv,
                        private_key: private_key.to_owned(),
                        log,
                        wallets: AtomicU64::new(0),
                        dir,
                    });
                }
                Err(Error::MintExited { .. }) if attempt < 3 => {}
                Err(error) => return Err(error),
            }
        }
    }

    /// The base URL, `http://127.0.0.1:<port>`: the mint URL that its tokens name.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The socket address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The PID of the mint process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its `MINT_PRIVATE_KEY`.
    pub fn private_key(&self) -> &str {
        &self.private_key
    }

    /// The last lines of its log so far.
    pub fn log(&self) -> String {
        last_lines(&log_tail(&self.log), 60)
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Result<Exchange, Error> {
        Ok(http::get(self.address, path)?)
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, body: &Value) -> Result<Exchange, Error> {
        Ok(http::post_json(
            self.address,
            path,
            body.to_string().as_bytes(),
        )?)
    }

    /// A fresh `cashuB…` token (V4) of `amount` sat, minted by Nutshell's wallet CLI against
    /// this mint: its proofs are unspent, and the token names [`CashuMint::url`].
    pub fn mint_token(&self, amount_sat: u64) -> Result<String, Error> {
        self.mint(amount_sat, "sat", false)
    }

    /// [`CashuMint::mint_token`] in the legacy V3 format: a `cashuA…` token (base64url JSON).
    pub fn mint_token_v3(&self, amount_sat: u64) -> Result<String, Error> {
        self.mint(amount_sat, "sat", true)
    }

    /// A fresh `cashuB…` token of the mint's other keyset: `unit` is one of [`MINT_UNITS`],
    /// `amount` in its smallest denomination (cents for `usd`).
    pub fn mint_token_in_unit(&self, unit: &str, amount: u64) -> Result<String, Error> {
        self.mint(amount, unit, false)
    }

    /// Redeems `token` into a fresh wallet (`cashu --yes receive TOKEN`): the mint swaps its
    /// proofs for new ones, so they are spent afterwards. Returns the wallet's line
    /// `Received …`; an error with the CLI's output when the mint refused (for example
    /// `proofs already spent`).
    pub fn receive(&self, token: &str) -> Result<String, Error> {
        let wallet = self.new_wallet()?;
        let output = self.wallet_command(&wallet, "sat", &["receive", token])?;
        output
            .lines()
            .find(|line| line.starts_with("Received "))
            .map(str::to_owned)
            .ok_or_else(|| Error::Wallet {
                command: "receive".into(),
                output,
            })
    }

    /// Reads `token` with Nutshell's own decoder (its Python package, in the mint's
    /// environment): mint URL, unit, amount and each proof's `Y`.
    pub fn decode_token(&self, token: &str) -> Result<TokenSummary, Error> {
        let dir = self.new_wallet()?;
        let output = run_bounded(
            Command::new(self.venv.join("bin").join("python")).args(["-c", DECODE_PY, token]),
            &dir,
            "decode token",
        )?;
        let bad = |output: &str| Error::Wallet {
            command: "decode token".into(),
            output: output.to_owned(),
        };
        let value: Value = output
            .lines()
            .rev()
            .find_map(|line| serde_json::from_str(line).ok())
            .ok_or_else(|| bad(&output))?;
        let text = |key: &str| value[key].as_str().map(str::to_owned);
        let ys = value["ys"]
            .as_array()
            .and_then(|ys| {
                ys.iter()
                    .map(|y| y.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| bad(&output))?;
        Ok(TokenSummary {
            mint: text("mint").ok_or_else(|| bad(&output))?,
            unit: text("unit").ok_or_else(|| bad(&output))?,
            amount: value["amount"].as_u64().ok_or_else(|| bad(&output))?,
            ys,
        })
    }

    /// The state of each proof of `token` at this mint (NUT-07, `POST /v1/checkstate` with
    /// the proofs' `Y`s): `UNSPENT`, `PENDING` or `SPENT`, in the token's order.
    pub fn token_states(&self, token: &str) -> Result<Vec<String>, Error> {
        let summary = self.decode_token(token)?;
        let exchange = self.post_json("/v1/checkstate", &json!({ "Ys": summary.ys }))?;
        let body = exchange.json()?;
        let states = body["states"]
            .as_array()
            .filter(|states| exchange.status == 200 && states.len() == summary.ys.len())
            .and_then(|states| {
                states
                    .iter()
                    .map(|state| state["state"].as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
            });
        states.ok_or_else(|| Error::Wallet {
            command: "POST /v1/checkstate".into(),
            output: format!("{} {body}", exchange.status),
        })
    }

    fn mint(&self, amount: u64, unit: &str, legacy: bool) -> Result<String, Error> {
        // The CLI reads usd and eur amounts as dollars and euros.
        let amount = match unit {
            "usd" | "eur" => format!("{}.{:02}", amount / 100, amount % 100),
            _ => amount.to_string(),
        };
        let wallet = self.new_wallet()?;
        // `invoice` without `--no-check` waits for the mint's websocket notice that the quote
        // is paid, and waits forever when that notice arrives before the wallet's subscription
        // is in place (FakeWallet pays at once). So: ask for the quote without waiting, then
        // mint on it by id. The CLI exits 0 whatever happens; what it prints says whether it
        // worked.
        let quote = self.wallet_command(&wallet, unit, &["invoice", &amount, "--no-check"])?;
        let Some(id) = quote
            .split_whitespace()
            .skip_while(|word| *word != "--id")
            .nth(1)
            .map(str::to_owned)
        else {
            return Err(Error::Wallet {
                command: format!("invoice {amount} --no-check"),
                output: quote,
            });
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let paid = self.wallet_command(&wallet, unit, &["invoice", &amount, "--id", &id])?;
            if paid.contains("Invoice paid") {
                break;
            }
            if attempt == MINT_ATTEMPTS {
                return Err(Error::Wallet {
                    command: format!("invoice {amount} --id {id}"),
                    output: paid,
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let mut send = vec!["send", amount.as_str()];
        if legacy {
            send.push("--legacy");
        }
        let output = self.wallet_command(&wallet, unit, &send)?;
        let prefix = if legacy { "cashuA" } else { "cashuB" };
        output
            .lines()
            .map(str::trim)
            .find(|line| line.starts_with(prefix))
            .map(str::to_owned)
            .ok_or_else(|| Error::Wallet {
                command: send.join(" "),
                output,
            })
    }

    /// A fresh directory for one wallet (its SQLite database and mnemonic).
    fn new_wallet(&self) -> Result<PathBuf, Error> {
        let n = self.wallets.fetch_add(1, Ordering::Relaxed);
        let dir = self.dir.path().join(format!("wallet-{n}"));
        fs::create_dir(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        Ok(dir)
    }

    fn wallet_command(&self, wallet: &Path, unit: &str, args: &[&str]) -> Result<String, Error> {
        let url = self.url();
        run_bounded(
            Command::new(self.venv.join("bin").join("cashu"))
                .args(["--host", &url, "--unit", unit, "--yes"])
                .args(args),
            wallet,
            &format!("cashu {}", args.first().copied().unwrap_or_default()),
        )
    }
}

impl Drop for CashuMint {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// Prints the token's mint, unit, amount and proof `Y`s as one JSON line.
const DECODE_PY: &str = r#"
import json, sys
from cashu.wallet.helpers import deserialize_token_from_string
token = deserialize_token_from_string(sys.argv[1])
print(json.dumps({"mint": token.mint, "unit": token.unit, "amount": token.amount,
                  "ys": [proof.Y for proof in token.proofs]}))
"#;

fn start_once(
    venv: &Path,
    private_key: &str,
    dir: &Path,
) -> Result<(Child, SocketAddr, PathBuf), Error> {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map_err(io_err("picking a free port"))?
        .port();
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let log_path = dir.join(format!("mint-{port}.log"));
    let log = fs::File::create(&log_path).map_err(io_err("creating the mint log"))?;
    let log_err = log
        .try_clone()
        .map_err(io_err("duplicating the mint log"))?;
    let data = dir.join("data");
    let database = data.to_string_lossy().into_owned();
    let binary = venv.join("bin").join("mint");
    let mut child = Command::new(&binary)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .env_clear()
        .envs(base_env(dir))
        .env("MINT_BACKEND_BOLT11_SAT", "FakeWallet")
        .env("MINT_BACKEND_BOLT11_USD", "FakeWallet")
        .env("MINT_DERIVATION_PATH_LIST", r#"["m/0'/2'/0'"]"#)
        .env("MINT_PRIVATE_KEY", private_key)
        .env("MINT_INPUT_FEE_PPK", "0")
        .env("FAKEWALLET_DELAY_INCOMING_PAYMENT", "0")
        .env("MINT_DATABASE", &database)
        .env("MINT_AUTH_DATABASE", &database)
        .env("MINT_LISTEN_HOST", "127.0.0.1")
        .env("MINT_LISTEN_PORT", port.to_string())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(io_err(format!("starting {}", binary.display())))?;
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::MintExited {
                status,
                log: last_lines(&log_tail(&log_path), 40),
            });
        }
        if let Ok(exchange) = http::get(address, "/v1/info")
            && exchange.status == 200
        {
            return Ok((child, address, log_path));
        }
        if started.elapsed() > MINT_STARTUP_TIMEOUT {
            kill(&mut child);
            return Err(Error::MintNotReady {
                after: MINT_STARTUP_TIMEOUT,
                log: last_lines(&log_tail(&log_path), 40),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The environment of every Nutshell process: only `PATH`, and `HOME` and `CASHU_DIR` set to
/// `dir`, so that no setting of this machine (a `MINT_*` variable, `~/.cashu/.env`) leaks in.
fn base_env(dir: &Path) -> Vec<(String, String)> {
    let dir = dir.to_string_lossy().into_owned();
    vec![
        (
            "PATH".into(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
        ),
        ("HOME".into(), dir.clone()),
        ("CASHU_DIR".into(), dir),
    ]
}

/// Runs `command` in `dir` (with [`base_env`]) for at most [`WALLET_TIMEOUT`]; its stdout
/// and stderr together, or an error with them when it failed or ran too long.
fn run_bounded(command: &mut Command, dir: &Path, what: &str) -> Result<String, Error> {
    let out_path = dir.join("output.log");
    let out = fs::File::create(&out_path).map_err(io_err("creating a wallet log"))?;
    let err = out
        .try_clone()
        .map_err(io_err("duplicating a wallet log"))?;
    let mut child = command
        .env_clear()
        .envs(base_env(dir))
        .env("PYTHONWARNINGS", "ignore")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(io_err(format!("starting {what}")))?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(io_err(format!("waiting for {what}")))?
        {
            break Some(status);
        }
        if started.elapsed() > WALLET_TIMEOUT {
            kill(&mut child);
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut output = String::new();
    fs::File::open(&out_path)
        .and_then(|mut file| file.read_to_string(&mut output))
        .map_err(io_err(format!("reading the output of {what}")))?;
    match status {
        Some(status) if status.success() => Ok(output),
        Some(status) => Err(Error::Wallet {
            command: what.to_owned(),
            output: format!("({status})\n{output}"),
        }),
        None => Err(Error::Wallet {
            command: what.to_owned(),
            output: format!("(still running after {WALLET_TIMEOUT:?}, killed)\n{output}"),
        }),
    }
}

/// 32 bytes from the system's random source, hex.
fn random_key() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut file| file.read_exact(&mut bytes))
        .map_err(io_err("reading /dev/urandom"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
