//! The teacher-forced check: instead of generating the answer again, `llama-score` (our
//! program built with `llama-server` from the same source, flags and compiler by
//! `.ci/llama-server.sh`) decodes the prompt and the CLAIMED output tokens in batches with
//! logits at every output position and runs the sampler chain llama-server builds from the
//! recorded settings over them, accepting the claimed token at each position so that
//! penalties and the seeded random number generator follow the original generation.
//!
//! A batched forward pass does not compute bit for bit what one-token decoding computes
//! (other matrix and attention kernels: up to 0.71 logit apart for Gemma 3 270M Q4_K_M), so
//! the batched logits are the fast path only. They decide a position only when the sampler
//! there picks the claimed token and would still pick it if every gap between two logits
//! moved by a [`Margin`] (greedy: the lead over the second-best token; seeded: the draw stays
//! inside the claimed token's interval however the tokens around it move). At any
//! other position `llama-score` falls back to what generation computed: it decodes the
//! claimed tokens up to that position one at a time over the prompt (as llama-server did) and
//! decides the position from those logits under a tight [`Tolerance`]; then it returns to the
//! batched logits. A disagreement is therefore only ever reported from one-token logits, at
//! its position with both tokens and the alternatives there. The report lists the positions
//! the fallback decided. The figures behind the defaults are in `docs/replay.md`.
//!
//! [`Scorer`] keeps one `llama-score --serve` process with the model loaded, so that repeated
//! checks do not pay the model load; [`score`] starts one for a single check.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use provenance::commitment::Salt;
use provenance::digest::Sha256Digest;
use provenance::record::Record;
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::Refusal;
use crate::plan::Plan;
use crate::{
    Divergence, Outcome, Prompt, Token, check_model, disclosed_prompt, file_sha256, millis,
    prompt_divergence,
};

/// The environment variable naming the `llama-score` binary.
pub const SCORE_ENV: &str = "PROVENANCE_LLAMA_SCORE";

/// The default largest gap, in logits as the sampler ranked them, between the picked token
/// and the claimed one that a position decided by one-token logits tolerates as a near tie.
/// One-token decoding in llama-score computes what llama-server computed (measured: the
/// claimed tokens' log-probabilities agree to 3.5e-4 or better, `docs/replay.md`), so only
/// that rounding needs room.
pub const LOGIT_EPSILON: f64 = 1e-3;

/// The default largest distance, in probability mass, between the seeded draw and the
/// claimed token's interval that a position decided by one-token logits tolerates.
pub const DRAW_EPSILON: f64 = 1e-3;

/// The default margin of the fast path, in logits: the batched logits decide a position only
/// when the sampler would still pick the claimed token if every gap between two logits moved
/// by this much (greedy: the claimed token leads the second best by at least this; seeded: the
/// draw stays inside the claimed token's interval however the tokens around it move). The
/// batched pass changed the greedy gap by at most 0.26 logit on Gemma 3 270M Q4_K_M in the
/// benchmark (`docs/replay.md`).
pub const MARGIN_LOGIT: f64 = 0.5;

/// The default extra distance, in probability mass, that a seeded draw must keep from the
/// edges of the part of the claimed interval the margin leaves for the batched logits to
/// decide.
pub const MARGIN_DRAW: f64 = 1e-3;

/// How far a position decided by one-token logits may be from the claimed token and still
/// count as a near tie (the rounding between llama-score and llama-server).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Tolerance {
    /// Logits (as the sampler ranked them) between the picked and the claimed token.
    pub logit: f64,
    /// Probability mass between the seeded draw and the claimed token's interval.
    pub draw: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Self {
            logit: LOGIT_EPSILON,
            draw: DRAW_EPSILON,
        }
    }
}

/// How clear a decision over the batched logits must be to stand without the one-token
/// fallback.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Margin {
    /// The change, in logits, of the gap between any two logits that the decision must
    /// survive.
    pub logit: f64,
    /// Seeded: extra probability mass the draw must keep from the edges of what the claimed
    /// interval keeps under that change.
    pub draw: f64,
}

