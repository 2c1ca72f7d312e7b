//! Paid generations: Cashu ecash in front of the model ([`provenance_pay`]), compatible with
//! Routstr's clients.
//!
//! A generation on a priced route is served only once its most possible cost is reserved:
//!
//! | the request carries | what happens |
//! |---|---|
//! | `X-Cashu: cashuB...` (NUT-24) | the token is checked (mint, unit, value at least the reservation: else `402`), swapped at its mint, credited to the account of its hash; after the answer the cost is charged and the rest comes back as a new token in the response's `X-Cashu` header |
//! | `Authorization: Bearer cashuA.../cashuB...` | the token's hash is an account: the first time, the token is swapped and credited; every request reserves from it, and what a request does not cost stays there (`GET /v1/balance/info`, `POST /v1/balance/refund`) |
//! | a NIP-98 caller (`--auth-*`) | the caller's npub is the account |
//! | nothing | `402` with an `X-Cashu` payment request (NUT-18 `creqA`) for the reservation |
//!
//! The reservation is the route's price for the request's `max_tokens` (or
//! [`Payments::default_max_tokens`] when it names none) and, for input, at most one token per
//! byte of the request body; the charge is the price of the usage the upstream reports (the
//! whole reservation when it reports none, never more). A failed answer (not 2xx) is charged
//! nothing. Tokens are swapped before the request is forwarded; a mint that refuses or does
//! not answer gets the request refused (`402`) with the mint's reason, unserved.

use std::convert::Infallible;
use std::io::Write as _;
use std::sync::Arc;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use provenance_pay::cashu::nuts::PaymentRequest;
use provenance_pay::price::MSAT_PER_SAT;
use provenance_pay::{Ledger, PayError, Prices, Usage, Wallet};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt};

use crate::Caller;
use crate::adapter::Api;
use crate::reply;

/// The header of NUT-24 payments and change.
pub const X_CASHU: &str = "x-cashu";

/// Everything a paid route needs: prices, the wallet, the ledger.
#[derive(Debug)]
pub struct Payments {
    /// Prices by route.
    pub prices: Prices,
    /// The operator's wallet.
    pub wallet: Wallet,
    /// Balances.
    pub ledger: Ledger,
    /// The output tokens reserved for a request that names no `max_tokens`. 1,024.
    pub default_max_tokens: u64,
    /// The largest request body read. 8 MiB.
    pub max_request_bytes: usize,
    /// The largest whole answer read to settle it. 64 MiB.
    pub max_response_bytes: usize,
    /// Lightning top-ups and zaps through the operator's NWC wallet, when configured.
    pub lightning: Option<Arc<crate::server::lightning::Lightning>>,
    /// Signs a receipt for every token given out (change, refunds), when set.
    pub receipts: Option<Receipts>,
    /// A test hook for crash tests: abort the process right after a request's cost is
    /// settled, before its change is made and its answer written. [`Payments::open`] sets it
    /// when `PROVENANCE_TEST_ABORT=after-settle` at start.
    pub abort_after_settle: bool,
}

/// The environment variable of [`Payments::abort_after_settle`].
pub const TEST_ABORT_ENV: &str = "PROVENANCE_TEST_ABORT";

impl Payments {
    /// Payments with `prices`, `wallet` and `ledger`, and the defaults above.
    pub fn new(prices: Prices, wallet: Wallet, ledger: Ledger) -> Self {
        Self {
            prices,
            wallet,
            ledger,
            default_max_tokens: 1024,
            max_request_bytes: 8 * 1024 * 1024,
            max_response_bytes: 64 * 1024 * 1024,
            lightning: None,
            receipts: None,
            abort_after_settle: false,
        }
    }

