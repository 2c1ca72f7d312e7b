//! `provenance replay`: re-run a signed llama.cpp answer and compare it token for token.
//!
//! Thin: read and verify the event, then [`provenance_replay::replay`] does the checks and
//! the run; `provenance_replay::text` renders the report. Exit status 0: the token ids match; 1: they diverge
//! (or the event does not verify); 2: the replay could not run as recorded.
//!
//! With `--label`, the replaying party says what it found in a NIP-32 audit label
//! (`replay.match` or `replay.mismatch`, naming the engine binary's sha256 in its content),
//! signed and published through [`crate::label`], so that `verify --labels` counts
//! independent replays.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use provenance::clock::SystemClock;
use provenance::commitment::Salt;
use provenance::event::Limits;
use provenance::{Event, EventId};
use provenance_replay::{Endpoint, EngineChoice, Inputs};
use serde_json::json;

use crate::input::{self, Source};
use crate::output::{EXIT_ERROR, EXIT_FAILED};

/// Replay a signed llama.cpp answer on the recorded engine and compare output token ids
#[derive(Parser, Debug)]
#[command(
    after_help = "Exit status: 0 the token ids match, 1 they diverge (or the event \
    does not verify), 2 the replay cannot run as recorded (one line says why)."
)]
pub(crate) struct Args {
    /// The event: a JSON file, `-` for stdin, or nevent1.../note1... (fetched from relays)
    #[arg(value_name = "EVENT")]
    event: String,
    /// The weights file (GGUF); its digests must be the recorded ones
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// The disclosed prompt (the bytes the commitment covers)
    #[arg(long, value_name = "FILE")]
    prompt: PathBuf,
    /// The salt disclosed with the prompt (64 hex characters)
    #[arg(long, value_name = "HEX")]
    salt: String,
    /// The llama-server binary to start with the recorded settings
    #[arg(long, value_name = "BIN", conflicts_with = "server")]
    llama_server: Option<PathBuf>,
    /// A running llama-server (http://HOST:PORT, one slot) instead of starting one
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Replay even when the engine binary is not the recorded one, or cannot be checked
    /// (a running server); the report says so
    #[arg(long)]
    allow_other_engine: bool,
    /// Relay to fetch a nevent/note from, besides its own relay hints, and to publish the
    /// --label to (repeatable)
    #[arg(long, value_name = "URL")]
    relay: Vec<String>,
    /// Sign an audit label (NIP-32, kind 1985) saying what the replay found: replay.match or
    /// replay.mismatch, with the engine binary's sha256; printed as the last line of stdout
    /// (in the report with --json) and published to every --relay
    #[arg(long)]
    label: bool,
    /// Signing key file for --label [default: $XDG_CONFIG_HOME/provenance/key.nsec]
    #[arg(long, value_name = "FILE", requires = "label")]
    key: Option<PathBuf>,
    /// Check by teacher forcing instead of generating: llama-score (built beside llama-server)
    /// scores the recorded output tokens in a batched pass, re-runs the seeded sampler over
    /// them, and decides any position where that pass is not clear by decoding one token at a
    /// time as generation did; exit status as for a replay
    #[arg(long, conflicts_with_all = ["server", "label"])]
    score: bool,
    /// The llama-score binary for --score [default: $PROVENANCE_LLAMA_SCORE, else beside
    /// --llama-server]
    #[arg(long, value_name = "BIN", requires = "score")]
    llama_score: Option<PathBuf>,
    /// For --score: decide every position by one-token decoding (slower; the batched pass is
    /// still run and what it picked is reported where it differs)
    #[arg(long, requires = "score")]
    one_token: bool,
    /// For --score: the largest logit gap between the picked and the claimed token tolerated
    /// as a near tie where one-token logits decide [default: 0.001]
    #[arg(long, value_name = "LOGITS", requires = "score")]
    tolerance: Option<f64>,
    /// For --score: the largest distance (probability mass) between a seeded draw and the
    /// claimed token's interval tolerated where one-token logits decide [default: 0.001]
    #[arg(long, value_name = "P", requires = "score")]
    draw_tolerance: Option<f64>,
    /// For --score: the change of any gap between two logits (logits) that a decision over the
    /// batched pass must survive to stand without the one-token fallback [default: 0.5]
    #[arg(long, value_name = "LOGITS", requires = "score")]
    margin: Option<f64>,
    /// For --score: the extra distance (probability mass) a seeded draw must keep from the
    /// edges of what the claimed interval keeps under that change [default: 0.001]
    #[arg(long, value_name = "P", requires = "score")]
    draw_margin: Option<f64>,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let salt: Salt = args
        .salt
        .parse()
        .map_err(|e| anyhow::anyhow!("--salt {:?}: {e}", args.salt))?;
    let prompt = std::fs::read(&args.prompt)
        .with_context(|| format!("cannot read --prompt {}", args.prompt.display()))?;
    if args.score {
        return run_score(&args, &salt, &prompt);
    }
    let engine = match (&args.llama_server, &args.server) {
        (Some(binary), _) => EngineChoice::Binary(binary.clone()),
        (None, Some(url)) => EngineChoice::Server(Endpoint::parse(url)?),
        (None, None) => bail!("name the engine: --llama-server BIN or --server URL (or --score)"),
    };
    let keys = if args.label {
        let path = match &args.key {
            Some(p) => p.clone(),
            None => crate::keyfile::default_path()?,
        };
        Some(crate::keyfile::load(&path)?)
    } else {
        None
    };
    let event = load_event(&args.event, &args.relay)?;
    let verification = provenance::event::verify(&event);
    let Some(verified) = verification.verified() else {
        let failed: Vec<String> = verification
            .claims()
            .iter()
            .filter(|c| c.status == provenance::verdict::Status::Failed)
            .map(|c| format!("{}: {}", c.code.as_str(), c.detail))
            .collect();
        crate::output::warn(&format!(
            "the event does not verify, nothing to replay: {}",
            failed.join("; ")
        ));
        return Ok(ExitCode::from(EXIT_FAILED));
    };
    let inputs = Inputs {
        record: verified.record(),
        prompt: &prompt,
        salt: &salt,
        model: &args.model,
        engine,
        allow_other_engine: args.allow_other_engine,
    };
    let report = match provenance_replay::replay(&inputs) {
        Ok(report) => report,
        Err(refusal) => {
            if args.json {
                let line = json!({"event": verified.id().to_hex(), "result": "refused",
                    "reason": refusal.to_string()});
                println!("{line}");
            } else {
                crate::output::warn(&refusal.to_string());
            }
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    };
    let label = match &keys {
        Some(keys) => {
            let label = provenance_replay::text::replay_label(
                verified.id(),
                verified.author(),
                &args.relay,
                &report,
            );
            let signed = label.sign(keys, &SystemClock)?;
            let answers = crate::label::publish(&signed, &args.relay, LABEL_TIMEOUT)?;
            Some((signed, answers))
        }
        None => None,
    };
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        value["event"] = json!(verified.id().to_hex());
        if let Some((signed, answers)) = &label {
            value["label"] = json!({
                "event": serde_json::from_str::<serde_json::Value>(&signed.as_json())?,
                "relays": answers,
            });
        }
        println!("{value}");
    } else {
        print!(
            "{}",
            provenance_replay::text::render(verified.id(), &report)
        );
        if let Some((signed, answers)) = &label {
            println!("{}", signed.as_json());
            for a in answers {
                let verdict = if a.accepted { "accepted" } else { "REFUSED" };
                crate::output::warn(&format!("label: {}: {verdict} {}", a.relay, a.message));
            }
        }
    }
    if label
        .as_ref()
        .is_some_and(|(_, answers)| answers.iter().any(|a| !a.accepted))
    {
        return Ok(ExitCode::from(EXIT_ERROR));
    }
    Ok(ExitCode::from(if report.matched() {
        0
    } else {
        EXIT_FAILED
    }))
}

