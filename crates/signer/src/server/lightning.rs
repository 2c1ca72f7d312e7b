//! Lightning as a second rail for balances, through the operator's Nostr Wallet Connect
//! service ([`provenance_pay::Nwc`]): top-up invoices for an account, and NIP-57 zaps to the
//! model's npub that credit the zapper.
//!
//! | route | what it does |
//! |---|---|
//! | `POST /v1/balance/lightning/invoice` `{"amount_sat": N}` | an invoice that credits the caller's account (a NIP-98 caller's npub, or an open `Bearer cashu...` balance) when paid |
//! | `GET /v1/balance/lightning/invoice/<payment hash>` | its state (`pending`, `paid`, `expired`), asking the wallet now when pending |
//! | `GET /.well-known/lnurlp/<name>` | LUD-06 pay request with `allowsNostr` and the model's `nostrPubkey` (NIP-57) |
//! | `GET /lnurlp/<name>/callback?amount=MSAT&nostr=ZAP_REQUEST` | checks the zap request (NIP-57 appendix D), returns an invoice whose description hash is the SHA-256 of the zap request |
//!
//! A watcher settles invoices: on the wallet's `payment_received` notification and by asking
//! about every pending invoice at an interval (a wallet without notifications, a notification
//! lost). A paid invoice credits its account once (the ledger keys the credit by the payment
//! hash). A paid zap credits the zapper's npub and gets a zap receipt (kind 9735) signed by the
//! model's key, stored before it is published to the relays the zap request names, and
//! published again until a relay takes it.

use std::sync::Arc;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use provenance::nostr::prelude::{EventBuilder, FinalizeEvent, Kind, Tag, Timestamp};
use provenance::{Event, Keys};
use provenance_pay::invoices::{Purpose, Stored};
use provenance_pay::{InvoiceState, Invoices, Ledger, Nwc, NwcOptions};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

/// The prefix of the ledger references of Lightning credits.
pub const LIGHTNING_REFERENCE: &str = "lightning:";

/// Settings of the Lightning rail.
#[derive(Debug, Clone)]
pub struct LightningOptions {
    /// The LNURL name zaps are paid to (`/.well-known/lnurlp/<name>`). `model`.
    pub name: String,
    /// The base URL of the callback (`--public-url`); else the request's `Host`, over http.
    pub public_url: Option<String>,
    /// The smallest invoice, msat. 1,000.
    pub min_msat: u64,
    /// The largest invoice, msat. 100,000,000 (100,000 sat).
    pub max_msat: u64,
    /// How long an invoice stays payable, seconds. 600.
    pub expiry: u64,
    /// How often pending invoices are looked up. 5 seconds.
    pub poll: Duration,
    /// How many relays of a zap request get its receipt. 8.
    pub max_receipt_relays: usize,
    /// The wallet connection's limits.
    pub nwc: NwcOptions,
}

impl Default for LightningOptions {
    fn default() -> Self {
        Self {
            name: "model".to_owned(),
            public_url: None,
            min_msat: 1_000,
            max_msat: 100_000_000,
            expiry: 600,
            poll: Duration::from_secs(5),
            max_receipt_relays: 8,
            nwc: NwcOptions::default(),
        }
    }
}

