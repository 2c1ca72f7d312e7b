//! Lightning invoices the box handed out (top-ups and zaps), in SQLite beside the ledger: who
//! is credited when each is paid, and, for a zap, the zap request and the receipt to publish.
//!
//! An invoice moves `pending` → `paid` (credited, through
//! [`crate::Ledger::credit_once`] keyed by its payment hash, so a payment seen twice is credited
//! once) or `pending` → `expired`. A zap receipt is stored signed before it is published and
//! stays queued until a relay accepts it: a restart publishes what a crash left unpublished.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::ledger::{LedgerError, i, u};

/// What an invoice is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A balance top-up.
    TopUp,
    /// A NIP-57 zap: the zap request is kept, a receipt is published when paid.
    Zap,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::TopUp => "topup",
            Purpose::Zap => "zap",
        }
    }
}

/// One invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Payment hash, hex.
    pub payment_hash: String,
    /// The account credited when paid (`npub:<hex>`, `cashu:<hash>`).
    pub key: String,
    /// The amount, msat.
    pub msat: u64,
    /// The BOLT11 invoice.
    pub invoice: String,
    /// Top-up or zap.
    pub purpose: Purpose,
    /// The zap request's JSON text, exactly as received (its SHA-256 is the invoice's
    /// description hash).
    pub zap_request: Option<String>,
    /// `pending`, `paid` or `expired`.
    pub state: String,
    /// Seconds since the epoch.
    pub expires_at: u64,
    /// The signed zap receipt, once paid.
    pub receipt: Option<String>,
    /// Whether a relay accepted the receipt.
    pub receipt_published: bool,
}

/// The invoice table; see the module.
#[derive(Debug)]
pub struct Invoices {
    conn: Mutex<Connection>,
}

const COLUMNS: &str = "payment_hash, key, msat, invoice, purpose, zap_request, state, expires_at, receipt, receipt_published";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Stored> {
    let purpose: String = r.get(4)?;
    Ok(Stored {
        payment_hash: r.get(0)?,
        key: r.get(1)?,
        msat: u(r.get(2)?),
        invoice: r.get(3)?,
        purpose: if purpose == "zap" {
            Purpose::Zap
        } else {
            Purpose::TopUp
        },
        zap_request: r.get(5)?,
        state: r.get(6)?,
        expires_at: u(r.get(7)?),
        receipt: r.get(8)?,
        receipt_published: r.get::<_, i64>(9)? != 0,
    })
}

impl Invoices {
    /// Opens (or makes) the table in the SQLite file `path` (the ledger's).
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let conn = crate::ledger::open_db(path)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS pay_invoices (
                 payment_hash TEXT PRIMARY KEY,
                 key          TEXT NOT NULL,
                 msat         INTEGER NOT NULL CHECK (msat > 0),
                 invoice      TEXT NOT NULL,
                 purpose      TEXT NOT NULL CHECK (purpose IN ('topup', 'zap')),
                 zap_request  TEXT,
                 state        TEXT NOT NULL CHECK (state IN ('pending', 'paid', 'expired')),
                 expires_at   INTEGER NOT NULL,
                 receipt      TEXT,
                 receipt_published INTEGER NOT NULL DEFAULT 0
             );",
        )?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records an invoice handed out, pending.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &self,
        payment_hash: &str,
        key: &str,
        msat: u64,
        invoice: &str,
        purpose: Purpose,
        zap_request: Option<&str>,
        expires_at: u64,
    ) -> Result<(), LedgerError> {
        self.conn().execute(
            "INSERT INTO pay_invoices (payment_hash, key, msat, invoice, purpose, zap_request, state, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7)",
            params![
                payment_hash,
                key,
                i(msat),
                invoice,
                purpose.as_str(),
                zap_request,
                i(expires_at)
            ],
        )?;
        Ok(())
    }

    /// The invoice with `payment_hash`.
    pub fn get(&self, payment_hash: &str) -> Result<Option<Stored>, LedgerError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM pay_invoices WHERE payment_hash = ?1"),
                [payment_hash],
                row,
            )
            .optional()?)
    }

    /// Up to `limit` pending invoices, the oldest expiry first.
    pub fn pending(&self, limit: usize) -> Result<Vec<Stored>, LedgerError> {
        let conn = self.conn();
        let mut statement = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM pay_invoices WHERE state = 'pending' ORDER BY expires_at LIMIT ?1"
        ))?;
        let rows = statement.query_map([i(limit as u64)], row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks an invoice paid (after its credit) with its zap receipt, if any; `false` when it
    /// was not pending.
    pub fn paid(&self, payment_hash: &str, receipt: Option<&str>) -> Result<bool, LedgerError> {
        let n = self.conn().execute(
            "UPDATE pay_invoices SET state = 'paid', receipt = ?2
             WHERE payment_hash = ?1 AND state = 'pending'",
            params![payment_hash, receipt],
        )?;
        Ok(n == 1)
    }

    /// Marks a pending invoice expired.
    pub fn expired(&self, payment_hash: &str) -> Result<bool, LedgerError> {
        let n = self.conn().execute(
            "UPDATE pay_invoices SET state = 'expired' WHERE payment_hash = ?1 AND state = 'pending'",
            [payment_hash],
        )?;
        Ok(n == 1)
    }

    /// Paid zaps whose receipt no relay has accepted yet.
    pub fn unpublished(&self, limit: usize) -> Result<Vec<Stored>, LedgerError> {
        let conn = self.conn();
        let mut statement = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM pay_invoices
             WHERE state = 'paid' AND receipt IS NOT NULL AND receipt_published = 0 LIMIT ?1"
        ))?;
        let rows = statement.query_map([i(limit as u64)], row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks a zap's receipt published.
    pub fn published(&self, payment_hash: &str) -> Result<(), LedgerError> {
        self.conn().execute(
            "UPDATE pay_invoices SET receipt_published = 1 WHERE payment_hash = ?1",
            [payment_hash],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Ledger;

    #[test]
    fn an_invoice_is_credited_once_however_often_it_is_seen_paid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pay.sqlite");
        let ledger = Ledger::open(&path).unwrap();
        let invoices = Invoices::open(&path).unwrap();
        invoices
            .add("aa", "npub:x", 21_000, "lnbc...", Purpose::TopUp, None, 100)
            .unwrap();
        assert_eq!(invoices.pending(10).unwrap().len(), 1);
        for _ in 0..3 {
            ledger
                .credit_once("npub:x", 21_000, "lightning:aa")
                .unwrap();
        }
        assert!(invoices.paid("aa", None).unwrap());
        assert!(!invoices.paid("aa", None).unwrap());
        assert!(!invoices.expired("aa").unwrap());
        assert_eq!(ledger.balance("npub:x").unwrap(), 21_000);
        assert_eq!(ledger.credited_by("lightning:").unwrap(), 21_000);
        assert!(ledger.totals().unwrap().balanced());
        // Open again: the state is on disk.
        drop((ledger, invoices));
        let invoices = Invoices::open(&path).unwrap();
        assert_eq!(invoices.get("aa").unwrap().unwrap().state, "paid");
        assert!(invoices.pending(10).unwrap().is_empty());
        // A duplicate payment hash is refused.
        assert!(
            invoices
                .add("aa", "npub:y", 1, "lnbc...", Purpose::Zap, Some("{}"), 1)
                .is_err()
        );
    }
}