/// `--score`: the teacher-forced check of [`provenance_replay::score`].
fn run_score(args: &Args, salt: &Salt, prompt: &[u8]) -> Result<ExitCode> {
    let tool = match (&args.llama_score, &args.llama_server) {
        (Some(tool), _) => tool.clone(),
        (None, Some(server)) => provenance_replay::score::locate(server),
        (None, None) => match std::env::var_os(provenance_replay::score::SCORE_ENV) {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => bail!(
                "name the scoring program: --llama-score BIN, --llama-server BIN (llama-score \
                 beside it) or ${}",
                provenance_replay::score::SCORE_ENV
            ),
        },
    };
    let event = load_event(&args.event, &args.relay)?;
    let verification = provenance::event::verify(&event);
    let Some(verified) = verification.verified() else {
        crate::output::warn("the event does not verify, nothing to score");
        return Ok(ExitCode::from(EXIT_FAILED));
    };
    let inputs = provenance_replay::score::ScoreInputs {
        record: verified.record(),
        prompt,
        salt,
        model: &args.model,
        tool,
        allow_other_engine: args.allow_other_engine,
        one_token: args.one_token,
        tolerance: provenance_replay::score::Tolerance {
            logit: args
                .tolerance
                .unwrap_or(provenance_replay::score::LOGIT_EPSILON),
            draw: args
                .draw_tolerance
                .unwrap_or(provenance_replay::score::DRAW_EPSILON),
        },
        margin: provenance_replay::score::Margin {
            logit: args
                .margin
                .unwrap_or(provenance_replay::score::MARGIN_LOGIT),
            draw: args
                .draw_margin
                .unwrap_or(provenance_replay::score::MARGIN_DRAW),
        },
    };
    let report = match provenance_replay::score::score(&inputs) {
        Ok(report) => report,
        Err(refusal) => {
            if args.json {
                let line = json!({"event": verified.id().to_hex(), "result": "refused",
                    "reason": refusal.to_string()});
                println!("{line}");
            } else {
                crate::output::warn(&refusal.to_string());
            }
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    };
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        value["event"] = json!(verified.id().to_hex());
        value["check"] = json!("score");
        println!("{value}");
    } else {
        print!(
            "{}",
            provenance_replay::text::render_score(verified.id(), &report)
        );
    }
    Ok(ExitCode::from(if report.matched() {
        0
    } else {
        EXIT_FAILED
    }))
}