/// The Lightning rail; see the module.
#[derive(Debug)]
pub struct Lightning {
    nwc: Nwc,
    ledger: Ledger,
    invoices: Invoices,
    keys: Keys,
    options: LightningOptions,
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn json_reply(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(http::header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// A LUD-06 error: `{"status": "ERROR", "reason": ...}`.
fn lnurl_error(reason: &str) -> Response {
    json_reply(
        StatusCode::BAD_REQUEST,
        &json!({"status": "ERROR", "reason": reason}),
    )
}

fn now() -> u64 {
    Timestamp::now().as_secs()
}

impl Lightning {
    /// Connects to the wallet service at `uri` (`nostr+walletconnect://...`), opens the
    /// invoice table and the ledger in the SQLite file `db` (the payments'), and starts the
    /// watcher. `keys` sign zap receipts (the model's key).
    pub async fn open(
        uri: &str,
        db: &std::path::Path,
        keys: Keys,
        options: LightningOptions,
    ) -> Result<Arc<Self>, String> {
        let (nwc, paid) = Nwc::connect(uri, options.nwc.clone())
            .await
            .map_err(|e| e.to_string())?;
        let in_db = |e: &dyn std::fmt::Display| format!("{}: {e}", db.display());
        let ledger = Ledger::open(db).map_err(|e| in_db(&e))?;
        let invoices = Invoices::open(db).map_err(|e| in_db(&e))?;
        let lightning = Arc::new(Self {
            nwc,
            ledger,
            invoices,
            keys,
            options,
        });
        tokio::spawn(lightning.clone().watch(paid));
        Ok(lightning)
    }

    /// The wallet service's public key, hex.
    pub fn wallet(&self) -> String {
        self.nwc.wallet().to_hex()
    }

    /// The encryption the wallet connection uses.
    pub fn encryption(&self) -> String {
        self.nwc.encryption()
    }

    /// The LNURL name.
    pub fn name(&self) -> &str {
        &self.options.name
    }

    async fn watch(self: Arc<Self>, mut paid: mpsc::Receiver<String>) {
        let mut tick = tokio::time::interval(self.options.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                hint = paid.recv() => match hint {
                    Some(hash) => {
                        if let Ok(Some(stored)) = self.invoices.get(&hash)
                            && stored.state == "pending"
                        {
                            self.settle(&stored).await;
                        }
                    }
                    // The connection's task ended: polling alone from here.
                    None => paid = mpsc::channel(1).1,
                },
                _ = tick.tick() => {
                    for stored in self.invoices.pending(64).unwrap_or_default() {
                        self.settle(&stored).await;
                    }
                    self.publish_receipts().await;
                }
            }
        }
    }

    /// Asks the wallet about `stored`; credits it (once) when paid, marks it expired when
    /// expired. The state after.
    async fn settle(&self, stored: &Stored) -> String {
        match self.nwc.lookup_invoice(&stored.payment_hash).await {
            Ok(InvoiceState::Settled {
                amount_msat,
                settled_at,
                preimage,
            }) => {
                // Credit what was asked: a wallet reporting more is not believed, one
                // reporting less (an underpaid amountless invoice) is credited what it got.
                // (A wallet that reports no amount is taken at the invoice's.)
                let msat = if amount_msat == 0 {
                    stored.msat
                } else {
                    amount_msat.min(stored.msat)
                };
                let reference = format!("{LIGHTNING_REFERENCE}{}", stored.payment_hash);
                if self
                    .ledger
                    .credit_once(&stored.key, msat, &reference)
                    .is_err()
                {
                    return "pending".to_owned();
                }
                let receipt = match (&stored.purpose, &stored.zap_request) {
                    (Purpose::Zap, Some(request)) => self
                        .receipt(stored, request, settled_at, preimage.as_deref())
                        .ok(),
                    _ => None,
                };
                let _ = self.invoices.paid(&stored.payment_hash, receipt.as_deref());
                if receipt.is_some() {
                    self.publish_receipts().await;
                }
                "paid".to_owned()
            }
            Ok(InvoiceState::Expired | InvoiceState::Failed) => {
                let _ = self.invoices.expired(&stored.payment_hash);
                "expired".to_owned()
            }
            Ok(InvoiceState::Pending) if stored.expires_at + 60 < now() => {
                // Well past its expiry and still unpaid: nobody can pay it now.
                let _ = self.invoices.expired(&stored.payment_hash);
                "expired".to_owned()
            }
            Ok(InvoiceState::Pending) | Err(_) => "pending".to_owned(),
        }
    }

    /// The zap receipt of a paid zap (NIP-57 appendix E), signed.
    fn receipt(
        &self,
        stored: &Stored,
        request: &str,
        settled_at: u64,
        preimage: Option<&str>,
    ) -> Result<String, String> {
        let zap = Event::from_json(request).map_err(|e| e.to_string())?;
        let mut tags = Vec::new();
        for name in ["p", "e", "a"] {
            if let Some(tag) = zap.tags.iter().find(|t| t.kind() == name) {
                tags.push(tag.clone());
            }
        }
        let tag = |name: &str, value: &str| Tag::parse([name, value]).map_err(|e| e.to_string());
        tags.push(tag("P", &zap.pubkey.to_hex())?);
        tags.push(tag("bolt11", &stored.invoice)?);
        tags.push(tag("description", request)?);
        if let Some(preimage) = preimage {
            tags.push(tag("preimage", preimage)?);
        }
        let created = if settled_at > 0 { settled_at } else { now() };
        let event = EventBuilder::new(Kind::ZapReceipt, "")
            .tags(tags)
            .custom_created_at(Timestamp::from(created))
            .finalize(&self.keys)
            .map_err(|e| e.to_string())?;
        Ok(event.as_json())
    }

    /// Publishes the receipts no relay has taken yet to the relays of their zap requests.
    async fn publish_receipts(&self) {
        for stored in self.invoices.unpublished(32).unwrap_or_default() {
            let (Some(receipt), Some(request)) = (&stored.receipt, &stored.zap_request) else {
                continue;
            };
            let (Ok(receipt), Ok(zap)) = (Event::from_json(receipt), Event::from_json(request))
            else {
                continue;
            };
            let relays = provenance_pay::zap::relays(&zap, self.options.max_receipt_relays);
            if relays.is_empty() {
                // Nowhere to publish: kept, and counted as done.
                let _ = self.invoices.published(&stored.payment_hash);
                continue;
            }
            let reports =
                provenance_relay::publish(&relays, &receipt, &self.options.nwc.relay).await;
            if reports
                .iter()
                .any(|r| matches!(&r.outcome, Ok(ack) if ack.accepted))
            {
                let _ = self.invoices.published(&stored.payment_hash);
            }
        }
    }

    /// `POST /v1/balance/lightning/invoice` for the account `key`.
    pub(crate) async fn top_up(&self, key: Option<String>, body: &[u8]) -> Response {
        let Some(key) = key else {
            return json_reply(
                StatusCode::UNAUTHORIZED,
                &json!({"error": {"message": "name the account to credit: a NIP-98 Authorization, or Authorization: Bearer <the Cashu token of an open balance>"}}),
            );
        };
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let msat = match (
            body.get("amount_msat").map(Value::as_u64),
            body.get("amount_sat").map(Value::as_u64),
        ) {
            (Some(Some(msat)), None) => Some(msat),
            (None, Some(Some(sat))) => sat.checked_mul(1000),
            _ => None,
        };
        let Some(msat) =
            msat.filter(|m| (self.options.min_msat..=self.options.max_msat).contains(m))
        else {
            return json_reply(
                StatusCode::BAD_REQUEST,
                &json!({"error": {"message": format!(
                    "the body must be {{\"amount_sat\": N}} or {{\"amount_msat\": N}}, a whole number from {} to {} msat",
                    self.options.min_msat, self.options.max_msat
                )}}),
            );
        };
        let made = match self.invoice_for(&key, msat).await {
            Ok(made) => made,
            Err(e) => {
                return json_reply(StatusCode::BAD_GATEWAY, &json!({"error": {"message": e}}));
            }
        };
        json_reply(
            StatusCode::OK,
            &json!({
                "invoice": made.invoice,
                "payment_hash": made.payment_hash,
                "amount_msat": msat,
                "expires_at": made.expires_at,
                "account": key,
            }),
        )
    }

    /// An invoice of `msat` (raised to the smallest invoice) that credits the account `key`
    /// when paid, recorded before it is handed out.
    pub async fn invoice_for(
        &self,
        key: &str,
        msat: u64,
    ) -> Result<provenance_pay::MadeInvoice, String> {
        let msat = msat.max(self.options.min_msat);
        if msat > self.options.max_msat {
            return Err(format!(
                "{msat} msat is more than the largest invoice, {} msat",
                self.options.max_msat
            ));
        }
        let description = format!("provenance balance top-up, {msat} msat");
        let made = self
            .nwc
            .make_invoice(msat, Some(&description), None, self.options.expiry)
            .await
            .map_err(|e| e.to_string())?;
        self.invoices
            .add(
                &made.payment_hash,
                key,
                msat,
                &made.invoice,
                Purpose::TopUp,
                None,
                made.expires_at,
            )
            .map_err(|e| e.to_string())?;
        Ok(made)
    }

    /// `GET /v1/balance/lightning/invoice/<hash>`.
    pub(crate) async fn invoice_state(&self, hash: &str) -> Response {
        let hash = hash.to_ascii_lowercase();
        let stored = match self.invoices.get(&hash) {
            Ok(Some(stored)) => stored,
            Ok(None) => {
                return json_reply(
                    StatusCode::NOT_FOUND,
                    &json!({"error": {"message": "no invoice of this box has that payment hash"}}),
                );
            }
            Err(e) => {
                return json_reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &json!({"error": {"message": e.to_string()}}),
                );
            }
        };
        let state = if stored.state == "pending" {
            self.settle(&stored).await
        } else {
            stored.state.clone()
        };
        json_reply(
            StatusCode::OK,
            &json!({
                "payment_hash": hash,
                "state": state,
                "amount_msat": stored.msat,
                "expires_at": stored.expires_at,
            }),
        )
    }

    fn base(&self, host: Option<&str>) -> String {
        match &self.options.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", host.unwrap_or("127.0.0.1")),
        }
    }