impl Default for Margin {
    fn default() -> Self {
        Self {
            logit: MARGIN_LOGIT,
            draw: MARGIN_DRAW,
        }
    }
}

/// Where `llama-score` is: `$PROVENANCE_LLAMA_SCORE`, else beside `llama_server` (where
/// `.ci/llama-server.sh` installs both).
pub fn locate(llama_server: &Path) -> PathBuf {
    match std::env::var_os(SCORE_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => llama_server.with_file_name("llama-score"),
    }
}

/// What a scored check is given.
#[derive(Debug)]
pub struct ScoreInputs<'a> {
    /// The record of the answer (from a verified event).
    pub record: &'a Record,
    /// The disclosed prompt bytes.
    pub prompt: &'a [u8],
    /// The disclosed salt.
    pub salt: &'a Salt,
    /// The weights file.
    pub model: &'a Path,
    /// The `llama-score` binary.
    pub tool: PathBuf,
    /// Score even when the tool's build is not the recorded engine's.
    pub allow_other_engine: bool,
    /// Decide every position from one-token logits (the fallback everywhere, as generation
    /// decodes; slower), still reporting what the batched pass picked there.
    pub one_token: bool,
    /// The near ties tolerated where one-token logits decide.
    pub tolerance: Tolerance,
    /// How clear a batched decision must be to stand.
    pub margin: Margin,
}

/// The scoring program and the build it belongs to.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolReport {
    /// The SHA-256 of `llama-score`.
    pub binary_sha256: Sha256Digest,
    /// The SHA-256 of the `llama-server` built with it, from `llama-server.json` beside it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_sha256: Option<Sha256Digest>,
    /// The engine binary's SHA-256 the record names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_sha256: Option<Sha256Digest>,
    /// True when the tool is not of the recorded engine's build (or that could not be
    /// checked) and the check ran anyway.
    pub other_engine: bool,
}

/// A position decided by one-token logits where the sampler picked another token than
/// claimed, tolerated as a near tie within the [`Tolerance`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NearTie {
    /// The output position.
    pub position: u64,
    /// The claimed token.
    pub claimed: u32,
    /// The token the sampler picked over the one-token logits.
    pub picked: u32,
    /// The gap (logits) or the draw's distance to the claimed interval (probability).
    pub distance: f64,
}

/// A position the batched logits did not decide: the one-token fallback did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fallback {
    /// The output position.
    pub position: u64,
    /// The token the sampler picked over the batched logits.
    pub batch_picked: u32,
    /// The token it picked over the one-token logits.
    pub picked: u32,
    /// The claimed token (absent after the last one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed: Option<u32>,
}

/// The check's timings, milliseconds, as `llama-score` measured them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ScoreTimings {
    /// Whether this check loaded the model (false: a running scorer had it loaded).
    pub loaded: bool,
    /// Loading the model and building the context (0 when already loaded).
    pub load_ms: f64,
    /// Decoding the prompt.
    pub prompt_ms: f64,
    /// The batched passes over the claimed output tokens.
    pub decode_ms: f64,
    /// The one-token decodes of the fallback.
    pub fallback_ms: f64,
    /// How many tokens the fallback decoded one at a time.
    pub one_token_decodes: u64,
    /// Running the sampler chain at every position.
    pub sample_ms: f64,
    /// The request, as the program measured it.
    pub total_ms: f64,
    /// The whole check seen from here (digests, request and answer), milliseconds.
    pub wall_ms: u64,
}

