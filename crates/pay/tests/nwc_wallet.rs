//! The NIP-47 client against a wallet service that is not ours: Alby's `NWCWalletService`
//! (@getalby/sdk) over an in-memory Lightning ledger, through a relay on loopback, with Alby's
//! `NWCClient` paying as the customer (`provenance_harness::NwcWallet`; installed by
//! `npm ci --prefix tests/differential`).
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::time::Duration;

use provenance_harness::{NwcWallet, lightning};
use provenance_pay::bolt11::Invoice;
use provenance_pay::{InvoiceState, Nwc, NwcError, NwcOptions};
use provenance_relay::testing::MockRelay;
use sha2::{Digest, Sha256};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoices_are_made_checked_paid_by_another_client_and_seen_settled() {
    let relay = MockRelay::start().await.unwrap();
    let wallet = NwcWallet::start(relay.url(), 1_000_000);
    let (nwc, mut paid) = Nwc::connect(&wallet.box_uri, NwcOptions::default())
        .await
        .unwrap();
    // The service's info event lists NIP-44 v2, so requests use it.
    assert_eq!(nwc.encryption(), "nip44_v2");
    assert_eq!(nwc.wallet().to_hex(), wallet.wallet_pubkey);

    let made = nwc
        .make_invoice(21_000, Some("provenance top-up"), None, 600)
        .await
        .unwrap();
    let parsed = Invoice::parse(&made.invoice).unwrap();
    assert_eq!(parsed.amount_msat, Some(21_000));
    assert_eq!(parsed.payment_hash, made.payment_hash);
    assert_eq!(parsed.description.as_deref(), Some("provenance top-up"));
    assert_eq!(
        nwc.lookup_invoice(&made.payment_hash).await.unwrap(),
        InvoiceState::Pending
    );

    // The customer pays with its own NWC client; the box hears `payment_received` and the
    // lookup says settled, with the preimage that hashes to the payment hash.
    let _ = tokio::task::spawn_blocking({
        let (uri, invoice) = (wallet.customer_uri.clone(), made.invoice.clone());
        move || {
            let paid = lightning(&["pay", &uri, &invoice]);
            assert!(paid["preimage"].is_string(), "{paid}");
        }
    })
    .await;
    let hint = tokio::time::timeout(Duration::from_secs(20), paid.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hint, made.payment_hash);
    match nwc.lookup_invoice(&made.payment_hash).await.unwrap() {
        InvoiceState::Settled {
            amount_msat,
            settled_at,
            preimage,
        } => {
            assert_eq!(amount_msat, 21_000);
            assert!(settled_at > 0);
            let preimage = preimage.unwrap();
            let bytes: Vec<u8> = (0..preimage.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&preimage[i..i + 2], 16).unwrap())
                .collect();
            assert_eq!(hex(&Sha256::digest(&bytes)), made.payment_hash);
        }
        other => panic!("{other:?}"),
    }
    // Paying it twice fails at the wallet: nothing is credited twice there either.
    let again = tokio::task::spawn_blocking({
        let (uri, invoice) = (wallet.customer_uri.clone(), made.invoice.clone());
        move || lightning(&["pay", &uri, &invoice])
    })
    .await
    .unwrap();
    assert!(again["error"].is_string(), "{again}");

    // A description hash (zaps) is carried into the invoice and checked.
    let hash = hex(&Sha256::digest(b"{\"kind\":9734}"));
    let zap = nwc
        .make_invoice(5_000, None, Some(&hash), 600)
        .await
        .unwrap();
    assert_eq!(
        Invoice::parse(&zap.invoice).unwrap().description_hash,
        Some(hash)
    );

    // The wallet's refusals come back as its NIP-47 errors.
    match nwc.lookup_invoice(&"00".repeat(32)).await {
        Err(NwcError::Wallet { code, .. }) => assert_eq!(code, "NOT_FOUND"),
        other => panic!("{other:?}"),
    }
    match nwc.make_invoice(0, Some("nothing"), None, 600).await {
        Err(NwcError::Wallet { method, .. }) => assert_eq!(method, "make_invoice"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_that_does_not_answer_times_out_with_the_method_named() {
    let relay = MockRelay::start().await.unwrap();
    // A connection to a wallet key nobody serves.
    let uri = format!(
        "nostr+walletconnect://{}?relay={}&secret={}",
        "b889ff5b1513b641e2a139f661a661364979c5beee91842f8f0ef42ab558e9d4",
        relay.url(),
        "11".repeat(32)
    );
    let options = NwcOptions {
        request_timeout: Duration::from_millis(500),
        ..NwcOptions::default()
    };
    let (nwc, _paid) = Nwc::connect(&uri, options).await.unwrap();
    // No info event: NIP-04, as NIP-47 says.
    assert_eq!(nwc.encryption(), "nip04");
    let e = nwc.make_invoice(1_000, None, None, 60).await.unwrap_err();
    assert_eq!(
        e,
        NwcError::Timeout {
            method: "make_invoice",
            seconds: 0
        }
    );

    // No relay at all: connect says so instead of hanging.
    let dead = format!(
        "nostr+walletconnect://{}?relay=ws%3A%2F%2F127.0.0.1%3A9&secret={}",
        "b889ff5b1513b641e2a139f661a661364979c5beee91842f8f0ef42ab558e9d4",
        "11".repeat(32)
    );
    let options = NwcOptions {
        ready_timeout: Duration::from_secs(2),
        ..NwcOptions::default()
    };
    assert!(matches!(
        Nwc::connect(&dead, options).await,
        Err(NwcError::Relay(_))
    ));
}