    /// Opens the payments of a server: `prices` (lines as `--price` takes them), tokens of
    /// `mints` in sat, the wallet and ledger in the SQLite file `db`; and settles what a crash
    /// left open: swaps and melts from the mint's record, reservations refunded. The payments,
    /// and a line for each thing settled.
    pub async fn open(
        prices: &[String],
        mints: &[String],
        db: &std::path::Path,
    ) -> Result<(Self, Vec<String>), String> {
        if mints.is_empty() {
            return Err("a price needs a Cashu mint: the mints whose tokens are taken".to_owned());
        }
        let mut parsed = Prices::default();
        for line in prices {
            parsed
                .set(line)
                .map_err(|e| format!("price {line:?}: {e}"))?;
        }
        let in_db = |e: &dyn std::fmt::Display| format!("{}: {e}", db.display());
        let wallet = Wallet::open(db, mints, provenance_pay::cashu::nuts::CurrencyUnit::Sat)
            .map_err(|e| in_db(&e))?;
        let mut notes = Vec::new();
        match wallet.recover().await {
            Ok(settled) if !settled.is_empty() => notes.push(format!(
                "settled {} Cashu swaps a previous run left pending: {settled:?}",
                settled.len()
            )),
            Ok(_) => {}
            Err(e) => notes.push(format!(
                "Cashu swaps left pending by a previous run are not settled yet: {e}"
            )),
        }
        let ledger = Ledger::open(db).map_err(|e| in_db(&e))?;
        match ledger.settle_melts(&wallet) {
            Ok(0) => {}
            Ok(n) => notes.push(format!(
                "settled {n} melts of the earnings a previous run left open"
            )),
            Err(e) => notes.push(format!("melts left open are not settled yet: {e}")),
        }
        let mut payments = Self::new(parsed, wallet, ledger);
        payments.abort_after_settle =
            std::env::var(TEST_ABORT_ENV).is_ok_and(|v| v == "after-settle");
        let refunded = payments.recover().map_err(|e| in_db(&e))?;
        if refunded > 0 {
            notes.push(format!(
                "refunded {refunded} reservations a previous run left open"
            ));
        }
        Ok((payments, notes))
    }

    /// Refunds the reservations a crash left open; call at start.
    pub fn recover(&self) -> Result<usize, provenance_pay::LedgerError> {
        self.ledger.refund_open()
    }

    /// The pricing document of `GET /provenance/pricing`.
    pub fn pricing(&self) -> Value {
        let price = |p: &provenance_pay::Price| {
            json!({
                "request_msat": p.request,
                "output_1k_msat": p.output_1k,
                "input_1k_msat": p.input_1k,
            })
        };
        let routes: serde_json::Map<String, Value> = self
            .prices
            .routes
            .iter()
            .map(|(route, p)| (route.clone(), price(p)))
            .collect();
        json!({
            "unit": "msat",
            "default": price(&self.prices.default),
            "routes": routes,
            "default_max_tokens": self.default_max_tokens,
            "cashu": {
                "mints": self.wallet.mints(),
                "unit": self.wallet.unit().to_string(),
                "headers": ["X-Cashu", "Authorization: Bearer cashu..."],
            },
        })
    }
}

type Inner = BoxCloneSyncService<Request<Body>, Response, Infallible>;

/// The paying service in front of the signing one; see the module.
#[derive(Clone)]
pub(crate) struct PayService {
    pub(crate) inner: Inner,
    pub(crate) payments: Arc<Payments>,
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Payments {
    /// A NUT-18 payment request (`creqA...`) for `msat`, rounded up to whole units, payable
    /// with tokens of the accepted mints.
    pub fn payment_request(&self, msat: u64) -> String {
        let sats = msat.div_ceil(MSAT_PER_SAT);
        let mut request = PaymentRequest::builder()
            .unit(self.wallet.unit().clone())
            .single_use(true);
        for mint in self.wallet.mints() {
            if let Ok(url) = mint.parse() {
                request = request.add_mint(url);
            }
        }
        let mut request = request.build();
        request.amount = Some(provenance_pay::cashu::Amount::from(sats));
        request.to_string()
    }
}

fn payment_required(payments: &Payments, msat: u64, why: &str) -> Response {
    let mut response = reply::error(StatusCode::PAYMENT_REQUIRED, why).into_response();
    if let Ok(value) = HeaderValue::from_str(&payments.payment_request(msat)) {
        response.headers_mut().insert(X_CASHU, value);
    }
    response
}

fn json_response(value: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn refused(status: StatusCode, why: &str) -> Response {
    reply::error(status, why).into_response()
}

/// Who pays for a request.
enum Payer {
    /// A NUT-24 token for this request only: its account, the token's hash.
    OneShot { key: String, token: String },
    /// A token's hash or an npub: a standing balance.
    Balance { key: String, token: Option<String> },
}

/// The Cashu token of an `Authorization: Bearer cashu...` header.
fn bearer_token(request: &Request<Body>) -> Option<&str> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| t.starts_with("cashu"))
}

