//! Re-running a signed llama.cpp generation and comparing it token id for token id.
//!
//! A record with a `replay` section ([`provenance::record::Replay`]) says how an answer was
//! generated: the engine binary, its batch, ubatch, flash-attention and repack settings, the
//! seed and every sampler value, and digests of the prompt and output token ids. Given the
//! disclosed prompt and salt and the weights, [`replay`] checks those first, starts the same
//! `llama-server` with the same settings (one slot, no prompt cache), sends the prompt as
//! token ids and compares the generated ids with the recorded ones.
//!
//! The result is an [`Outcome`]: a match, or the first divergent position with both tokens,
//! their text and log-probabilities and the engine's top alternatives there. A replay that
//! cannot run exactly as recorded does not run: [`Refusal`] says why in one line (a missing
//! value, another engine binary, weights with other digests, a server that answers with other
//! settings).
//!
//! What a match proves, and the measured conditions under which llama-server is
//! deterministic: `docs/replay.md`.

pub mod capture;
pub mod engine;
pub mod error;
pub mod http;
pub mod plan;
pub mod score;
pub mod text;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use provenance::commitment::Salt;
use provenance::digest::{Sha256Digest, Sha256Hasher};
use provenance::record::{Record, TokenIds};
use serde::Serialize;
use serde_json::{Map, Value, json};

pub use crate::engine::Engine;
pub use crate::error::Refusal;
pub use crate::http::Endpoint;
pub use crate::plan::{Decoding, EngineSettings, FlashAttn, Plan};

/// How long one generation may take.
pub const GENERATION_TIMEOUT: Duration = Duration::from_secs(600);

/// How many alternatives are reported at a divergence.
pub const TOP_ALTERNATIVES: u32 = 5;

/// Which engine runs the replay.
#[derive(Clone, Debug)]
pub enum EngineChoice {
    /// Start this `llama-server` binary with the recorded settings.
    Binary(PathBuf),
    /// Use a running server; its binary cannot be checked, its settings only as far as it
    /// reports them.
    Server(Endpoint),
}

/// What a replay is given.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The record of the answer (from a verified event).
    pub record: &'a Record,
    /// The disclosed prompt bytes.
    pub prompt: &'a [u8],
    /// The disclosed salt.
    pub salt: &'a Salt,
    /// The weights file.
    pub model: &'a Path,
    /// The engine.
    pub engine: EngineChoice,
    /// Replay even when the engine binary is not the recorded one (or cannot be checked).
    pub allow_other_engine: bool,
}

/// A token at one position, as one run produced it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Token {
    /// The token id.
    pub id: u32,
    /// Its text, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Its log-probability under the replay engine, when among those it reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprob: Option<f64>,
}

/// Where a replay first produced another token than the record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Divergence {
    /// The position in the output (0 = first generated token), when it could be located.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// The recorded token there (absent past the end of the recorded output, or when the
    /// record publishes no ids).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<Token>,
    /// The replayed token there (absent past the end of the replayed output).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed: Option<Token>,
    /// The replay engine's most likely tokens there, most likely first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<Token>,
    /// One line saying what differs.
    pub reason: String,
}

/// What the replay found.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// The same output token ids.
    Match,
    /// Other token ids (or another tokenisation of the prompt).
    Diverged(Divergence),
}

/// The engine a replay ran on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EngineReport {
    /// `binary` (started here) or `server` (a running one).
    pub kind: &'static str,
    /// The SHA-256 of the binary run, when started here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary_sha256: Option<Sha256Digest>,
    /// The recorded SHA-256.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_sha256: Option<Sha256Digest>,
    /// True when the engine is not the recorded binary, or could not be checked, and the
    /// replay ran anyway (`--allow-other-engine`).
    pub other_engine: bool,
    /// The arguments it was started with, or the server URL.
    pub args: Vec<String>,
}

