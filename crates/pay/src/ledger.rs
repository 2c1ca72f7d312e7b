//! Balances, in millisatoshis, in SQLite: who has how much, what is reserved for requests in
//! flight, and what the operator earned.
//!
//! Every change is one transaction and leaves a journal row. A request reserves the most it
//! can cost before it is forwarded ([`Ledger::reserve`]; refused when the balance is short),
//! and settles when its cost is known ([`Ledger::settle`]: the cost goes to the operator, the
//! rest back to the balance). A reservation that a crash left open is refunded in full at the
//! next start ([`Ledger::refund_open`]): the customer, not the operator, keeps what is
//! uncertain. At every moment the sum of all balances, open reservations and the operator's
//! earnings equals everything credited minus everything paid out ([`Ledger::totals`]).
//!
//! The operator's earnings leave over Lightning by a melt ([`Ledger::melt_earnings`]): the
//! most the melt can cost is taken from the earnings before the wallet pays (refused when the
//! earnings are short), what the wallet gave up goes to the melted total when the mint has
//! paid, and the rest back to the earnings. A melt a crash left unsettled is settled from the
//! wallet's record once the wallet has recovered it ([`Ledger::settle_melts`]).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::price::MSAT_PER_SAT;
use crate::wallet::{MeltState, Melted, PayError, Wallet};

/// The account of the operator's earnings.
pub const OPERATOR: &str = "operator";

/// Why a ledger operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The balance is short.
    #[error("the balance is {balance} msat, {needed} msat are needed")]
    Short {
        /// The balance.
        balance: u64,
        /// What was needed.
        needed: u64,
    },
    /// No such reservation (settled or refunded already).
    #[error("no open reservation {0}")]
    NoReservation(i64),
    /// No such open melt (settled or cancelled already).
    #[error("no open melt of quote {0}")]
    NoMelt(String),
    /// The database failed.
    #[error("ledger database: {0}")]
    Db(#[from] rusqlite::Error),
}

