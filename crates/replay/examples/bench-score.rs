//! The teacher-forced check against generation and full replay, same machine, same run, and
//! the figures its margins and tolerance rest on.
//!
//! For the tiny model and Gemma 3 270M, greedy and seeded (two seeds), 64 and 128 output
//! tokens: an answer is generated on a running llama-server (`n_probs` 1, so the engine
//! reports each sampled token's log-probability under one-token decoding), then checked:
//! full replay (`provenance_replay::replay`), the scored check in a fresh `llama-score`
//! process (model load included), and on a running `llama-score --serve` (model loaded) in
//! the default mode (batched pass, one-token fallback) and deciding every position from
//! one-token logits. Prints per answer the times, the fallbacks, and the largest gaps between
//! the batched pass, one-token decoding in llama-score and the engine's own report. Then the
//! catch rates: every honest answer must agree with the default margins and tolerance;
//! substituted tokens, another seed, another model and another quantisation must be caught;
//! and whether a full replay catches the answers of another quantisation.
//!
//! ```text
//! cargo run --release -p provenance-replay --example bench-score
//! ```
//!
//! Uses the llama-server and llama-score of `.ci/llama-server.sh` (or `$PROVENANCE_LLAMA_SCORE`)
//! and Gemma 3 270M (`scripts/fetch-gemma.sh`).

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use provenance::commitment::Salt;
use provenance::record::{Model, Output, PromptCommitment, Record, TokenIds};
use provenance_gguf::GgmlType;
use provenance_gguf::write::{TinyLlama, tiny_llama};
use provenance_harness::{LlamaServer, TempDir, gemma_path, llama_server_path, write_tiny_model};
use provenance_replay::score::{
    Margin, ScoreInputs, ScoreReport, Scorer, Tolerance, locate, score,
};
use provenance_replay::{EngineChoice, EngineSettings, FlashAttn, Inputs, capture, replay};
use serde_json::{Value, json};

const SALT: [u8; 32] = [4; 32];

fn engine() -> EngineSettings {
    EngineSettings {
        ctx: 512,
        batch: 2048,
        ubatch: 512,
        flash_attn: FlashAttn::On,
        repack: true,
        threads: Some(2),
    }
}

struct Answer {
    record: Record,
    /// The engine's log-probability of each sampled token (one-token decoding).
    server_logprobs: Vec<f64>,
    generation_ms: f64,
}

fn generate(server: &LlamaServer, model: &Path, prompt: &str, request: &Value) -> Answer {
    let mut body = request.clone();
    body["prompt"] = json!(prompt);
    body["cache_prompt"] = json!(false);
    body["return_tokens"] = json!(true);
    body["n_probs"] = json!(1);
    let started = Instant::now();
    let answer: Value = server
        .post_json("/completion", &body)
        .unwrap()
        .json()
        .unwrap();
    let generation_ms = started.elapsed().as_secs_f64() * 1e3;
    let props: Value = server.get("/props").unwrap().json().unwrap();
    let identity = provenance_gguf::digest_file(model).unwrap();
    let mut m = Model::named("m");
    m.sha256 = Some(identity.sha256);
    let mut record = Record::new(Output::from_text(answer["content"].as_str().unwrap()), m);
    record.output.finish_reason = answer["stop_type"].as_str().map(str::to_owned);
    let mut commitment = PromptCommitment::commit(
        provenance::commitment::FORMAT_TEXT,
        prompt.as_bytes(),
        &Salt::from_bytes(SALT),
    );
    commitment.tokens = answer["tokens_evaluated"].as_u64();
    record.prompt = Some(commitment);
    let engine = EngineSettings {
        ctx: props["default_generation_settings"]["n_ctx"]
            .as_u64()
            .unwrap(),
        ..engine()
    };
    let build = capture::engine_build(
        &llama_server_path()
            .unwrap()
            .with_file_name("llama-server.json"),
    );
    record.replay = Some(capture::from_completion(
        &engine,
        build,
        Some(false),
        &answer,
        None,
        true,
    ));
    // By position: a token whose text ends inside a UTF-8 character has no entry of its own.
    let output = ids(&record);
    let mut server_logprobs = vec![f64::NAN; output.len()];
    let mut at = 0;
    for entry in answer["completion_probabilities"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let id = entry["id"].as_u64().unwrap_or(u64::MAX);
        while at < output.len() && u64::from(output[at]) != id {
            at += 1;
        }
        if at < output.len() {
            server_logprobs[at] = entry["logprob"].as_f64().unwrap_or(f64::NAN);
            at += 1;
        }
    }
    Answer {
        record,
        server_logprobs,
        generation_ms,
    }
}