/// A finished replay.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Match or divergence.
    pub outcome: Outcome,
    /// The engine.
    pub engine: EngineReport,
    /// Prompt tokens sent.
    pub prompt_tokens: u64,
    /// Output tokens recorded.
    pub recorded_tokens: u64,
    /// Output tokens replayed.
    pub replayed_tokens: u64,
    /// Time to start the engine, milliseconds (0 for a running server).
    pub startup_ms: u64,
    /// Time of the generation request, milliseconds.
    pub generation_ms: u64,
    /// The original generation's time, from the record's `time`, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_ms: Option<u64>,
}

impl Report {
    /// Whether the output token ids matched.
    pub fn matched(&self) -> bool {
        self.outcome == Outcome::Match
    }
}

/// Replays the generation `inputs.record` describes; see the crate documentation for the
/// order of the checks.
pub fn replay(inputs: &Inputs<'_>) -> Result<Report, Refusal> {
    let record = inputs.record;
    let plan = Plan::from_record(record)?;
    let prompt = disclosed_prompt(record, inputs.prompt, inputs.salt)?;
    check_model(record, inputs.model)?;
    let started = Instant::now();
    let (engine, _running, endpoint) = match &inputs.engine {
        EngineChoice::Binary(binary) => {
            let found = file_sha256(binary)
                .map_err(|e| Refusal::Engine(format!("cannot read {}: {e}", binary.display())))?;
            let other = match plan.binary_sha256 {
                Some(recorded) if recorded == found => false,
                Some(recorded) if !inputs.allow_other_engine => {
                    return Err(Refusal::OtherEngine(format!(
                        "the engine binary's sha256 {found} is not the recorded {recorded}"
                    )));
                }
                None if !inputs.allow_other_engine => {
                    return Err(Refusal::OtherEngine(
                        "the record does not name its engine binary (replay.engine.binary_sha256)"
                            .into(),
                    ));
                }
                _ => true,
            };
            let running = Engine::start(binary, inputs.model, &plan.engine)?;
            let endpoint = running.endpoint().clone();
            let report = EngineReport {
                kind: "binary",
                binary_sha256: Some(found),
                recorded_sha256: plan.binary_sha256,
                other_engine: other,
                args: running.args().to_vec(),
            };
            (report, Some(running), endpoint)
        }
        EngineChoice::Server(endpoint) => {
            if !inputs.allow_other_engine {
                return Err(Refusal::OtherEngine(format!(
                    "a running server's binary cannot be checked ({})",
                    endpoint.url()
                )));
            }
            check_server(endpoint, &plan)?;
            let report = EngineReport {
                kind: "server",
                binary_sha256: None,
                recorded_sha256: plan.binary_sha256,
                other_engine: true,
                args: vec![endpoint.url()],
            };
            (report, None, endpoint.clone())
        }
    };
    let startup_ms = millis(started.elapsed());
    let ids = match prompt {
        Prompt::Text(text) => tokenize(&endpoint, &text)?,
        Prompt::Ids(ids) => ids,
    };
    let original_ms = record.time.map(|t| t.end_ms.saturating_sub(t.start_ms));
    let mut report = Report {
        outcome: Outcome::Match,
        engine,
        prompt_tokens: ids.len() as u64,
        recorded_tokens: plan.output.count,
        replayed_tokens: 0,
        startup_ms,
        generation_ms: 0,
        original_ms,
    };
    if let Some(divergence) = prompt_divergence(&plan, &ids, inputs.salt) {
        report.outcome = Outcome::Diverged(divergence);
        return Ok(report);
    }
    let generation = Instant::now();
    let answer = endpoint
        .post(
            "/completion",
            &plan.request(&ids, TOP_ALTERNATIVES),
            GENERATION_TIMEOUT,
        )
        .map_err(|e| Refusal::Server(format!("/completion: {e}")))?;
    report.generation_ms = millis(generation.elapsed());
    let reported = answer
        .get("generation_settings")
        .and_then(Value::as_object)
        .ok_or_else(|| Refusal::Server("the answer has no generation_settings".into()))?;
    let differences = plan.differences(reported);
    if !differences.is_empty() {
        return Err(Refusal::Server(format!(
            "the server answered with other settings than recorded: {}",
            differences.join(", ")
        )));
    }
    match answer.pointer("/timings/cache_n").and_then(Value::as_u64) {
        Some(0) => {}
        other => {
            return Err(Refusal::Server(format!(
                "the server did not compute the whole prompt (timings.cache_n {})",
                other.map_or("absent".to_owned(), |n| n.to_string())
            )));
        }
    }
    let replayed = before_eos(token_ids(&answer)?, &answer);
    report.replayed_tokens = replayed.len() as u64;
    if plan.output.matches(&replayed, None) {
        let stopped = answer.get("stop_type").and_then(Value::as_str);
        if let (Some(recorded), Some(stopped)) = (record.output.finish_reason.as_deref(), stopped)
            && recorded != stopped
        {
            report.outcome = Outcome::Diverged(Divergence {
                position: Some(replayed.len() as u64),
                recorded: None,
                replayed: None,
                alternatives: Vec::new(),
                reason: format!(
                    "same token ids, but the replay stopped for {stopped:?}, the record says \
                     {recorded:?}"
                ),
            });
        }
        return Ok(report);
    }
    report.outcome = Outcome::Diverged(output_divergence(
        &endpoint,
        &plan.output,
        &replayed,
        &answer,
    ));
    Ok(report)
}