fn payer(request: &Request<Body>) -> Option<Payer> {
    let header = |name| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(token) = header(X_CASHU).filter(|t| t.starts_with("cashu")) {
        return Some(Payer::OneShot {
            key: format!("cashu:{}", sha256_hex(token.as_bytes())),
            token: token.to_owned(),
        });
    }
    if let Some(token) = bearer_token(request) {
        return Some(Payer::Balance {
            key: format!("cashu:{}", sha256_hex(token.as_bytes())),
            token: Some(token.to_owned()),
        });
    }
    request
        .extensions()
        .get::<Caller>()
        .map(|caller| Payer::Balance {
            key: format!("npub:{}", caller.0.to_hex()),
            token: None,
        })
}

/// The `max_tokens` a request names, in any of the APIs' spellings.
fn max_tokens(body: &Value) -> Option<u64> {
    for pointer in [
        "/max_tokens",
        "/max_completion_tokens",
        "/n_predict",
        "/options/num_predict",
    ] {
        if let Some(n) = body.pointer(pointer).and_then(Value::as_i64) {
            return u64::try_from(n).ok();
        }
    }
    None
}

/// The usage an answer reports (OpenAI, llama.cpp, Ollama, Anthropic), read from a whole
/// JSON answer or the last events of a stream.
fn usage(body: &[u8]) -> Option<Usage> {
    let text = String::from_utf8_lossy(body);
    let mut found = None;
    let documents = text
        .split('\n')
        .map(|l| l.trim().trim_start_matches("data:").trim())
        .filter(|l| l.starts_with('{'))
        .chain(std::iter::once(text.trim()));
    for doc in documents {
        let Ok(v) = serde_json::from_str::<Value>(doc) else {
            continue;
        };
        let get = |p: &str| v.pointer(p).and_then(Value::as_u64);
        let pair = [
            ("/usage/prompt_tokens", "/usage/completion_tokens"),
            ("/tokens_evaluated", "/tokens_predicted"),
            ("/prompt_eval_count", "/eval_count"),
            ("/usage/input_tokens", "/usage/output_tokens"),
        ]
        .iter()
        .find_map(|(i, o)| {
            Some(Usage {
                input: get(i).unwrap_or(0),
                output: get(o)?,
            })
        });
        if pair.is_some() {
            found = pair;
        }
    }
    found
}

impl Service<Request<Body>> for PayService {
    type Response = Response;
    type Error = Infallible;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        let payments = self.payments.clone();
        Box::pin(async move { Ok(serve(inner, payments, request).await) })
    }
}

