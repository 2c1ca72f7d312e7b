//! `provenance serve --price ... --nwc-file FILE`: Lightning top-ups and NIP-57 zaps credit
//! npub balances, end to end: a real llama-server with the tiny GGUF, a real Cashu mint (the
//! payments need one), a NIP-47 wallet service that is not ours (Alby's `NWCWalletService`
//! over an in-memory Lightning ledger, `provenance_harness::NwcWallet`) on an in-process relay,
//! Alby's `NWCClient` paying as the customer, zap requests made and receipts checked by
//! nostr-tools, receipts published to nostr-rs-relay, NIP-98 callers by curl. A server killed
//! with an invoice pending credits it after the restart, and at the end every msat the wallet
//! received is in a balance or the operator's earnings.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod serve_common;

use std::path::Path;
use std::time::{Duration, Instant};

use provenance::Keys;
use provenance::nostr::nips::nip98::{HttpData, HttpMethod, Sha256Hash};
use provenance::nostr::prelude::{Filter, Kind};
use provenance_harness::{CashuMint, NwcWallet, lightning};
use provenance_pay::Ledger;
use provenance_pay::bolt11::Invoice;
use provenance_relay::testing::{MockRelay, NostrRsRelay};
use serde_json::Value;
use serve_common::{curl, header, llama, model, serve, serve_command};

const CHAT: &str = r#"{"messages":[{"role":"user","content":"Say hello."}],"max_tokens":8,"temperature":0,"seed":1}"#;

