//! The wallet against a real Cashu mint (Nutshell with its FakeWallet Lightning backend,
//! started on loopback by `provenance_harness::CashuMint`; installed by `.ci/cashu-mint.sh`).
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use provenance_harness::CashuMint;
use provenance_pay::cashu::nuts::CurrencyUnit;
use provenance_pay::ledger::OPERATOR;
use provenance_pay::{Ledger, MeltError, PayError, Recovered, Wallet};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn held(wallet: &Wallet) -> u64 {
    wallet.held().unwrap().iter().map(|(_, a)| a).sum()
}

#[test]
fn tokens_are_swapped_on_receipt_refused_when_wrong_and_given_back_as_change() {
    let mint = CashuMint::start().unwrap();
    let other = CashuMint::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wallet = Wallet::open(
        &dir.path().join("w.sqlite"),
        &[mint.url()],
        CurrencyUnit::Sat,
    )
    .unwrap();
    let rt = runtime();

    // A token is received: its value is held, and the customer's proofs are spent at the
    // mint (swapped, not merely checked).
    let token = mint.mint_token(64).unwrap();
    let received = rt.block_on(wallet.receive(&token)).unwrap();
    assert_eq!(received.amount, 64);
    assert_eq!(received.fee, 0);
    assert_eq!(received.mint, mint.url().trim_end_matches('/'));
    assert_eq!(received.token_hash.len(), 64);
    assert_eq!(held(&wallet), 64);
    assert!(
        mint.token_states(&token)
            .unwrap()
            .iter()
            .all(|s| s == "SPENT")
    );

    // The same token again: known here. A token someone already redeemed: spent at the mint.
    assert!(matches!(
        rt.block_on(wallet.receive(&token)),
        Err(PayError::AlreadyReceived)
    ));
    let redeemed = mint.mint_token(8).unwrap();
    mint.receive(&redeemed).unwrap();
    let err = rt.block_on(wallet.receive(&redeemed)).unwrap_err();
    assert!(matches!(err, PayError::Spent), "{err}");

    // Another mint, another unit, garbage: refused, one line each, nothing held changes.
    let foreign = other.mint_token(8).unwrap();
    let err = rt.block_on(wallet.receive(&foreign)).unwrap_err();
    assert!(matches!(err, PayError::Mint(_)), "{err}");
    assert!(
        err.to_string()
            .contains(&other.url().trim_end_matches('/').to_owned())
    );
    let dollars = mint.mint_token_in_unit("usd", 50).unwrap();
    let err = rt.block_on(wallet.receive(&dollars)).unwrap_err();
    assert!(matches!(err, PayError::Unit { .. }), "{err}");
    for junk in ["cashuBgarbage", "cashuA", "", "hello"] {
        let err = rt.block_on(wallet.receive(junk)).unwrap_err();
        assert!(matches!(err, PayError::Token(_)), "{junk}: {err}");
        assert!(!err.to_string().contains('\n'));
    }
    assert_eq!(held(&wallet), 64);

    // Change: 21 sat given as a new token that the mint's own wallet redeems; the rest held.
    let change = rt.block_on(wallet.send(&mint.url(), 21)).unwrap();
    assert!(change.starts_with("cashuB"), "{change}");
    assert_eq!(mint.decode_token(&change).unwrap().amount, 21);
    mint.receive(&change).unwrap();
    assert_eq!(held(&wallet), 43);
    let err = rt.block_on(wallet.send(&mint.url(), 1000)).unwrap_err();
    assert!(
        matches!(err, PayError::Insufficient { held: 43, .. }),
        "{err}"
    );
    assert_eq!(held(&wallet), 43);
    assert!(wallet.pending().unwrap().is_empty());
}

/// A proxy to `target` that passes every exchange through, except that it closes the
/// connection without an answer to the first request whose head contains `drop`: the mint
/// does the work, the wallet never hears of it.
fn lossy_proxy(target: std::net::SocketAddr, drop: &'static str) -> String {
    proxy(target, drop, true)
}