async fn serve(inner: Inner, payments: Arc<Payments>, request: Request<Body>) -> Response {
    let path = request.uri().path().to_owned();
    match (request.method(), path.trim_end_matches('/')) {
        (&Method::GET, "/provenance/pricing") => {
            return json_response(payments.pricing()).into_response();
        }
        (&Method::GET, "/v1/balance/info") => return balance_info(&payments, &request),
        (&Method::GET, "/v1/models") => {
            let response = inner
                .oneshot(request)
                .await
                .unwrap_or_else(|never| match never {});
            return with_model_prices(&payments, response).await;
        }
        (&Method::POST, "/v1/balance/refund") => {
            let key = account(&request);
            return refund(&payments, key).await;
        }
        (&Method::POST, "/v1/balance/topup") => return top_up(&payments, request).await,
        (&Method::POST, "/v1/balance/lightning/invoice") => {
            let Some(lightning) = payments.lightning.clone() else {
                return refused(
                    StatusCode::NOT_FOUND,
                    "no Lightning rail here (serve --nwc)",
                );
            };
            let key = account(&request).filter(|key| {
                // A token's account must be open already: a top-up never stands in for the
                // token's own value, which is credited when the token is first spent.
                !key.starts_with("cashu:") || payments.ledger.exists(key).unwrap_or(false)
            });
            let body = match Limited::new(request.into_body(), 64 * 1024).collect().await {
                Ok(c) => c.to_bytes(),
                Err(_) => return refused(StatusCode::PAYLOAD_TOO_LARGE, "body over 64 KiB"),
            };
            return lightning.top_up(key, &body).await;
        }
        (&Method::GET, p) if p.starts_with("/v1/balance/lightning/invoice/") => {
            let Some(lightning) = payments.lightning.clone() else {
                return refused(
                    StatusCode::NOT_FOUND,
                    "no Lightning rail here (serve --nwc)",
                );
            };
            let hash = p.trim_start_matches("/v1/balance/lightning/invoice/");
            return lightning.invoice_state(hash).await;
        }
        _ => {}
    }
    let price = payments.prices.on(&path);
    if request.method() != Method::POST || Api::route(&path).is_none() || price.is_free() {
        return inner
            .oneshot(request)
            .await
            .unwrap_or_else(|never| match never {});
    }
    let payer = payer(&request);
    let (parts, body) = request.into_parts();
    let bytes = match Limited::new(body, payments.max_request_bytes)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            return refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request body over {} bytes", payments.max_request_bytes),
            );
        }
    };
    let parsed: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let max = max_tokens(&parsed).unwrap_or(payments.default_max_tokens);
    let reserve = price.reserve(bytes.len() as u64, max);
    let Some(payer) = payer else {
        return payment_required(
            &payments,
            reserve,
            &format!(
                "payment required: {} msat for this request ({price}); pay with a Cashu token in X-Cashu or Authorization: Bearer",
                reserve
            ),
        );
    };
    let mut paid_in: Option<provenance_pay::Received> = None;
    let (key, one_shot) = match &payer {
        Payer::OneShot { key, token } => {
            match payments.wallet.peek(token) {
                Ok((_, sats)) if sats.saturating_mul(MSAT_PER_SAT) < reserve => {
                    return payment_required(
                        &payments,
                        reserve,
                        &format!(
                            "the token is worth {sats} sat, this request may cost {reserve} msat; nothing was taken"
                        ),
                    );
                }
                Ok(_) => {}
                Err(e) => return payment_required(&payments, reserve, &e.to_string()),
            }
            match receive(&payments, key, token).await {
                Ok(received) => paid_in = Some(received),
                Err(e) => return payment_required(&payments, reserve, &e),
            }
            (key.clone(), true)
        }
        Payer::Balance { key, token } => {
            if let Some(token) = token {
                let known = payments.ledger.exists(key).unwrap_or(false);
                if !known {
                    if let Err(e) = receive(&payments, key, token).await {
                        return payment_required(&payments, reserve, &e);
                    }
                }
            }
            (key.clone(), false)
        }
    };
    let reservation = match payments.ledger.reserve(&key, reserve, &path) {
        Ok(id) => id,
        Err(e) => {
            return payment_required(
                &payments,
                reserve,
                &format!("{e}; top up or pay with a token"),
            );
        }
    };
    // The record states what was paid, before the answer exists: with the usage it states
    // and the price, anyone can compute the cost and what the payer was owed back.
    let mut request = Request::from_parts(parts, Body::from(bytes));
    let note = provenance::record::Payment {
        rail: if one_shot { "cashu" } else { "balance" }.to_owned(),
        unit: "msat".to_owned(),
        paid: paid_in
            .as_ref()
            .map(|r| r.amount.saturating_mul(MSAT_PER_SAT)),
        reserved: reserve,
        price: provenance::record::PaymentPrice {
            request: price.request,
            output_1k: price.output_1k,
            input_1k: price.input_1k,
        },
        token_sha256: key.strip_prefix("cashu:").map(str::to_owned),
        mint: paid_in.as_ref().map(|r| r.mint.clone()),
    };
    request.extensions_mut().insert(crate::PaymentNote(note));
    let response = inner
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    if !response.status().is_success() {
        let _ = payments.ledger.refund(reservation);
        return with_change(&payments, response, &key, one_shot).await;
    }
    let streamed = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.starts_with("text/event-stream") || t.starts_with("application/x-ndjson")
        });
    if streamed {
        // Settled when the stream ends, from its last events; what it does not cost stays in
        // the account (for a one-shot token: its hash, refundable with Bearer <token>).
        let (parts, body) = response.into_parts();
        let body = Body::new(Settling::new(
            body,
            payments.clone(),
            reservation,
            price,
            reserve,
        ));
        return Response::from_parts(parts, body);
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match Limited::new(body, payments.max_response_bytes)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            let _ = payments.ledger.settle(reservation, reserve);
            return refused(
                StatusCode::BAD_GATEWAY,
                "the answer could not be read whole",
            );
        }
    };
    let cost = usage(&bytes).map_or(reserve, |u| price.cost(u));
    let _ = payments.ledger.settle(reservation, cost);
    if payments.abort_after_settle {
        std::process::abort();
    }
    if let Ok(v) = HeaderValue::from_str(&cost.to_string()) {
        parts.headers.insert("x-provenance-cost-msat", v);
    }
    with_change(
        &payments,
        Response::from_parts(parts, Body::from(bytes)),
        &key,
        one_shot,
    )
    .await
}

