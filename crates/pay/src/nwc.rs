//! Lightning through Nostr Wallet Connect (NIP-47): the box asks the operator's wallet service
//! for invoices (`make_invoice`) and whether they were paid (`lookup_invoice`), and listens for
//! its `payment_received` notifications where it sends them.
//!
//! One live subscription (responses and notifications from the wallet's key, addressed to the
//! connection's key) stays open on the URI's relays; each request is published after that
//! subscription is up and waits for the response that names it (`e` tag). The relay's `OK` is
//! not waited for: some relays send none for ephemeral events (nostr-rs-relay 0.8.12 does not),
//! and the response is the acknowledgement that counts. Every event from the wallet is checked
//! (signature, author, addressee) before it is decrypted, and every invoice is checked against
//! what was asked (amount, description hash, payment hash) before it is handed on: the wallet
//! service is trusted with money, not with the request's terms.
//!
//! The encryption is the one the wallet's info event (kind 13194) names: NIP-44 v2 when it
//! lists `nip44_v2`, else NIP-04 (NIP-47: no `encryption` tag means NIP-04 only).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nostr::nips::nip47::{
    LookupInvoiceRequest, MakeInvoiceRequest, Nip47Ciphers, NostrWalletConnectUri, Notification,
    NotificationResult, Request, Response, ResponseResult, TransactionState,
};
use nostr::prelude::{Event, EventId, Filter, Keys, Kind, PublicKey, Timestamp};
use provenance_relay::{Options, SubscribeOptions, SubscriptionItem};
use tokio::sync::{mpsc, oneshot, watch};

use crate::bolt11::Invoice;

/// Why a wallet request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NwcError {
    /// The connection URI does not parse (the secret is never quoted).
    #[error("the NWC connection URI is not valid: {0}")]
    Uri(String),
    /// No relay took the request, or none was reachable.
    #[error("no relay of the NWC connection took the request: {0}")]
    Relay(String),
    /// No response in time.
    #[error("the wallet service did not answer {method} within {seconds} s")]
    Timeout {
        /// The NIP-47 method.
        method: &'static str,
        /// The wait.
        seconds: u64,
    },
    /// The wallet answered with a NIP-47 error.
    #[error("the wallet service refused {method}: {code}: {message}")]
    Wallet {
        /// The NIP-47 method.
        method: &'static str,
        /// The NIP-47 error code.
        code: String,
        /// The wallet's message.
        message: String,
    },
    /// The wallet's answer does not say what was asked (another amount, another hash, a
    /// response of another method, an invoice that does not parse).
    #[error("the wallet service's answer to {method} is wrong: {why}")]
    Mismatch {
        /// The NIP-47 method.
        method: &'static str,
        /// What is wrong.
        why: String,
    },
}

/// An invoice the wallet made, checked against the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MadeInvoice {
    /// The BOLT11 invoice.
    pub invoice: String,
    /// Its payment hash, hex.
    pub payment_hash: String,
    /// Its amount, msat.
    pub amount_msat: u64,
    /// When it expires, seconds since the epoch.
    pub expires_at: u64,
}

/// The state of an invoice as the wallet reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvoiceState {
    /// Not paid yet.
    Pending,
    /// Paid: the amount received, when, and the preimage when the wallet gave it.
    Settled {
        /// msat received.
        amount_msat: u64,
        /// Seconds since the epoch.
        settled_at: u64,
        /// The payment preimage, hex.
        preimage: Option<String>,
    },
    /// Expired unpaid.
    Expired,
    /// Failed.
    Failed,
}

/// Limits of a wallet connection.
#[derive(Debug, Clone)]
pub struct NwcOptions {
    /// Per-relay limits of the subscription and the info query.
    pub relay: Options,
    /// How long a request waits for its response. Defaults to 30 seconds.
    pub request_timeout: Duration,
    /// How long `connect` waits for the subscription to be up. Defaults to 10 seconds.
    pub ready_timeout: Duration,
}

impl Default for NwcOptions {
    fn default() -> Self {
        Self {
            relay: Options::default(),
            request_timeout: Duration::from_secs(30),
            ready_timeout: Duration::from_secs(10),
        }
    }
}

type Waiters = Arc<Mutex<HashMap<EventId, oneshot::Sender<Event>>>>;