/// A finished scored check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScoreReport {
    /// Every position agrees (`match`), or the first that does not (`diverged`).
    pub outcome: Outcome,
    /// The scoring program.
    pub tool: ToolReport,
    /// `batched` (the batched pass with the one-token fallback) or `one-token` (every
    /// position from one-token logits).
    pub mode: &'static str,
    /// The near ties tolerated where one-token logits decide.
    pub tolerance: Tolerance,
    /// How clear a batched decision had to be.
    pub margin: Margin,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Output tokens recorded.
    pub recorded_tokens: u64,
    /// Positions where the sampler picked the claimed token.
    pub agreeing: u64,
    /// Positions the one-token fallback decided (every position in `one-token` mode).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<Fallback>,
    /// Fallback positions where the batched pass picked another token than one-token
    /// decoding: what a check trusting the batched pass alone would have got wrong.
    pub batch_disagreements: u64,
    /// Positions decided by one-token logits tolerated as near ties.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub near_ties: Vec<NearTie>,
    /// The smallest greedy gap between the best and second-best token over the positions
    /// (logits, from the logits that decided each), a measure of how close the answer came
    /// to a tie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_greedy_gap: Option<f64>,
    /// The smallest distance from a seeded draw to an edge of the claimed token's interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_draw_margin: Option<f64>,
    /// Timings.
    pub timings: ScoreTimings,
    /// The original generation's time, from the record's `time`, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_ms: Option<u64>,
    /// Per position what the tool found (claimed, picked, probabilities, which pass decided
    /// it), as it wrote it.
    #[serde(skip)]
    pub positions: Vec<Value>,
}

impl ScoreReport {
    /// Whether every position agreed (near ties included).
    pub fn matched(&self) -> bool {
        self.outcome == Outcome::Match
    }
}

/// A running `llama-score --serve`: the model stays loaded between checks with the same
/// engine settings, so a check costs the prompt, the batched pass and the fallbacks.
#[derive(Debug)]
pub struct Scorer {
    tool: PathBuf,
    sha256: Sha256Digest,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Scorer {
    /// Starts `tool --serve`.
    pub fn start(tool: &Path) -> Result<Self, Refusal> {
        let sha256 = tool_sha256(tool)?;
        let mut child = Command::new(tool)
            .arg("--serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Refusal::Engine(format!("cannot start {}: {e}", tool.display())))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Refusal::Engine("llama-score's pipes are missing".into()));
        };
        Ok(Self {
            tool: tool.to_owned(),
            sha256,
            child,
            stdin,
            stdout: BufReader::new(stdout),
        })
    }

    /// Checks the record and the disclosed inputs as [`score`] does and scores the claimed
    /// output tokens on this running scorer (`inputs.tool` must be the one it runs).
    pub fn score(&mut self, inputs: &ScoreInputs<'_>) -> Result<ScoreReport, Refusal> {
        if inputs.tool != self.tool {
            return Err(Refusal::Engine(format!(
                "this scorer runs {}, not {}",
                self.tool.display(),
                inputs.tool.display()
            )));
        }
        let sha256 = self.sha256;
        check_and_score(inputs, sha256, |request| self.ask(request))
    }

    fn ask(&mut self, request: &Value) -> Result<Value, Refusal> {
        let broken = |e: std::io::Error| Refusal::Engine(format!("llama-score --serve: {e}"));
        writeln!(self.stdin, "{request}").map_err(broken)?;
        self.stdin.flush().map_err(broken)?;
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).map_err(broken)?;
        if n == 0 {
            return Err(Refusal::Engine(
                "llama-score --serve ended without an answer".into(),
            ));
        }
        let answer: Value = serde_json::from_str(line.trim_end()).map_err(|e| {
            Refusal::Engine(format!(
                "llama-score --serve answered something not JSON: {e}"
            ))
        })?;
        match answer.get("error") {
            Some(error) => Err(Refusal::Engine(format!(
                "llama-score: {}",
                error.as_str().unwrap_or("error")
            ))),
            None => Ok(answer),
        }
    }
}

impl Drop for Scorer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks the record and the disclosed inputs as [`crate::replay`] does, then scores the
/// claimed output tokens with one `llama-score` run (which loads the model).
pub fn score(inputs: &ScoreInputs<'_>) -> Result<ScoreReport, Refusal> {
    let sha256 = tool_sha256(&inputs.tool)?;
    check_and_score(inputs, sha256, |request| run_tool(&inputs.tool, request))
}