/// The header of a signed receipt for the change token given with an answer.
pub const X_PROVENANCE_RECEIPT: &str = "x-provenance-receipt";
/// The `d` tag prefix of receipts (NIP-78, kind [`PRICING_KIND`]).
pub const RECEIPT_D_PREFIX: &str = "provenance/receipt/";

/// Where published receipts go: a function storing a signed event for the relay outbox.
pub type ReceiptSink = Arc<dyn Fn(&provenance::Event) + Send + Sync>;

/// Signed receipts of the tokens a box gives out (change with an answer, refunds): a NIP-78
/// addressable event (kind 30078, `d` tag `provenance/receipt/<SHA-256 of the token given>`)
/// signed by the server's key whose content states what was paid in, what was charged and
/// the SHA-256 of the token given. The customer gets it with the token (the
/// `X-Provenance-Receipt` header, the refund's `receipt`), so a token that never came, or came
/// short, is provable with the box's own signature. Published to the relays only when the
/// operator opts in ([`Receipts::publish_to`]).
pub struct Receipts {
    keys: provenance::Keys,
    publish: std::sync::OnceLock<ReceiptSink>,
}

impl std::fmt::Debug for Receipts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receipts")
            .field("public_key", &self.keys.public_key().to_hex())
            .field("published", &self.publish.get().is_some())
            .finish()
    }
}

impl Receipts {
    /// Receipts signed with `keys` (the server's key), not published.
    pub fn new(keys: provenance::Keys) -> Self {
        Self {
            keys,
            publish: std::sync::OnceLock::new(),
        }
    }

    /// From now on every receipt is also handed to `sink` (once; later calls are ignored).
    pub fn publish_to(&self, sink: ReceiptSink) {
        let _ = self.publish.set(sink);
    }
}

impl Payments {
    /// Signs a receipt stating `facts` (a JSON object with `given_token_sha256`), publishes it
    /// when the operator opted in, and returns its JSON; `None` without receipts.
    pub fn receipt(&self, facts: &Value) -> Option<String> {
        use provenance::nostr::prelude::{EventBuilder, FinalizeEvent, Kind, Tag};
        let receipts = self.receipts.as_ref()?;
        let given = facts.get("given_token_sha256")?.as_str()?;
        let alt = Tag::parse(["alt", "A receipt of a provenance serve box: a token given"]).ok()?;
        let event = EventBuilder::new(Kind::from_u16(PRICING_KIND), facts.to_string())
            .tag(Tag::identifier(format!("{RECEIPT_D_PREFIX}{given}")))
            .tag(alt)
            .finalize(&receipts.keys)
            .ok()?;
        if let Some(sink) = receipts.publish.get() {
            sink(&event);
        }
        Some(event.as_json())
    }
}

/// The kind of the signed pricing event: NIP-78 application-specific data, addressable.
pub const PRICING_KIND: u16 = 30078;
/// Its `d` tag.
pub const PRICING_D_TAG: &str = "provenance/pricing";

impl Payments {
    /// Adds Lightning top-ups and zaps through the NWC wallet at `uri`, with the invoices in
    /// the payments' SQLite file `db` and zap receipts signed by `keys`; the line that says so.
    pub async fn add_lightning(
        &mut self,
        uri: &str,
        db: &std::path::Path,
        keys: provenance::Keys,
        options: crate::server::lightning::LightningOptions,
    ) -> Result<String, String> {
        let lightning = crate::server::lightning::Lightning::open(uri, db, keys, options).await?;
        let note = format!(
            "Lightning through NWC wallet {} ({}); zaps to /.well-known/lnurlp/{}",
            lightning.wallet(),
            lightning.encryption(),
            lightning.name()
        );
        self.lightning = Some(lightning);
        Ok(note)
    }

    /// Publishes through `signer`'s store, and so its relay outbox: from now on every receipt
    /// when `receipts` (and receipts are on), and, when `prices`, the pricing event
    /// ([`Payments::pricing_event`], signed by `keys`), which it returns.
    pub fn publish_through(
        &self,
        signer: &Arc<crate::Signer>,
        keys: &provenance::Keys,
        receipts: bool,
        prices: bool,
    ) -> Result<Option<provenance::Event>, String> {
        if receipts && let Some(sink) = &self.receipts {
            let signer = signer.clone();
            sink.publish_to(Arc::new(move |event| {
                if let Err(e) = signer.store().put(crate::RequestId::generate(), event) {
                    // Not eprintln!: a closed stderr must not end the request.
                    let _ = writeln!(
                        std::io::stderr(),
                        "provenance: receipt {} not stored for publishing: {e}",
                        event.id.to_hex()
                    );
                }
            }));
        }
        if !prices {
            return Ok(None);
        }
        let event = self.pricing_event(keys)?;
        signer
            .store()
            .put(crate::RequestId::generate(), &event)
            .map_err(|e| format!("storing the pricing event: {e}"))?;
        Ok(Some(event))
    }

