//! The operator's Cashu wallet: receiving customers' tokens (swapped at their mint before
//! anything is served) and giving tokens back (change and refunds), with every step written
//! to SQLite before it is sent to the mint, so that no sat is lost to a crash.
//!
//! A swap is the one step that cannot be undone: the mint spends the inputs and signs the
//! outputs. Before it is sent, the wallet writes an *operation* row holding the inputs and
//! everything needed to unblind the outputs (each output's amount, secret and blinding
//! factor). When the mint answers, one transaction stores the new proofs and closes the
//! operation. When it does not (a crash, a timeout), the operation stays pending and
//! [`Wallet::recover`] settles it: it asks the mint to restore the outputs (NUT-09), which
//! returns their signatures if the swap happened, and otherwise checks the inputs (NUT-07):
//! unspent means the swap never happened.
//!
//! A melt (NUT-05, [`Wallet::melt`]) pays a Lightning invoice with held proofs: the operator
//! cashing out. It is kept the same way, in its own operation row written before the request
//! (the inputs, and the secret and blinding factor of each blank output that takes the
//! unspent Lightning fee reserve back, NUT-08); one transaction stores the change when the
//! mint answers. A melt whose answer was lost is settled by [`Wallet::recover`] from the
//! mint's record: the quote's state, the change restored (NUT-09), and the inputs (NUT-07)
//! when the quote was never paid.
//!
//! | refusal | when |
//! |---|---|
//! | [`PayError::Token`] | the token does not decode, is empty, or holds the same proof twice |
//! | [`PayError::Mint`] | the token's mint is not on the allow list |
//! | [`PayError::Unit`] | the token's unit is not the wallet's |
//! | [`PayError::AlreadyReceived`] | a proof of the token was received before |
//! | [`PayError::Spent`] | the mint says a proof is spent (a double spend) |
//! | [`PayError::MintFailed`] | the mint refused, timed out or answered out of protocol |
//! | [`PayError::Insufficient`] | the wallet holds too little to give an amount |
//! | [`PayError::Invoice`] | a bolt11 invoice to melt to does not decode, has no amount or expired |
//! | [`PayError::AlreadyPaid`] | the invoice was paid (or is being paid) by this wallet before |
//! | [`PayError::MeltPending`] | the mint has not settled a melt yet; [`Wallet::recover`] will |

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;
use std::sync::Mutex;

use cashu::dhke::{blind_message, construct_proofs};
use cashu::nuts::{
    BlindSignature, BlindedMessage, CheckStateRequest, CurrencyUnit, Id, KeySetInfo, Keys,
    MeltRequest, Proof, Proofs, RestoreRequest, SecretKey, State, SwapRequest, Token,
};
use cashu::secret::Secret;
use cashu::{Amount, MintUrl};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::mint::{MintClient, MintError};

/// The most proofs one token may carry.
pub const MAX_TOKEN_PROOFS: usize = 256;
/// The longest token string read.
pub const MAX_TOKEN_CHARS: usize = 64 * 1024;
/// The longest bolt11 invoice read.
pub const MAX_INVOICE_CHARS: usize = 4096;

/// Why the wallet refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum PayError {
    /// The token is unusable.
    #[error("the Cashu token {0}")]
    Token(String),
    /// The token's mint is not accepted.
    #[error("the token's mint {0} is not one this server accepts")]
    Mint(String),
    /// The token's unit is not the wallet's.
    #[error("the token is in {found}, this server takes {want}")]
    Unit {
        /// The token's unit.
        found: String,
        /// The wallet's.
        want: String,
    },
    /// A proof was received before.
    #[error("the token was already received (a proof of it is in this wallet)")]
    AlreadyReceived,
    /// The mint says a proof is spent.
    #[error("the token is already spent")]
    Spent,
    /// The mint refused, timed out or answered out of protocol.
    #[error("{0}")]
    MintFailed(#[from] MintError),
    /// The wallet holds too little.
    #[error("the wallet holds {held} {unit} at {mint}, {want} are needed")]
    Insufficient {
        /// The mint.
        mint: String,
        /// What it holds there.
        held: u64,
        /// What was asked (fees included).
        want: u64,
        /// The unit.
        unit: String,
    },
    /// The wallet's database failed.
    #[error("wallet database: {0}")]
    Db(#[from] rusqlite::Error),
    /// A value the wallet wrote could not be read back.
    #[error("wallet database holds an unreadable value: {0}")]
    Corrupt(String),
    /// A bolt11 invoice is unusable.
    #[error("the invoice {0}")]
    Invoice(String),
    /// This wallet paid the invoice before, or is paying it.
    #[error("this invoice was already paid from this wallet (melt quote {quote}, {state})")]
    AlreadyPaid {
        /// The earlier melt's quote.
        quote: String,
        /// `paid`, or `being paid`.
        state: String,
    },
    /// The mint has not settled a melt: the Lightning payment is in flight, or its answer was
    /// lost. [`Wallet::recover`] settles it from the mint's record.
    #[error(
        "the melt of quote {quote} is not settled yet ({why}); it is settled from the mint's record at the next start"
    )]
    MeltPending {
        /// The melt quote.
        quote: String,
        /// What is known.
        why: String,
    },
}

/// A token received: its value is now the operator's, in proofs only this wallet knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// What the token was worth, in the wallet's unit.
    pub amount: u64,
    /// The mint's input fee that the swap cost.
    pub fee: u64,
    /// The mint.
    pub mint: String,
    /// SHA-256 of the token as given (hex): the key of a balance it opens, and what a
    /// receipt names.
    pub token_hash: String,
}

/// A pending operation settled by [`Wallet::recover`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// The mint had done the swap: its outputs are now held.
    Completed {
        /// The operation.
        op: i64,
        /// The value of the outputs restored.
        amount: u64,
    },
    /// The swap never happened: nothing changed hands.
    NotDone {
        /// The operation.
        op: i64,
    },
    /// The mint paid the melt's invoice: its change is now held.
    Melted {
        /// The melt operation ([`Melted::melt`]).
        melt: i64,
        /// The melt quote.
        quote: String,
        /// What the wallet gave up: the invoice, the Lightning fee and the input fee.
        spent: u64,
    },
    /// The mint never paid the melt's invoice: its proofs are held again.
    MeltNotPaid {
        /// The melt operation.
        melt: i64,
        /// The melt quote.
        quote: String,
    },
}