/// A disclosed prompt, as the engine takes it.
enum Prompt {
    /// A text prompt, tokenised by the engine as `/completion` does.
    Text(String),
    /// A prompt given as token ids.
    Ids(Vec<u32>),
}

fn disclosed_prompt(record: &Record, prompt: &[u8], salt: &Salt) -> Result<Prompt, Refusal> {
    let commitment = record
        .prompt
        .as_ref()
        .ok_or_else(|| Refusal::Missing("the record has no prompt commitment".into()))?;
    let formed = provenance::prompt::disclosed(&commitment.format, prompt);
    let bytes: &[u8] = if commitment.check(prompt, salt) {
        prompt
    } else if commitment.check(&formed, salt) {
        &formed
    } else {
        return Err(Refusal::Prompt);
    };
    match commitment.format.as_str() {
        provenance::commitment::FORMAT_TEXT => String::from_utf8(bytes.to_vec())
            .map(Prompt::Text)
            .map_err(|_| Refusal::Unsupported("the text prompt is not UTF-8".into())),
        provenance::prompt::FORMAT_JSON => match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::String(text)) => Ok(Prompt::Text(text)),
            Ok(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok()))
                .collect::<Option<Vec<u32>>>()
                .map(Prompt::Ids)
                .ok_or_else(|| {
                    Refusal::Unsupported("a JSON prompt other than one list of token ids".into())
                }),
            _ => Err(Refusal::Unsupported(
                "a JSON prompt other than one list of token ids".into(),
            )),
        },
        other => Err(Refusal::Unsupported(format!(
            "prompt format {other:?} (this replayer replays `text` and token-id prompts of \
             llama.cpp's /completion)"
        ))),
    }
}

fn check_model(record: &Record, model: &Path) -> Result<(), Refusal> {
    let recorded = record.model.sha256.ok_or_else(|| {
        Refusal::Missing("the record names no model digest (model.sha256)".into())
    })?;
    let identity = provenance_gguf::digest_file(model)
        .map_err(|e| Refusal::Model(format!("{}: {e}", model.display())))?;
    let mut differences = Vec::new();
    if identity.sha256 != recorded {
        differences.push(format!("sha256 {} (recorded {recorded})", identity.sha256));
    }
    if let Some(blake3) = record.model.blake3
        && blake3 != identity.blake3
    {
        differences.push(format!("blake3 {} (recorded {blake3})", identity.blake3));
    }
    if let Some(root) = record.model.tensor_root
        && root != identity.tensor_root
    {
        differences.push(format!(
            "tensor_root {} (recorded {root})",
            identity.tensor_root
        ));
    }
    if differences.is_empty() {
        Ok(())
    } else {
        Err(Refusal::Model(differences.join(", ")))
    }
}