fn inputs<'a>(
    record: &'a Record,
    prompt: &'a str,
    model: &'a Path,
    one_token: bool,
) -> ScoreInputs<'a> {
    ScoreInputs {
        record,
        prompt: prompt.as_bytes(),
        salt: salt(),
        model,
        tool: locate(&llama_server_path().unwrap()),
        allow_other_engine: false,
        one_token,
        tolerance: Tolerance::default(),
        margin: Margin::default(),
    }
}

fn salt() -> &'static Salt {
    static SALT_VALUE: std::sync::OnceLock<Salt> = std::sync::OnceLock::new();
    SALT_VALUE.get_or_init(|| Salt::from_bytes(SALT))
}

fn field(report: &ScoreReport, key: &str) -> Vec<f64> {
    report
        .positions
        .iter()
        .map(|p| p[key].as_f64().unwrap_or(f64::NAN))
        .collect()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// One-token mode: the largest shift of the claimed token's interval edges between the
/// batched and the one-token logits (seeded), and the largest greedy-gap change.
fn interval_shift(one_token: &ScoreReport) -> f64 {
    one_token
        .positions
        .iter()
        .filter_map(|p| {
            let a = p["interval"].as_array()?;
            let b = p["batch_interval"].as_array()?;
            Some(
                (a[0].as_f64()? - b[0].as_f64()?)
                    .abs()
                    .max((a[1].as_f64()? - b[1].as_f64()?).abs()),
            )
        })
        .fold(0.0, f64::max)
}

fn gap_shift(one_token: &ScoreReport) -> f64 {
    one_token
        .positions
        .iter()
        .filter_map(|p| Some((p["top2_gap"].as_f64()? - p["batch_top2_gap"].as_f64()?).abs()))
        .fold(0.0, f64::max)
}

fn ids(record: &Record) -> Vec<u32> {
    record
        .replay
        .as_ref()
        .unwrap()
        .output_tokens
        .as_ref()
        .unwrap()
        .ids
        .clone()
        .unwrap()
}

#[derive(Default)]
struct Tally {
    honest: u32,
    honest_agree: u32,
    forged: u32,
    forged_caught: u32,
    one_token_positions: u64,
    batch_wrong: u64,
}

fn main() {
    let dir = TempDir::new("bench-score").unwrap();
    let tiny = write_tiny_model(dir.path()).unwrap();
    let gemma = gemma_path().unwrap();
    let binary: PathBuf = llama_server_path().unwrap();
    let tool = locate(&binary);
    let tiny_prompt = "kalo mine ka ~ kalo mine ka ~ kalo mine ka ~ kalo mine";
    let gemma_prompt =
        "Write a short story about a lighthouse keeper who finds a message in a bottle.";
    let flags: Vec<String> = engine().args();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut tally = Tally::default();
    let mut answers: Vec<(&str, PathBuf, &str, Answer, Value)> = Vec::new();
    let mut scorer = Scorer::start(&tool).unwrap();

    println!(
        "model mode seed tokens generation_ms replay_ms fresh_score_ms check_ms prompt_ms \
         pass_ms fallback_ms(tokens) sample_ms generation/check generation/pass fallbacks \
         one_token_ms batch_wrong d_logprob_batch_1tok d_logprob_1tok_server d_interval d_gap \
         agree"
    );
    for (name, model, prompt) in [
        ("tiny", tiny.clone(), tiny_prompt),
        ("gemma", gemma.clone(), gemma_prompt),
    ] {
        let server = LlamaServer::start(&model, &flags).unwrap();
        for n in [64u64, 128] {
            let mut requests = vec![(
                "greedy",
                0,
                json!({"n_predict": n, "temperature": 0.0, "ignore_eos": true}),
            )];
            for seed in [7 + n, 8 + n] {
                requests.push((
                    "seeded",
                    seed,
                    json!({"n_predict": n, "seed": seed, "temperature": 0.8,
                    "top_k": 40, "top_p": 0.95, "ignore_eos": true}),
                ));
            }
            for (mode, seed, request) in requests {
                let answer = generate(&server, &model, prompt, &request);
                let record = &answer.record;
                let started = Instant::now();
                let replayed = replay(&Inputs {
                    record,
                    prompt: prompt.as_bytes(),
                    salt: salt(),
                    model: &model,
                    engine: EngineChoice::Binary(binary.clone()),
                    allow_other_engine: false,
                })
                .unwrap();
                let replay_ms = started.elapsed().as_secs_f64() * 1e3;
                let started = Instant::now();
                let fresh = score(&inputs(record, prompt, &model, false)).unwrap();
                let fresh_ms = started.elapsed().as_secs_f64() * 1e3;
                // Once to load the model when the scorer has another loaded.
                if answers.last().is_none_or(|(last, ..)| last != &name) {
                    scorer
                        .score(&inputs(record, prompt, &model, false))
                        .unwrap();
                }
                let batched = scorer
                    .score(&inputs(record, prompt, &model, false))
                    .unwrap();
                let one_token = scorer.score(&inputs(record, prompt, &model, true)).unwrap();
                assert!(!batched.timings.loaded);
                let t = &batched.timings;
                let check_ms = t.total_ms;
                tally.honest += 3;
                tally.honest_agree += u32::from(fresh.matched())
                    + u32::from(batched.matched())
                    + u32::from(one_token.matched());
                tally.one_token_positions += one_token.fallbacks.len() as u64;
                tally.batch_wrong += one_token.batch_disagreements;
                let batch_decided: Vec<f64> = batched
                    .positions
                    .iter()
                    .map(|p| {
                        if p["decided_by"] == "batch" {
                            p["logprob"].as_f64().unwrap()
                        } else {
                            f64::NAN
                        }
                    })
                    .collect();
                println!(
                    "{name} {mode} {seed} {} {:.0} {replay_ms:.0} {fresh_ms:.0} {check_ms:.0} {:.0} \
                     {:.0} {:.0}({}) {:.0} {:.1} {:.1} {} {:.0} {} {:.2e} {:.2e} {:.2e} {:.2e} {}",
                    ids(record).len(),
                    answer.generation_ms,
                    t.prompt_ms,
                    t.decode_ms,
                    t.fallback_ms,
                    t.one_token_decodes,
                    t.sample_ms,
                    answer.generation_ms / check_ms,
                    answer.generation_ms / t.decode_ms,
                    batched.fallbacks.len(),
                    one_token.timings.total_ms,
                    one_token.batch_disagreements,
                    max_diff(&batch_decided, &field(&one_token, "logprob")),
                    max_diff(&field(&one_token, "logprob"), &answer.server_logprobs),
                    interval_shift(&one_token),
                    gap_shift(&one_token),
                    fresh.matched()
                        && batched.matched()
                        && one_token.matched()
                        && replayed.matched(),
                );
                if !(batched.matched() && one_token.matched()) {
                    println!("  FALSE REJECT: {:?}", batched.outcome);
                }
                answers.push((name, model.clone(), prompt, answer, request));
            }
        }
    }

    // Catch rates, on the running scorer.
    let mut forged = |what: &str, record: &Record, prompt: &str, model: &Path| {
        let report = scorer.score(&inputs(record, prompt, model, false)).unwrap();
        tally.forged += 1;
        if report.matched() {
            println!("NOT CAUGHT: {what}");
        } else {
            tally.forged_caught += 1;
        }
    };
    let mut substitutions = 0;
    for (name, model, prompt, answer, _) in &answers {
        let claimed = ids(&answer.record);
        // Eight positions spread over the answer, each replaced by the id after it.
        for k in 0..8 {
            let position = k * claimed.len() / 8;
            let mut record = answer.record.clone();
            let mut forged_ids = claimed.clone();
            forged_ids[position] = (forged_ids[position] + 1) % 300;
            record.replay.as_mut().unwrap().output_tokens =
                Some(TokenIds::of(&forged_ids, None, true));
            forged(
                &format!("{name} substitution at {position}"),
                &record,
                prompt,
                model,
            );
            substitutions += 1;
        }
    }
    // Another seed: each seeded answer claimed with the seed after its own.
    let mut seeds = 0;
    for (name, model, prompt, answer, request) in &answers {
        if request["seed"].is_u64() {
            let mut record = answer.record.clone();
            let seed = request["seed"].as_u64().unwrap() + 100;
            record
                .replay
                .as_mut()
                .unwrap()
                .settings
                .insert("seed".into(), json!(seed));
            forged(&format!("{name} another seed"), &record, prompt, model);
            seeds += 1;
        }
    }
    // Another model: each answer claimed as the other model's (prompt count left out).
    for (name, _, prompt, answer, _) in &answers {
        let (other, other_model) = if *name == "tiny" {
            ("gemma", &gemma)
        } else {
            ("tiny", &tiny)
        };
        let mut record = answer.record.clone();
        let identity = provenance_gguf::digest_file(other_model).unwrap();
        record.model.sha256 = Some(identity.sha256);
        record.prompt.as_mut().unwrap().tokens = None;
        forged(
            &format!("{name} answer claimed as {other}'s"),
            &record,
            prompt,
            other_model,
        );
    }
    // Another quantisation: the tiny model in Q8_0 answers, claimed as the F16 tiny model's;
    // the scored check and a full replay with the F16 model.
    let q8 = dir.path().join("tiny-q8_0.gguf");
    std::fs::write(
        &q8,
        tiny_llama(&TinyLlama {
            weight_type: GgmlType::Q8_0,
            ..TinyLlama::default()
        })
        .build(),
    )
    .unwrap();
    let server = LlamaServer::start(&q8, &flags).unwrap();
    let identity = provenance_gguf::digest_file(&tiny).unwrap();
    let f16_server = LlamaServer::start(&tiny, &flags).unwrap();
    let (mut quant, mut quant_replay_caught, mut quant_identical) = (0, 0, 0);
    for seed in 0..4u64 {
        for request in [
            json!({"n_predict": 64, "seed": seed, "temperature": 0.0, "ignore_eos": true}),
            json!({"n_predict": 64, "seed": seed, "temperature": 0.8, "top_k": 40, "ignore_eos": true}),
        ] {
            if request["temperature"] == 0.0 && seed > 0 {
                continue;
            }
            let mut answer = generate(&server, &q8, tiny_prompt, &request);
            // The same request on the F16 model, to see whether the tokens differ at all.
            let f16 = generate(&f16_server, &tiny, tiny_prompt, &request);
            quant_identical += u32::from(ids(&f16.record) == ids(&answer.record));
            answer.record.model.sha256 = Some(identity.sha256);
            forged(
                "Q8_0 answer claimed as F16",
                &answer.record,
                tiny_prompt,
                &tiny,
            );
            let replayed = replay(&Inputs {
                record: &answer.record,
                prompt: tiny_prompt.as_bytes(),
                salt: salt(),
                model: &tiny,
                engine: EngineChoice::Binary(binary.clone()),
                allow_other_engine: false,
            })
            .unwrap();
            quant += 1;
            quant_replay_caught += u32::from(!replayed.matched());
        }
    }
    drop(server);
    drop(f16_server);
    println!(
        "honest checks agreeing: {}/{} (each answer scored fresh, on the running scorer, and \
         from one-token logits at every position); positions where the batched pass alone \
         picked another token than one-token decoding: {} of {}",
        tally.honest_agree, tally.honest, tally.batch_wrong, tally.one_token_positions
    );
    println!(
        "forged answers caught: {}/{} ({substitutions} substitutions, {seeds} other seeds, {} \
         other models, {quant} other quantisations)",
        tally.forged_caught,
        tally.forged,
        answers.len()
    );
    println!(
        "Q8_0 answers claimed as F16: {quant_identical}/{quant} have exactly the tokens the F16 \
         model generates for the same request; full replay caught {quant_replay_caught}/{quant}"
    );
}