/// What paying an invoice costs at a mint ([`Wallet::melt_quote`]), in the wallet's unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeltQuote {
    /// The mint.
    pub mint: String,
    /// The mint's quote id.
    pub quote: String,
    /// The invoice, lower case.
    pub invoice: String,
    /// What the invoice asks.
    pub amount: u64,
    /// The most the mint may spend on Lightning fees; what it does not spend comes back as
    /// change.
    pub fee_reserve: u64,
    /// The mint's input fee for the proofs that will pay (NUT-02), as held now (0 when the
    /// wallet holds too little to pay).
    pub input_fee: u64,
    /// Unix time until which the quote holds.
    pub expiry: Option<u64>,
}

impl MeltQuote {
    /// The most the melt can cost: the amount, the fee reserve and the input fee.
    pub fn most(&self) -> u64 {
        self.amount
            .saturating_add(self.fee_reserve)
            .saturating_add(self.input_fee)
    }
}

/// A melt the mint paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Melted {
    /// The melt operation (its row in the wallet).
    pub melt: i64,
    /// The melt quote.
    pub quote: String,
    /// What the invoice asked.
    pub amount: u64,
    /// What the wallet gave up: the invoice, the Lightning fee and the input fee (the inputs
    /// less the change).
    pub spent: u64,
    /// The unspent fee reserve that came back, now held.
    pub change: u64,
    /// The payment's preimage, when the mint gave it: the proof of payment.
    pub preimage: Option<String>,
}

/// Where a melt stands in this wallet ([`Wallet::melt_state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeltState {
    /// Sent, or about to be, and not settled.
    Pending,
    /// Paid: the wallet gave up `spent`.
    Paid {
        /// The inputs less the change.
        spent: u64,
    },
    /// Not paid: nothing was spent.
    NotPaid,
}

/// One output the wallet asked the mint to sign: enough to rebuild its blinded message and
/// unblind the signature.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Output {
    amount: u64,
    secret: String,
    r: String,
    /// Whether the output is given away (a token sent), not kept.
    give: bool,
}

impl Output {
    /// A fresh output of `amount` for `keyset`, with its blinded message, secret and blinding
    /// factor.
    fn new(
        keyset: Id,
        amount: u64,
        give: bool,
    ) -> Result<(Self, BlindedMessage, Secret, SecretKey), PayError> {
        let secret = Secret::generate();
        let (blinded, r) = blind_message(&secret.to_bytes(), None)
            .map_err(|e| PayError::Corrupt(format!("blinding: {e}")))?;
        let output = Self {
            amount,
            secret: secret.to_string(),
            r: r.to_secret_hex(),
            give,
        };
        let message = BlindedMessage::new(Amount::from(amount), keyset, blinded);
        Ok((output, message, secret, r))
    }
}