/// A connection to a NIP-47 wallet service; see the module.
pub struct Nwc {
    uri: NostrWalletConnectUri,
    client: PublicKey,
    cipher: Nip47Ciphers,
    relays: Vec<String>,
    options: NwcOptions,
    waiters: Waiters,
    ready: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Nwc {
    // The URI holds the connection secret: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nwc")
            .field("wallet", &self.uri.public_key.to_hex())
            .field("relays", &self.relays)
            .field("cipher", &self.cipher.to_string())
            .finish_non_exhaustive()
    }
}

impl Drop for Nwc {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Parses a `nostr+walletconnect://` URI without ever quoting the secret in an error.
pub fn parse_uri(text: &str) -> Result<NostrWalletConnectUri, NwcError> {
    let text = text.trim();
    if !text.starts_with("nostr+walletconnect://") && !text.starts_with("nostrwalletconnect://") {
        return Err(NwcError::Uri(
            "it does not start with nostr+walletconnect://".into(),
        ));
    }
    // The parser's own messages may quote the input, secret included: not passed on.
    NostrWalletConnectUri::parse(text).map_err(|_| {
        NwcError::Uri(
            "it needs a hex wallet pubkey, at least one valid relay= and a hex secret=".into(),
        )
    })
}

impl Nwc {
    /// Connects: reads the wallet's info event for its encryption, opens the subscription,
    /// and returns with it up, plus the payment hashes of `payment_received` notifications as
    /// they come (each from a signed, decrypted notification of the wallet).
    pub async fn connect(
        uri: &str,
        options: NwcOptions,
    ) -> Result<(Self, mpsc::Receiver<String>), NwcError> {
        let uri = parse_uri(uri)?;
        let client = Keys::new(uri.secret.clone()).public_key();
        let relays: Vec<String> = uri.relays.iter().map(ToString::to_string).collect();
        let cipher = Self::cipher_of(&uri, &relays, &options).await;

        let since = Timestamp::from(Timestamp::now().as_secs().saturating_sub(60));
        let filter = Filter::new()
            .kinds([
                Kind::WalletConnectResponse,
                Kind::WalletConnectNotification,
                Kind::WalletConnectNotificationNip44V2,
            ])
            .author(uri.public_key)
            .pubkey(client)
            .since(since);
        let mut subscription = provenance_relay::subscribe(
            &relays,
            filter,
            SubscribeOptions {
                relay: options.relay.clone(),
                ..SubscribeOptions::default()
            },
        );
        let waiters: Waiters = Arc::default();
        let (ready_tx, ready) = watch::channel(false);
        let (paid_tx, paid) = mpsc::channel(256);
        let task = {
            let (uri, waiters) = (uri.clone(), waiters.clone());
            tokio::spawn(async move {
                while let Some(item) = subscription.next().await {
                    match item {
                        SubscriptionItem::Eose { .. } => {
                            let _ = ready_tx.send(true);
                        }
                        SubscriptionItem::Event(raw) => {
                            let Some(event) = checked(&raw.json, &uri, client) else {
                                continue;
                            };
                            if event.kind == Kind::WalletConnectResponse {
                                let request = event.tags.event_ids().next();
                                let waiter = request.and_then(|id| {
                                    waiters
                                        .lock()
                                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                                        .remove(&id)
                                });
                                if let Some(waiter) = waiter {
                                    let _ = waiter.send(event);
                                }
                            } else if let Ok(n) = Notification::from_event(&uri, &event)
                                && let NotificationResult::PaymentReceived(p) = n.notification
                            {
                                // A full channel drops the hint; invoices are also polled.
                                let _ = paid_tx.try_send(p.payment_hash);
                            }
                        }
                        SubscriptionItem::Notice { .. } | SubscriptionItem::Down { .. } => {}
                    }
                }
            })
        };
        let nwc = Self {
            uri,
            client,
            cipher,
            relays,
            options,
            waiters,
            ready,
            task,
        };
        nwc.wait_ready().await?;
        Ok((nwc, paid))
    }

    /// The wallet service's public key.
    pub fn wallet(&self) -> PublicKey {
        self.uri.public_key
    }

    /// The encryption in use (`nip44_v2` or `nip04`).
    pub fn encryption(&self) -> String {
        self.cipher.latest().to_string()
    }