fn tool_sha256(tool: &Path) -> Result<Sha256Digest, Refusal> {
    file_sha256(tool).map_err(|e| {
        Refusal::Engine(format!(
            "cannot read llama-score {}: {e} (.ci/llama-server.sh installs it beside \
             llama-server; {SCORE_ENV} names another)",
            tool.display()
        ))
    })
}

fn check_and_score(
    inputs: &ScoreInputs<'_>,
    tool_sha256: Sha256Digest,
    ask: impl FnOnce(&Value) -> Result<Value, Refusal>,
) -> Result<ScoreReport, Refusal> {
    let started = Instant::now();
    let record = inputs.record;
    let plan = Plan::from_record(record)?;
    let prompt = disclosed_prompt(record, inputs.prompt, inputs.salt)?;
    check_model(record, inputs.model)?;
    let claimed = plan
        .output
        .ids
        .clone()
        .filter(|ids| ids.len() as u64 == plan.output.count)
        .ok_or_else(|| {
            Refusal::Missing(
                "the record publishes no output token ids (replay.output_tokens.ids), which \
                 the scored check scores"
                    .into(),
            )
        })?;
    let tool = check_tool(&inputs.tool, tool_sha256, &plan, inputs.allow_other_engine)?;
    let eos = record.output.finish_reason.as_deref() == Some("eos");

    let engine = &plan.engine;
    let request = json!({
        "model": inputs.model,
        "prompt": match &prompt {
            Prompt::Text(text) => json!(text),
            Prompt::Ids(ids) => json!(ids),
        },
        "output": claimed,
        "ctx": engine.ctx,
        "batch": engine.batch,
        "ubatch": engine.ubatch,
        "flash_attn": engine.flash_attn.as_str(),
        "repack": engine.repack,
        "threads": engine.threads,
        "settings": plan.settings,
        "one_token": inputs.one_token,
        "eos": eos,
        "margin": inputs.margin,
        "tolerance": inputs.tolerance,
        "n_top": crate::TOP_ALTERNATIVES,
    });
    let answer = ask(&request)?;

    let prompt_ids: Vec<u32> = answer
        .get("prompt_tokens")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok()))
                .collect()
        })
        .ok_or_else(|| Refusal::Engine("llama-score answered without prompt_tokens".into()))?;
    let positions: Vec<Value> = answer
        .get("positions")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| Refusal::Engine("llama-score answered without positions".into()))?;
    let invalid = answer
        .get("invalid")
        .filter(|v| !v.is_null())
        .and_then(|v| Some((v.get("position")?.as_u64()?, v.get("id")?.as_u64()?)));
    let stopped = answer.get("stopped").and_then(Value::as_bool) == Some(true);
    let n_vocab = answer.get("n_vocab").and_then(Value::as_u64).unwrap_or(0);
    let expected = invalid.map_or(claimed.len(), |(position, _)| position as usize);
    if positions.len() > expected
        || (!stopped && positions.len() != expected)
        || (stopped && positions.is_empty())
    {
        return Err(Refusal::Engine(format!(
            "llama-score scored {} positions of {}",
            positions.len(),
            claimed.len()
        )));
    }
    let timing = |key: &str| {
        answer
            .pointer(&format!("/timings/{key}"))
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
    };
    let mut report = ScoreReport {
        outcome: Outcome::Match,
        tool,
        mode: if inputs.one_token {
            "one-token"
        } else {
            "batched"
        },
        tolerance: inputs.tolerance,
        margin: inputs.margin,
        prompt_tokens: prompt_ids.len() as u64,
        recorded_tokens: claimed.len() as u64,
        agreeing: 0,
        fallbacks: Vec::new(),
        batch_disagreements: 0,
        near_ties: Vec::new(),
        min_greedy_gap: None,
        min_draw_margin: None,
        timings: ScoreTimings {
            loaded: answer.pointer("/timings/loaded").and_then(Value::as_bool) == Some(true),
            load_ms: timing("load_ms"),
            prompt_ms: timing("prompt_ms"),
            decode_ms: timing("decode_ms"),
            fallback_ms: timing("fallback_ms"),
            one_token_decodes: answer
                .pointer("/timings/one_token_decodes")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            sample_ms: timing("sample_ms"),
            total_ms: timing("total_ms"),
            wall_ms: 0,
        },
        original_ms: record.time.map(|t| t.end_ms.saturating_sub(t.start_ms)),
        positions: Vec::new(),
    };
    if let Some(divergence) = prompt_divergence(&plan, &prompt_ids, inputs.salt) {
        report.outcome = Outcome::Diverged(divergence);
        report.positions = positions;
        report.timings.wall_ms = millis(started.elapsed());
        return Ok(report);
    }
    let greedy = plan.decoding.greedy();
    let next = answer.get("next").filter(|n| !n.is_null());
    for (index, entry) in positions.iter().chain(next).enumerate() {
        let position = Position::read(entry, index, index == claimed.len())?;
        if let Some(fallback) = position.fallback(index) {
            if fallback.batch_picked != fallback.picked {
                report.batch_disagreements += 1;
            }
            report.fallbacks.push(fallback);
        }
        if index == claimed.len() {
            break; // after the last claimed token: the end-of-generation check below
        }
        if let Some(gap) = position.top2_gap {
            report.min_greedy_gap = Some(report.min_greedy_gap.map_or(gap, |m| m.min(gap)));
        }
        if let Some(margin) = position.draw_margin {
            report.min_draw_margin = Some(report.min_draw_margin.map_or(margin, |m| m.min(margin)));
        }
        let batch = position.decided_by == "batch";
        if position.picked == position.claimed {
            report.agreeing += 1;
            continue;
        }
        if batch {
            return Err(Refusal::Engine(format!(
                "llama-score decided position {index} from the batched logits although the \
                 sampler picked another token there"
            )));
        }
        match position.tie_distance(greedy, &inputs.tolerance) {
            Some(distance) => report.near_ties.push(NearTie {
                position: index as u64,
                claimed: position.claimed,
                picked: position.picked,
                distance,
            }),
            None => {
                report.outcome = Outcome::Diverged(position.divergence(index, entry, greedy));
                break;
            }
        }
    }
    if stopped && report.outcome == Outcome::Match {
        return Err(Refusal::Engine(
            "llama-score stopped at a position that agrees within the tolerance".into(),
        ));
    }
    if report.outcome == Outcome::Match
        && let Some((position, id)) = invalid
    {
        report.outcome = Outcome::Diverged(Divergence {
            position: Some(position),
            recorded: u32::try_from(id).ok().map(|id| Token {
                id,
                text: None,
                logprob: None,
            }),
            replayed: None,
            alternatives: Vec::new(),
            reason: format!(
                "token {position}: claimed id {id}, which the model's vocabulary of {n_vocab} \
                 tokens does not have"
            ),
        });
    }
    if report.outcome == Outcome::Match && eos {
        let Some(next) = next else {
            return Err(Refusal::Engine(
                "llama-score did not score the position after the last claimed token".into(),
            ));
        };
        let eog = next.get("picked_eog").and_then(Value::as_bool) == Some(true);
        if !eog {
            let picked = token_at(next, "picked", "picked_text", None);
            report.outcome = Outcome::Diverged(Divergence {
                position: Some(claimed.len() as u64),
                recorded: None,
                replayed: picked.clone(),
                alternatives: alternatives(next),
                reason: format!(
                    "the record says generation ended with an end-of-generation token after {} \
                     tokens; the sampler picks {} there",
                    claimed.len(),
                    picked.map_or("another token".to_owned(), |t| format!(
                        "{} {:?}",
                        t.id,
                        t.text.unwrap_or_default()
                    ))
                ),
            });
        }
    }
    report.positions = positions;
    report.timings.wall_ms = millis(started.elapsed());
    Ok(report)
}

