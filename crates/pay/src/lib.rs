//! Pay per prompt without accounts: prices ([`price`]), balances ([`ledger`]) and the
//! operator's Cashu wallet ([`wallet`], on a mint's HTTP API: [`mint`]), and Lightning through
//! the operator's Nostr Wallet Connect service ([`nwc`], invoices checked with [`bolt11`]).
//!
//! The wallet receives a customer's ecash by swapping it at its mint before anything is
//! served (never on an unspent-check alone: a check does not stop the customer spending the
//! token elsewhere a moment later), and gives ecash back as change or refunds. Every swap is
//! written to SQLite before it is sent and settled in one transaction after, and a swap whose
//! answer was lost is settled later from the mint's own record (NUT-09 restore), so a crash at
//! any point loses no sat. `docs/pay.md` in the repository describes the whole.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod bolt11;
pub mod invoices;
pub mod ledger;
pub mod mint;
pub mod nwc;
pub mod price;
pub mod wallet;
pub mod zap;

pub use cashu;

pub use crate::invoices::{Invoices, Purpose};
pub use crate::ledger::{Ledger, LedgerError, MeltError, Totals};
pub use crate::mint::{MintClient, MintError};
pub use crate::nwc::{InvoiceState, MadeInvoice, Nwc, NwcError, NwcOptions};
pub use crate::price::{Price, PriceError, Prices, Usage};
pub use crate::wallet::{MeltQuote, MeltState, Melted, PayError, Received, Recovered, Wallet};