    /// The pricing document ([`Payments::pricing`]) as a NIP-78 addressable event (kind
    /// 30078, `d` tag `provenance/pricing`) signed by `keys`, the server's key: anyone can
    /// check that the prices are the box's own, and a newer one replaces it on relays.
    pub fn pricing_event(&self, keys: &provenance::Keys) -> Result<provenance::Event, String> {
        use provenance::nostr::prelude::{EventBuilder, FinalizeEvent, Kind, Tag};
        let alt = Tag::parse(["alt", "The prices of a provenance serve box, in msat"])
            .map_err(|e| e.to_string())?;
        EventBuilder::new(Kind::from_u16(PRICING_KIND), self.pricing().to_string())
            .tag(Tag::identifier(PRICING_D_TAG))
            .tag(alt)
            .finalize(keys)
            .map_err(|e| e.to_string())
    }
}

/// The route whose prices `/v1/models` carries: the one OpenAI clients call.
const MODELS_ROUTE: &str = "/v1/chat/completions";

impl Payments {
    /// The prices of `/v1/chat/completions` in the form Routstr's clients read from each model
    /// of `/v1/models`: `sats_pricing`, sat per input (`prompt`) and output (`completion`)
    /// token and per `request`, and `max_cost`, the most a request naming no `max_tokens`
    /// reserves for its request and output (its input adds at most one token per body byte).
    pub fn sats_pricing(&self) -> Value {
        let price = self.prices.on(MODELS_ROUTE);
        let sat = |msat: u64| msat as f64 / MSAT_PER_SAT as f64;
        let per_token = |per_1k: u64| per_1k as f64 / 1000.0 / MSAT_PER_SAT as f64;
        let completion = price.reserve(0, self.default_max_tokens) - price.request;
        json!({
            "prompt": per_token(price.input_1k),
            "completion": per_token(price.output_1k),
            "request": sat(price.request),
            "image": 0.0,
            "web_search": 0.0,
            "internal_reasoning": 0.0,
            "max_prompt_cost": 0.0,
            "max_completion_cost": sat(completion),
            "max_cost": sat(price.request + completion),
        })
    }
}

/// A `/v1/models` answer (the OpenAI list) with each model's prices added: Routstr's
/// `sats_pricing` and ours in msat (`provenance_pricing`: the default, each route, the unit).
/// Any other answer passes unchanged.
async fn with_model_prices(payments: &Payments, response: Response) -> Response {
    if !response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match Limited::new(body, payments.max_response_bytes)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            return refused(
                StatusCode::BAD_GATEWAY,
                "the model list could not be read whole",
            );
        }
    };
    let mut list: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    let Some(models) = list.get_mut("data").and_then(Value::as_array_mut) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let sats = payments.sats_pricing();
    let pricing = payments.pricing();
    let ours = json!({
        "unit": pricing["unit"],
        "default": pricing["default"],
        "routes": pricing["routes"],
        "default_max_tokens": pricing["default_max_tokens"],
        "cashu": pricing["cashu"],
    });
    for model in models.iter_mut().filter_map(Value::as_object_mut) {
        model.insert("sats_pricing".to_owned(), sats.clone());
        model.insert("provenance_pricing".to_owned(), ours.clone());
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(list.to_string()))
}

/// Swaps `token` and credits its value to `key`; the reason when it cannot.
async fn receive(
    payments: &Payments,
    key: &str,
    token: &str,
) -> Result<provenance_pay::Received, String> {
    match payments.wallet.receive(token).await {
        Ok(received) => payments
            .ledger
            .credit(
                key,
                received.amount.saturating_mul(MSAT_PER_SAT),
                &format!("cashu {} from {}", received.token_hash, received.mint),
            )
            .map(|()| received)
            .map_err(|e| e.to_string()),
        Err(PayError::AlreadyReceived) => Err(
            "this token was already paid in; use it as Authorization: Bearer to spend its balance"
                .to_owned(),
        ),
        Err(e) => Err(e.to_string()),
    }
}