    async fn cipher_of(
        uri: &NostrWalletConnectUri,
        relays: &[String],
        options: &NwcOptions,
    ) -> Nip47Ciphers {
        let filter = Filter::new()
            .kind(Kind::WalletConnectInfo)
            .author(uri.public_key)
            .limit(1);
        let outcome = provenance_relay::fetch(relays, &filter, &options.relay).await;
        let info = outcome
            .events
            .iter()
            .filter_map(|raw| Event::from_json(&raw.json).ok())
            .filter(|e| e.pubkey == uri.public_key && e.kind == Kind::WalletConnectInfo)
            .filter(|e| e.verify().is_ok())
            .max_by_key(|e| e.created_at);
        let names = info.and_then(|e| {
            e.tags
                .iter()
                .find(|t| t.as_slice().first().map(String::as_str) == Some("encryption"))
                .and_then(|t| t.content().map(str::to_string))
        });
        match names {
            Some(names) if names.split_whitespace().any(|n| n == "nip44_v2") => {
                Nip47Ciphers::NIP44V2
            }
            _ => Nip47Ciphers::NIP04,
        }
    }

    async fn wait_ready(&self) -> Result<(), NwcError> {
        let mut ready = self.ready.clone();
        match tokio::time::timeout(self.options.ready_timeout, ready.wait_for(|up| *up)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(NwcError::Relay(format!(
                "no relay of {} answered the subscription within {} s",
                self.relays.join(", "),
                self.options.ready_timeout.as_secs()
            ))),
        }
    }

    async fn call(&self, method: &'static str, request: Request) -> Result<Response, NwcError> {
        self.wait_ready().await?;
        let event = request
            .to_event(&self.uri, self.cipher)
            .map_err(|e| NwcError::Relay(format!("the request could not be made: {e}")))?;
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(event.id, tx);
        let forget = || {
            self.waiters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&event.id);
        };
        // Published to every relay at once; the OK is not needed (see the module), but a
        // relay that refuses the event outright, on every relay, fails the call at once.
        let publishing = provenance_relay::publish(&self.relays, &event, &self.options.relay);
        let waited = tokio::time::timeout(self.options.request_timeout, async {
            tokio::pin!(publishing);
            let mut rx = rx;
            let mut published = false;
            loop {
                tokio::select! {
                    reports = &mut publishing, if !published => {
                        published = true;
                        let refused: Vec<String> = reports
                            .iter()
                            .filter_map(|r| match &r.outcome {
                                Ok(ack) if !ack.accepted => {
                                    Some(format!("{}: {}", r.relay, ack.message))
                                }
                                _ => None,
                            })
                            .collect();
                        if refused.len() == reports.len() && !reports.is_empty() {
                            return Err(NwcError::Relay(refused.join("; ")));
                        }
                    }
                    answer = &mut rx => {
                        return answer.map_err(|_| NwcError::Relay("the subscription ended".into()));
                    }
                }
            }
        })
        .await;
        let event = match waited {
            Ok(Ok(event)) => event,
            Ok(Err(e)) => {
                forget();
                return Err(e);
            }
            Err(_) => {
                forget();
                return Err(NwcError::Timeout {
                    method,
                    seconds: self.options.request_timeout.as_secs(),
                });
            }
        };
        let response = Response::from_event(&self.uri, &event, self.cipher).map_err(|e| {
            NwcError::Mismatch {
                method,
                why: format!("it does not decrypt or parse ({e})"),
            }
        })?;
        if let Some(error) = &response.error {
            return Err(NwcError::Wallet {
                method,
                code: serde_json::to_value(error.code)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| "OTHER".into()),
                message: error.message.chars().take(200).collect(),
            });
        }
        if response.result_type.as_str() != method {
            return Err(NwcError::Mismatch {
                method,
                why: format!("it answers {}", response.result_type.as_str()),
            });
        }
        Ok(response)
    }

    /// Asks the wallet for an invoice of `amount_msat`, with `description` or (for zaps)
    /// `description_hash` (hex SHA-256), expiring after `expiry` seconds; checks that the
    /// invoice says what was asked.
    pub async fn make_invoice(
        &self,
        amount_msat: u64,
        description: Option<&str>,
        description_hash: Option<&str>,
        expiry: u64,
    ) -> Result<MadeInvoice, NwcError> {
        const METHOD: &str = "make_invoice";
        let request = Request::make_invoice(MakeInvoiceRequest {
            amount: amount_msat,
            description: description.map(str::to_string),
            description_hash: description_hash.map(str::to_string),
            expiry: Some(expiry),
        });
        let response = self.call(METHOD, request).await?;
        let made = match response.result {
            Some(ResponseResult::MakeInvoice(made)) => made,
            _ => {
                return Err(NwcError::Mismatch {
                    method: METHOD,
                    why: "no invoice in the result".into(),
                });
            }
        };
        let wrong = |why: String| NwcError::Mismatch {
            method: METHOD,
            why,
        };
        let invoice =
            Invoice::parse(&made.invoice).map_err(|e| wrong(format!("the invoice: {e}")))?;
        if invoice.amount_msat != Some(amount_msat) {
            return Err(wrong(format!(
                "the invoice is for {:?} msat, {amount_msat} were asked",
                invoice.amount_msat
            )));
        }
        if let Some(hash) = description_hash
            && invoice.description_hash.as_deref() != Some(&hash.to_ascii_lowercase())
        {
            return Err(wrong("the invoice has another description hash".into()));
        }
        if let Some(hash) = &made.payment_hash
            && !hash.eq_ignore_ascii_case(&invoice.payment_hash)
        {
            return Err(wrong("the payment hash differs from the invoice's".into()));
        }
        Ok(MadeInvoice {
            expires_at: invoice.expires_at(),
            payment_hash: invoice.payment_hash,
            invoice: made.invoice,
            amount_msat,
        })
    }

    /// Asks the wallet what became of the invoice with `payment_hash`.
    pub async fn lookup_invoice(&self, payment_hash: &str) -> Result<InvoiceState, NwcError> {
        const METHOD: &str = "lookup_invoice";
        let request = Request::lookup_invoice(LookupInvoiceRequest {
            payment_hash: Some(payment_hash.to_string()),
            invoice: None,
        });
        let response = self.call(METHOD, request).await?;
        let found = match response.result {
            Some(ResponseResult::LookupInvoice(found)) => found,
            _ => {
                return Err(NwcError::Mismatch {
                    method: METHOD,
                    why: "no transaction in the result".into(),
                });
            }
        };
        if !found.payment_hash.eq_ignore_ascii_case(payment_hash) {
            return Err(NwcError::Mismatch {
                method: METHOD,
                why: "it describes another payment hash".into(),
            });
        }
        Ok(match found.state {
            Some(TransactionState::Settled) => InvoiceState::Settled {
                amount_msat: found.amount,
                settled_at: found.settled_at.map_or(0, |t| t.as_secs()),
                preimage: found.preimage,
            },
            Some(TransactionState::Expired) => InvoiceState::Expired,
            Some(TransactionState::Failed) => InvoiceState::Failed,
            // A wallet that reports no state but a settled time has settled it.
            None if found.settled_at.is_some() => InvoiceState::Settled {
                amount_msat: found.amount,
                settled_at: found.settled_at.map_or(0, |t| t.as_secs()),
                preimage: found.preimage,
            },
            _ => InvoiceState::Pending,
        })
    }

    /// The connection's own public key (the requests' author).
    pub fn client(&self) -> PublicKey {
        self.client
    }
}

