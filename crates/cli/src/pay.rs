//! `provenance pay`: the operator's side of the payments of `serve --price` (docs/pay.md):
//! what was earned, and paying it out over Lightning.
//!
//! Thin glue over `provenance_pay`: the ledger and the wallet live in the `--pay-db` file that
//! `serve` writes, and may be read and melted from while `serve` runs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use provenance_pay::cashu::nuts::CurrencyUnit;
use provenance_pay::price::MSAT_PER_SAT;
use provenance_pay::{Ledger, MeltError, PayError, Wallet};
use serde_json::json;

use crate::output::{self, Out};

/// Exit status of `pay melt`: refused here, nothing sent.
const EXIT_REFUSED: u8 = 1;
/// Exit status of `pay melt`: sent, not settled yet.
const EXIT_UNSETTLED: u8 = 3;

const MELT_EXIT_HELP: &str = "\
EXIT STATUS:
    0  the invoice was paid
    1  refused, nothing sent: the melt may cost more than the earnings, or this invoice was
       already paid (or is being paid) from this wallet
    2  an error: an invoice that is not a bolt11 invoice with an amount or has expired, a mint
       not reached or refusing, an unreadable --pay-db
    3  sent, not settled: the Lightning payment is in flight or the mint's answer was lost;
       the next `pay melt` or `serve` start settles it from the mint's record";

/// The operator's earnings from `serve --price`, and paying them out over Lightning
#[derive(Parser, Debug)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: PayCommand,
}

#[derive(Subcommand, Debug)]
enum PayCommand {
    Earnings(EarningsArgs),
    Melt(MeltArgs),
}

/// What the operator earned, what customers' balances hold, what was paid out, and what the
/// wallet holds; exit 1 when they do not add up
#[derive(Parser, Debug)]
struct EarningsArgs {
    /// The wallet and balances of `serve --pay-db`
    #[arg(long, value_name = "FILE")]
    pay_db: PathBuf,
    /// JSON Lines output
    #[arg(long)]
    json: bool,
}

/// Pay a Lightning invoice from the operator's earnings: the wallet melts its ecash at the
/// mint (NUT-05)
#[derive(Parser, Debug)]
#[command(after_help = MELT_EXIT_HELP)]
struct MeltArgs {
    /// The wallet and balances of `serve --pay-db`
    #[arg(long, value_name = "FILE")]
    pay_db: PathBuf,
    /// The mint whose ecash pays (one that `serve --cashu-mint` takes)
    #[arg(long, value_name = "URL")]
    cashu_mint: String,
    /// The bolt11 invoice to pay (with an amount)
    #[arg(long, value_name = "BOLT11")]
    invoice: String,
    /// JSON Lines output
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        PayCommand::Earnings(args) => earnings(&args),
        PayCommand::Melt(args) => melt(&args),
    }
}

/// Opens the ledger and the wallet of an existing `--pay-db`.
fn open(path: &std::path::Path, mints: &[String]) -> Result<(Ledger, Wallet)> {
    if !path.is_file() {
        bail!(
            "--pay-db {}: no such file (serve --price writes it)",
            path.display()
        );
    }
    let wallet = Wallet::open(path, mints, CurrencyUnit::Sat)
        .with_context(|| format!("--pay-db {}", path.display()))?;
    let ledger = Ledger::open(path).with_context(|| format!("--pay-db {}", path.display()))?;
    Ok((ledger, wallet))
}

fn earnings(args: &EarningsArgs) -> Result<ExitCode> {
    let (ledger, wallet) = open(&args.pay_db, &[])?;
    let totals = ledger.totals()?;
    let held = wallet.held()?;
    let held_sat: u64 = held.iter().map(|(_, a)| a).sum();
    // The wallet holds at least what balances, open reservations and the earnings hold
    // (exactly, unless a melt is in flight).
    let owed = totals.balances + totals.reserved + totals.operator;
    let adds_up = totals.balanced() && held_sat.saturating_mul(MSAT_PER_SAT) >= owed;
    let mut out = Out::new(args.json);
    out.message(
        "earnings",
        &json!({
            "unit": "msat",
            "earnings": totals.operator,
            "balances": totals.balances,
            "reserved": totals.reserved,
            "melting": totals.melting,
            "melted": totals.melted,
            "credited": totals.credited,
            "paid_out": totals.paid_out,
            "held": held.iter().map(|(mint, sat)| json!({"mint": mint, "sat": sat})).collect::<Vec<_>>(),
            "adds_up": adds_up,
        }),
    )?;
    let rows = [
        ("earnings", totals.operator, "the operator's, can be melted"),
        ("balances", totals.balances, "customers' balances"),
        ("reserved", totals.reserved, "requests in flight"),
        ("melting", totals.melting, "melts in flight"),
        (
            "melted",
            totals.melted,
            "paid out over Lightning, fees included",
        ),
        ("paid out", totals.paid_out, "change and refunds"),
        ("credited", totals.credited, "everything paid in"),
    ];
    for (name, msat, what) in rows {
        out.line(&format!("{name:<9} {msat:>14} msat  {what}"))?;
    }
    for (mint, sat) in &held {
        out.line(&format!("wallet    {sat:>14} sat   at {mint}"))?;
    }
    out.line(if adds_up {
        "every msat is accounted for"
    } else {
        "the sums do not add up: credited differs from where it went, or the wallet holds less than it owes"
    })?;
    Ok(if adds_up {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(output::EXIT_FAILED)
    })
}

fn melt(args: &MeltArgs) -> Result<ExitCode> {
    let mint = args.cashu_mint.trim_end_matches('/').to_owned();
    let (ledger, wallet) = open(&args.pay_db, std::slice::from_ref(&mint))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut out = Out::new(args.json);
    // Melts an earlier run left unsettled first (only melts: swaps belong to a running serve).
    let settled = runtime
        .block_on(wallet.recover_melts())
        .context("settling melts left pending")?;
    let closed = ledger.settle_melts(&wallet)?;
    if !settled.is_empty() || closed > 0 {
        output::warn(&format!(
            "settled {} melts an earlier run left open: {settled:?}",
            settled.len().max(closed)
        ));
    }
    let result = runtime.block_on(ledger.melt_earnings(&wallet, &mint, &args.invoice));
    let melted = match result {
        Ok(melted) => melted,
        Err(e) => {
            let code = match &e {
                MeltError::AboveEarnings { .. }
                | MeltError::Wallet(PayError::AlreadyPaid { .. })
                | MeltError::Wallet(PayError::Insufficient { .. }) => EXIT_REFUSED,
                MeltError::Wallet(PayError::MeltPending { .. }) => EXIT_UNSETTLED,
                _ => output::EXIT_ERROR,
            };
            output::warn(&e.to_string());
            out.message("error", &json!({"message": e.to_string(), "exit": code}))?;
            return Ok(ExitCode::from(code));
        }
    };
    let earnings = ledger.earnings()?;
    out.message(
        "melted",
        &json!({
            "quote": melted.quote,
            "amount": melted.amount,
            "spent": melted.spent,
            "change": melted.change,
            "unit": "sat",
            "preimage": melted.preimage,
            "earnings_msat": earnings,
        }),
    )?;
    out.line(&format!(
        "paid {} sat over Lightning: {} sat spent with the fees, {} sat of change back in the wallet; earnings now {earnings} msat",
        melted.amount, melted.spent, melted.change
    ))?;
    if let Some(preimage) = &melted.preimage {
        out.line(&format!("preimage {preimage}"))?;
    }
    Ok(ExitCode::SUCCESS)
}
