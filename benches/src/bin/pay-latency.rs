//! The added latency of a paid request (docs/pay.md) against an unpaid one, in one run on this
//! machine (scripts/bench-pay.sh runs it):
//!
//! 1. A real Cashu mint: Nutshell with its FakeWallet Lightning backend
//!    (`provenance_harness::CashuMint`, installed by `.ci/cashu-mint.sh`). Its own wallet CLI
//!    mints one large token; a customer wallet (`provenance_pay::Wallet`) receives it and cuts
//!    it into the tokens the timed part spends, each with `Wallet::send` (one swap each). All
//!    of this happens before anything is timed.
//! 2. The mint's swap, timed directly: `Wallet::receive` of a fresh token into another wallet
//!    (the keyset list and the active keyset's keys fetched, then `POST /v1/swap`, the new
//!    proofs unblinded and stored in SQLite), the way `provenance serve` receives a payment.
//! 3. For each upstream (`canned`: a loopback HTTP server in this process that answers every
//!    chat completion at once with the same JSON and a `usage`; with `--llama`, also
//!    llama-server with the tiny test model), two `provenance serve` instances in front of it,
//!    one unpaid and one with `--price "request = 1 sat" --price "output_1k = 1000 sat"
//!    --cashu-mint URL`. Then WARMUP + REQUESTS rounds, one request at a time, each round one
//!    request of every kind in a rotating order:
//!    - `unpaid`: the unpaid instance;
//!    - `x-cashu`: a fresh token in `X-Cashu` (NUT-24): swapped at the mint before the request
//!      is forwarded, and after the answer the change comes back as a new token in the
//!      response's `X-Cashu` header (a second swap);
//!    - `bearer-first`: a fresh token in `Authorization: Bearer`: opens a balance (one swap);
//!    - `bearer-open`: `Authorization: Bearer` with a token whose balance is already open
//!      (opened during the warm-up): no swap, a ledger reservation and settlement.
//!
//!    Each request is a new loopback connection (`Connection: close`, the harness's HTTP
//!    client), timed from connect to the end of the response. Every answer is checked: 200;
//!    the paid ones say what they cost (`X-Provenance-Cost-Msat`), the unpaid one does not; the
//!    change of an `X-Cashu` payment is a token of this mint worth what was paid less the cost.
//!
//! Prints, for each path, the median, p90 and largest over the REQUESTS measured rounds, and the
//! added latency (median and p90 of the path less the unpaid path's), then one JSON object with
//! the same figures. At the end the paid instance's ledger must balance. Exits 1 when anything
//! fails. Everything binds 127.0.0.1; every child process is stopped by its PID.

use std::convert::Infallible;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use provenance::Keys;
use provenance::nostr::nips::nip19::ToBech32 as _;
use provenance_harness::{CashuMint, Exchange, LlamaServer, TempDir, http};
use provenance_pay::Wallet;
use provenance_pay::cashu::nuts::CurrencyUnit;
use serde_json::{Value, json};

/// The request of every path: a short chat completion of at most 8 tokens.
const CHAT: &str = r#"{"messages":[{"role":"user","content":"Say hello."}],"max_tokens":8,"temperature":0,"seed":1}"#;
/// The prices of the paid instance: 1 sat a request and 1 sat an output token, so a request
/// reserves 9 sat.
const PRICES: [&str; 2] = ["request = 1 sat", "output_1k = 1000 sat"];
/// The most a request may cost under [`PRICES`], in sat.
const RESERVE_SAT: u64 = 9;
/// How long `provenance serve` may take to say where it listens.
const SERVE_STARTUP: Duration = Duration::from_secs(60);