/// One position as `llama-score` wrote it.
struct Position {
    claimed: u32,
    picked: u32,
    /// The position after the last claimed token (`claimed` is then the picked token).
    after_last: bool,
    /// `prompt` (position 0, from the prompt's last token), `batch` or `one_token`.
    decided_by: String,
    /// Where the fallback decided: what the batched logits picked.
    batch_picked: Option<u32>,
    /// The picked token's logit minus the claimed token's, as the sampler ranked them
    /// (`None`: the claimed token was filtered out before).
    tie_gap: Option<f64>,
    /// Greedy: the best logit minus the second best.
    top2_gap: Option<f64>,
    /// Seeded: how far the draw is from the claimed token's interval (`None`: the claimed
    /// token was filtered out of the candidates).
    draw_distance: Option<f64>,
    /// Seeded: how far the draw is from the nearest edge of the interval it fell into.
    draw_margin: Option<f64>,
}

impl Position {
    /// `after_last`: the position after the last claimed token, which claims none.
    fn read(entry: &Value, index: usize, after_last: bool) -> Result<Self, Refusal> {
        let id = |key: &str| {
            entry
                .get(key)
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    Refusal::Engine(format!("llama-score's position {index} has no {key}"))
                })
        };
        let number = |key: &str| entry.get(key).and_then(Value::as_f64);
        let draw = number("draw");
        let interval = entry
            .get("interval")
            .and_then(Value::as_array)
            .and_then(|i| Some((i.first()?.as_f64()?, i.get(1)?.as_f64()?)));
        let draw_margin = match (draw, interval, number("draw_distance")) {
            (Some(u), Some((lo, hi)), Some(0.0)) => Some((u - lo).min(hi - u)),
            _ => None,
        };
        let tie_gap = match (number("picked_logit"), number("claimed_logit")) {
            (Some(p), Some(c)) => Some((p - c).abs()),
            _ => None,
        };
        let picked = id("picked")?;
        let decided_by = entry
            .get("decided_by")
            .and_then(Value::as_str)
            .filter(|d| matches!(*d, "prompt" | "batch" | "one_token"))
            .ok_or_else(|| {
                Refusal::Engine(format!(
                    "llama-score's position {index} does not say which pass decided it"
                ))
            })?
            .to_owned();
        let batch_picked = match decided_by.as_str() {
            "one_token" => Some(id("batch_picked")?),
            _ => None,
        };
        Ok(Self {
            claimed: if after_last { picked } else { id("claimed")? },
            picked,
            after_last,
            decided_by,
            batch_picked,
            tie_gap,
            top2_gap: number("top2_gap"),
            draw_distance: number("draw_distance"),
            draw_margin,
        })
    }

    fn fallback(&self, index: usize) -> Option<Fallback> {
        Some(Fallback {
            position: index as u64,
            batch_picked: self.batch_picked?,
            picked: self.picked,
            claimed: (!self.after_last).then_some(self.claimed),
        })
    }

    /// How close the decision came to the claimed token, when that is within tolerance.
    fn tie_distance(&self, greedy: bool, tolerance: &Tolerance) -> Option<f64> {
        if let Some(gap) = self.tie_gap.filter(|g| *g <= tolerance.logit) {
            return Some(gap);
        }
        if greedy {
            return None;
        }
        self.draw_distance.filter(|d| *d <= tolerance.draw)
    }

    fn divergence(&self, index: usize, entry: &Value, greedy: bool) -> Divergence {
        let recorded = token_at(entry, "claimed", "claimed_text", entry.get("logprob"));
        let replayed = token_at(entry, "picked", "picked_text", None).map(|mut t| {
            t.logprob = alternatives(entry)
                .iter()
                .find(|a| a.id == t.id)
                .and_then(|a| a.logprob);
            t
        });
        let how = match (greedy, self.tie_gap, self.draw_distance) {
            (_, None, _) => "the claimed token is not among the sampler's candidates".to_owned(),
            (true, Some(gap), _) => format!("the claimed token's logit is {gap:.4} below the best"),
            (false, _, Some(d)) => {
                format!("the seeded draw is {d:.6} outside the claimed token's interval")
            }
            (false, Some(gap), None) => format!("logits {gap:.4} apart"),
        };
        let text = |t: &Option<Token>| {
            t.as_ref()
                .map(|t| format!("{} {:?}", t.id, t.text.as_deref().unwrap_or("?")))
                .unwrap_or_default()
        };
        Divergence {
            position: Some(index as u64),
            reason: format!(
                "token {index}: claimed {}, the sampler picks {} ({how})",
                text(&recorded),
                text(&replayed)
            ),
            recorded,
            replayed,
            alternatives: alternatives(entry),
        }
    }
}

