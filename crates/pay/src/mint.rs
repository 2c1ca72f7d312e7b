//! A Cashu mint's HTTP API, as the wallet side uses it: keysets and keys (NUT-01, NUT-02),
//! swap (NUT-03), melt over bolt11 (NUT-05, NUT-23), token state (NUT-07) and restore
//! (NUT-09).
//!
//! Every call has a deadline ([`MintClient::timeout`], 10 s by default) and reads at most
//! [`MAX_RESPONSE_BYTES`]; a mint that answers with an error gets its `detail` and `code`
//! (NUT-00 error responses) in [`MintError::Refused`]. Nothing here decides anything: a mint
//! that times out or lies is reported, and the wallet decides.

use std::time::Duration;

use bytes::Bytes;
use cashu::nuts::{
    BlindSignature, CheckStateRequest, CheckStateResponse, Id, KeySetInfo, Keys, KeysResponse,
    KeysetResponse, MeltRequest, RestoreRequest, RestoreResponse, SwapRequest, SwapResponse,
};
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest answer read from a mint.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// The shortest deadline of a melt: the mint answers once its Lightning payment is done.
pub const MELT_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a call to a mint has no answer.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// The URL is not `http://` or `https://`.
    #[error("mint URL {0:?} is not http:// or https://")]
    Url(String),
    /// No answer within the deadline.
    #[error("the mint {url} did not answer within {secs} s")]
    Timeout {
        /// The mint.
        url: String,
        /// The deadline.
        secs: u64,
    },
    /// The connection failed.
    #[error("the mint {url} cannot be reached: {why}")]
    Unreachable {
        /// The mint.
        url: String,
        /// Why.
        why: String,
    },
    /// The mint refused (an HTTP error status), with its NUT-00 error if it gave one.
    #[error("the mint {url} refused ({status}): {detail}{}", code.map(|c| format!(" (code {c})")).unwrap_or_default())]
    Refused {
        /// The mint.
        url: String,
        /// The status.
        status: StatusCode,
        /// The mint's `detail`, or the start of its body.
        detail: String,
        /// The mint's `code`.
        code: Option<u64>,
    },
    /// The answer is not what the protocol says.
    #[error("the mint {url} answered what the protocol does not allow: {why}")]
    Malformed {
        /// The mint.
        url: String,
        /// Why.
        why: String,
    },
}

impl MintError {
    /// The NUT-00 error code of a refusal: 11001 is "token already spent".
    pub fn code(&self) -> Option<u64> {
        match self {
            Self::Refused { code, .. } => *code,
            _ => None,
        }
    }
}

/// A mint's melt quote, as it answers `POST /v1/melt/quote/bolt11`, `GET
/// /v1/melt/quote/bolt11/{quote}` and `POST /v1/melt/bolt11` (NUT-05, NUT-23). Read leniently:
/// fields older or newer mints leave out are optional.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct MeltAnswer {
    /// The quote's id.
    pub quote: String,
    /// What the invoice costs, in the quote's unit.
    pub amount: u64,
    /// The most the mint may spend on Lightning fees, in the quote's unit.
    pub fee_reserve: u64,
    /// `UNPAID`, `PENDING`, `PAID` (NUT-05); mints before NUT-05's states say only `paid`.
    #[serde(default)]
    pub state: Option<String>,
    /// The deprecated form of `state`.
    #[serde(default)]
    pub paid: Option<bool>,
    /// Unix time until which the quote holds.
    #[serde(default)]
    pub expiry: Option<u64>,
    /// The payment's preimage, once paid.
    #[serde(default)]
    pub payment_preimage: Option<String>,
    /// Signatures on blank outputs: the Lightning fee reserve not spent (NUT-08).
    #[serde(default)]
    pub change: Option<Vec<BlindSignature>>,
    /// The quote's unit.
    #[serde(default)]
    pub unit: Option<String>,
}

