//! The wallet against a real Cashu mint (Nutshell with its FakeWallet Lightning backend,
//! started on loopback by `provenance_harness::CashuMint`; installed by `.ci/cashu-mint.sh`).
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use provenance_harness::CashuMint;
use provenance_pay::cashu::nuts::CurrencyUnit;
use provenance_pay::{PayError, Recovered, Wallet};

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