/// The operator's wallet; see the module.
#[derive(Debug)]
pub struct Wallet {
    conn: Mutex<Connection>,
    mints: Vec<String>,
    unit: CurrencyUnit,
    /// Mints reached through another URL ([`Wallet::route`]).
    routes: std::collections::HashMap<String, String>,
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Wallet {
    /// The wallet in the SQLite database at `path`, taking tokens in `unit` from `mints`
    /// (URLs, compared without a trailing `/`).
    pub fn open(path: &Path, mints: &[String], unit: CurrencyUnit) -> Result<Self, PayError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS cashu_proofs (
                 secret  TEXT PRIMARY KEY,
                 mint    TEXT NOT NULL,
                 amount  INTEGER NOT NULL,
                 json    TEXT NOT NULL,
                 state   TEXT NOT NULL CHECK (state IN ('held', 'spending', 'spent')),
                 op      INTEGER
             );
             CREATE TABLE IF NOT EXISTS cashu_ops (
                 id         INTEGER PRIMARY KEY,
                 kind       TEXT NOT NULL CHECK (kind IN ('receive', 'send')),
                 mint       TEXT NOT NULL,
                 keyset     TEXT NOT NULL,
                 inputs     TEXT NOT NULL,
                 outputs    TEXT NOT NULL,
                 state      TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
                 token_hash TEXT,
                 given      TEXT,
                 fee        INTEGER NOT NULL DEFAULT 0
             );
             -- Melts: their inputs in cashu_proofs carry op = -id while being spent.
             CREATE TABLE IF NOT EXISTS cashu_melts (
                 id          INTEGER PRIMARY KEY,
                 mint        TEXT NOT NULL,
                 keyset      TEXT NOT NULL,
                 quote       TEXT NOT NULL UNIQUE,
                 invoice     TEXT NOT NULL,
                 amount      INTEGER NOT NULL,
                 fee_reserve INTEGER NOT NULL,
                 inputs      TEXT NOT NULL,
                 outputs     TEXT NOT NULL,
                 state       TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
                 spent       INTEGER,
                 change      INTEGER,
                 preimage    TEXT
             );
             CREATE INDEX IF NOT EXISTS cashu_melts_invoice ON cashu_melts (invoice);",
        )?;
        Ok(Self {
            conn: Mutex::new(conn),
            mints: mints
                .iter()
                .map(|m| m.trim_end_matches('/').to_owned())
                .collect(),
            unit,
            routes: std::collections::HashMap::new(),
        })
    }

    /// Reaches the mint `mint` (as tokens name it) at `via` instead: a proxy, a Tor gateway,
    /// or a local address of the same mint. Tokens and records still name `mint`.
    pub fn route(mut self, mint: &str, via: &str) -> Self {
        self.routes.insert(
            mint.trim_end_matches('/').to_owned(),
            via.trim_end_matches('/').to_owned(),
        );
        self
    }

    fn client(&self, mint: &str) -> Result<MintClient, PayError> {
        let url = self.routes.get(mint).map_or(mint, String::as_str);
        Ok(MintClient::new(url)?)
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The value held at each mint, in the wallet's unit.
    pub fn held(&self) -> Result<Vec<(String, u64)>, PayError> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT mint, SUM(amount) FROM cashu_proofs WHERE state = 'held' GROUP BY mint",
        )?;
        let rows =
            statement.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        rows.map(|r| r.map(|(m, a)| (m, a.max(0) as u64)).map_err(PayError::from))
            .collect()
    }

    /// Operations not settled (after a crash): settle them with [`Wallet::recover`].
    pub fn pending(&self) -> Result<Vec<i64>, PayError> {
        let conn = self.conn();
        let mut statement =
            conn.prepare("SELECT id FROM cashu_ops WHERE state = 'pending' ORDER BY id")?;
        let rows = statement.query_map([], |r| r.get::<_, i64>(0))?;
        rows.collect::<Result<_, _>>().map_err(PayError::from)
    }

    /// What `token` claims to be worth, and its mint, after the checks that need no mint
    /// (it decodes, names an accepted mint, is in the wallet's unit): for refusing an
    /// underpayment before anything is swapped. The mint decides what it is really worth.
    pub fn peek(&self, token: &str) -> Result<(String, u64), PayError> {
        let (parsed, mint) = self.parse(token)?;
        let value = parsed
            .value()
            .map_err(|e| PayError::Token(format!("has no countable value: {e}")))?;
        Ok((mint, value.to_u64()))
    }

    /// Decodes `token` and checks what needs no mint: its size, an accepted mint, the
    /// wallet's unit. The token and its mint (without a trailing `/`).
    fn parse(&self, token: &str) -> Result<(Token, String), PayError> {
        let token = token.trim();
        if token.len() > MAX_TOKEN_CHARS {
            return Err(PayError::Token(format!(
                "is over {MAX_TOKEN_CHARS} characters"
            )));
        }
        let parsed =
            Token::from_str(token).map_err(|e| PayError::Token(format!("does not decode: {e}")))?;
        let mint = parsed
            .mint_url()
            .map_err(|e| PayError::Token(format!("names no single mint: {e}")))?
            .to_string()
            .trim_end_matches('/')
            .to_owned();
        if !self.mints.contains(&mint) {
            return Err(PayError::Mint(mint));
        }
        let unit = parsed.unit().unwrap_or(CurrencyUnit::Sat);
        if unit != self.unit {
            return Err(PayError::Unit {
                found: unit.to_string(),
                want: self.unit.to_string(),
            });
        }
        Ok((parsed, mint))
    }

    /// The mints this wallet accepts.
    pub fn mints(&self) -> &[String] {
        &self.mints
    }

    /// The wallet's unit.
    pub fn unit(&self) -> &CurrencyUnit {
        &self.unit
    }

    /// Receives `token`: checks it, swaps its proofs at its mint for new ones only this
    /// wallet knows, and keeps those. The token is worth nothing to anyone else afterwards.
    pub async fn receive(&self, token: &str) -> Result<Received, PayError> {
        let token = token.trim();
        let token_hash = sha256_hex(token.as_bytes());
        let (parsed, mint) = self.parse(token)?;
        let client = self.client(&mint)?;
        let keysets = client.keysets().await?;
        let proofs = parsed
            .proofs(&keysets)
            .map_err(|e| PayError::Token(format!("holds proofs of no keyset of its mint: {e}")))?;
        if proofs.is_empty() {
            return Err(PayError::Token("holds no proofs".to_owned()));
        }
        if proofs.len() > MAX_TOKEN_PROOFS {
            return Err(PayError::Token(format!(
                "holds {} proofs, over {MAX_TOKEN_PROOFS}",
                proofs.len()
            )));
        }
        let mut secrets = HashSet::new();
        let mut total: u64 = 0;
        for proof in &proofs {
            if !secrets.insert(proof.secret.to_string()) {
                return Err(PayError::Token("holds the same proof twice".to_owned()));
            }
            let info = keysets
                .iter()
                .find(|k| k.id == proof.keyset_id)
                .ok_or_else(|| {
                    PayError::Token(format!(
                        "uses keyset {} its mint does not have",
                        proof.keyset_id
                    ))
                })?;
            if info.unit != self.unit {
                return Err(PayError::Unit {
                    found: info.unit.to_string(),
                    want: self.unit.to_string(),
                });
            }
            total = total
                .checked_add(proof.amount.to_u64())
                .ok_or_else(|| PayError::Token("is worth more than can be counted".to_owned()))?;
        }
        {
            let conn = self.conn();
            for secret in &secrets {
                let seen: Option<i64> = conn
                    .query_row(
                        "SELECT 1 FROM cashu_proofs WHERE secret = ?1",
                        [secret],
                        |r| r.get(0),
                    )
                    .optional()?;
                if seen.is_some() {
                    return Err(PayError::AlreadyReceived);
                }
            }
        }
        let fee = fee_of(&proofs, &keysets);
        let value = total.checked_sub(fee).filter(|v| *v > 0).ok_or_else(|| {
            PayError::Token(format!(
                "is worth {total}, not more than the mint's fee of {fee}"
            ))
        })?;
        let (keyset, keys) = self.active_keys(&client, &keysets).await?;
        let outputs = outputs(&keys, keyset, 0, value)?;
        let op = self.begin(
            "receive",
            &mint,
            keyset,
            &proofs,
            &outputs,
            Some(&token_hash),
            fee,
        )?;
        let request = SwapRequest::new(
            proofs.clone(),
            outputs.iter().map(|o| o.1.clone()).collect(),
        );
        match client.swap(&request).await {
            Ok(response) => {
                self.complete(op, &mint, &keys, &outputs, response.signatures)?;
                Ok(Received {
                    amount: total,
                    fee,
                    mint,
                    token_hash,
                })
            }
            Err(e) if is_spent(&e) => {
                self.fail(op)?;
                Err(PayError::Spent)
            }
            Err(e @ MintError::Refused { .. }) => {
                self.fail(op)?;
                Err(PayError::MintFailed(e))
            }
            // No answer: the swap may have happened. The operation stays pending; `recover`
            // settles it.
            Err(e) => Err(PayError::MintFailed(e)),
        }
    }

    /// Gives `amount` (in the wallet's unit) as a new token from proofs held at `mint`: the
    /// held proofs are swapped for the token's and the change kept. The mint's input fee is
    /// paid from the change.
    pub async fn send(&self, mint: &str, amount: u64) -> Result<String, PayError> {
        let mint = mint.trim_end_matches('/').to_owned();
        let client = self.client(&mint)?;
        let keysets = client.keysets().await?;
        let (keyset, keys) = self.active_keys(&client, &keysets).await?;
        let (inputs, sum, want) = self.select(&mint, amount, &keysets)?;
        let fee = want - amount;
        let outputs = outputs(&keys, keyset, amount, sum - want)?;
        let op = self.begin("send", &mint, keyset, &inputs, &outputs, None, fee)?;
        let request = SwapRequest::new(inputs, outputs.iter().map(|o| o.1.clone()).collect());
        match client.swap(&request).await {
            Ok(response) => {
                let given = self.complete(op, &mint, &keys, &outputs, response.signatures)?;
                given.ok_or_else(|| PayError::Corrupt("a send gave no token".to_owned()))
            }
            Err(e @ MintError::Refused { .. }) => {
                // Refused: nothing was spent by this swap. Inputs the mint says are spent
                // (spent elsewhere) are marked so; the others are held again.
                self.fail(op)?;
                Err(PayError::MintFailed(e))
            }
            Err(e) => Err(PayError::MintFailed(e)),
        }
    }

    /// Held proofs of `mint` (largest first) that cover `amount` and their own input fee:
    /// the proofs, their sum, and `amount` plus their fee. Refused when the wallet holds too
    /// little, or `amount` is 0.
    fn select(
        &self,
        mint: &str,
        amount: u64,
        keysets: &[KeySetInfo],
    ) -> Result<(Vec<Proof>, u64, u64), PayError> {
        let candidates: Vec<Proof> = {
            let conn = self.conn();
            let mut statement = conn.prepare(
                "SELECT json FROM cashu_proofs WHERE mint = ?1 AND state = 'held'
                 ORDER BY amount DESC",
            )?;
            let rows = statement.query_map([mint], |r| r.get::<_, String>(0))?;
            let mut proofs = Vec::new();
            for json in rows {
                proofs.push(
                    serde_json::from_str(&json?).map_err(|e| PayError::Corrupt(e.to_string()))?,
                );
            }
            proofs
        };
        let held: u64 = candidates.iter().map(|p| p.amount.to_u64()).sum();
        let mut inputs = Vec::new();
        let mut sum = 0u64;
        for proof in candidates {
            if sum >= amount.saturating_add(fee_of(&inputs, keysets)) && !inputs.is_empty() {
                break;
            }
            sum += proof.amount.to_u64();
            inputs.push(proof);
        }
        let want = amount.saturating_add(fee_of(&inputs, keysets));
        if sum < want || amount == 0 {
            return Err(PayError::Insufficient {
                mint: mint.to_owned(),
                held,
                want,
                unit: self.unit.to_string(),
            });
        }
        Ok((inputs, sum, want))
    }

    /// Asks `mint` what paying the bolt11 `invoice` costs (NUT-05 melt quote), after the
    /// checks that need no mint: the invoice decodes, names an amount and has not expired;
    /// this wallet has not paid it before; the mint is one it takes tokens of. The input fee
    /// is that of the proofs held now.
    pub async fn melt_quote(&self, mint: &str, invoice: &str) -> Result<MeltQuote, PayError> {
        let mint = mint.trim_end_matches('/').to_owned();
        let invoice = invoice.trim();
        let invoice = invoice
            .strip_prefix("lightning:")
            .or_else(|| invoice.strip_prefix("LIGHTNING:"))
            .unwrap_or(invoice)
            .to_ascii_lowercase();
        if invoice.len() > MAX_INVOICE_CHARS {
            return Err(PayError::Invoice(format!(
                "is over {MAX_INVOICE_CHARS} characters"
            )));
        }
        let parsed = cashu::Bolt11Invoice::from_str(&invoice)
            .map_err(|e| PayError::Invoice(format!("is not a bolt11 invoice: {e}")))?;
        if parsed.amount_milli_satoshis().is_none() {
            return Err(PayError::Invoice(
                "names no amount (an amountless invoice cannot be melted)".to_owned(),
            ));
        }
        if parsed.is_expired() {
            return Err(PayError::Invoice("has expired".to_owned()));
        }
        self.refuse_paid(&self.conn(), &invoice)?;
        if !self.mints.contains(&mint) {
            return Err(PayError::Mint(mint));
        }
        let client = self.client(&mint)?;
        let answer = client.melt_quote(&invoice, &self.unit.to_string()).await?;
        if let Some(unit) = &answer.unit
            && *unit != self.unit.to_string()
        {
            return Err(PayError::Unit {
                found: unit.clone(),
                want: self.unit.to_string(),
            });
        }
        let keysets = client.keysets().await?;
        let base = answer.amount.saturating_add(answer.fee_reserve);
        // What too small a wallet lacks is said when paying; a quote is not refused for it.
        let input_fee = match self.select(&mint, base, &keysets) {
            Ok((_, _, want)) => want - base,
            Err(PayError::Insufficient { .. }) => 0,
            Err(e) => return Err(e),
        };
        Ok(MeltQuote {
            mint,
            quote: answer.quote,
            invoice,
            amount: answer.amount,
            fee_reserve: answer.fee_reserve,
            input_fee,
            expiry: answer.expiry,
        })
    }

    /// Refuses `invoice` when a melt of it is done or pending here.
    fn refuse_paid(&self, conn: &Connection, invoice: &str) -> Result<(), PayError> {
        let earlier: Option<(String, String)> = conn
            .query_row(
                "SELECT quote, state FROM cashu_melts WHERE invoice = ?1 AND state != 'failed'
                 ORDER BY id LIMIT 1",
                [invoice],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match earlier {
            Some((quote, state)) => Err(PayError::AlreadyPaid {
                quote,
                state: if state == "done" {
                    "paid"
                } else {
                    "being paid"
                }
                .to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// Pays the bolt11 `invoice` from the proofs held at `mint` (NUT-05): a melt quote, then
    /// the melt with proofs covering the amount, the fee reserve and their input fee, and
    /// blank outputs for the unspent reserve (NUT-08), which is held as change afterwards.
    pub async fn melt(&self, mint: &str, invoice: &str) -> Result<Melted, PayError> {
        let quote = self.melt_quote(mint, invoice).await?;
        self.pay_melt(&quote).await
    }

    /// Pays `quote` (from [`Wallet::melt_quote`]); see [`Wallet::melt`]. Refused before
    /// anything is sent when the proofs held now cost more input fee than the quote says
    /// (its [`MeltQuote::most`] is what may be spent).
    pub async fn pay_melt(&self, quote: &MeltQuote) -> Result<Melted, PayError> {
        let mint = quote.mint.clone();
        let client = self.client(&mint)?;
        let keysets = client.keysets().await?;
        let (keyset, keys) = self.active_keys(&client, &keysets).await?;
        let (inputs, sum, want) = self.select(
            &mint,
            quote.amount.saturating_add(quote.fee_reserve),
            &keysets,
        )?;
        if want > quote.most() {
            return Err(PayError::Insufficient {
                mint,
                held: sum,
                want,
                unit: self.unit.to_string(),
            });
        }
        // Enough blank outputs to take back any amount up to everything above the invoice.
        let above = sum - quote.amount;
        let blanks = (u64::BITS - above.leading_zeros()).max(1) as usize;
        let outputs = (0..blanks)
            .map(|_| Output::new(keyset, 0, false))
            .collect::<Result<Vec<_>, _>>()?;
        let melt = self.begin_melt(quote, keyset, &inputs, &outputs)?;
        let request = MeltRequest::new(
            quote.quote.clone(),
            inputs.clone(),
            Some(outputs.iter().map(|o| o.1.clone()).collect()),
        );
        let pending = |why: String| PayError::MeltPending {
            quote: quote.quote.clone(),
            why,
        };
        match client.melt(&request).await {
            Ok(answer) if answer.state() == "PAID" => {
                let change = answer.change.clone().unwrap_or_default();
                let signed: Vec<(usize, BlindSignature)> = change.into_iter().enumerate().collect();
                let (spent, change) = self.complete_melt(
                    melt,
                    &mint,
                    &keys,
                    &outputs,
                    signed,
                    answer.payment_preimage.as_deref(),
                )?;
                Ok(Melted {
                    melt,
                    quote: quote.quote.clone(),
                    amount: quote.amount,
                    spent,
                    change,
                    preimage: answer.payment_preimage,
                })
            }
            Ok(answer) if answer.state() == "PENDING" => Err(pending(
                "the mint says the Lightning payment is in flight".to_owned(),
            )),
            Ok(answer) => {
                // Not paid: whether the inputs are free again is the mint's to say.
                let why = format!(
                    "the mint did not pay the invoice (quote state {})",
                    answer.state()
                );
                self.settle_unpaid(melt, &client, &inputs).await?;
                Err(PayError::MintFailed(MintError::Refused {
                    url: mint,
                    status: http::StatusCode::OK,
                    detail: why,
                    code: None,
                }))
            }
            Err(e @ MintError::Refused { .. }) => {
                if self.settle_unpaid(melt, &client, &inputs).await? {
                    Err(PayError::MintFailed(e))
                } else {
                    Err(pending(e.to_string()))
                }
            }
            // No answer: the invoice may have been paid. `recover` settles it.
            Err(e) => Err(pending(e.to_string())),
        }
    }

    /// After a melt the mint did not pay: when every input is unspent at the mint (NUT-07),
    /// closes melt `melt` as not paid and holds its inputs again (true); otherwise leaves it
    /// pending for [`Wallet::recover`] (false).
    async fn settle_unpaid(
        &self,
        melt: i64,
        client: &MintClient,
        inputs: &[Proof],
    ) -> Result<bool, PayError> {
        let ys = inputs
            .iter()
            .map(|p| p.y().map_err(|e| PayError::Corrupt(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let states = client.check_state(&CheckStateRequest { ys }).await?;
        if states.states.len() != inputs.len()
            || states.states.iter().any(|s| s.state != State::Unspent)
        {
            return Ok(false);
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE cashu_proofs SET state = 'held', op = NULL WHERE op = ?1 AND state = 'spending'",
            [-melt],
        )?;
        tx.execute(
            "UPDATE cashu_melts SET state = 'failed' WHERE id = ?1",
            [melt],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Writes a pending melt and marks its inputs as being spent by it (`op = -melt`), in one
    /// transaction that also refuses an invoice paid or being paid here.
    fn begin_melt(
        &self,
        quote: &MeltQuote,
        keyset: Id,
        inputs: &[Proof],
        outputs: &[(Output, BlindedMessage, Secret, SecretKey)],
    ) -> Result<i64, PayError> {
        let inputs_json =
            serde_json::to_string(inputs).map_err(|e| PayError::Corrupt(e.to_string()))?;
        let saved: Vec<&Output> = outputs.iter().map(|o| &o.0).collect();
        let outputs_json =
            serde_json::to_string(&saved).map_err(|e| PayError::Corrupt(e.to_string()))?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        self.refuse_paid(&tx, &quote.invoice)?;
        tx.execute(
            "INSERT INTO cashu_melts (mint, keyset, quote, invoice, amount, fee_reserve, inputs,
                                      outputs, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending')",
            params![
                quote.mint,
                keyset.to_string(),
                quote.quote,
                quote.invoice,
                quote.amount as i64,
                quote.fee_reserve as i64,
                inputs_json,
                outputs_json
            ],
        )?;
        let melt = tx.last_insert_rowid();
        mark_spending(&tx, inputs, -melt)?;
        tx.commit()?;
        Ok(melt)
    }

    /// Stores the change of a paid melt in one transaction: the signed blank outputs (by their
    /// index) as held proofs, the inputs as spent, the melt as done. What the wallet gave up
    /// and the change.
    fn complete_melt(
        &self,
        melt: i64,
        mint: &str,
        keys: &Keys,
        outputs: &[(Output, BlindedMessage, Secret, SecretKey)],
        signed: Vec<(usize, BlindSignature)>,
        preimage: Option<&str>,
    ) -> Result<(u64, u64), PayError> {
        let malformed = |why: String| {
            PayError::MintFailed(MintError::Malformed {
                url: mint.to_owned(),
                why,
            })
        };
        let mut rs = Vec::new();
        let mut secrets = Vec::new();
        let mut signatures = Vec::new();
        for (index, signature) in signed {
            let output = outputs.get(index).ok_or_else(|| {
                malformed(format!(
                    "change for {} blank outputs, {} were given",
                    index + 1,
                    outputs.len()
                ))
            })?;
            rs.push(output.3.clone());
            secrets.push(output.2.clone());
            signatures.push(signature);
        }
        let change = construct_proofs(signatures, rs, secrets, keys)
            .map_err(|e| malformed(format!("its change does not unblind: {e}")))?;
        let change_sum: u64 = change.iter().map(|p| p.amount.to_u64()).sum();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        // A melt closed as not paid by a recovery that ran while its payment was on the way
        // is completed all the same: the mint's answer wins.
        let inputs: String = tx.query_row(
            "SELECT inputs FROM cashu_melts WHERE id = ?1 AND state != 'done'",
            [melt],
            |r| r.get(0),
        )?;
        let inputs: Proofs =
            serde_json::from_str(&inputs).map_err(|e| PayError::Corrupt(e.to_string()))?;
        let input_sum: u64 = inputs.iter().map(|p| p.amount.to_u64()).sum();
        let spent = input_sum.checked_sub(change_sum).ok_or_else(|| {
            malformed(format!("change of {change_sum} for inputs of {input_sum}"))
        })?;
        for proof in &change {
            let json =
                serde_json::to_string(proof).map_err(|e| PayError::Corrupt(e.to_string()))?;
            tx.execute(
                "INSERT OR IGNORE INTO cashu_proofs (secret, mint, amount, json, state)
                 VALUES (?1, ?2, ?3, ?4, 'held')",
                params![
                    proof.secret.to_string(),
                    mint,
                    proof.amount.to_u64() as i64,
                    json
                ],
            )?;
        }
        for proof in &inputs {
            tx.execute(
                "UPDATE cashu_proofs SET state = 'spent' WHERE secret = ?1",
                [proof.secret.to_string()],
            )?;
        }
        tx.execute(
            "UPDATE cashu_melts SET state = 'done', spent = ?2, change = ?3, preimage = ?4
             WHERE id = ?1",
            params![melt, spent as i64, change_sum as i64, preimage],
        )?;
        tx.commit()?;
        Ok((spent, change_sum))
    }

    /// Melts not settled (after a crash, or a payment in flight): their quotes.
    pub fn pending_melts(&self) -> Result<Vec<String>, PayError> {
        let conn = self.conn();
        let mut statement =
            conn.prepare("SELECT quote FROM cashu_melts WHERE state = 'pending' ORDER BY id")?;
        let rows = statement.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect::<Result<_, _>>().map_err(PayError::from)
    }

    /// Where the melt of `quote` stands here; `None` when this wallet never began it.
    pub fn melt_state(&self, quote: &str) -> Result<Option<MeltState>, PayError> {
        let row: Option<(String, Option<i64>)> = self
            .conn()
            .query_row(
                "SELECT state, spent FROM cashu_melts WHERE quote = ?1",
                [quote],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(row.map(|(state, spent)| match state.as_str() {
            "done" => MeltState::Paid {
                spent: spent.map_or(0, |s| s.max(0) as u64),
            },
            "failed" => MeltState::NotPaid,
            _ => MeltState::Pending,
        }))
    }

    /// Settles the pending melts from the mint's record: a paid quote's change is restored
    /// (NUT-09) and held; a quote not paid whose inputs are all unspent (NUT-07) is closed as
    /// not paid; a payment in flight stays pending. Part of [`Wallet::recover`]; alone, it
    /// leaves swaps that another process may have in flight untouched.
    pub async fn recover_melts(&self) -> Result<Vec<Recovered>, PayError> {
        let mut settled = Vec::new();
        let rows: Vec<(i64, String, String, String, String, String)> = {
            let conn = self.conn();
            let mut statement = conn.prepare(
                "SELECT id, mint, keyset, quote, inputs, outputs FROM cashu_melts
                 WHERE state = 'pending' ORDER BY id",
            )?;
            let rows = statement.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        for (melt, mint, keyset, quote, inputs, outputs) in rows {
            let keyset = Id::from_str(&keyset).map_err(|e| PayError::Corrupt(e.to_string()))?;
            let inputs: Proofs =
                serde_json::from_str(&inputs).map_err(|e| PayError::Corrupt(e.to_string()))?;
            let saved: Vec<Output> =
                serde_json::from_str(&outputs).map_err(|e| PayError::Corrupt(e.to_string()))?;
            let client = self.client(&mint)?;
            let state = match client.melt_state(&quote).await {
                Ok(answer) => answer.state(),
                // A quote the mint does not know was never paid; its inputs say the rest.
                Err(MintError::Refused { .. }) => "UNKNOWN".to_owned(),
                Err(e) => return Err(e.into()),
            };
            match state.as_str() {
                "PAID" => {
                    let keys = client.keys(&keyset).await?;
                    let rebuilt = rebuild(&saved, keyset)?;
                    let restored = client
                        .restore(&RestoreRequest {
                            outputs: rebuilt.iter().map(|o| o.1.clone()).collect(),
                        })
                        .await?;
                    let mut signed = Vec::new();
                    for (output, signature) in restored.outputs.iter().zip(restored.signatures) {
                        let index = rebuilt
                            .iter()
                            .position(|o| o.1.blinded_secret == output.blinded_secret)
                            .ok_or_else(|| {
                                PayError::MintFailed(MintError::Malformed {
                                    url: mint.clone(),
                                    why: "restored an output it was not asked about".to_owned(),
                                })
                            })?;
                        signed.push((index, signature));
                    }
                    let (spent, _) =
                        self.complete_melt(melt, &mint, &keys, &rebuilt, signed, None)?;
                    settled.push(Recovered::Melted { melt, quote, spent });
                }
                "PENDING" => {}
                _ => {
                    if self.settle_unpaid(melt, &client, &inputs).await? {
                        settled.push(Recovered::MeltNotPaid { melt, quote });
                    }
                }
            }
        }
        Ok(settled)
    }

    /// Settles the operations a crash or a silent mint left pending: NUT-09 restore gives
    /// the outputs' signatures if the mint did the swap; otherwise the inputs are checked
    /// (NUT-07) and, unspent, the operation is closed as not done. Then the melts, from the
    /// quote's state at the mint (see [`Wallet::melt`]).
    pub async fn recover(&self) -> Result<Vec<Recovered>, PayError> {
        let mut settled = Vec::new();
        for op in self.pending()? {
            let (mint, keyset, inputs, outputs): (String, String, String, String) =
                self.conn().query_row(
                    "SELECT mint, keyset, inputs, outputs FROM cashu_ops WHERE id = ?1",
                    [op],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )?;
            let keyset = Id::from_str(&keyset).map_err(|e| PayError::Corrupt(e.to_string()))?;
            let inputs: Proofs =
                serde_json::from_str(&inputs).map_err(|e| PayError::Corrupt(e.to_string()))?;
            let saved: Vec<Output> =
                serde_json::from_str(&outputs).map_err(|e| PayError::Corrupt(e.to_string()))?;
            let client = self.client(&mint)?;
            let keys = client.keys(&keyset).await?;
            let rebuilt = rebuild(&saved, keyset)?;
            let restored = client
                .restore(&RestoreRequest {
                    outputs: rebuilt.iter().map(|o| o.1.clone()).collect(),
                })
                .await?;
            if restored.signatures.len() == rebuilt.len() {
                // The mint returns them in the order of the outputs it knows.
                self.complete(op, &mint, &keys, &rebuilt, restored.signatures)?;
                let amount = saved.iter().map(|o| o.amount).sum();
                settled.push(Recovered::Completed { op, amount });
                continue;
            }
            if !restored.signatures.is_empty() {
                return Err(PayError::MintFailed(MintError::Malformed {
                    url: mint,
                    why: format!(
                        "restored {} of the {} outputs of one swap",
                        restored.signatures.len(),
                        rebuilt.len()
                    ),
                }));
            }
            let ys = inputs
                .iter()
                .map(|p| p.y().map_err(|e| PayError::Corrupt(e.to_string())))
                .collect::<Result<Vec<_>, _>>()?;
            // No output of ours was signed, so the swap did not happen. Inputs that are spent
            // all the same were spent by someone else (a customer who spent the token
            // elsewhere at the same moment): of a send's inputs, those are marked spent, the
            // others held again.
            let states = client.check_state(&CheckStateRequest { ys }).await?;
            self.fail(op)?;
            for (proof, state) in inputs.iter().zip(&states.states) {
                if state.state == State::Spent {
                    self.conn().execute(
                        "UPDATE cashu_proofs SET state = 'spent' WHERE secret = ?1",
                        [proof.secret.to_string()],
                    )?;
                }
            }
            settled.push(Recovered::NotDone { op });
        }
        settled.extend(self.recover_melts().await?);
        Ok(settled)
    }

    /// The active keyset of the wallet's unit at a mint, and its keys.
    async fn active_keys(
        &self,
        client: &MintClient,
        keysets: &[KeySetInfo],
    ) -> Result<(Id, Keys), PayError> {
        let info = keysets
            .iter()
            .find(|k| k.active && k.unit == self.unit)
            .ok_or_else(|| {
                PayError::MintFailed(MintError::Malformed {
                    url: client.url().to_owned(),
                    why: format!("no active keyset in {}", self.unit),
                })
            })?;
        Ok((info.id, client.keys(&info.id).await?))
    }

    /// Writes a pending operation, and marks a send's inputs as being spent by it.
    #[allow(clippy::too_many_arguments)]
    fn begin(
        &self,
        kind: &str,
        mint: &str,
        keyset: Id,
        inputs: &[Proof],
        outputs: &[(Output, BlindedMessage, Secret, SecretKey)],
        token_hash: Option<&str>,
        fee: u64,
    ) -> Result<i64, PayError> {
        let inputs_json =
            serde_json::to_string(inputs).map_err(|e| PayError::Corrupt(e.to_string()))?;
        let saved: Vec<&Output> = outputs.iter().map(|o| &o.0).collect();
        let outputs_json =
            serde_json::to_string(&saved).map_err(|e| PayError::Corrupt(e.to_string()))?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO cashu_ops (kind, mint, keyset, inputs, outputs, state, token_hash, fee)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7)",
            params![
                kind,
                mint,
                keyset.to_string(),
                inputs_json,
                outputs_json,
                token_hash,
                fee as i64
            ],
        )?;
        let op = tx.last_insert_rowid();
        if kind == "send" {
            mark_spending(&tx, inputs, op)?;
        }
        tx.commit()?;
        Ok(op)
    }

    /// Stores the signed outputs of operation `op` in one transaction: the kept ones as held
    /// proofs, the given ones as the token of the operation; the inputs become spent. Returns
    /// the given token, if any.
    fn complete(
        &self,
        op: i64,
        mint: &str,
        keys: &Keys,
        outputs: &[(Output, BlindedMessage, Secret, SecretKey)],
        signatures: Vec<cashu::nuts::BlindSignature>,
    ) -> Result<Option<String>, PayError> {
        if signatures.len() != outputs.len() {
            return Err(PayError::MintFailed(MintError::Malformed {
                url: mint.to_owned(),
                why: format!(
                    "{} signatures for {} outputs",
                    signatures.len(),
                    outputs.len()
                ),
            }));
        }
        let proofs = construct_proofs(
            signatures,
            outputs.iter().map(|o| o.3.clone()).collect(),
            outputs.iter().map(|o| o.2.clone()).collect(),
            keys,
        )
        .map_err(|e| {
            PayError::MintFailed(MintError::Malformed {
                url: mint.to_owned(),
                why: format!("its signatures do not unblind: {e}"),
            })
        })?;
        let mut given = Vec::new();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for (proof, (output, ..)) in proofs.into_iter().zip(outputs) {
            if proof.amount.to_u64() != output.amount {
                return Err(PayError::MintFailed(MintError::Malformed {
                    url: mint.to_owned(),
                    why: "a signature of another amount than asked".to_owned(),
                }));
            }
            if output.give {
                given.push(proof);
                continue;
            }
            let json =
                serde_json::to_string(&proof).map_err(|e| PayError::Corrupt(e.to_string()))?;
            tx.execute(
                "INSERT OR IGNORE INTO cashu_proofs (secret, mint, amount, json, state)
                 VALUES (?1, ?2, ?3, ?4, 'held')",
                params![
                    proof.secret.to_string(),
                    mint,
                    proof.amount.to_u64() as i64,
                    json
                ],
            )?;
        }
        // A received token's proofs are recorded as spent, so that the same token is known
        // when it comes again.
        let (kind, inputs): (String, String) = tx.query_row(
            "SELECT kind, inputs FROM cashu_ops WHERE id = ?1",
            [op],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let inputs: Proofs =
            serde_json::from_str(&inputs).map_err(|e| PayError::Corrupt(e.to_string()))?;
        for proof in &inputs {
            let json =
                serde_json::to_string(proof).map_err(|e| PayError::Corrupt(e.to_string()))?;
            if kind == "receive" {
                tx.execute(
                    "INSERT OR IGNORE INTO cashu_proofs (secret, mint, amount, json, state, op)
                     VALUES (?1, ?2, ?3, ?4, 'spent', ?5)",
                    params![
                        proof.secret.to_string(),
                        mint,
                        proof.amount.to_u64() as i64,
                        json,
                        op
                    ],
                )?;
            } else {
                tx.execute(
                    "UPDATE cashu_proofs SET state = 'spent' WHERE secret = ?1",
                    [proof.secret.to_string()],
                )?;
            }
        }
        let token = if given.is_empty() {
            None
        } else {
            let mint_url = MintUrl::from_str(mint).map_err(|e| PayError::Corrupt(e.to_string()))?;
            Some(Token::new(mint_url, given, None, self.unit.clone()).to_string())
        };
        tx.execute(
            "UPDATE cashu_ops SET state = 'done', given = ?2 WHERE id = ?1",
            params![op, token],
        )?;
        tx.commit()?;
        Ok(token)
    }

    /// Closes operation `op` as not done: a send's inputs are held again.
    fn fail(&self, op: i64) -> Result<(), PayError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE cashu_proofs SET state = 'held', op = NULL WHERE op = ?1 AND state = 'spending'",
            [op],
        )?;
        tx.execute("UPDATE cashu_ops SET state = 'failed' WHERE id = ?1", [op])?;
        tx.commit()?;
        Ok(())
    }

    /// The token given by a completed send operation (for idempotent refunds).
    pub fn given(&self, op: i64) -> Result<Option<String>, PayError> {
        let given: Option<Option<String>> = self
            .conn()
            .query_row("SELECT given FROM cashu_ops WHERE id = ?1", [op], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(given.flatten())
    }
}

/// Whether a mint's refusal says a proof is spent (NUT-00 code 11001, or Nutshell's words).
fn is_spent(e: &MintError) -> bool {
    match e {
        MintError::Refused { code, detail, .. } => {
            *code == Some(11001) || detail.to_ascii_lowercase().contains("already spent")
        }
        _ => false,
    }
}

/// The mint's input fee for `proofs`: the sum of their keysets' `input_fee_ppk`, per
/// thousand, rounded up (NUT-02).
fn fee_of(proofs: &[Proof], keysets: &[KeySetInfo]) -> u64 {
    let ppk: u64 = proofs
        .iter()
        .map(|p| {
            keysets
                .iter()
                .find(|k| k.id == p.keyset_id)
                .map_or(0, |k| k.input_fee_ppk)
        })
        .sum();
    ppk.div_ceil(1000)
}

/// Splits `amount` into the denominations `keys` signs, largest first.
fn split(keys: &Keys, amount: u64) -> Result<Vec<u64>, PayError> {
    let mut denominations: Vec<u64> = keys.iter().map(|(a, _)| a.to_u64()).collect();
    denominations.sort_unstable_by(|a, b| b.cmp(a));
    let mut left = amount;
    let mut parts = Vec::new();
    for d in denominations {
        while d > 0 && left >= d {
            parts.push(d);
            left -= d;
        }
    }
    if left != 0 {
        return Err(PayError::Corrupt(format!(
            "{amount} cannot be made of the keyset's amounts"
        )));
    }
    Ok(parts)
}

/// Outputs for `give` (given away in a token) and `keep` (kept), blinded for `keyset`.
fn outputs(
    keys: &Keys,
    keyset: Id,
    give: u64,
    keep: u64,
) -> Result<Vec<(Output, BlindedMessage, Secret, SecretKey)>, PayError> {
    let mut all = Vec::new();
    for amount in split(keys, give)? {
        all.push(Output::new(keyset, amount, true)?);
    }
    for amount in split(keys, keep)? {
        all.push(Output::new(keyset, amount, false)?);
    }
    Ok(all)
}

/// The blinded messages of saved outputs, rebuilt from their secrets and blinding factors.
fn rebuild(
    saved: &[Output],
    keyset: Id,
) -> Result<Vec<(Output, BlindedMessage, Secret, SecretKey)>, PayError> {
    saved
        .iter()
        .map(|o| {
            let secret =
                Secret::from_str(&o.secret).map_err(|e| PayError::Corrupt(e.to_string()))?;
            let r = SecretKey::from_hex(&o.r).map_err(|e| PayError::Corrupt(e.to_string()))?;
            let (blinded, r) = blind_message(&secret.to_bytes(), Some(r))
                .map_err(|e| PayError::Corrupt(e.to_string()))?;
            Ok((
                o.clone(),
                BlindedMessage::new(Amount::from(o.amount), keyset, blinded),
                secret,
                r,
            ))
        })
        .collect()
}

/// Marks `inputs` as being spent by operation `op` (a melt's is negative), within `tx`; a
/// proof no longer held means the wallet's state is corrupt.
fn mark_spending(
    tx: &rusqlite::Transaction<'_>,
    inputs: &[Proof],
    op: i64,
) -> Result<(), PayError> {
    for proof in inputs {
        let n = tx.execute(
            "UPDATE cashu_proofs SET state = 'spending', op = ?2
             WHERE secret = ?1 AND state = 'held'",
            params![proof.secret.to_string(), op],
        )?;
        if n != 1 {
            return Err(PayError::Corrupt(
                "a proof chosen to spend is no longer held".to_owned(),
            ));
        }
    }
    Ok(())
}