/// For a one-shot token, gives back what is left in its account as a token in `X-Cashu`;
/// what cannot be given (a mint that fails, less than a sat) stays in the account.
async fn with_change(
    payments: &Payments,
    mut response: Response,
    key: &str,
    one_shot: bool,
) -> Response {
    if !one_shot {
        return response;
    }
    let left = payments.ledger.balance(key).unwrap_or(0);
    let sats = left / MSAT_PER_SAT;
    if sats == 0 {
        return response;
    }
    if let Some(token) = pay_out(payments, key, sats).await {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let facts = json!({
            "type": "change",
            "paid_token_sha256": key.strip_prefix("cashu:"),
            "cost_msat": header("x-provenance-cost-msat").and_then(|c| c.parse::<u64>().ok()),
            "given_sat": sats,
            "given_token_sha256": sha256_hex(token.as_bytes()),
            "mint": payments.wallet.mints().first(),
            "provenance_request_id": header("provenance-request-id"),
        });
        if let Some(receipt) = payments.receipt(&facts)
            && let Ok(value) = HeaderValue::from_str(&receipt)
        {
            response.headers_mut().insert(X_PROVENANCE_RECEIPT, value);
        }
        if let Ok(value) = HeaderValue::from_str(&token) {
            response.headers_mut().insert(X_CASHU, value);
        }
    }
    response
}

/// Takes `sats` out of `key` as a new token: the ledger first, then the wallet; if the wallet
/// fails, the ledger is credited back.
async fn pay_out(payments: &Payments, key: &str, sats: u64) -> Option<String> {
    let mint = payments.wallet.mints().first()?.clone();
    let msat = sats.saturating_mul(MSAT_PER_SAT);
    payments.ledger.debit(key, msat, "cashu token").ok()?;
    match payments.wallet.send(&mint, sats).await {
        Ok(token) => Some(token),
        Err(_) => {
            let _ = payments
                .ledger
                .credit(key, msat, "payout failed: back to the balance");
            None
        }
    }
}

/// `POST /v1/balance/topup`: a Cashu token (in `X-Cashu`, or the body's `token` or
/// `cashu_token`) credited to the caller's standing account: a NIP-98 caller's npub, or an
/// open `Bearer cashu...` balance. The token is swapped at its mint first, as any payment.
async fn top_up(payments: &Payments, request: Request<Body>) -> Response {
    let caller = request
        .extensions()
        .get::<Caller>()
        .map(|caller| format!("npub:{}", caller.0.to_hex()));
    let bearer = bearer_token(&request)
        .map(|t| format!("cashu:{}", sha256_hex(t.as_bytes())))
        .filter(|key| payments.ledger.exists(key).unwrap_or(false));
    let Some(key) = caller.or(bearer) else {
        return refused(
            StatusCode::UNAUTHORIZED,
            "name the account to credit: a NIP-98 Authorization, or Authorization: Bearer <the Cashu token of an open balance>",
        );
    };
    let header_token = request
        .headers()
        .get(X_CASHU)
        .and_then(|v| v.to_str().ok())
        .map(|t| t.trim().to_owned());
    let body = match Limited::new(request.into_body(), 64 * 1024).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => return refused(StatusCode::PAYLOAD_TOO_LARGE, "body over 64 KiB"),
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let token = header_token.or_else(|| {
        ["token", "cashu_token"]
            .iter()
            .find_map(|name| body.get(name).and_then(Value::as_str).map(str::to_owned))
    });
    let Some(token) = token.filter(|t| t.starts_with("cashu")) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "no Cashu token: send it in X-Cashu or as {\"token\": \"cashuB...\"}",
        );
    };
    let before = payments.ledger.balance(&key).unwrap_or(0);
    match receive(payments, &key, &token).await {
        Ok(received) => json_response(json!({
            "account": key,
            "credited": received.amount.saturating_mul(MSAT_PER_SAT),
            "balance": payments.ledger.balance(&key).unwrap_or(before),
            "unit": "msat",
        }))
        .into_response(),
        Err(e) => refused(StatusCode::PAYMENT_REQUIRED, &e),
    }
}

/// The account a balance request names.
fn account(request: &Request<Body>) -> Option<String> {
    match payer(request)? {
        Payer::OneShot { key, .. } | Payer::Balance { key, .. } => Some(key),
    }
}

