//! Paying for answers by direct message and NIP-90 job: the [`Meter`] the agent asks when its
//! [`crate::Gate`] does not admit a sender for free.
//!
//! The sender's balance is their npub's (`npub:<hex>` in the ledger of
//! `provenance_signer::server::pay`, the same balance a NIP-98 caller spends over HTTP). It
//! is topped up by sending a Cashu token as the text of a direct message: the token is
//! swapped at its mint and credited; nothing is generated for such a message. With a
//! Lightning rail (`serve --nwc-file`), the line that asks for payment also carries an
//! invoice for what the balance lacks, which credits the sender when paid. An answer
//! reserves the most it may cost before the model is asked, is settled from the usage the
//! model reports, and is refunded when the model fails.

use provenance::PublicKey;
use provenance_pay::Usage;
use provenance_pay::price::MSAT_PER_SAT;
use provenance_signer::server::pay::Payments;

use crate::model::BoxFuture;

/// Why an answer waits for payment: the line that tells the sender how to pay, and how much
/// their balance is short (msat; 0 when payments are unavailable rather than short).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayFirst {
    /// How to pay.
    pub how: String,
    /// What the balance lacks, msat.
    pub short_msat: u64,
}

/// Charges senders for answers; see the module.
pub trait Meter: Send + Sync + 'static {
    /// Reserves what an answer may cost `sender` (a question of `input_bytes`, at most
    /// `max_tokens` answered): the reservation, `None` when answers are free, or how to pay.
    fn reserve(
        &self,
        sender: &PublicKey,
        input_bytes: u64,
        max_tokens: u64,
    ) -> Result<Option<i64>, PayFirst>;
    /// A Lightning invoice (BOLT11) of at least `msat` that credits `sender`'s balance when
    /// paid; `None` without a Lightning rail or when the wallet does not make one.
    fn invoice<'a>(&'a self, sender: &'a PublicKey, msat: u64) -> BoxFuture<'a, Option<String>> {
        let _ = (sender, msat);
        Box::pin(async { None })
    }
    /// Charges reservation `id` for `usage` (the reservation when the model reported none).
    fn settle(&self, id: i64, usage: Option<Usage>);
    /// Gives reservation `id` back whole.
    fn refund(&self, id: i64);
    /// Credits a Cashu token `sender` sent: what was credited and the balance after, msat.
    fn top_up<'a>(
        &'a self,
        sender: &'a PublicKey,
        token: &'a str,
    ) -> BoxFuture<'a, Result<(u64, u64), String>>;
}

/// The route whose price answers are charged at: the chat completions the agent asks.
const ROUTE: &str = "/v1/chat/completions";

fn account(sender: &PublicKey) -> String {
    format!("npub:{}", sender.to_hex())
}

impl Meter for Payments {
    fn reserve(
        &self,
        sender: &PublicKey,
        input_bytes: u64,
        max_tokens: u64,
    ) -> Result<Option<i64>, PayFirst> {
        let price = self.prices.on(ROUTE);
        if price.is_free() {
            return Ok(None);
        }
        let msat = price.reserve(input_bytes, max_tokens);
        let key = account(sender);
        match self.ledger.reserve(&key, msat, "direct message or job") {
            Ok(id) => Ok(Some(id)),
            Err(provenance_pay::LedgerError::Short { balance, needed }) => Err(PayFirst {
                how: format!(
                    "an answer costs up to {} sat and your balance is {} sat; send a Cashu token ({} from {}) as a message to top up (payment request: {})",
                    msat.div_ceil(MSAT_PER_SAT),
                    balance / MSAT_PER_SAT,
                    self.wallet.unit(),
                    self.wallet.mints().join(", "),
                    self.payment_request(msat)
                ),
                short_msat: needed.saturating_sub(balance),
            }),
            Err(e) => Err(PayFirst {
                how: format!("payments are unavailable: {e}"),
                short_msat: 0,
            }),
        }
    }

    fn invoice<'a>(&'a self, sender: &'a PublicKey, msat: u64) -> BoxFuture<'a, Option<String>> {
        Box::pin(async move {
            let lightning = self.lightning.as_ref()?;
            // Whole sats: wallets show sats, and a balance in msat would strand the rest.
            let msat = msat.div_ceil(MSAT_PER_SAT).saturating_mul(MSAT_PER_SAT);
            lightning
                .invoice_for(&account(sender), msat)
                .await
                .ok()
                .map(|made| made.invoice)
        })
    }

    fn settle(&self, id: i64, usage: Option<Usage>) {
        let price = self.prices.on(ROUTE);
        let cost = usage.map_or(u64::MAX, |u| price.cost(u));
        let _ = self.ledger.settle(id, cost);
    }

    fn refund(&self, id: i64) {
        let _ = self.ledger.refund(id);
    }

    fn top_up<'a>(
        &'a self,
        sender: &'a PublicKey,
        token: &'a str,
    ) -> BoxFuture<'a, Result<(u64, u64), String>> {
        Box::pin(async move {
            let received = self
                .wallet
                .receive(token)
                .await
                .map_err(|e| e.to_string())?;
            let key = account(sender);
            let msat = received.amount.saturating_mul(MSAT_PER_SAT);
            self.ledger
                .credit(
                    &key,
                    msat,
                    &format!("cashu {} from {} by DM", received.token_hash, received.mint),
                )
                .map_err(|e| e.to_string())?;
            let balance = self.ledger.balance(&key).map_err(|e| e.to_string())?;
            Ok((msat, balance))
        })
    }
}