impl MeltAnswer {
    /// The quote's state, upper case: `PAID`, `PENDING`, `UNPAID` (also for a mint that says
    /// only `paid: false`), or what the mint said.
    pub fn state(&self) -> String {
        match (&self.state, self.paid) {
            (Some(state), _) => state.to_ascii_uppercase(),
            (None, Some(true)) => "PAID".to_owned(),
            (None, _) => "UNPAID".to_owned(),
        }
    }
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// A client of one mint.
#[derive(Clone, Debug)]
pub struct MintClient {
    url: String,
    client: Client<Https, Full<Bytes>>,
    timeout: Duration,
}

impl MintClient {
    /// A client of the mint at `url` (no trailing `/`).
    pub fn new(url: &str) -> Result<Self, MintError> {
        let url = url.trim_end_matches('/').to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(MintError::Url(url));
        }
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self {
            url,
            client,
            timeout: Duration::from_secs(10),
        })
    }

    /// The deadline of each call. 10 s by default.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The mint's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The mint's keysets (`GET /v1/keysets`).
    pub async fn keysets(&self) -> Result<Vec<KeySetInfo>, MintError> {
        let r: KeysetResponse = self.call(Method::GET, "/v1/keysets", None::<&()>).await?;
        Ok(r.keysets)
    }

    /// The public keys of keyset `id` (`GET /v1/keys/{id}`).
    pub async fn keys(&self, id: &Id) -> Result<Keys, MintError> {
        let r: KeysResponse = self
            .call(Method::GET, &format!("/v1/keys/{id}"), None::<&()>)
            .await?;
        r.keysets
            .into_iter()
            .find(|k| k.id == *id)
            .map(|k| k.keys)
            .ok_or_else(|| MintError::Malformed {
                url: self.url.clone(),
                why: format!("no keys for keyset {id} in its answer"),
            })
    }

    /// Swaps proofs for new outputs (`POST /v1/swap`).
    pub async fn swap(&self, request: &SwapRequest) -> Result<SwapResponse, MintError> {
        self.call(Method::POST, "/v1/swap", Some(request)).await
    }

    /// The state of proofs by their `Y` (`POST /v1/checkstate`).
    pub async fn check_state(
        &self,
        request: &CheckStateRequest,
    ) -> Result<CheckStateResponse, MintError> {
        self.call(Method::POST, "/v1/checkstate", Some(request))
            .await
    }

    /// The signatures the mint gave for outputs, if it signed them (`POST /v1/restore`).
    pub async fn restore(&self, request: &RestoreRequest) -> Result<RestoreResponse, MintError> {
        self.call(Method::POST, "/v1/restore", Some(request)).await
    }

    /// A quote for paying the bolt11 `invoice` with ecash of `unit`
    /// (`POST /v1/melt/quote/bolt11`).
    pub async fn melt_quote(&self, invoice: &str, unit: &str) -> Result<MeltAnswer, MintError> {
        let body = serde_json::json!({ "request": invoice, "unit": unit });
        self.call(Method::POST, "/v1/melt/quote/bolt11", Some(&body))
            .await
    }

    /// The state of melt quote `quote` (`GET /v1/melt/quote/bolt11/{quote}`).
    pub async fn melt_state(&self, quote: &str) -> Result<MeltAnswer, MintError> {
        if !quote
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(MintError::Url(format!("melt quote id {quote:?}")));
        }
        self.call(
            Method::GET,
            &format!("/v1/melt/quote/bolt11/{quote}"),
            None::<&()>,
        )
        .await
    }

    /// Pays a melt quote with proofs, blank outputs taking the change (`POST /v1/melt/bolt11`).
    /// The mint answers when the Lightning payment is done, so this call waits at least
    /// [`MELT_TIMEOUT`].
    pub async fn melt(&self, request: &MeltRequest<String>) -> Result<MeltAnswer, MintError> {
        let patient = self.clone().timeout(self.timeout.max(MELT_TIMEOUT));
        patient
            .call(Method::POST, "/v1/melt/bolt11", Some(request))
            .await
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, MintError> {
        let url = format!("{}{path}", self.url);
        let malformed = |why: String| MintError::Malformed {
            url: self.url.clone(),
            why,
        };
        let bytes = match body {
            Some(b) => Bytes::from(serde_json::to_vec(b).map_err(|e| malformed(e.to_string()))?),
            None => Bytes::new(),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(&url)
            .header(header::ACCEPT, "application/json");
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(bytes))
            .map_err(|e| MintError::Url(format!("{url}: {e}")))?;
        let exchange = async {
            let response =
                self.client
                    .request(request)
                    .await
                    .map_err(|e| MintError::Unreachable {
                        url: self.url.clone(),
                        why: e.to_string(),
                    })?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| malformed(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok::<_, MintError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| MintError::Timeout {
                url: self.url.clone(),
                secs: self.timeout.as_secs(),
            })??;
        if !status.is_success() {
            let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
            let detail = parsed
                .as_ref()
                .and_then(|v| v.get("detail"))
                .and_then(serde_json::Value::as_str)
                .map_or_else(
                    || String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
                    str::to_owned,
                )
                .replace(['\n', '\r'], " ");
            let code = parsed
                .as_ref()
                .and_then(|v| v.get("code"))
                .and_then(serde_json::Value::as_u64);
            return Err(MintError::Refused {
                url: self.url.clone(),
                status,
                detail,
                code,
            });
        }
        serde_json::from_slice(&body).map_err(|e| malformed(e.to_string()))
    }
}