fn rt() -> tokio::runtime::Runtime {
    // Worker threads: the in-process relay must keep serving while the test waits on curl.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A NIP-98 `Authorization` header for `method url` with `body`.
fn auth(
    rt: &tokio::runtime::Runtime,
    keys: &Keys,
    method: HttpMethod,
    url: &str,
    body: &str,
) -> String {
    let mut data = HttpData::new(url.parse().unwrap(), method);
    if !body.is_empty() {
        data = data.payload(Sha256Hash::from_byte_array(
            *provenance::digest::sha256(body.as_bytes()).as_bytes(),
        ));
    }
    format!(
        "Authorization: {}",
        rt.block_on(data.to_authorization(keys)).unwrap()
    )
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

fn post(rt: &tokio::runtime::Runtime, keys: &Keys, url: &str, body: &str) -> (u16, Value) {
    let url = &unique(url);
    let header = auth(rt, keys, HttpMethod::POST, url, body);
    let (status, _, out) = curl(&[
        "-H",
        &header,
        "-H",
        "content-type: application/json",
        "-d",
        body,
        url,
    ]);
    (status, json(&out))
}

/// `url` with a query no other request of this test has: two NIP-98 events for the same
/// request in the same second are the same event, which the server refuses as a replay.
fn unique(url: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{url}?n={n}")
}

fn get(rt: &tokio::runtime::Runtime, keys: &Keys, url: &str) -> (u16, Value) {
    let url = &unique(url);
    let header = auth(rt, keys, HttpMethod::GET, url, "");
    let (status, _, out) = curl(&["-H", &header, url]);
    (status, json(&out))
}

/// Polls the invoice's state until it is `want` (20 s at most).
fn wait_state(rt: &tokio::runtime::Runtime, keys: &Keys, base: &str, hash: &str, want: &str) {
    let url = format!("{base}/v1/balance/lightning/invoice/{hash}");
    let start = Instant::now();
    loop {
        let (status, body) = get(rt, keys, &url);
        assert_eq!(status, 200, "{body}");
        if body["state"] == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "still {body} after 20 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn balance(rt: &tokio::runtime::Runtime, keys: &Keys, base: &str) -> u64 {
    let (status, body) = get(rt, keys, &format!("{base}/v1/balance/info"));
    assert_eq!(status, 200, "{body}");
    body["balance"].as_u64().unwrap()
}

fn pay(wallet: &NwcWallet, invoice: &str) {
    let paid = lightning(&["pay", &wallet.customer_uri, invoice]);
    assert!(paid["preimage"].is_string(), "{paid}");
}

fn nwc_file(dir: &Path, uri: &str, mode: u32) -> String {
    let path = dir.join(format!("nwc-{mode:o}.uri"));
    std::fs::write(&path, uri).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    path.to_str().unwrap().to_owned()
}

#[test]
fn lightning_top_ups_and_zaps_credit_npubs_and_no_msat_is_lost() {
    let rt = rt();
    let llama = llama(&model());
    let mint = CashuMint::start().unwrap();
    let relay = rt.block_on(MockRelay::start()).unwrap();
    let receipts = NostrRsRelay::start().unwrap();
    let wallet = NwcWallet::start(relay.url(), 10_000_000);
    let dir = tempfile::tempdir().unwrap();
    let pay_db = dir.path().join("pay.sqlite");
    let mint_url = mint.url();
    let nwc = nwc_file(dir.path(), &wallet.box_uri, 0o600);
    let args = [
        "--price",
        "request = 1 sat",
        "--price",
        "output_1k = 1000 sat",
        "--cashu-mint",
        &mint_url,
        "--pay-db",
        pay_db.to_str().unwrap(),
        "--nwc-file",
        &nwc,
        "--auth-any",
    ];

    // A connection URI others can read is refused, without its secret in the message.
    let open = nwc_file(dir.path(), &wallet.box_uri, 0o644);
    let mut loose = args.to_vec();
    loose[9] = &open;
    let out = serve_command(dir.path(), &llama.url(), &model(), &loose)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--nwc-file") && stderr.contains("chmod 600"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret="), "{stderr}");

    let server = serve(dir.path(), &llama.url(), &args);
    let base = server.base.clone();
    let customer = Keys::generate();

    // A top-up invoice for the NIP-98 caller; unauthenticated and absurd requests refused.
    let url = format!("{base}/v1/balance/lightning/invoice");
    let (status, _, _) = curl(&["-d", r#"{"amount_sat":50}"#, &url]);
    assert_eq!(status, 401);
    for bad in [
        r#"{"amount_sat":0}"#,
        r#"{"amount_sat":-5}"#,
        r#"{"amount_sat":1.5}"#,
        r#"{"amount_sat":99999999999}"#,
        "garbage",
    ] {
        let (status, body) = post(&rt, &customer, &url, bad);
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, made) = post(&rt, &customer, &url, r#"{"amount_sat":50}"#);
    assert_eq!(status, 200, "{made}");
    let invoice = made["invoice"].as_str().unwrap();
    let hash = made["payment_hash"].as_str().unwrap();
    assert_eq!(Invoice::parse(invoice).unwrap().amount_msat, Some(50_000));
    assert_eq!(
        made["account"],
        format!("npub:{}", customer.public_key().to_hex())
    );
    wait_state(&rt, &customer, &base, hash, "pending");
    // A payment hash the box never handed out is not found.
    let unknown = format!("{base}/v1/balance/lightning/invoice/{}", "00".repeat(32));
    let (status, body) = get(&rt, &customer, &unknown);
    assert_eq!(status, 404, "{body}");
    // Nothing is served on an unpaid invoice.
    let chat_url = format!("{base}/v1/chat/completions");
    let (status, _) = post(&rt, &customer, &chat_url, CHAT);
    assert_eq!(status, 402);

    // The customer pays from its own wallet: the balance is credited, and spent.
    pay(&wallet, invoice);
    wait_state(&rt, &customer, &base, hash, "paid");
    assert_eq!(balance(&rt, &customer, &base), 50_000);
    let chat_once = unique(&chat_url);
    let signed = auth(&rt, &customer, HttpMethod::POST, &chat_once, CHAT);
    let (status, headers, answer) = curl(&[
        "-H",
        &signed,
        "-H",
        "content-type: application/json",
        "-d",
        CHAT,
        &chat_once,
    ]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let spent = 50_000 - balance(&rt, &customer, &base);
    assert!(spent > 0 && spent <= 9_000, "{spent}");

    // The same npub tops up with Cashu too: the token is swapped and credited; again, refused.
    let topup = format!("{base}/v1/balance/topup");
    let token = mint.mint_token(20).unwrap();
    let body = serde_json::json!({ "token": token }).to_string();
    let (status, _, _) = curl(&["-d", &body, &topup]);
    assert_eq!(status, 401);
    let had = balance(&rt, &customer, &base);
    let (status, credited) = post(&rt, &customer, &topup, &body);
    assert_eq!(status, 200, "{credited}");
    assert_eq!(credited["credited"], 20_000);
    assert_eq!(balance(&rt, &customer, &base), had + 20_000);
    let (status, again) = post(&rt, &customer, &topup, &body);
    assert_eq!(status, 402, "{again}");
    assert!(again.to_string().contains("already paid in"), "{again}");

    // Zaps: the LNURL-pay endpoint names the model's key (the key that signs its records).
    let (status, _, body) = curl(&[&format!("{base}/.well-known/lnurlp/model")]);
    assert_eq!(status, 200);
    let lnurl = json(&body);
    assert_eq!(lnurl["allowsNostr"], true);
    assert_eq!(lnurl["tag"], "payRequest");
    let model_key = lnurl["nostrPubkey"].as_str().unwrap().to_owned();
    let (_, _, event) = curl(&[&format!(
        "{base}{}",
        header(&headers, "provenance-event-url")
    )]);
    assert_eq!(json(&event)["pubkey"], model_key.as_str());
    let callback = lnurl["callback"].as_str().unwrap().to_owned();
    let (status, _, _) = curl(&[&format!("{base}/.well-known/lnurlp/somebody")]);
    assert_eq!(status, 400);

    let zapper = Keys::generate();
    let zapper_secret = zapper.secret_key().to_secret_hex();
    let zap = |amount: &str, to: &str| -> String {
        lightning(&["zap-request", &zapper_secret, to, amount, receipts.url()]).to_string()
    };
    let ask = |amount: &str, request: Option<&str>| -> (u16, Value) {
        let mut args = vec![
            "-G".to_owned(),
            "--data-urlencode".to_owned(),
            format!("amount={amount}"),
        ];
        if let Some(request) = request {
            args.push("--data-urlencode".to_owned());
            args.push(format!("nostr={request}"));
        }
        args.push(callback.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (status, _, body) = curl(&args);
        (status, json(&body))
    };
    // Refused, each with a reason (LUD-06 error): another amount than the request's, a request
    // to another key, no request, a forged signature, garbage, an amount below the minimum.
    let other = Keys::generate().public_key().to_hex();
    let forged = {
        let mut v: Value = serde_json::from_str(&zap("21000", &model_key)).unwrap();
        v["content"] = Value::String("changed".into());
        v.to_string()
    };
    for (amount, request, why) in [
        ("21000", Some(zap("20000", &model_key)), "amount"),
        ("21000", Some(zap("21000", &other)), "p tag"),
        ("21000", None, "zap request"),
        ("21000", Some(forged), "signature"),
        ("21000", Some("{not json".to_owned()), "not a Nostr event"),
        ("10", Some(zap("10", &model_key)), "amount must be"),
    ] {
        let (status, body) = ask(amount, request.as_deref());
        assert_eq!(status, 400, "{why}: {body}");
        assert_eq!(body["status"], "ERROR");
        assert!(
            body["reason"].as_str().unwrap().contains(why),
            "{why}: {body}"
        );
    }
    let request = zap("21000", &model_key);
    let (status, body) = ask("21000", Some(&request));
    assert_eq!(status, 200, "{body}");
    let pr = body["pr"].as_str().unwrap();
    let parsed = Invoice::parse(pr).unwrap();
    assert_eq!(parsed.amount_msat, Some(21_000));
    assert_eq!(
        parsed.description_hash.unwrap(),
        provenance::digest::sha256(request.as_bytes()).to_hex()
    );
    pay(&wallet, pr);
    // The receipt reaches the relay the zap request named, and nostr-tools accepts it.
    let filter = Filter::new()
        .kind(Kind::ZapReceipt)
        .pubkey(model_key.parse().unwrap());
    let start = Instant::now();
    let receipt = loop {
        let found = rt.block_on(provenance_relay::fetch(
            &[receipts.url().to_owned()],
            &filter,
            &provenance_relay::Options::default(),
        ));
        if let Some(raw) = found.events.first() {
            break raw.json.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no zap receipt after 20 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let checked = lightning(&["check-receipt", &receipt]);
    assert_eq!(checked["valid"], true, "{checked}");
    assert_eq!(checked["sats"], 21);
    assert_eq!(checked["zapper"], zapper.public_key().to_hex());
    assert_eq!(checked["sender_tag"], zapper.public_key().to_hex());
    assert_eq!(json(receipt.as_bytes())["pubkey"], model_key.as_str());
    // The zapper's npub holds the zap.
    assert_eq!(balance(&rt, &zapper, &base), 21_000);

    // An invoice paid while the server is down is credited after the restart.
    let (status, pending) = post(&rt, &customer, &url, r#"{"amount_sat":30}"#);
    assert_eq!(status, 200, "{pending}");
    let before = balance(&rt, &customer, &base);
    drop(server); // kill -9 (Child::kill)
    pay(&wallet, pending["invoice"].as_str().unwrap());
    let server = serve(dir.path(), &llama.url(), &args);
    let base = server.base.clone();
    wait_state(
        &rt,
        &customer,
        &base,
        pending["payment_hash"].as_str().unwrap(),
        "paid",
    );
    assert_eq!(balance(&rt, &customer, &base), before + 30_000);
    // Asking again credits nothing more.
    wait_state(&rt, &customer, &base, hash, "paid");
    assert_eq!(balance(&rt, &customer, &base), before + 30_000);
    drop(server);

    // Every msat the wallet received is credited exactly once, and the ledger balances.
    let received = lightning(&["balance", &wallet.box_uri])["balance"]
        .as_u64()
        .unwrap();
    assert_eq!(received, 50_000 + 21_000 + 30_000);
    let ledger = Ledger::open(&pay_db).unwrap();
    assert_eq!(ledger.credited_by("lightning:").unwrap(), received);
    let totals = ledger.totals().unwrap();
    assert!(totals.balanced(), "{totals:?}");
    assert_eq!(totals.reserved, 0, "{totals:?}");
    // The Cashu wallet holds the rest of what the accounts and the operator hold.
    let cashu = provenance_pay::Wallet::open(
        &pay_db,
        std::slice::from_ref(&mint_url),
        provenance_pay::cashu::nuts::CurrencyUnit::Sat,
    )
    .unwrap();
    let held: u64 = cashu.held().unwrap().iter().map(|(_, a)| a).sum();
    assert_eq!(
        held * 1000 + received,
        totals.balances + totals.operator,
        "{totals:?}"
    );
}