fn file_sha256(path: &Path) -> std::io::Result<Sha256Digest> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256Hasher::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(hasher.finalize());
        }
        hasher.update(&buffer[..n]);
    }
}

/// A running server must report the recorded context and one slot (no other request shares
/// its batches); what it does not report (batch, ubatch, flash attention, repack) is its
/// operator's word.
fn check_server(endpoint: &Endpoint, plan: &Plan) -> Result<(), Refusal> {
    let props = endpoint
        .get("/props", Duration::from_secs(10))
        .map_err(|e| Refusal::Server(format!("/props: {e}")))?;
    let slots = props.get("total_slots").and_then(Value::as_u64);
    if slots != Some(1) {
        return Err(Refusal::Server(format!(
            "the server has {} slots (replay needs one, so no other request shares its batches)",
            slots.map_or("an unknown number of".to_owned(), |n| n.to_string())
        )));
    }
    let ctx = props
        .pointer("/default_generation_settings/n_ctx")
        .and_then(Value::as_u64);
    if ctx != Some(plan.engine.ctx) {
        return Err(Refusal::Server(format!(
            "the server's context is {} (recorded {})",
            ctx.map_or("unknown".to_owned(), |c| c.to_string()),
            plan.engine.ctx
        )));
    }
    Ok(())
}

fn tokenize(endpoint: &Endpoint, text: &str) -> Result<Vec<u32>, Refusal> {
    // What /completion does with a string prompt: special tokens added (BOS) and parsed.
    let answer = endpoint
        .post(
            "/tokenize",
            &json!({"content": text, "add_special": true, "parse_special": true}),
            Duration::from_secs(60),
        )
        .map_err(|e| Refusal::Server(format!("/tokenize: {e}")))?;
    ids(answer.get("tokens"))
        .ok_or_else(|| Refusal::Server("/tokenize answered without token ids".into()))
}

fn ids(value: Option<&Value>) -> Option<Vec<u32>> {
    value?
        .as_array()?
        .iter()
        .map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok()))
        .collect()
}

fn token_ids(answer: &Value) -> Result<Vec<u32>, Refusal> {
    ids(answer.get("tokens"))
        .ok_or_else(|| Refusal::Server("the answer has no token ids (`tokens`)".into()))
}

fn prompt_divergence(plan: &Plan, ids: &[u32], salt: &Salt) -> Option<Divergence> {
    let count = ids.len() as u64;
    if let Some(recorded) = &plan.prompt_tokens
        && !recorded.matches(ids, Some(salt.as_bytes()))
    {
        return Some(Divergence {
            position: None,
            recorded: None,
            replayed: None,
            alternatives: Vec::new(),
            reason: format!(
                "the prompt tokenises here into {count} ids that are not the recorded {} \
                 (replay.prompt_tokens)",
                recorded.count
            ),
        });
    }
    match plan.prompt_count {
        Some(recorded) if recorded != count => Some(Divergence {
            position: None,
            recorded: None,
            replayed: None,
            alternatives: Vec::new(),
            reason: format!(
                "the prompt tokenises here into {count} tokens, the record says {recorded} \
                 (prompt.tokens)"
            ),
        }),
        _ => None,
    }
}