/// How long each relay has to acknowledge a published label.
const LABEL_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads one event from a file, stdin, or relays.
fn load_event(input: &str, extra_relays: &[String]) -> Result<Event> {
    let limits = Limits::default();
    match input::classify(input).map_err(|e| anyhow::anyhow!("{}: {e}", input::redact(input)))? {
        Source::Files(files) => {
            let [path] = files.as_slice() else {
                bail!("{input}: replay takes one event file, not a directory");
            };
            let text = if path.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading stdin")?
            } else {
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?
            };
            provenance::event::parse_event(text.trim(), &limits)
                .map_err(|e| anyhow::anyhow!("{input}: {e}"))
        }
        Source::Remote { id, relays, .. } => {
            let mut relays = relays;
            relays.extend(extra_relays.iter().cloned());
            fetch(id, &relays)
        }
    }
}

fn fetch(id: EventId, relays: &[String]) -> Result<Event> {
    if relays.is_empty() {
        bail!("no relay to fetch event {id} from: give --relay URL");
    }
    let filter = provenance_relay::nostr::prelude::Filter::new().id(id);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let options = provenance_relay::Options {
        eose_timeout: Duration::from_secs(10),
        ..provenance_relay::Options::default()
    };
    let outcome = runtime.block_on(provenance_relay::fetch(relays, &filter, &options));
    let limits = Limits::default();
    outcome
        .events
        .iter()
        .filter_map(|raw| provenance::event::parse_event(&raw.json, &limits).ok())
        .find(|event| event.id == id && event.verify_id())
        .with_context(|| format!("event {id} not found on {} relays", relays.len()))
}