/// An event of the subscription that is what it claims: well formed, signed, by the wallet,
/// to this connection.
fn checked(json: &str, uri: &NostrWalletConnectUri, client: PublicKey) -> Option<Event> {
    let event = Event::from_json(json).ok()?;
    if event.pubkey != uri.public_key || event.verify().is_err() {
        return None;
    }
    if !event.tags.public_keys().any(|p| p == client) {
        return None;
    }
    Some(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_uri_is_named_without_its_secret() {
        let secret = "7f6c2b0a4cf0b8b9e7d86a1d8f1d0b8c6f2c4fd3f5d0d9e1b8a7c6d5e4f3a2b1";
        for uri in [
            format!("https://example.com?secret={secret}"),
            format!("nostr+walletconnect://nothex?relay=wss%3A%2F%2Fr.example&secret={secret}"),
            "nostr+walletconnect://b889ff5b1513b641e2a139f661a661364979c5beee91842f8f0ef42ab558e9d4?relay=wss%3A%2F%2Fr.example".to_string(),
        ] {
            let e = parse_uri(&uri).unwrap_err().to_string();
            assert!(!e.contains(secret), "{e}");
            assert!(e.starts_with("the NWC connection URI is not valid"), "{e}");
        }
        let ok = parse_uri(&format!(
            "nostr+walletconnect://b889ff5b1513b641e2a139f661a661364979c5beee91842f8f0ef42ab558e9d4?relay=wss%3A%2F%2Fr.example&secret={secret}"
        ))
        .unwrap();
        assert_eq!(ok.relays.len(), 1);
    }
}