    /// `GET /.well-known/lnurlp/<name>`: LUD-06 with NIP-57's `allowsNostr`.
    pub(crate) fn pay_request(&self, name: &str, host: Option<&str>) -> Response {
        if name != self.options.name {
            return lnurl_error(&format!(
                "no such name here; zaps go to {}",
                self.options.name
            ));
        }
        let base = self.base(host);
        let host_name = base
            .split("://")
            .nth(1)
            .unwrap_or(&base)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let metadata = json!([
            [
                "text/plain",
                format!("Credit with the model {} (provenance)", self.options.name)
            ],
            [
                "text/identifier",
                format!("{}@{host_name}", self.options.name)
            ],
        ])
        .to_string();
        json_reply(
            StatusCode::OK,
            &json!({
                "tag": "payRequest",
                "callback": format!("{base}/lnurlp/{}/callback", self.options.name),
                "minSendable": self.options.min_msat,
                "maxSendable": self.options.max_msat,
                "metadata": metadata,
                "commentAllowed": 0,
                "allowsNostr": true,
                "nostrPubkey": self.keys.public_key().to_hex(),
            }),
        )
    }

    /// `GET /lnurlp/<name>/callback?amount=MSAT&nostr=ZAP_REQUEST`.
    pub(crate) async fn zap_invoice(&self, name: &str, query: &str) -> Response {
        if name != self.options.name {
            return lnurl_error("no such name here");
        }
        let mut amount = None;
        let mut nostr = None;
        for (key, value) in form_pairs(query) {
            match key.as_str() {
                "amount" => amount = Some(value),
                "nostr" => nostr = Some(value),
                _ => {}
            }
        }
        let Some(msat) = amount.and_then(|a| a.parse::<u64>().ok()) else {
            return lnurl_error("amount must be a whole number of msat");
        };
        if !(self.options.min_msat..=self.options.max_msat).contains(&msat) {
            return lnurl_error(&format!(
                "amount must be from {} to {} msat",
                self.options.min_msat, self.options.max_msat
            ));
        }
        let Some(request) = nostr else {
            return lnurl_error(
                "this endpoint credits a Nostr account: send a zap request (NIP-57) in nostr=",
            );
        };
        let zap = match provenance_pay::zap::check_request(&request, msat, &self.keys.public_key())
        {
            Ok(zap) => zap,
            Err(why) => return lnurl_error(&format!("zap request refused: {why}")),
        };
        let made = match self
            .nwc
            .make_invoice(
                msat,
                None,
                Some(&sha256_hex(request.as_bytes())),
                self.options.expiry,
            )
            .await
        {
            Ok(made) => made,
            Err(e) => return lnurl_error(&e.to_string()),
        };
        if let Err(e) = self.invoices.add(
            &made.payment_hash,
            &format!("npub:{}", zap.pubkey.to_hex()),
            msat,
            &made.invoice,
            Purpose::Zap,
            Some(&request),
            made.expires_at,
        ) {
            return lnurl_error(&e.to_string());
        }
        json_reply(StatusCode::OK, &json!({"pr": made.invoice, "routes": []}))
    }
}

/// `application/x-www-form-urlencoded` pairs of a query string, percent-decoded.
fn form_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
