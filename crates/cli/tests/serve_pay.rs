//! `provenance serve --price ... --cashu-mint URL`: generations paid with Cashu, end to end on
//! real parts: a real llama-server with the tiny GGUF, a real Cashu mint (Nutshell with its
//! FakeWallet Lightning backend, `provenance_harness::CashuMint`) whose own wallet mints the
//! tokens and redeems the change, curl, and the unmodified `openai` Python package paying
//! with `Bearer cashuB...` as Routstr's clients do. At the end every sat is accounted for.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod serve_common;

use std::path::PathBuf;
use std::process::Command;

use provenance_harness::CashuMint;
use serde_json::Value;
use serve_common::{curl, header, llama, model, serve};

const CHAT: &str = r#"{"messages":[{"role":"user","content":"Say hello."}],"max_tokens":8,"temperature":0,"seed":1}"#;

fn chat(base: &str, extra: &[&str]) -> (u16, Vec<(String, String)>, Value) {
    let url = format!("{base}/v1/chat/completions");
    let mut args = vec!["-H", "content-type: application/json", "-d", CHAT];
    args.extend_from_slice(extra);
    args.push(&url);
    let (status, headers, body) = curl(&args);
    (
        status,
        headers,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

#[test]
fn generations_are_paid_with_cashu_change_comes_back_and_every_sat_is_accounted_for() {
    let llama = llama(&model());
    let mint = CashuMint::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pay_db = dir.path().join("pay.sqlite");
    let relay = provenance_relay::testing::NostrRsRelay::start().unwrap();
    // 1 sat per request and 1 sat per output token: a request of at most 8 tokens reserves 9.
    // Receipts of the tokens given out are published to the relay (opted in).
    let server = serve(
        dir.path(),
        &llama.url(),
        &[
            "--price",
            "request = 1 sat",
            "--price",
            "output_1k = 1000 sat",
            "--cashu-mint",
            &mint.url(),
            "--pay-db",
            pay_db.to_str().unwrap(),
            "--relay",
            relay.url(),
            "--publish-receipts",
        ],
    );
    let base = &server.base;

    // No payment: 402 with a NUT-18 payment request for the reservation.
    let (status, headers, body) = chat(base, &[]);
    assert_eq!(status, 402, "{body}");
    assert!(
        header(&headers, "x-cashu").starts_with("creqA"),
        "{headers:?}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("9000 msat"),
        "{body}"
    );

    // NUT-24: a token in X-Cashu pays for one request; the change comes back as a token the
    // mint's own wallet redeems.
    let token = mint.mint_token(20).unwrap();
    let x_cashu = format!("x-cashu: {token}");
    let (status, headers, body) = chat(base, &["-H", &x_cashu]);
    assert_eq!(status, 200, "{body}");
    let cost: u64 = header(&headers, "x-provenance-cost-msat").parse().unwrap();
    let tokens = body["usage"]["completion_tokens"].as_u64().unwrap();
    assert_eq!(cost, 1000 + tokens * 1000);
    let change = header(&headers, "x-cashu").to_owned();
    assert_eq!(mint.decode_token(&change).unwrap().amount, 20 - cost / 1000);
    // With the change, a receipt signed by the box's key: the token paid in, the cost, and
    // the SHA-256 of the change token given.
    let receipt = provenance::Event::from_json(header(&headers, "x-provenance-receipt")).unwrap();
    receipt.verify().unwrap();
    let said: Value = serde_json::from_str(&receipt.content).unwrap();
    assert_eq!(said["type"], "change");
    assert_eq!(said["cost_msat"], cost);
    assert_eq!(said["given_sat"], 20 - cost / 1000);
    assert_eq!(
        said["given_token_sha256"],
        provenance::digest::sha256(change.as_bytes())
            .to_hex()
            .as_str()
    );
    assert_eq!(
        said["paid_token_sha256"],
        provenance::digest::sha256(token.as_bytes())
            .to_hex()
            .as_str()
    );
    mint.receive(&change).unwrap();
    // The signed record states what was paid; with the usage it states and the price, the
    // change owed follows from the record alone, and matches the change given.
    let event_url = header(&headers, "provenance-event-url");
    let (_, _, event) = curl(&[&format!("{base}{event_url}")]);
    let event_file = dir.path().join("paid.json");
    std::fs::write(&event_file, &event).unwrap();
    let event: Value = serde_json::from_slice(&event).unwrap();
    assert_eq!(event["pubkey"], receipt.pubkey.to_hex().as_str());
    let record: Value = serde_json::from_str(event["content"].as_str().unwrap()).unwrap();
    let payment = &record["payment"];
    assert_eq!(payment["rail"], "cashu", "{record}");
    assert_eq!(payment["unit"], "msat");
    assert_eq!(payment["paid"], 20_000);
    assert_eq!(payment["reserved"], 9_000);
    assert_eq!(payment["mint"], mint.url().trim_end_matches('/'));
    let token_sha256: String = provenance::digest::sha256(token.as_bytes()).to_hex();
    assert_eq!(payment["token_sha256"], token_sha256.as_str());
    let price = &payment["price"];
    let tokens_in_record = record["output"]["tokens"].as_u64().unwrap();
    let owed = 20_000
        - price["request"].as_u64().unwrap()
        - price["output_1k"].as_u64().unwrap() * tokens_in_record / 1000;
    assert_eq!(owed, 20_000 - cost);
    let verified = Command::new(env!("CARGO_BIN_EXE_provenance"))
        .arg("verify")
        .arg(&event_file)
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    // The same token again: its proofs are the box's now.
    let (status, _, body) = chat(base, &["-H", &x_cashu]);
    assert_eq!(status, 402, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already paid in"),
        "{body}"
    );

    // Refused before anything is swapped: too little, another unit, garbage. The small token
    // is still the customer's afterwards.
    let small = mint.mint_token(2).unwrap();
    let (status, _, body) = chat(base, &["-H", &format!("x-cashu: {small}")]);
    assert_eq!(status, 402);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("worth 2 sat"),
        "{body}"
    );
    assert!(
        mint.token_states(&small)
            .unwrap()
            .iter()
            .all(|s| s == "UNSPENT")
    );
    let usd = mint.mint_token_in_unit("usd", 100).unwrap();
    let (status, _, body) = chat(base, &["-H", &format!("x-cashu: {usd}")]);
    assert_eq!(status, 402);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("usd"),
        "{body}"
    );
    let (status, _, _) = chat(base, &["-H", "x-cashu: cashuBnot-a-token"]);
    assert_eq!(status, 402);

    // Routstr's way: the openai package with the token as its API key. The first request
    // swaps it and opens a balance keyed by its hash; requests spend it down until refused.
    let balance_token = mint.mint_token(30).unwrap();
    let out = Command::new(provenance_harness::clients_python().unwrap())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/openai_paid.py"))
        .arg(base)
        .arg(&balance_token)
        .arg("4")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let paid: u64 = results
        .iter()
        .filter(|r| r["status"] == 200)
        .map(|r| r["cost_msat"].as_str().unwrap().parse::<u64>().unwrap())
        .sum();
    // 30 sat buys requests while 9 sat can still be reserved.
    assert!(
        results[0]["status"] == 200 && results[1]["status"] == 200,
        "{results:?}"
    );
    assert!(results.iter().any(|r| r["status"] == 402), "{results:?}");
    let bearer = format!("authorization: Bearer {balance_token}");
    let (_, _, info) = curl(&["-H", &bearer, &format!("{base}/v1/balance/info")]);
    let info: Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["balance"].as_u64().unwrap(), 30_000 - paid, "{info}");
    // The refund is a token the mint redeems; the balance is then empty, and refused.
    let (_, _, refund) = curl(&[
        "-X",
        "POST",
        "-H",
        &bearer,
        &format!("{base}/v1/balance/refund"),
    ]);
    let refund: Value = serde_json::from_slice(&refund).unwrap();
    let refund_token = refund["token"].as_str().unwrap();
    assert_eq!(
        mint.decode_token(refund_token).unwrap().amount,
        (30_000 - paid) / 1000
    );
    // The refund's receipt, signed by the same key as the change's.
    let refund_receipt = provenance::Event::from_json(refund["receipt"].to_string()).unwrap();
    refund_receipt.verify().unwrap();
    assert_eq!(refund_receipt.pubkey, receipt.pubkey);
    let said: Value = serde_json::from_str(&refund_receipt.content).unwrap();
    assert_eq!(said["type"], "refund");
    assert_eq!(
        said["given_token_sha256"],
        provenance::digest::sha256(refund_token.as_bytes())
            .to_hex()
            .as_str()
    );
    mint.receive(refund_token).unwrap();
    let (status, _, _) = chat(base, &["-H", &bearer]);
    assert_eq!(status, 402);
    // Both receipts reach the relay, as the customer got them.
    let filter = nostr::prelude::Filter::new()
        .kind(nostr::prelude::Kind::from_u16(30078))
        .author(receipt.pubkey);
    let rt = serve_common::runtime();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = rt.block_on(provenance_relay::fetch(
            &[relay.url().to_owned()],
            &filter,
            &provenance_relay::Options::default(),
        ));
        let ids: Vec<String> = out
            .events
            .iter()
            .filter_map(|raw| serde_json::from_str::<Value>(&raw.json).ok())
            .filter_map(|e| e["id"].as_str().map(str::to_owned))
            .collect();
        if ids.contains(&receipt.id.to_hex()) && ids.contains(&refund_receipt.id.to_hex()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the receipts never reached the relay: {ids:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // The prices are published.
    let (_, _, pricing) = curl(&[&format!("{base}/provenance/pricing")]);
    let pricing: Value = serde_json::from_slice(&pricing).unwrap();
    assert_eq!(pricing["default"]["request_msat"], 1000);
    assert_eq!(
        pricing["cashu"]["mints"][0],
        mint.url().trim_end_matches('/')
    );
    // And on every model of /v1/models: Routstr's sats_pricing (sat per token and per
    // request, max_cost in sat) and ours in msat, beside what llama-server says of the model.
    let (status, _, models) = curl(&[&format!("{base}/v1/models")]);
    assert_eq!(status, 200);
    let models: Value = serde_json::from_slice(&models).unwrap();
    let first = &models["data"][0];
    assert!(
        first["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{models}"
    );
    let sats = &first["sats_pricing"];
    assert_eq!(sats["request"], 1.0, "{models}");
    assert_eq!(sats["completion"], 1.0);
    assert_eq!(sats["prompt"], 0.0);
    // A request naming no max_tokens reserves 1 sat and 1,024 output tokens.
    assert_eq!(sats["max_cost"], 1025.0);
    let ours = &first["provenance_pricing"];
    assert_eq!(ours["unit"], "msat");
    assert_eq!(ours["default"]["request_msat"], 1000);
    assert_eq!(ours["default"]["output_1k_msat"], 1_000_000);
    assert_eq!(ours["cashu"]["mints"][0], mint.url().trim_end_matches('/'));
    drop(server);

    // Every sat: what the wallet holds is what balances and the operator hold, and what was
    // credited is that plus what was paid out.
    let ledger = provenance_pay::Ledger::open(&pay_db).unwrap();
    let totals = ledger.totals().unwrap();
    assert!(totals.balanced(), "{totals:?}");
    assert_eq!(totals.reserved, 0);
    let wallet = provenance_pay::Wallet::open(
        &pay_db,
        &[mint.url()],
        provenance_pay::cashu::nuts::CurrencyUnit::Sat,
    )
    .unwrap();
    let held: u64 = wallet.held().unwrap().iter().map(|(_, a)| a).sum();
    assert_eq!(held * 1000, totals.balances + totals.operator, "{totals:?}");
    drop(wallet);
    drop(ledger);
    operator_melts_the_earnings(&mint, &pay_db, totals.operator);
}

/// `provenance pay ...`: its exit status, stdout and stderr.
fn pay(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_provenance"))
        .arg("pay")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The operator pays the earnings of the paid requests out over Lightning with `provenance
/// pay melt`, to an invoice of another mint's quote (FakeWallet makes real-format invoices; a
/// mint settles its own quotes' invoices internally, and FakeWallet has marked those paid).
fn operator_melts_the_earnings(mint: &CashuMint, pay_db: &std::path::Path, earned: u64) {
    let db = pay_db.to_str().unwrap();
    let (code, stdout, _) = pay(&["earnings", "--pay-db", db, "--json"]);
    assert_eq!(code, 0, "{stdout}");
    let report: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(report["data"]["earnings"], earned, "{report}");
    assert_eq!(report["data"]["adds_up"], true, "{report}");
    let payee = CashuMint::start().unwrap();
    let invoice = |sat: u64| {
        let quote = payee
            .post_json(
                "/v1/mint/quote/bolt11",
                &serde_json::json!({"amount": sat, "unit": "sat"}),
            )
            .unwrap()
            .json()
            .unwrap();
        quote["request"].as_str().unwrap().to_owned()
    };
    let melt = |invoice: &str, mint_url: &str| {
        pay(&[
            "melt",
            "--pay-db",
            db,
            "--cashu-mint",
            mint_url,
            "--invoice",
            invoice,
        ])
    };
    // Nutshell reserves at least 2 sat of Lightning fee.
    let earned_sat = earned / 1000;
    assert!(earned_sat >= 3, "earned {earned} msat");
    let amount = earned_sat - 2;

    // Garbage: one line, exit 2, nothing sent. A mint that does not answer: exit 2.
    let (code, _, stderr) = melt("lnbc1notaninvoice", &mint.url());
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not a bolt11 invoice"), "{stderr}");
    let down = format!("http://127.0.0.1:{}", serve_common::closed_port());
    let (code, _, stderr) = melt(&invoice(amount), &down);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot be reached"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // More than the earnings: refused, exit 1.
    let (code, _, stderr) = melt(&invoice(earned_sat + 1), &mint.url());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("the earnings are"), "{stderr}");

    // Paid: the wallet melts, the change is held, the totals add up.
    let bolt11 = invoice(amount);
    let (code, stdout, stderr) = melt(&bolt11, &mint.url());
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("paid {amount} sat over Lightning")),
        "{stdout}"
    );
    let ledger = provenance_pay::Ledger::open(pay_db).unwrap();
    let totals = ledger.totals().unwrap();
    assert!(totals.balanced(), "{totals:?}");
    assert!(
        (amount * 1000..=(amount + 2) * 1000).contains(&totals.melted),
        "{totals:?}"
    );
    assert_eq!(totals.operator, earned - totals.melted, "{totals:?}");
    let wallet = provenance_pay::Wallet::open(
        pay_db,
        &[mint.url()],
        provenance_pay::cashu::nuts::CurrencyUnit::Sat,
    )
    .unwrap();
    let held: u64 = wallet.held().unwrap().iter().map(|(_, a)| a).sum();
    assert_eq!(held * 1000, totals.balances + totals.operator, "{totals:?}");
    // The same invoice again: refused here, nothing lost.
    let (code, _, stderr) = melt(&bolt11, &mint.url());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("already paid"), "{stderr}");
    assert_eq!(
        wallet.held().unwrap().iter().map(|(_, a)| a).sum::<u64>(),
        held
    );
    assert_eq!(ledger.totals().unwrap(), totals);
    let (code, stdout, _) = pay(&["earnings", "--pay-db", db]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("every msat is accounted for"), "{stdout}");
}