fn balance_info(payments: &Payments, request: &Request<Body>) -> Response {
    let Some(key) = account(request) else {
        return refused(
            StatusCode::UNAUTHORIZED,
            "name the balance: Authorization: Bearer <the Cashu token that opened it>",
        );
    };
    match payments.ledger.balance(&key) {
        Ok(msat) => json_response(json!({
            "api_key": key,
            "balance": msat,
            "unit": "msat",
        }))
        .into_response(),
        Err(e) => refused(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn refund(payments: &Payments, key: Option<String>) -> Response {
    let Some(key) = key else {
        return refused(
            StatusCode::UNAUTHORIZED,
            "name the balance: Authorization: Bearer <the Cashu token that opened it>",
        );
    };
    let msat = payments.ledger.balance(&key).unwrap_or(0);
    let sats = msat / MSAT_PER_SAT;
    if sats == 0 {
        return json_response(json!({"token": null, "balance": msat, "unit": "msat"}))
            .into_response();
    }
    match pay_out(payments, &key, sats).await {
        Some(token) => {
            let facts = json!({
                "type": "refund",
                "account_sha256": sha256_hex(key.as_bytes()),
                "given_sat": sats,
                "given_token_sha256": sha256_hex(token.as_bytes()),
                "mint": payments.wallet.mints().first(),
            });
            let receipt = payments
                .receipt(&facts)
                .and_then(|r| serde_json::from_str::<Value>(&r).ok());
            json_response(json!({
                "token": token,
                "amount": sats,
                "unit": payments.wallet.unit().to_string(),
                "balance": payments.ledger.balance(&key).unwrap_or(0),
                "receipt": receipt,
            }))
            .into_response()
        }
        None => refused(
            StatusCode::BAD_GATEWAY,
            "the mint did not give the refund token; the balance is unchanged, try again",
        ),
    }
}

/// A streamed answer's body that settles its reservation when it ends, from the usage in its
/// last events (at most the last 64 KiB are kept for that).
struct Settling {
    inner: Body,
    tail: Vec<u8>,
    payments: Arc<Payments>,
    reservation: Option<i64>,
    price: provenance_pay::Price,
    reserve: u64,
}

const TAIL: usize = 64 * 1024;

impl Settling {
    fn new(
        inner: Body,
        payments: Arc<Payments>,
        reservation: i64,
        price: provenance_pay::Price,
        reserve: u64,
    ) -> Self {
        Self {
            inner,
            tail: Vec::new(),
            payments,
            reservation: Some(reservation),
            price,
            reserve,
        }
    }

    fn settle(&mut self) {
        if let Some(id) = self.reservation.take() {
            let cost = usage(&self.tail).map_or(self.reserve, |u| self.price.cost(u));
            let _ = self.payments.ledger.settle(id, cost);
        }
    }
}

impl Drop for Settling {
    fn drop(&mut self) {
        // A stream cut short is charged for what its last events say was generated, or the
        // reservation when they say nothing.
        self.settle();
    }
}

impl http_body::Body for Settling {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let polled = std::pin::Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            std::task::Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.tail.extend_from_slice(data);
                    if this.tail.len() > TAIL {
                        let cut = this.tail.len() - TAIL;
                        this.tail.drain(..cut);
                    }
                }
            }
            std::task::Poll::Ready(None) => this.settle(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_read_from_every_api_whole_and_streamed() {
        let cases: [(&str, Usage); 5] = [
            (
                r#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":34}}"#,
                Usage {
                    input: 12,
                    output: 34,
                },
            ),
            (
                r#"{"content":"x","tokens_evaluated":5,"tokens_predicted":7}"#,
                Usage {
                    input: 5,
                    output: 7,
                },
            ),
            (
                r#"{"done":true,"prompt_eval_count":3,"eval_count":9}"#,
                Usage {
                    input: 3,
                    output: 9,
                },
            ),
            (
                "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n",
                Usage {
                    input: 1,
                    output: 2,
                },
            ),
            (
                r#"{"usage":{"input_tokens":4,"output_tokens":6}}"#,
                Usage {
                    input: 4,
                    output: 6,
                },
            ),
        ];
        for (body, want) in cases {
            assert_eq!(usage(body.as_bytes()), Some(want), "{body}");
        }
        assert_eq!(usage(b"{\"choices\":[]}"), None);
        assert_eq!(max_tokens(&json!({"max_tokens": 16})), Some(16));
        assert_eq!(max_tokens(&json!({"options": {"num_predict": 8}})), Some(8));
        assert_eq!(max_tokens(&json!({"n_predict": -1})), None);
    }
}