/// The first position where `replayed` differs from the recorded ids, with what the engine
/// said about it; without recorded ids, only that the digests differ.
fn output_divergence(
    endpoint: &Endpoint,
    recorded: &TokenIds,
    replayed: &[u32],
    answer: &Value,
) -> Divergence {
    let Some(ids) = recorded
        .ids
        .as_deref()
        .filter(|ids| ids.len() as u64 == recorded.count)
    else {
        return Divergence {
            position: None,
            recorded: None,
            replayed: None,
            alternatives: Vec::new(),
            reason: format!(
                "the {} replayed token ids do not hash to the recorded digest of {} ids \
                 (the record publishes no ids, so the position is unknown)",
                replayed.len(),
                recorded.count
            ),
        };
    };
    let position = ids
        .iter()
        .zip(replayed)
        .position(|(a, b)| a != b)
        .unwrap_or(ids.len().min(replayed.len()));
    let probs = answer
        .get("completion_probabilities")
        .and_then(Value::as_array)
        .and_then(|a| a.get(position));
    let top: Vec<Token> = probs
        .and_then(|p| p.get("top_logprobs"))
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(token_of).collect())
        .unwrap_or_default();
    let logprob_of = |id: u32| top.iter().find(|t| t.id == id).and_then(|t| t.logprob);
    let replayed_token = replayed.get(position).map(|&id| Token {
        id,
        text: probs
            .and_then(|p| p.get("token"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| detokenize(endpoint, id)),
        logprob: probs
            .and_then(|p| p.get("logprob"))
            .and_then(Value::as_f64)
            .or_else(|| logprob_of(id)),
    });
    let recorded_token = ids.get(position).map(|&id| Token {
        id,
        text: top
            .iter()
            .find(|t| t.id == id)
            .and_then(|t| t.text.clone())
            .or_else(|| detokenize(endpoint, id)),
        logprob: logprob_of(id),
    });
    let reason = match (&recorded_token, &replayed_token) {
        (Some(r), Some(p)) => format!(
            "token {position}: recorded {} {:?}, replayed {} {:?}",
            r.id,
            r.text.as_deref().unwrap_or("?"),
            p.id,
            p.text.as_deref().unwrap_or("?")
        ),
        (Some(_), None) => format!(
            "the replay stopped after {} tokens, the record has {}",
            replayed.len(),
            ids.len()
        ),
        (None, Some(_)) => format!(
            "the record ends after {} tokens, the replay went on",
            ids.len()
        ),
        (None, None) => "the token ids differ".to_owned(),
    };
    Divergence {
        position: Some(position as u64),
        recorded: recorded_token,
        replayed: replayed_token,
        alternatives: top,
        reason,
    }
}

/// The generated ids without the end-of-generation token: a record's `output_tokens` are the
/// tokens before it.
pub(crate) fn before_eos(mut ids: Vec<u32>, answer: &Value) -> Vec<u32> {
    let eos = answer.get("stop_type").and_then(Value::as_str) == Some("eos");
    let predicted = answer.get("tokens_predicted").and_then(Value::as_u64);
    if eos && predicted == Some(ids.len() as u64) {
        ids.pop();
    }
    ids
}

fn token_of(value: &Value) -> Option<Token> {
    Some(Token {
        id: value
            .get("id")?
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())?,
        text: value
            .get("token")
            .and_then(Value::as_str)
            .map(str::to_owned),
        logprob: value.get("logprob").and_then(Value::as_f64),
    })
}

fn detokenize(endpoint: &Endpoint, id: u32) -> Option<String> {
    let answer = endpoint
        .post(
            "/detokenize",
            &json!({ "tokens": [id] }),
            Duration::from_secs(10),
        )
        .ok()?;
    answer.get("content")?.as_str().map(str::to_owned)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Settings reported by llama.cpp's `/completion` that a record's `replay.settings` keeps:
/// everything but the delivery settings ([`plan::DELIVERY_SETTINGS`]) and values a record
/// cannot carry (integers beyond 2^53 - 1).
pub fn settings_from_response(generation_settings: &Map<String, Value>) -> Map<String, Value> {
    generation_settings
        .iter()
        .filter(|(key, _)| !plan::DELIVERY_SETTINGS.contains(&key.as_str()))
        .filter(|(_, value)| fits(value))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Whether a value fits a record: I-JSON integers, finite numbers.
fn fits(value: &Value) -> bool {
    const MAX: u64 = (1 << 53) - 1;
    match value {
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => u <= MAX,
            (_, Some(i), _) => i.unsigned_abs() <= MAX,
            (_, _, Some(f)) => f.is_finite(),
            _ => false,
        },
        Value::Array(items) => items.iter().all(fits),
        Value::Object(map) => map.values().all(fits),
        _ => true,
    }
}