/// An upstream that answers every GET with 404 (so serve starts at once) and holds every POST
/// without a word: a model still working when the server is killed.
fn stuck_upstream(stream: std::net::TcpStream) {
    use std::io::{BufReader, Write};
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    while let Some((head, _)) = serve_common::read_request(&mut reader) {
        if head.starts_with("POST") {
            std::thread::sleep(std::time::Duration::from_secs(60));
            return;
        }
        let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
    }
}

#[test]
fn a_kill_between_payment_and_answer_loses_no_sat() {
    let mint = CashuMint::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pay_db = dir.path().join("pay.sqlite");
    let args = [
        "--price".to_owned(),
        "request = 1 sat".to_owned(),
        "--cashu-mint".to_owned(),
        mint.url(),
        "--pay-db".to_owned(),
        pay_db.to_str().unwrap().to_owned(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stuck = format!(
        "http://127.0.0.1:{}",
        serve_common::canned_upstream(stuck_upstream)
    );
    let mut server = serve(dir.path(), &stuck, &args);
    // The token is swapped and its reservation made; the model never answers; kill -9.
    let token = mint.mint_token(10).unwrap();
    let bearer = format!("authorization: Bearer {token}");
    let url = format!("{}/v1/chat/completions", server.base);
    // The client's connection dies with the server; what it gets does not matter here.
    let mut client = Command::new("curl")
        .args([
            "-s",
            "-m",
            "30",
            "-H",
            &bearer,
            "-H",
            "content-type: application/json",
            "-d",
            CHAT,
            &url,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !mint
        .token_states(&token)
        .unwrap()
        .iter()
        .all(|s| s == "SPENT")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the token was never swapped"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let _ = client.wait();
    {
        let ledger = provenance_pay::Ledger::open(&pay_db).unwrap();
        let totals = ledger.totals().unwrap();
        assert_eq!(totals.reserved, 1000, "{totals:?}");
        assert!(totals.balanced(), "{totals:?}");
    }

    // The restart refunds the open reservation; the whole token is refundable as a token.
    let llama = llama(&model());
    let dir2 = tempfile::tempdir().unwrap();
    let server = serve(dir2.path(), &llama.url(), &args);
    let bearer = format!("authorization: Bearer {token}");
    let (_, _, info) = curl(&["-H", &bearer, &format!("{}/v1/balance/info", server.base)]);
    let info: Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["balance"], 10_000, "{info}");
    let (_, _, refund) = curl(&[
        "-X",
        "POST",
        "-H",
        &bearer,
        &format!("{}/v1/balance/refund", server.base),
    ]);
    let refund: Value = serde_json::from_slice(&refund).unwrap();
    let given = refund["token"].as_str().unwrap();
    assert_eq!(mint.decode_token(given).unwrap().amount, 10);
    mint.receive(given).unwrap();
    drop(server);
    let ledger = provenance_pay::Ledger::open(&pay_db).unwrap();
    let totals = ledger.totals().unwrap();
    assert!(
        totals.balanced() && totals.reserved == 0 && totals.balances == 0,
        "{totals:?}"
    );
    assert_eq!(totals.credited, totals.paid_out);
}

/// `provenance serve` in front of `upstream`, started with `env` set.
fn serve_with_env(
    dir: &std::path::Path,
    upstream: &str,
    args: &[&str],
    env: (&str, &str),
) -> serve_common::Serve {
    use std::io::BufRead;
    let mut child = serve_common::serve_command(dir, upstream, &model(), args)
        .env(env.0, env.1)
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .trim_end_matches(',')
        .to_owned();
    serve_common::Serve { child, base }
}

#[test]
fn a_kill_between_settle_and_answer_loses_no_sat() {
    let llama = llama(&model());
    let mint = CashuMint::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pay_db = dir.path().join("pay.sqlite");
    let args = [
        "--price".to_owned(),
        "request = 1 sat".to_owned(),
        "--price".to_owned(),
        "output_1k = 1000 sat".to_owned(),
        "--cashu-mint".to_owned(),
        mint.url(),
        "--pay-db".to_owned(),
        pay_db.to_str().unwrap().to_owned(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // The test hook aborts the server right after the ledger charged the cost, before the
    // change token is made and the answer written.
    let mut server = serve_with_env(
        dir.path(),
        &llama.url(),
        &args,
        ("PROVENANCE_TEST_ABORT", "after-settle"),
    );
    let token = mint.mint_token(20).unwrap();
    let out = Command::new("curl")
        .args([
            "-s",
            "-m",
            "60",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &format!("x-cashu: {token}"),
            "-H",
            "content-type: application/json",
            "-d",
            CHAT,
            &format!("{}/v1/chat/completions", server.base),
        ])
        .output()
        .unwrap();
    // No answer: the connection died with the server.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "000");
    let status = server.child.wait().unwrap();
    assert!(!status.success(), "the server did not abort: {status}");
    assert!(
        mint.token_states(&token)
            .unwrap()
            .iter()
            .all(|s| s == "SPENT")
    );
    let cost = {
        let ledger = provenance_pay::Ledger::open(&pay_db).unwrap();
        let totals = ledger.totals().unwrap();
        assert!(totals.balanced(), "{totals:?}");
        // Charged and settled: nothing is left open for the restart to refund.
        assert_eq!(totals.reserved, 0, "{totals:?}");
        assert_eq!(totals.credited, 20_000);
        assert!(totals.operator >= 1000, "{totals:?}");
        totals.operator
    };

    // Restarted without the hook: the token's change waits in its balance, refundable with
    // Bearer <token>; every sat is there, in the refund or the earnings.
    let dir2 = tempfile::tempdir().unwrap();
    let server = serve(dir2.path(), &llama.url(), &args);
    let bearer = format!("authorization: Bearer {token}");
    let (_, _, info) = curl(&["-H", &bearer, &format!("{}/v1/balance/info", server.base)]);
    let info: Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["balance"], 20_000 - cost, "{info}");
    let refund_url = format!("{}/v1/balance/refund", server.base);
    let (status, _, refund) = curl(&["-X", "POST", "-H", &bearer, &refund_url]);
    assert_eq!(status, 200);
    let refund: Value = serde_json::from_slice(&refund).unwrap();
    let given = refund["token"].as_str().unwrap();
    let refunded = mint.decode_token(given).unwrap().amount;
    assert_eq!(refunded * 1000 + cost, 20_000, "{refund}");
    mint.receive(given).unwrap();
    // A second refund gives nothing and takes nothing.
    let (status, _, again) = curl(&["-X", "POST", "-H", &bearer, &refund_url]);
    assert_eq!(status, 200);
    let again: Value = serde_json::from_slice(&again).unwrap();
    assert!(again["token"].is_null(), "{again}");
    assert_eq!(again["balance"], 0, "{again}");
    drop(server);
    let ledger = provenance_pay::Ledger::open(&pay_db).unwrap();
    let totals = ledger.totals().unwrap();
    assert!(totals.balanced(), "{totals:?}");
    assert_eq!(
        (totals.balances, totals.reserved, totals.operator),
        (0, 0, cost)
    );
    assert_eq!(totals.paid_out, refunded * 1000);
    let wallet = provenance_pay::Wallet::open(
        &pay_db,
        &[mint.url()],
        provenance_pay::cashu::nuts::CurrencyUnit::Sat,
    )
    .unwrap();
    let held: u64 = wallet.held().unwrap().iter().map(|(_, a)| a).sum();
    assert_eq!(held * 1000, cost);
}

#[test]
fn the_prices_are_published_as_a_signed_addressable_event() {
    use nostr::prelude::{Event, Filter, Kind};
    let relay = provenance_relay::testing::NostrRsRelay::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pay_db = dir.path().join("pay.sqlite");
    let upstream = format!(
        "http://127.0.0.1:{}",
        serve_common::canned_upstream(stuck_upstream)
    );
    // The mint is never asked: nothing is paid here.
    let mint = format!("http://127.0.0.1:{}", serve_common::closed_port());
    let server = serve(
        dir.path(),
        &upstream,
        &[
            "--price",
            "request = 2 sat",
            "--price",
            "/completion output_1k = 30 sat",
            "--cashu-mint",
            &mint,
            "--pay-db",
            pay_db.to_str().unwrap(),
            "--relay",
            relay.url(),
            "--publish-prices",
        ],
    );
    let keys = provenance::Keys::parse(
        std::fs::read_to_string(dir.path().join("key.nsec"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let filter = Filter::new()
        .kind(Kind::from_u16(30078))
        .author(keys.public_key())
        .identifier("provenance/pricing");
    let rt = serve_common::runtime();
    let relays = [relay.url().to_owned()];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let found = loop {
        let out = rt.block_on(provenance_relay::fetch(
            &relays,
            &filter,
            &provenance_relay::Options::default(),
        ));
        if let Some(found) = out.events.into_iter().next() {
            break found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the pricing event never reached the relay"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    // Signed by the box's key, and the prices it serves.
    let event: Event = serde_json::from_str(&found.json).unwrap();
    event.verify().unwrap();
    assert_eq!(event.pubkey, keys.public_key());
    assert_eq!(
        event.tags.identifier().as_deref(),
        Some("provenance/pricing")
    );
    let published: Value = serde_json::from_str(&event.content).unwrap();
    assert_eq!(published["default"]["request_msat"], 2000, "{published}");
    assert_eq!(
        published["routes"]["/completion"]["output_1k_msat"], 30_000,
        "{published}"
    );
    let (_, _, served) = curl(&[&format!("{}/provenance/pricing", server.base)]);
    let served: Value = serde_json::from_slice(&served).unwrap();
    assert_eq!(published, served);
    drop(server);

    // Without a relay to publish to, refused at start.
    let out = serve_common::serve_command(
        dir.path(),
        &upstream,
        &model(),
        &[
            "--price",
            "request = 2 sat",
            "--cashu-mint",
            &mint,
            "--publish-prices",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--relay"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