#[derive(Parser)]
#[command(about = "The added latency of a paid request against an unpaid one (docs/pay.md)")]
struct Cli {
    /// The `provenance` binary (a release build).
    #[arg(long)]
    provenance: PathBuf,
    /// The GGUF that `provenance serve --model` names (and llama-server serves with --llama).
    #[arg(long)]
    model: PathBuf,
    /// Measured rounds per upstream (one request of every path each).
    #[arg(long, default_value_t = 20)]
    requests: usize,
    /// Rounds before them, not counted.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// The value of each `X-Cashu` and first-`Bearer` token, in sat.
    #[arg(long, default_value_t = 64)]
    token_sat: u64,
    /// Also measure in front of llama-server with `--model` (greedy, one thread).
    #[arg(long)]
    llama: bool,
}

fn main() {
    let cli = Cli::parse();
    if cli.requests == 0 || cli.token_sat < RESERVE_SAT {
        fail(&format!(
            "--requests is at least 1 and --token-sat at least {RESERVE_SAT}"
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let dir = TempDir::new("pay-latency").unwrap_or_else(|e| fail(&e.to_string()));
    let rounds = cli.warmup + cli.requests;
    let upstreams = if cli.llama { 2 } else { 1 };

    // 1. The mint and the tokens, before anything is timed.
    let started = Instant::now();
    let mint = CashuMint::start().unwrap_or_else(|e| fail(&format!("the Cashu mint: {e}")));
    let mint_url = mint.url().trim_end_matches('/').to_owned();
    // Per upstream: a token per round for `x-cashu` and for `bearer-first`, one balance for
    // `bearer-open` (enough for every round at the most a request can cost); then a token per
    // round for the direct swap.
    let balance_sat = (rounds as u64 + 1) * RESERVE_SAT;
    let needed = upstreams as u64 * (2 * rounds as u64 * cli.token_sat + balance_sat)
        + rounds as u64 * cli.token_sat;
    let big = mint
        .mint_token(needed)
        .unwrap_or_else(|e| fail(&format!("minting {needed} sat: {e}")));
    let customer = open_wallet(&dir.path().join("customer.sqlite"), &mint_url);
    runtime
        .block_on(customer.receive(&big))
        .unwrap_or_else(|e| fail(&format!("receiving the minted token: {e}")));
    let cut = |amount: u64, count: usize| -> Vec<String> {
        (0..count)
            .map(|_| {
                runtime
                    .block_on(customer.send(&mint_url, amount))
                    .unwrap_or_else(|e| fail(&format!("cutting a {amount}-sat token: {e}")))
            })
            .collect()
    };
    let swap_tokens = cut(cli.token_sat, rounds);
    let mut sets = Vec::new();
    for _ in 0..upstreams {
        let x_cashu = cut(cli.token_sat, rounds);
        let bearer = cut(cli.token_sat, rounds);
        let balance = cut(balance_sat, 1).remove(0);
        sets.push((x_cashu, bearer, balance));
    }
    println!(
        "mint: Nutshell {} (FakeWallet), {needed} sat minted and cut into {} tokens in {:.1} s (not timed)",
        provenance_harness::NUTSHELL_VERSION,
        rounds * (1 + 2 * upstreams) + upstreams,
        started.elapsed().as_secs_f64()
    );

    // 2. The mint's swap, directly.
    let operator = open_wallet(&dir.path().join("operator.sqlite"), &mint_url);
    let mut swap = Vec::new();
    for (i, token) in swap_tokens.iter().enumerate() {
        let t0 = Instant::now();
        let received = runtime
            .block_on(operator.receive(token))
            .unwrap_or_else(|e| fail(&format!("Wallet::receive: {e}")));
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        if received.amount != cli.token_sat {
            fail(&format!(
                "Wallet::receive took {} sat of a {}-sat token",
                received.amount, cli.token_sat
            ));
        }
        if i >= cli.warmup {
            swap.push(ms);
        }
    }
    println!(
        "\nWallet::receive of a {}-sat token (keysets and keys fetched, POST /v1/swap, proofs stored), {} after {} not counted",
        cli.token_sat, cli.requests, cli.warmup
    );
    print_header();
    print_row("mint swap (Wallet::receive)", &swap, None);
    let mut report = serde_json::Map::new();
    report.insert("requests".into(), cli.requests.into());
    report.insert("warmup".into(), cli.warmup.into());
    report.insert("token_sat".into(), cli.token_sat.into());
    report.insert("wallet_receive".into(), stats_json(&swap, None));

    // 3. The upstreams, and the two instances in front of each.
    let mut upstream_list: Vec<(&str, String, Option<LlamaServer>)> = Vec::new();
    let canned = runtime
        .block_on(canned_upstream())
        .unwrap_or_else(|e| fail(&format!("the canned upstream: {e}")));
    upstream_list.push(("canned", format!("http://{canned}"), None));
    if cli.llama {
        let llama = LlamaServer::start(
            &cli.model,
            &[
                "-c",
                "1024",
                "--seed",
                "1",
                "--threads",
                "1",
                "--threads-batch",
                "1",
            ],
        )
        .unwrap_or_else(|e| fail(&format!("llama-server: {e}")));
        upstream_list.push(("llama-server", llama.url(), Some(llama)));
    }
    let mut by_upstream = serde_json::Map::new();
    for ((name, upstream, _llama), (x_cashu, bearer, balance)) in upstream_list.iter().zip(sets) {
        let here = dir.path().join(name);
        fs::create_dir_all(&here).unwrap_or_else(|e| fail(&format!("{}: {e}", here.display())));
        let unpaid = Serve::start(&cli, &here.join("unpaid"), upstream, &[]);
        let pay_db = here.join("paid").join("pay.sqlite");
        let mut paid_args: Vec<String> = Vec::new();
        for price in PRICES {
            paid_args.extend(["--price".to_owned(), price.to_owned()]);
        }
        paid_args.extend([
            "--cashu-mint".to_owned(),
            mint_url.clone(),
            "--pay-db".to_owned(),
            pay_db.to_string_lossy().into_owned(),
        ]);
        let paid = Serve::start(&cli, &here.join("paid"), upstream, &paid_args);

        let balance_header = format!("Bearer {balance}");
        let mut times: [Vec<f64>; 4] = Default::default();
        for round in 0..rounds {
            for k in 0..4 {
                let path = (round + k) % 4;
                let (ms, exchange) = match path {
                    0 => timed(unpaid.address, None),
                    1 => timed(paid.address, Some(("X-Cashu", &x_cashu[round]))),
                    2 => timed(
                        paid.address,
                        Some(("Authorization", &format!("Bearer {}", bearer[round]))),
                    ),
                    _ => timed(paid.address, Some(("Authorization", &balance_header))),
                };
                if let Err(what) = check(path, &exchange, &customer, cli.token_sat, &mint_url) {
                    fail(&format!(
                        "{name}, round {round}, {}: {what}; the end of the paid instance's log:\n{}",
                        PATHS[path].0,
                        paid.log_tail()
                    ));
                }
                if round >= cli.warmup {
                    times[path].push(ms);
                }
            }
        }
        drop(paid);
        drop(unpaid);
        let ledger = provenance_pay::Ledger::open(&pay_db)
            .unwrap_or_else(|e| fail(&format!("the paid instance's ledger: {e}")));
        let totals = ledger
            .totals()
            .unwrap_or_else(|e| fail(&format!("the ledger's totals: {e}")));
        if !totals.balanced() || totals.reserved != 0 {
            fail(&format!("the paid instance's ledger: {totals:?}"));
        }

        println!(
            "\n{name} upstream: {} rounds after {} not counted, one request at a time, the four paths in a rotating order; ms, client-side, connect to the end of the response",
            cli.requests, cli.warmup
        );
        print_header();
        let base = times[0].clone();
        let mut json_paths = serde_json::Map::new();
        for (path, (key, label)) in PATHS.iter().enumerate() {
            let against = (path > 0).then_some(base.as_slice());
            print_row(label, &times[path], against);
            json_paths.insert((*key).into(), stats_json(&times[path], against));
        }
        println!("ledger of the paid instance balanced: {totals:?}");
        by_upstream.insert((*name).into(), Value::Object(json_paths));
    }
    report.insert("upstreams".into(), Value::Object(by_upstream));
    println!("{}", Value::Object(report));
}

/// The paths: JSON key and label.
const PATHS: [(&str, &str); 4] = [
    ("unpaid", "unpaid"),
    ("x_cashu", "X-Cashu (swap in, change swap out)"),
    ("bearer_first", "Bearer, first request (one swap)"),
    ("bearer_open", "Bearer, balance open (no swap)"),
];

fn open_wallet(path: &Path, mint: &str) -> Wallet {
    Wallet::open(path, &[mint.to_owned()], CurrencyUnit::Sat)
        .unwrap_or_else(|e| fail(&format!("the wallet at {}: {e}", path.display())))
}

/// One chat completion at `address`, with an extra header field; its time in ms.
fn timed(address: SocketAddr, extra: Option<(&str, &str)>) -> (f64, Exchange) {
    let mut headers = vec![("Content-Type", "application/json")];
    headers.extend(extra);
    let t0 = Instant::now();
    let exchange = http::send(
        address,
        "POST",
        "/v1/chat/completions",
        &headers,
        Some(CHAT.as_bytes()),
    )
    .unwrap_or_else(|e| fail(&format!("POST /v1/chat/completions at {address}: {e}")));
    (t0.elapsed().as_secs_f64() * 1e3, exchange)
}

/// Checks an answer of `path` (an index of [`PATHS`]): what is wrong, if anything.
fn check(
    path: usize,
    exchange: &Exchange,
    customer: &Wallet,
    token_sat: u64,
    mint: &str,
) -> Result<(), String> {
    if exchange.status != 200 {
        return Err(format!("status {}: {}", exchange.status, exchange.text()));
    }
    if exchange.json().is_err() {
        return Err("the answer is not JSON".to_owned());
    }
    let cost = exchange.header("x-provenance-cost-msat");
    if path == 0 {
        return match cost {
            Some(cost) => Err(format!("the unpaid instance charged {cost} msat")),
            None => Ok(()),
        };
    }
    let cost = cost
        .and_then(|c| c.parse::<u64>().ok())
        .ok_or("no X-Provenance-Cost-Msat")?;
    if cost == 0 || cost > RESERVE_SAT * 1000 {
        return Err(format!("cost {cost} msat"));
    }
    if path == 1 {
        let change = exchange
            .header("x-cashu")
            .ok_or("no change token in X-Cashu")?;
        let (change_mint, value) = customer
            .peek(change)
            .map_err(|e| format!("the change token: {e}"))?;
        if change_mint != mint || value != token_sat - cost / 1000 {
            return Err(format!(
                "change of {value} sat from {change_mint} for a {token_sat}-sat token that paid {cost} msat"
            ));
        }
    }
    Ok(())
}

fn print_header() {
    println!(
        "{:<40} {:>8} {:>8} {:>8} {:>14} {:>11}",
        "ms", "median", "p90", "largest", "added median", "added p90"
    );
}

fn print_row(label: &str, values: &[f64], against: Option<&[f64]>) {
    let (median, p90, largest) = stats(values);
    let added = against.map_or_else(
        || format!("{:>14} {:>11}", "", ""),
        |base| {
            let (bm, bp, _) = stats(base);
            format!("{:>14.1} {:>11.1}", median - bm, p90 - bp)
        },
    );
    println!("{label:<40} {median:>8.1} {p90:>8.1} {largest:>8.1} {added}");
}

fn stats_json(values: &[f64], against: Option<&[f64]>) -> Value {
    let (median, p90, largest) = stats(values);
    let mut value = json!({"median": round(median), "p90": round(p90), "max": round(largest)});
    if let Some(base) = against {
        let (bm, bp, _) = stats(base);
        value["added_median"] = round(median - bm).into();
        value["added_p90"] = round(p90 - bp).into();
    }
    value
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Median, 90th percentile (nearest rank) and largest.
fn stats(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    let rank = ((0.9 * n as f64).ceil() as usize).clamp(1, n);
    (median, sorted[rank - 1], sorted[n - 1])
}

fn fail(message: &str) -> ! {
    eprintln!("pay-latency: {message}");
    std::process::exit(1);
}

/// `provenance serve` as a child process on an ephemeral loopback port, its stderr in a file;
/// stopped by its PID on drop.
struct Serve {
    child: Child,
    address: SocketAddr,
    log: PathBuf,
}

impl Serve {
    fn start(cli: &Cli, dir: &Path, upstream: &str, extra: &[String]) -> Self {
        fs::create_dir_all(dir).unwrap_or_else(|e| fail(&format!("{}: {e}", dir.display())));
        let key = dir.join("key.nsec");
        let nsec = Keys::generate()
            .secret_key()
            .to_bech32()
            .expect("a secret key in bech32");
        fs::write(&key, nsec).unwrap_or_else(|e| fail(&format!("{}: {e}", key.display())));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&key, fs::Permissions::from_mode(0o600))
                .unwrap_or_else(|e| fail(&format!("{}: {e}", key.display())));
        }
        let log = dir.join("serve.log");
        let err =
            fs::File::create(&log).unwrap_or_else(|e| fail(&format!("{}: {e}", log.display())));
        let mut child = Command::new(&cli.provenance)
            .args(["serve", "--upstream", upstream, "--listen", "127.0.0.1:0"])
            .arg("--model")
            .arg(&cli.model)
            .arg("--key")
            .arg(&key)
            .arg("--store")
            .arg(dir.join("events.sqlite"))
            .args(extra)
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| fail(&format!("starting {}: {e}", cli.provenance.display())));
        let started = Instant::now();
        loop {
            let text = fs::read_to_string(&log).unwrap_or_default();
            let address = text
                .lines()
                .filter(|line| line.contains("serving on"))
                .flat_map(str::split_whitespace)
                .find_map(|word| word.strip_prefix("http://127.0.0.1:"))
                .and_then(|port| port.trim_end_matches(',').parse::<u16>().ok());
            if let Some(port) = address {
                return Self {
                    child,
                    address: SocketAddr::from(([127, 0, 0, 1], port)),
                    log,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                fail(&format!("provenance serve exited ({status}):\n{text}"));
            }
            if started.elapsed() > SERVE_STARTUP {
                let _ = child.kill();
                let _ = child.wait();
                fail(&format!(
                    "provenance serve did not say where it listens within {SERVE_STARTUP:?}:\n{text}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the canned upstream on the runtime: `POST /v1/chat/completions` answers at once with
/// the same chat completion (4 output tokens in its `usage`); `GET /props` as llama.cpp does
/// (so `provenance serve` records a llama.cpp engine), `/health` and `/v1/models`; else `404`.
async fn canned_upstream() -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(canned_answer);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(address)
}

async fn canned_answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let _ = body.collect().await;
    let (status, body) = match (parts.method, parts.uri.path()) {
        (Method::GET, "/props") => (
            StatusCode::OK,
            json!({
                "build_info": "b0-canned",
                "default_generation_settings": {"n_ctx": 1024, "params": {"temperature": 0.8, "top_k": 40}},
                "total_slots": 4,
            })
            .to_string(),
        ),
        (Method::GET, "/health") => (StatusCode::OK, r#"{"status":"ok"}"#.to_owned()),
        (Method::GET, "/v1/models") => (
            StatusCode::OK,
            r#"{"object":"list","data":[{"id":"canned","object":"model"}]}"#.to_owned(),
        ),
        (Method::POST, "/v1/chat/completions") => (
            StatusCode::OK,
            json!({
                "id": "chatcmpl-canned",
                "object": "chat.completion",
                "model": "canned",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there, friend."}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8},
            })
            .to_string(),
        ),
        _ => (StatusCode::NOT_FOUND, r#"{"error":"not found"}"#.to_owned()),
    };
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response"))
}