/// [`lossy_proxy`], or, with `forward` false, a proxy that never passes that request on: the
/// mint never hears of it either.
fn proxy(target: std::net::SocketAddr, drop: &'static str, forward: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut dropped = false;
        for client in listener.incoming().take(64) {
            let Ok(mut client) = client else { continue };
            client
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 65536];
            // One request per connection: read the head and its content-length body.
            loop {
                let n = client.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request);
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            let head = String::from_utf8_lossy(&request).into_owned();
            if !forward && !dropped && head.contains(drop) {
                dropped = true;
                continue; // never sent
            }
            // Ask the mint, closing after its answer.
            let request = head.replacen("\r\n", "\r\nConnection: close\r\n", 1);
            let mut upstream = TcpStream::connect(target).unwrap();
            upstream.write_all(request.as_bytes()).unwrap();
            let mut answer = Vec::new();
            upstream.read_to_end(&mut answer).unwrap();
            if !dropped && head.contains(drop) {
                dropped = true;
                continue; // the answer is lost
            }
            let _ = client.write_all(&answer);
        }
    });
    url
}

#[test]
fn a_swap_whose_answer_was_lost_is_settled_from_the_mints_record() {
    let mint = CashuMint::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let path = dir.path().join("w.sqlite");
    let via = lossy_proxy(mint.address(), "POST /v1/swap");
    let wallet = Wallet::open(&path, &[mint.url()], CurrencyUnit::Sat)
        .unwrap()
        .route(&mint.url(), &via);
    let token = mint.mint_token(32).unwrap();
    // The mint swapped the token; its answer never came.
    let err = rt.block_on(wallet.receive(&token)).unwrap_err();
    assert!(matches!(err, PayError::MintFailed(_)), "{err}");
    assert!(
        mint.token_states(&token)
            .unwrap()
            .iter()
            .all(|s| s == "SPENT")
    );
    assert_eq!(held(&wallet), 0);
    assert_eq!(wallet.pending().unwrap().len(), 1);
    drop(wallet);

    // A restart settles it: the mint restores the signatures of the outputs (NUT-09).
    let wallet = Wallet::open(&path, &[mint.url()], CurrencyUnit::Sat).unwrap();
    let settled = rt.block_on(wallet.recover()).unwrap();
    assert!(
        matches!(settled[..], [Recovered::Completed { amount: 32, .. }]),
        "{settled:?}"
    );
    assert_eq!(held(&wallet), 32);
    assert!(wallet.pending().unwrap().is_empty());
    // The recovered proofs are real: they pay a change token the mint redeems.
    let change = rt.block_on(wallet.send(&mint.url(), 32)).unwrap();
    mint.receive(&change).unwrap();
    assert_eq!(held(&wallet), 0);
}

#[test]
fn a_swap_that_never_reached_the_mint_is_settled_as_not_done() {
    let mint = CashuMint::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let path = dir.path().join("w.sqlite");
    // A route to nowhere: keysets cannot even be read, so nothing is begun.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let wallet = Wallet::open(&path, &[mint.url()], CurrencyUnit::Sat)
        .unwrap()
        .route(&mint.url(), &format!("http://{closed}"));
    let token = mint.mint_token(16).unwrap();
    let err = rt.block_on(wallet.receive(&token)).unwrap_err();
    assert!(err.to_string().contains("cannot be reached"), "{err}");
    assert!(wallet.pending().unwrap().is_empty());
    // The token is untouched: the customer still has it, and it is received later.
    assert!(
        mint.token_states(&token)
            .unwrap()
            .iter()
            .all(|s| s == "UNSPENT")
    );
    let wallet = Wallet::open(&path, &[mint.url()], CurrencyUnit::Sat).unwrap();
    assert_eq!(rt.block_on(wallet.receive(&token)).unwrap().amount, 16);
}

/// A bolt11 invoice of `sat` from `mint`'s own mint quote (FakeWallet makes real-format
/// invoices). The paying wallet melts it at another mint: a mint settles an invoice of its
/// own quotes internally, and refuses one FakeWallet has already marked paid.
fn invoice(mint: &CashuMint, sat: u64) -> String {
    let exchange = mint
        .post_json(
            "/v1/mint/quote/bolt11",
            &serde_json::json!({"amount": sat, "unit": "sat"}),
        )
        .unwrap();
    let body = exchange.json().unwrap();
    body["request"].as_str().unwrap().to_owned()
}