fn token_at(entry: &Value, id: &str, text: &str, logprob: Option<&Value>) -> Option<Token> {
    Some(Token {
        id: entry
            .get(id)?
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())?,
        text: entry.get(text).and_then(Value::as_str).map(str::to_owned),
        logprob: logprob.and_then(Value::as_f64),
    })
}

fn alternatives(entry: &Value) -> Vec<Token> {
    entry
        .get("top")
        .and_then(Value::as_array)
        .map(|top| {
            top.iter()
                .filter_map(|t| token_at(t, "id", "text", t.get("logprob")))
                .collect()
        })
        .unwrap_or_default()
}

/// The tool must belong to the recorded engine's build: `llama-server.json` beside it names
/// the recorded `llama-server` sha256 and this tool's.
fn check_tool(
    tool: &Path,
    found: Sha256Digest,
    plan: &Plan,
    allow_other: bool,
) -> Result<ToolReport, Refusal> {
    let build: Option<Value> = std::fs::read_to_string(tool.with_file_name("llama-server.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let digest =
        |key: &str| -> Option<Sha256Digest> { build.as_ref()?.get(key)?.as_str()?.parse().ok() };
    let server_sha256 = digest("binary_sha256");
    let score_sha256 = digest("llama_score_sha256");
    let recorded = plan.binary_sha256;
    let problem = match (recorded, server_sha256, score_sha256) {
        (None, _, _) => Some(
            "the record does not name its engine binary (replay.engine.binary_sha256)".to_owned(),
        ),
        (_, None, _) | (_, _, None) => Some(format!(
            "no build record (llama-server.json with llama_score_sha256) beside {}",
            tool.display()
        )),
        (Some(r), Some(s), _) if r != s => Some(format!(
            "llama-score belongs to the build of llama-server {s}, not the recorded {r}"
        )),
        (_, _, Some(listed)) if listed != found => Some(format!(
            "llama-score's sha256 {found} is not the one its build record lists ({listed})"
        )),
        _ => None,
    };
    let other_engine = match problem {
        Some(problem) if !allow_other => return Err(Refusal::OtherEngine(problem)),
        Some(_) => true,
        None => false,
    };
    Ok(ToolReport {
        binary_sha256: found,
        server_sha256,
        recorded_sha256: recorded,
        other_engine,
    })
}

/// Runs the tool with `request` on stdin; its stdout is one JSON object.
fn run_tool(tool: &Path, request: &Value) -> Result<Value, Refusal> {
    let mut child = Command::new(tool)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Refusal::Engine(format!("cannot start {}: {e}", tool.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(request.to_string().as_bytes())
            .map_err(|e| Refusal::Engine(format!("writing to llama-score: {e}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| Refusal::Engine(format!("llama-score: {e}")))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let answer: Option<Value> = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok());
    match answer {
        Some(answer) if output.status.success() => Ok(answer),
        Some(answer) if answer.get("error").is_some() => Err(Refusal::Engine(format!(
            "llama-score: {}",
            answer["error"].as_str().unwrap_or("error")
        ))),
        _ => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no output");
            Err(Refusal::Engine(format!(
                "llama-score exited with {}: {}",
                output.status,
                last.chars().take(300).collect::<String>()
            )))
        }
    }
}
