//! Nutshell (installed by `.ci/cashu-mint.sh`) as a real Cashu mint on loopback: it starts
//! with a `sat` and a `usd` keyset, its wallet CLI mints real tokens (V4 `cashuB…` and V3
//! `cashuA…`) whose proofs the mint reports unspent, a redeemed token is spent and cannot be
//! redeemed twice, the private key decides the keysets, and drop stops the process.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use provenance_harness::{CashuMint, MINT_UNITS, NUTSHELL_VERSION};
use serde_json::Value;

fn get_json(mint: &CashuMint, path: &str) -> Value {
    let exchange = mint.get(path).unwrap();
    assert_eq!(exchange.status, 200, "{}", exchange.text());
    exchange.json().unwrap()
}

/// The units of the mint's active keysets (`GET /v1/keysets`) and their ids.
fn keysets(mint: &CashuMint) -> Vec<(String, String)> {
    let body = get_json(mint, "/v1/keysets");
    let mut keysets: Vec<(String, String)> = body["keysets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|keyset| keyset["active"] == true)
        .map(|keyset| {
            (
                keyset["unit"].as_str().unwrap().to_owned(),
                keyset["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    keysets.sort();
    keysets
}

/// base64url without padding, as NUT-00 serializes V4 tokens.
fn is_base64url(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[test]
fn mint_starts_and_names_its_units() {
    let started = Instant::now();
    let mint = CashuMint::start().unwrap();
    eprintln!("mint ready after {:?}", started.elapsed());
    assert!(
        mint.url().starts_with("http://127.0.0.1:"),
        "{}",
        mint.url()
    );
    assert!(mint.address().ip().is_loopback());

    let info = get_json(&mint, "/v1/info");
    assert_eq!(
        info["version"],
        format!("Nutshell/{NUTSHELL_VERSION}"),
        "{info}"
    );
    // NUT-04 (mint) and NUT-05 (melt) list bolt11 for each unit.
    for nut in ["4", "5"] {
        let units: BTreeSet<&str> = info["nuts"][nut]["methods"]
            .as_array()
            .unwrap_or_else(|| panic!("no NUT-{nut} methods in {info}"))
            .iter()
            .map(|method| {
                assert_eq!(method["method"], "bolt11", "{method}");
                method["unit"].as_str().unwrap()
            })
            .collect();
        assert_eq!(
            units,
            MINT_UNITS.iter().copied().collect(),
            "NUT-{nut}: {info}"
        );
    }
    assert_eq!(info["nuts"]["7"]["supported"], true, "NUT-07: {info}");

    let units: Vec<String> = keysets(&mint).into_iter().map(|(unit, _)| unit).collect();
    assert_eq!(units, ["sat", "usd"]);
    assert!(mint.log().contains("FakeWallet"), "{}", mint.log());
}

#[test]
fn minted_tokens_are_real_unspent_and_distinct() {
    let mint = CashuMint::start().unwrap();

    let started = Instant::now();
    let first = mint.mint_token(64).unwrap();
    eprintln!("one 64 sat token in {:?}", started.elapsed());
    let second = mint.mint_token(64).unwrap();
    for token in [&first, &second] {
        assert!(token.starts_with("cashuB"), "{token}");
        // 64 sat in powers of two, each proof with a 64-hex-digit secret and a 33-byte
        // signature: several hundred characters at least.
        assert!(token.len() > 300, "{token}");
        assert!(is_base64url(&token["cashuB".len()..]), "{token}");
    }
    assert_ne!(first, second, "two minted tokens are the same");

    let summary = mint.decode_token(&first).unwrap();
    assert_eq!(summary.mint, mint.url());
    assert_eq!(summary.unit, "sat");
    assert_eq!(summary.amount, 64);
    assert!(!summary.ys.is_empty());
    let other = mint.decode_token(&second).unwrap();
    assert!(
        summary.ys.iter().all(|y| !other.ys.contains(y)),
        "two tokens share a proof"
    );

    let states = mint.token_states(&first).unwrap();
    assert_eq!(states.len(), summary.ys.len());
    assert!(states.iter().all(|state| state == "UNSPENT"), "{states:?}");
}

#[test]
fn redeemed_token_is_spent_and_refused_twice() {
    let mint = CashuMint::start().unwrap();
    let token = mint.mint_token(21).unwrap();
    let received = mint.receive(&token).unwrap();
    assert!(received.contains("21"), "{received}");
    let states = mint.token_states(&token).unwrap();
    assert!(states.iter().all(|state| state == "SPENT"), "{states:?}");

    let again = mint.receive(&token).unwrap_err().to_string();
    assert!(again.contains("already spent"), "{again}");
}

#[test]
fn tokens_in_the_legacy_format_and_in_another_unit() {
    let mint = CashuMint::start().unwrap();

    let v3 = mint.mint_token_v3(8).unwrap();
    assert!(v3.starts_with("cashuA"), "{v3}");
    let summary = mint.decode_token(&v3).unwrap();
    assert_eq!((summary.unit.as_str(), summary.amount), ("sat", 8));

    let usd = mint.mint_token_in_unit("usd", 50).unwrap();
    assert!(usd.starts_with("cashuB"), "{usd}");
    let summary = mint.decode_token(&usd).unwrap();
    assert_eq!(summary.mint, mint.url());
    assert_eq!((summary.unit.as_str(), summary.amount), ("usd", 50));
    let states = mint.token_states(&usd).unwrap();
    assert!(states.iter().all(|state| state == "UNSPENT"), "{states:?}");
}

#[test]
fn the_private_key_decides_the_keysets() {
    let key = "provenance test mint key";
    let first = CashuMint::start_with_private_key(key).unwrap();
    let second = CashuMint::start_with_private_key(key).unwrap();
    let other = CashuMint::start().unwrap();
    assert_ne!(first.url(), second.url());
    assert_eq!(first.private_key(), key);
    assert_eq!(keysets(&first), keysets(&second));
    assert_eq!(get_json(&first, "/v1/keys"), get_json(&second, "/v1/keys"));
    let ids = |mint: &CashuMint| -> BTreeSet<String> {
        keysets(mint).into_iter().map(|(_, id)| id).collect()
    };
    assert!(ids(&first).is_disjoint(&ids(&other)));
    assert_ne!(other.private_key(), key);
    assert_eq!(other.private_key().len(), 64);
}

#[test]
fn drop_stops_the_mint() {
    let mint = CashuMint::start().unwrap();
    let address = mint.address();
    let proc_dir = format!("/proc/{}", mint.pid());
    assert!(Path::new(&proc_dir).exists());
    TcpStream::connect_timeout(&address, Duration::from_secs(2)).unwrap();
    drop(mint);
    assert!(
        TcpStream::connect_timeout(&address, Duration::from_secs(2)).is_err(),
        "something still listens on {address} after drop"
    );
    assert!(!Path::new(&proc_dir).exists(), "{proc_dir} still exists");
}

#[test]
fn a_missing_install_names_the_script() {
    // The environment variable points at an empty place in a child process running only
    // this test, so the other tests of this binary keep the real install.
    if std::env::var_os("PROVENANCE_CASHU_MISSING_CHILD").is_none() {
        let exe = std::env::current_exe().unwrap();
        let output = std::process::Command::new(exe)
            .args([
                "--exact",
                "a_missing_install_names_the_script",
                "--nocapture",
            ])
            .env("PROVENANCE_CASHU_MISSING_CHILD", "1")
            .env("PROVENANCE_CASHU_VENV", "/nonexistent/cashu-venv")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{text}");
        assert!(text.contains("1 passed"), "{text}");
        return;
    }
    let error = CashuMint::start().unwrap_err().to_string();
    assert!(error.contains("bash .ci/cashu-mint.sh"), "{error}");
    assert!(error.contains("/nonexistent/cashu-venv"), "{error}");
}