/// A ledger in which a customer paid `earned` msat of a token of `token_sat`, received by
/// `wallet`: the operator earned it, the rest is the customer's balance.
fn earn(wallet: &Wallet, ledger: &Ledger, mint: &CashuMint, token_sat: u64, earned: u64) {
    let token = mint.mint_token(token_sat).unwrap();
    let received = runtime().block_on(wallet.receive(&token)).unwrap();
    let key = format!("cashu:{}", received.token_hash);
    ledger.credit(&key, token_sat * 1000, "token").unwrap();
    let r = ledger.reserve(&key, earned, "a request").unwrap();
    ledger.settle(r, earned).unwrap();
}

/// Every msat accounted for, and the wallet holds what balances and the operator hold.
fn adds_up(wallet: &Wallet, ledger: &Ledger) -> provenance_pay::Totals {
    let totals = ledger.totals().unwrap();
    assert!(totals.balanced(), "{totals:?}");
    assert_eq!(
        held(wallet) * 1000,
        totals.balances + totals.operator + totals.melting,
        "{totals:?}"
    );
    totals
}

#[test]
fn earnings_are_melted_to_a_lightning_invoice_and_every_sat_adds_up() {
    let mint = CashuMint::start().unwrap();
    let payee = CashuMint::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pay.sqlite");
    let wallet = Wallet::open(&path, &[mint.url()], CurrencyUnit::Sat).unwrap();
    let ledger = Ledger::open(&path).unwrap();
    let rt = runtime();
    earn(&wallet, &ledger, &mint, 64, 40_000);
    assert_eq!(ledger.earnings().unwrap(), 40_000);
    adds_up(&wallet, &ledger);

    // 20 sat out over Lightning: the mint's fee reserve is taken from the earnings while the
    // melt is in flight, and what it did not spend comes back as change (NUT-08).
    let bolt11 = invoice(&payee, 20);
    let melted = rt
        .block_on(ledger.melt_earnings(&wallet, &mint.url(), &bolt11))
        .unwrap();
    assert_eq!(melted.amount, 20);
    assert!(
        (20..=22).contains(&melted.spent),
        "20 sat and at most the 2 sat reserve: {melted:?}"
    );
    assert_eq!(melted.change, 64 - melted.spent, "{melted:?}");
    assert_eq!(held(&wallet), 64 - melted.spent);
    assert!(wallet.pending().unwrap().is_empty());
    assert!(wallet.pending_melts().unwrap().is_empty());
    let totals = adds_up(&wallet, &ledger);
    assert_eq!(totals.melted, melted.spent * 1000);
    assert_eq!(totals.operator, 40_000 - melted.spent * 1000);
    assert_eq!(totals.balances, 24_000);
    assert_eq!(totals.melting, 0);

    // The same invoice again: refused here, before the mint is asked; nothing moves.
    let err = rt
        .block_on(ledger.melt_earnings(&wallet, &mint.url(), &bolt11))
        .unwrap_err();
    assert!(
        matches!(err, MeltError::Wallet(PayError::AlreadyPaid { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("already paid"), "{err}");
    // More than the earnings left (the customer's balance is not the operator's): refused
    // before anything is sent.
    let err = rt
        .block_on(ledger.melt_earnings(&wallet, &mint.url(), &invoice(&payee, 30)))
        .unwrap_err();
    assert!(matches!(err, MeltError::AboveEarnings { .. }), "{err}");
    assert!(err.to_string().contains("the earnings are"), "{err}");
    // Garbage, and an invoice without an amount's worth of letters: one line each.
    for junk in ["lnbc1garbage", "", "cashuBxyz"] {
        let err = rt
            .block_on(ledger.melt_earnings(&wallet, &mint.url(), junk))
            .unwrap_err();
        assert!(
            matches!(err, MeltError::Wallet(PayError::Invoice(_))),
            "{junk}: {err}"
        );
        assert!(!err.to_string().contains('\n'));
    }
    assert_eq!(held(&wallet), 64 - melted.spent);
    let after = adds_up(&wallet, &ledger);
    assert_eq!(after, totals);
    assert!(ledger.open_melts().unwrap().is_empty());

    // The change is real ecash: held proofs the mint's own wallet redeems.
    let all = held(&wallet);
    let token = rt.block_on(wallet.send(&mint.url(), all)).unwrap();
    mint.receive(&token).unwrap();
    assert_eq!(ledger.balance(OPERATOR).unwrap(), after.operator);
}

#[test]
fn a_melt_whose_answer_was_lost_is_settled_from_the_mints_record() {
    let mint = CashuMint::start().unwrap();
    let payee = CashuMint::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let path = dir.path().join("pay.sqlite");
    let via = lossy_proxy(mint.address(), "POST /v1/melt/bolt11");
    let wallet = Wallet::open(&path, &[mint.url()], CurrencyUnit::Sat)
        .unwrap()
        .route(&mint.url(), &via);
    let ledger = Ledger::open(&path).unwrap();
    earn(&wallet, &ledger, &mint, 32, 32_000);
    // The mint paid the invoice; its answer never came. The melt stays open, with the most it
    // can cost taken from the earnings.
    let err = rt
        .block_on(ledger.melt_earnings(&wallet, &mint.url(), &invoice(&payee, 16)))
        .unwrap_err();
    assert!(
        matches!(err, MeltError::Wallet(PayError::MeltPending { .. })),
        "{err}"
    );
    assert_eq!(wallet.pending_melts().unwrap().len(), 1);
    assert_eq!(ledger.open_melts().unwrap().len(), 1);
    let totals = ledger.totals().unwrap();
    assert!(totals.balanced() && totals.melting == 18_000, "{totals:?}");
    drop(wallet);
    drop(ledger);

    // A restart settles it: the quote is paid, the change restored (NUT-09).
    let wallet = Wallet::open(&path, &[mint.url()], CurrencyUnit::Sat).unwrap();
    let ledger = Ledger::open(&path).unwrap();
    let settled = rt.block_on(wallet.recover()).unwrap();
    let [Recovered::Melted { spent, .. }] = settled[..] else {
        panic!("{settled:?}");
    };
    assert!((16..=18).contains(&spent), "{settled:?}");
    assert_eq!(ledger.settle_melts(&wallet).unwrap(), 1);
    assert_eq!(held(&wallet), 32 - spent);
    let totals = adds_up(&wallet, &ledger);
    assert_eq!(totals.melted, spent * 1000);
    assert_eq!(totals.operator, 32_000 - spent * 1000);
    // The restored change is real.
    let token = rt.block_on(wallet.send(&mint.url(), 32 - spent)).unwrap();
    mint.receive(&token).unwrap();
}

#[test]
fn a_melt_that_never_reached_the_mint_gives_everything_back() {
    let mint = CashuMint::start().unwrap();
    let payee = CashuMint::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let path = dir.path().join("pay.sqlite");
    let via = proxy(mint.address(), "POST /v1/melt/bolt11", false);
    let wallet = Wallet::open(&path, &[mint.url()], CurrencyUnit::Sat)
        .unwrap()
        .route(&mint.url(), &via);
    let ledger = Ledger::open(&path).unwrap();
    earn(&wallet, &ledger, &mint, 32, 32_000);
    let bolt11 = invoice(&payee, 16);
    let err = rt
        .block_on(ledger.melt_earnings(&wallet, &mint.url(), &bolt11))
        .unwrap_err();
    assert!(
        matches!(err, MeltError::Wallet(PayError::MeltPending { .. })),
        "{err}"
    );
    // While it is unsettled, the same invoice is refused.
    let err = rt.block_on(wallet.melt(&mint.url(), &bolt11)).unwrap_err();
    assert!(
        matches!(err, PayError::AlreadyPaid { ref state, .. } if state == "being paid"),
        "{err}"
    );
    drop(wallet);

    let wallet = Wallet::open(&path, &[mint.url()], CurrencyUnit::Sat).unwrap();
    let settled = rt.block_on(wallet.recover()).unwrap();
    assert!(
        matches!(settled[..], [Recovered::MeltNotPaid { .. }]),
        "{settled:?}"
    );
    assert_eq!(ledger.settle_melts(&wallet).unwrap(), 1);
    assert_eq!(held(&wallet), 32);
    let totals = adds_up(&wallet, &ledger);
    assert_eq!((totals.operator, totals.melted), (32_000, 0));
    // Not paid, so it can be paid now, by the wallet alone (no ledger).
    let melted = rt.block_on(wallet.melt(&mint.url(), &bolt11)).unwrap();
    assert_eq!(held(&wallet), 32 - melted.spent);
}