/// Why the operator's earnings were not melted ([`Ledger::melt_earnings`]).
#[derive(Debug, thiserror::Error)]
pub enum MeltError {
    /// The melt may cost more than the earnings.
    #[error("the melt may cost {needed} msat ({amount} sat and a Lightning fee reserve of {fee_reserve} sat{}), the earnings are {earnings} msat", if *input_fee > 0 { format!(" and an input fee of {input_fee} sat") } else { String::new() })]
    AboveEarnings {
        /// The earnings, msat.
        earnings: u64,
        /// The most the melt may cost, msat.
        needed: u64,
        /// The invoice's amount, sat.
        amount: u64,
        /// The mint's Lightning fee reserve, sat.
        fee_reserve: u64,
        /// The mint's input fee, sat.
        input_fee: u64,
    },
    /// The wallet refused or the mint failed.
    #[error("{0}")]
    Wallet(#[from] PayError),
    /// The ledger failed.
    #[error("{0}")]
    Ledger(#[from] LedgerError),
}

/// The sums of the ledger, msat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// All balances but the operator's.
    pub balances: u64,
    /// Reserved for requests in flight.
    pub reserved: u64,
    /// The operator's earnings not yet paid out.
    pub operator: u64,
    /// Everything ever credited.
    pub credited: u64,
    /// Everything ever paid out as ecash (refunds, change).
    pub paid_out: u64,
    /// Taken from the earnings for melts in flight.
    pub melting: u64,
    /// Everything the operator melted: paid out over Lightning, fees included.
    pub melted: u64,
}

impl Totals {
    /// Whether every msat is accounted for: credited = balances + reserved + operator +
    /// paid out + melting + melted.
    pub fn balanced(&self) -> bool {
        u128::from(self.credited)
            == u128::from(self.balances)
                + u128::from(self.reserved)
                + u128::from(self.operator)
                + u128::from(self.paid_out)
                + u128::from(self.melting)
                + u128::from(self.melted)
    }
}

/// Takes `msat` from `key`'s balance within `tx`, or says how short it is.
fn take(tx: &rusqlite::Transaction<'_>, key: &str, msat: u64) -> Result<(), LedgerError> {
    let n = tx.execute(
        "UPDATE pay_accounts SET msat = msat - ?2 WHERE key = ?1 AND msat >= ?2",
        params![key, i(msat)],
    )?;
    if n == 1 {
        return Ok(());
    }
    let balance: Option<i64> = tx
        .query_row("SELECT msat FROM pay_accounts WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?;
    Err(LedgerError::Short {
        balance: balance.map_or(0, u),
        needed: msat,
    })
}

/// The ledger; see the module.
#[derive(Debug)]
pub struct Ledger {
    conn: Mutex<Connection>,
}

/// A msat amount as SQLite stores it (saturating).
pub(crate) fn i(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored amount back (never negative).
pub(crate) fn u(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Opens the payments' SQLite file as every table of it is used: WAL (the server and `pay`
/// commands share it), every commit synced, and a 5 s wait on a lock.
pub(crate) fn open_db(path: &Path) -> Result<Connection, LedgerError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")?;
    Ok(conn)
}

/// Adds `msat` to `key`'s balance (opening the account), within `tx`; no journal row.
fn add_to(tx: &rusqlite::Transaction<'_>, key: &str, msat: u64) -> Result<(), LedgerError> {
    tx.execute(
        "INSERT INTO pay_accounts (key, msat) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET msat = msat + excluded.msat",
        params![key, i(msat)],
    )?;
    Ok(())
}

/// The account and amount of open reservation `id`, within `tx`.
fn open_reservation(tx: &rusqlite::Transaction<'_>, id: i64) -> Result<(String, u64), LedgerError> {
    let (key, reserved): (String, i64) = tx
        .query_row(
            "SELECT key, msat FROM pay_reservations WHERE id = ?1 AND state = 'open'",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or(LedgerError::NoReservation(id))?;
    Ok((key, u(reserved)))
}

/// Adds `msat` to `key`'s balance with a `credit` journal row noting `note`, within `tx`.
fn add_credit(
    tx: &rusqlite::Transaction<'_>,
    key: &str,
    msat: u64,
    note: &str,
) -> Result<(), LedgerError> {
    add_to(tx, key, msat)?;
    tx.execute(
        "INSERT INTO pay_journal (key, kind, msat, note) VALUES (?1, 'credit', ?2, ?3)",
        params![key, i(msat), note],
    )?;
    Ok(())
}

impl Ledger {
    /// Opens (or makes) the ledger at `path`.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let conn = open_db(path)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS pay_accounts (
                 key   TEXT PRIMARY KEY,
                 msat  INTEGER NOT NULL CHECK (msat >= 0)
             );
             CREATE TABLE IF NOT EXISTS pay_reservations (
                 id      INTEGER PRIMARY KEY,
                 key     TEXT NOT NULL,
                 msat    INTEGER NOT NULL,
                 request TEXT NOT NULL,
                 state   TEXT NOT NULL CHECK (state IN ('open', 'settled', 'refunded')),
                 cost    INTEGER
             );
             CREATE TABLE IF NOT EXISTS pay_credit_refs (
                 reference TEXT PRIMARY KEY
             );
             CREATE TABLE IF NOT EXISTS pay_journal (
                 id      INTEGER PRIMARY KEY,
                 key     TEXT NOT NULL,
                 kind    TEXT NOT NULL,
                 msat    INTEGER NOT NULL,
                 note    TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS pay_melts (
                 id      INTEGER PRIMARY KEY,
                 quote   TEXT NOT NULL UNIQUE,
                 invoice TEXT NOT NULL,
                 msat    INTEGER NOT NULL,
                 state   TEXT NOT NULL CHECK (state IN ('open', 'melted', 'cancelled')),
                 cost    INTEGER
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

    /// The balance of `key`, msat (0 for an account never credited).
    pub fn balance(&self, key: &str) -> Result<u64, LedgerError> {
        let msat: Option<i64> = self
            .conn()
            .query_row("SELECT msat FROM pay_accounts WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(msat.map_or(0, u))
    }

    /// Whether `key` was ever credited.
    pub fn exists(&self, key: &str) -> Result<bool, LedgerError> {
        let found: Option<i64> = self
            .conn()
            .query_row("SELECT 1 FROM pay_accounts WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(found.is_some())
    }

    /// Credits `msat` to `key` (a payment received), noting `note` (a token hash, an invoice).
    pub fn credit(&self, key: &str, msat: u64, note: &str) -> Result<(), LedgerError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        add_credit(&tx, key, msat, note)?;
        tx.commit()?;
        Ok(())
    }

    /// Credits `msat` to `key` once for `reference` (a Lightning payment hash): a second call
    /// with the same reference credits nothing and returns `false`, so a payment seen twice
    /// (a notification and a lookup, or again after a restart) is counted once.
    pub fn credit_once(&self, key: &str, msat: u64, reference: &str) -> Result<bool, LedgerError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let new = tx.execute(
            "INSERT OR IGNORE INTO pay_credit_refs (reference) VALUES (?1)",
            [reference],
        )?;
        if new == 0 {
            return Ok(false);
        }
        add_credit(&tx, key, msat, reference)?;
        tx.commit()?;
        Ok(true)
    }

    /// The sum credited with references starting with `prefix` (`lightning:`), msat.
    pub fn credited_by(&self, prefix: &str) -> Result<u64, LedgerError> {
        let n: Option<i64> = self.conn().query_row(
            "SELECT SUM(msat) FROM pay_journal WHERE kind = 'credit' AND substr(note, 1, length(?1)) = ?1",
            [prefix],
            |r| r.get(0),
        )?;
        Ok(n.map_or(0, u))
    }

    /// Reserves `msat` of `key`'s balance for `request`; the reservation's id.
    pub fn reserve(&self, key: &str, msat: u64, request: &str) -> Result<i64, LedgerError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        take(&tx, key, msat)?;
        tx.execute(
            "INSERT INTO pay_reservations (key, msat, request, state) VALUES (?1, ?2, ?3, 'open')",
            params![key, i(msat), request],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(id)
    }

    /// Settles reservation `id` at `cost` (at most what was reserved): the cost to the
    /// operator, the rest back to the balance. Returns the cost charged.
    pub fn settle(&self, id: i64, cost: u64) -> Result<u64, LedgerError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let (key, reserved) = open_reservation(&tx, id)?;
        let cost = cost.min(reserved);
        let rest = reserved - cost;
        tx.execute(
            "UPDATE pay_accounts SET msat = msat + ?2 WHERE key = ?1",
            params![key, i(rest)],
        )?;
        add_to(&tx, OPERATOR, cost)?;
        tx.execute(
            "UPDATE pay_reservations SET state = 'settled', cost = ?2 WHERE id = ?1",
            params![id, i(cost)],
        )?;
        tx.execute(
            "INSERT INTO pay_journal (key, kind, msat, note) VALUES (?1, 'charge', ?2, ?3)",
            params![key, i(cost), format!("reservation {id}")],
        )?;
        tx.commit()?;
        Ok(cost)
    }

    /// Refunds reservation `id` in full (the request failed or was not served).
    pub fn refund(&self, id: i64) -> Result<(), LedgerError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let (key, reserved) = open_reservation(&tx, id)?;
        tx.execute(
            "UPDATE pay_accounts SET msat = msat + ?2 WHERE key = ?1",
            params![key, i(reserved)],
        )?;
        tx.execute(
            "UPDATE pay_reservations SET state = 'refunded', cost = 0 WHERE id = ?1",
            [id],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Refunds every reservation still open (at start: a crash left them open). How many.
    pub fn refund_open(&self) -> Result<usize, LedgerError> {
        let ids: Vec<i64> = {
            let conn = self.conn();
            let mut statement =
                conn.prepare("SELECT id FROM pay_reservations WHERE state = 'open'")?;
            let rows = statement.query_map([], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        for id in &ids {
            self.refund(*id)?;
        }
        Ok(ids.len())
    }

    /// Takes `msat` out of `key` (paid out as change, a refund token, or the operator's
    /// withdrawal), noting `note` (what was given).
    pub fn debit(&self, key: &str, msat: u64, note: &str) -> Result<(), LedgerError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        take(&tx, key, msat)?;
        tx.execute(
            "INSERT INTO pay_journal (key, kind, msat, note) VALUES (?1, 'payout', ?2, ?3)",
            params![key, i(msat), note],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The operator's earnings, msat.
    pub fn earnings(&self) -> Result<u64, LedgerError> {
        self.balance(OPERATOR)
    }

    /// Takes `msat` (the most a melt of `quote` can cost) from the operator's earnings, or
    /// says how short they are.
    pub fn reserve_melt(&self, quote: &str, invoice: &str, msat: u64) -> Result<(), LedgerError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        take(&tx, OPERATOR, msat)?;
        tx.execute(
            "INSERT INTO pay_melts (quote, invoice, msat, state) VALUES (?1, ?2, ?3, 'open')",
            params![quote, invoice, i(msat)],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The melt of `quote` was paid and the wallet gave up `spent` msat: that goes to the
    /// melted total, the rest of what was taken back to the earnings. A melt cancelled in the
    /// meantime (a recovery that found no trace of it) is taken from the earnings again.
    pub fn settle_melt(&self, quote: &str, spent: u64) -> Result<(), LedgerError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let (taken, state): (i64, String) = tx
            .query_row(
                "SELECT msat, state FROM pay_melts WHERE quote = ?1 AND state != 'melted'",
                [quote],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| LedgerError::NoMelt(quote.to_owned()))?;
        let taken = if state == "open" { u(taken) } else { 0 };
        if spent > taken {
            take(&tx, OPERATOR, spent - taken)?;
        } else {
            tx.execute(
                "UPDATE pay_accounts SET msat = msat + ?2 WHERE key = ?1",
                params![OPERATOR, i(taken - spent)],
            )?;
        }
        tx.execute(
            "UPDATE pay_melts SET state = 'melted', cost = ?2 WHERE quote = ?1",
            params![quote, i(spent)],
        )?;
        tx.execute(
            "INSERT INTO pay_journal (key, kind, msat, note) VALUES (?1, 'melt', ?2, ?3)",
            params![OPERATOR, i(spent), format!("melt {quote}")],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The melt of `quote` was not paid: what was taken goes back to the earnings.
    pub fn cancel_melt(&self, quote: &str) -> Result<(), LedgerError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let taken: i64 = tx
            .query_row(
                "SELECT msat FROM pay_melts WHERE quote = ?1 AND state = 'open'",
                [quote],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| LedgerError::NoMelt(quote.to_owned()))?;
        tx.execute(
            "UPDATE pay_accounts SET msat = msat + ?2 WHERE key = ?1",
            params![OPERATOR, taken],
        )?;
        tx.execute(
            "UPDATE pay_melts SET state = 'cancelled', cost = 0 WHERE quote = ?1",
            [quote],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The quotes of the melts not settled.
    pub fn open_melts(&self) -> Result<Vec<String>, LedgerError> {
        let conn = self.conn();
        let mut statement =
            conn.prepare("SELECT quote FROM pay_melts WHERE state = 'open' ORDER BY id")?;
        let rows = statement.query_map([], |r| r.get(0))?;
        rows.collect::<Result<_, _>>().map_err(LedgerError::from)
    }

    /// Pays the operator's earnings out over Lightning: `invoice` (bolt11) paid by `wallet`
    /// from its proofs at `mint` (NUT-05). The most the melt can cost (the invoice, the mint's
    /// Lightning fee reserve and input fee) is taken from the earnings first, so a melt above
    /// them is refused before anything is sent; when the mint has paid, what the wallet gave
    /// up is melted and the unspent reserve goes back to the earnings. A melt the mint did not
    /// pay gives everything back; one whose answer was lost stays open until
    /// [`Ledger::settle_melts`].
    pub async fn melt_earnings(
        &self,
        wallet: &Wallet,
        mint: &str,
        invoice: &str,
    ) -> Result<Melted, MeltError> {
        let quote = wallet.melt_quote(mint, invoice).await?;
        let needed = quote.most().saturating_mul(MSAT_PER_SAT);
        match self.reserve_melt(&quote.quote, &quote.invoice, needed) {
            Ok(()) => {}
            Err(LedgerError::Short { balance, .. }) => {
                return Err(MeltError::AboveEarnings {
                    earnings: balance,
                    needed,
                    amount: quote.amount,
                    fee_reserve: quote.fee_reserve,
                    input_fee: quote.input_fee,
                });
            }
            Err(e) => return Err(e.into()),
        }
        match wallet.pay_melt(&quote).await {
            Ok(melted) => {
                self.settle_melt(&quote.quote, melted.spent.saturating_mul(MSAT_PER_SAT))?;
                Ok(melted)
            }
            Err(e) => {
                match wallet.melt_state(&quote.quote)? {
                    Some(MeltState::Pending) => {}
                    Some(MeltState::Paid { spent }) => {
                        self.settle_melt(&quote.quote, spent.saturating_mul(MSAT_PER_SAT))?;
                    }
                    Some(MeltState::NotPaid) | None => self.cancel_melt(&quote.quote)?,
                }
                Err(e.into())
            }
        }
    }

    /// Settles the melts a crash left open, from `wallet`'s record (call after
    /// [`Wallet::recover`]): paid ones are melted, ones the wallet never began or the mint
    /// never paid are given back to the earnings, ones still pending stay open. How many were
    /// settled.
    pub fn settle_melts(&self, wallet: &Wallet) -> Result<usize, MeltError> {
        let mut settled = 0;
        for quote in self.open_melts()? {
            match wallet.melt_state(&quote)? {
                Some(MeltState::Pending) => continue,
                Some(MeltState::Paid { spent }) => {
                    self.settle_melt(&quote, spent.saturating_mul(MSAT_PER_SAT))?;
                }
                Some(MeltState::NotPaid) | None => self.cancel_melt(&quote)?,
            }
            settled += 1;
        }
        Ok(settled)
    }

    /// The sums; see [`Totals::balanced`].
    pub fn totals(&self) -> Result<Totals, LedgerError> {
        let conn = self.conn();
        let sum = |sql: &str| -> Result<u64, LedgerError> {
            let n: Option<i64> = conn.query_row(sql, [], |r| r.get(0))?;
            Ok(n.map_or(0, u))
        };
        Ok(Totals {
            balances: sum(&format!(
                "SELECT SUM(msat) FROM pay_accounts WHERE key != '{OPERATOR}'"
            ))?,
            reserved: sum("SELECT SUM(msat) FROM pay_reservations WHERE state = 'open'")?,
            operator: sum(&format!(
                "SELECT SUM(msat) FROM pay_accounts WHERE key = '{OPERATOR}'"
            ))?,
            credited: sum("SELECT SUM(msat) FROM pay_journal WHERE kind = 'credit'")?,
            paid_out: sum("SELECT SUM(msat) FROM pay_journal WHERE kind = 'payout'")?,
            melting: sum("SELECT SUM(msat) FROM pay_melts WHERE state = 'open'")?,
            melted: sum("SELECT SUM(msat) FROM pay_journal WHERE kind = 'melt'")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_settle_refund_and_every_msat_accounted_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        let ledger = Ledger::open(&path).unwrap();
        ledger.credit("token:a", 10_000, "token a").unwrap();
        let r1 = ledger.reserve("token:a", 6_000, "req 1").unwrap();
        assert!(matches!(
            ledger.reserve("token:a", 6_000, "req 2"),
            Err(LedgerError::Short {
                balance: 4_000,
                needed: 6_000
            })
        ));
        assert_eq!(ledger.settle(r1, 2_500).unwrap(), 2_500);
        assert_eq!(ledger.balance("token:a").unwrap(), 7_500);
        assert!(matches!(
            ledger.settle(r1, 1),
            Err(LedgerError::NoReservation(_))
        ));
        let r2 = ledger.reserve("token:a", 7_500, "req 2").unwrap();
        ledger.refund(r2).unwrap();
        // A cost above the reservation is capped at it.
        let r3 = ledger.reserve("token:a", 1_000, "req 3").unwrap();
        assert_eq!(ledger.settle(r3, 5_000).unwrap(), 1_000);
        ledger.debit("token:a", 6_500, "refund token").unwrap();
        assert_eq!(ledger.balance("token:a").unwrap(), 0);
        let totals = ledger.totals().unwrap();
        assert_eq!(totals.operator, 3_500);
        assert!(totals.balanced(), "{totals:?}");

        // A reservation a crash left open is refunded at the next start.
        ledger.credit("npub:b", 2_000, "zap").unwrap();
        ledger.reserve("npub:b", 2_000, "req 4").unwrap();
        drop(ledger);
        let ledger = Ledger::open(&path).unwrap();
        assert!(ledger.totals().unwrap().balanced());
        assert_eq!(ledger.refund_open().unwrap(), 1);
        assert_eq!(ledger.balance("npub:b").unwrap(), 2_000);
        assert!(ledger.totals().unwrap().balanced());
    }

    #[test]
    fn melts_move_earnings_to_the_melted_total_and_a_melt_above_them_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("ledger.sqlite")).unwrap();
        ledger.credit("token:a", 20_000, "token a").unwrap();
        let r = ledger.reserve("token:a", 20_000, "req").unwrap();
        ledger.settle(r, 15_500).unwrap();
        assert_eq!(ledger.earnings().unwrap(), 15_500);
        // Above the earnings: refused, nothing moves.
        assert!(matches!(
            ledger.reserve_melt("q0", "lnbc0", 16_000),
            Err(LedgerError::Short {
                balance: 15_500,
                needed: 16_000
            })
        ));
        assert_eq!(ledger.earnings().unwrap(), 15_500);
        // Taken while in flight; paid for less than taken: the rest comes back.
        ledger.reserve_melt("q1", "lnbc1", 12_000).unwrap();
        let totals = ledger.totals().unwrap();
        assert_eq!((totals.operator, totals.melting), (3_500, 12_000));
        assert!(totals.balanced(), "{totals:?}");
        ledger.settle_melt("q1", 11_000).unwrap();
        assert!(matches!(
            ledger.settle_melt("q1", 11_000),
            Err(LedgerError::NoMelt(_))
        ));
        // Not paid: everything back.
        ledger.reserve_melt("q2", "lnbc2", 4_000).unwrap();
        assert_eq!(ledger.open_melts().unwrap(), vec!["q2".to_owned()]);
        ledger.cancel_melt("q2").unwrap();
        assert!(ledger.open_melts().unwrap().is_empty());
        let totals = ledger.totals().unwrap();
        assert_eq!(totals.operator, 4_500);
        assert_eq!(totals.melted, 11_000);
        assert_eq!(totals.melting, 0);
        assert!(totals.balanced(), "{totals:?}");
        // A melt cancelled by a recovery that is then found paid is taken again.
        ledger.settle_melt("q2", 3_000).unwrap();
        let totals = ledger.totals().unwrap();
        assert_eq!((totals.operator, totals.melted), (1_500, 14_000));
        assert!(totals.balanced(), "{totals:?}");
    }
}
