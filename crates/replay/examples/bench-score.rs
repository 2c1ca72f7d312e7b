//! The teacher-forced check against generation and full replay, same machine, same run, and
//! the figures its tolerance model rests on.
//!
//! For the tiny model and Gemma 3 270M, greedy and seeded, 64 and 128 output tokens: an answer
//! is generated on a running llama-server (`n_probs` 1, so the engine reports each sampled
//! token's log-probability under one-token decoding), then checked three ways: full replay
//! (`provenance_replay::replay`), the batched scored check and the same check decoding one
//! token at a time (`provenance_replay::score`). Prints the times, the ratios, and the largest
//! differences between the log-probabilities of the claimed tokens under the batched pass,
//! one-token decoding in llama-score and the engine's own report. Then the catch rates: every
//! honest answer must agree; substituted tokens, another seed, another model and another
//! quantisation must be caught.
//!
//! ```text
//! cargo run --release -p provenance-replay --example bench-score
//! ```
//!
//! Uses the llama-server and llama-score of `.ci/llama-server.sh` and Gemma 3 270M
//! (`scripts/fetch-gemma.sh`).

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use provenance::commitment::Salt;
use provenance::record::{Model, Output, PromptCommitment, Record, TokenIds};
use provenance_gguf::GgmlType;
use provenance_gguf::write::{TinyLlama, tiny_llama};
use provenance_harness::{LlamaServer, TempDir, gemma_path, llama_server_path, write_tiny_model};
use provenance_replay::score::{ScoreInputs, ScoreReport, Tolerance, locate, score};
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
    generation_ms: u128,
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
    let generation_ms = started.elapsed().as_millis();
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

/// The tolerance for a model: the default for the F16 tiny model, 1 logit for Gemma 3 270M
/// Q4_K_M (its batched pass differs from one-token decoding by up to 0.71).
fn tolerance(model: &Path) -> Tolerance {
    if model.to_string_lossy().contains("gemma") {
        Tolerance {
            logit: 1.0,
            draw: 1e-2,
        }
    } else {
        Tolerance::default()
    }
}

fn check(record: &Record, prompt: &str, model: &Path, sequential: bool) -> ScoreReport {
    score(&ScoreInputs {
        record,
        prompt: prompt.as_bytes(),
        salt: &Salt::from_bytes(SALT),
        model,
        tool: locate(&llama_server_path().unwrap()),
        allow_other_engine: false,
        sequential,
        tolerance: tolerance(model),
    })
    .unwrap()
}

fn logprobs(report: &ScoreReport) -> Vec<f64> {
    report
        .positions
        .iter()
        .map(|p| p["logprob"].as_f64().unwrap())
        .collect()
}

/// The largest difference of the claimed tokens' logits, as the sampler ranked them.
fn max_logit_diff(a: &ScoreReport, b: &ScoreReport) -> f64 {
    a.positions
        .iter()
        .zip(&b.positions)
        .filter_map(|(x, y)| {
            Some((x["claimed_logit"].as_f64()? - y["claimed_logit"].as_f64()?).abs())
        })
        .fold(0.0, f64::max)
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|(x, y)| (x - y).abs())
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
}

fn main() {
    let dir = TempDir::new("bench-score").unwrap();
    let tiny = write_tiny_model(dir.path()).unwrap();
    let gemma = gemma_path().unwrap();
    let binary: PathBuf = llama_server_path().unwrap();
    let tiny_prompt = "kalo mine ka ~ kalo mine ka ~ kalo mine ka ~ kalo mine";
    let gemma_prompt =
        "Write a short story about a lighthouse keeper who finds a message in a bottle.";
    let flags: Vec<String> = engine().args();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut tally = Tally::default();
    let mut answers: Vec<(&str, PathBuf, &str, Answer, Value)> = Vec::new();

    println!(
        "model mode tokens generation_ms replay_ms score_ms score_decode_ms sequential_ms \
         replay/score generation/score d_logit_batched_seq d_batched_seq d_seq_server d_batched_server \
         min_top2_gap min_draw_margin near_ties agree"
    );
    for (name, model, prompt) in [
        ("tiny", tiny.clone(), tiny_prompt),
        ("gemma", gemma.clone(), gemma_prompt),
    ] {
        let server = LlamaServer::start(&model, &flags).unwrap();
        for n in [64u64, 128] {
            for (mode, request) in [
                (
                    "greedy",
                    json!({"n_predict": n, "temperature": 0.0, "ignore_eos": true}),
                ),
                (
                    "seeded",
                    json!({"n_predict": n, "seed": 7 + n, "temperature": 0.8,
                    "top_k": 40, "top_p": 0.95, "ignore_eos": true}),
                ),
            ] {
                let answer = generate(&server, &model, prompt, &request);
                let record = &answer.record;
                let started = Instant::now();
                let replayed = replay(&Inputs {
                    record,
                    prompt: prompt.as_bytes(),
                    salt: &Salt::from_bytes(SALT),
                    model: &model,
                    engine: EngineChoice::Binary(binary.clone()),
                    allow_other_engine: false,
                })
                .unwrap();
                let replay_ms = started.elapsed().as_millis();
                let started = Instant::now();
                let batched = check(record, prompt, &model, false);
                let score_ms = started.elapsed().as_millis();
                let started = Instant::now();
                let sequential = check(record, prompt, &model, true);
                let sequential_ms = started.elapsed().as_millis();
                let (b, s) = (logprobs(&batched), logprobs(&sequential));
                tally.honest += 2;
                tally.honest_agree +=
                    u32::from(batched.matched()) + u32::from(sequential.matched());
                println!(
                    "{name} {mode} {} {} {replay_ms} {score_ms} {:.0} {sequential_ms} {:.1} {:.1} \
                     {:.2e} {:.2e} {:.2e} {:.2e} {} {} {} {}",
                    ids(record).len(),
                    answer.generation_ms,
                    batched.timings.decode_ms,
                    replay_ms as f64 / score_ms as f64,
                    answer.generation_ms as f64 / score_ms as f64,
                    max_logit_diff(&batched, &sequential),
                    max_diff(&b, &s),
                    max_diff(&s, &answer.server_logprobs),
                    max_diff(&b, &answer.server_logprobs),
                    batched
                        .min_greedy_gap
                        .map_or("-".into(), |g| format!("{g:.3}")),
                    batched
                        .min_draw_margin
                        .map_or("-".into(), |m| format!("{m:.2e}")),
                    batched
                        .near_ties
                        .iter()
                        .map(|t| format!("{}@{:.2e}", t.position, t.distance))
                        .collect::<Vec<_>>()
                        .join(","),
                    batched.matched() && replayed.matched(),
                );
                answers.push((name, model.clone(), prompt, answer, request));
            }
        }
    }

    // Catch rates.
    let mut forged = |what: &str, record: &Record, prompt: &str, model: &Path| {
        let report = check(record, prompt, model, false);
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
    for (name, model, prompt, answer, request) in &answers {
        if request["seed"].is_u64() {
            let mut record = answer.record.clone();
            let seed = request["seed"].as_u64().unwrap() + 1;
            record
                .replay
                .as_mut()
                .unwrap()
                .settings
                .insert("seed".into(), json!(seed));
            forged(&format!("{name} another seed"), &record, prompt, model);
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
    // Another quantisation: the tiny model in Q8_0 answers, claimed as the F16 tiny model's.
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
    for request in [
        json!({"n_predict": 64, "temperature": 0.0, "ignore_eos": true}),
        json!({"n_predict": 64, "seed": 3, "temperature": 0.8, "top_k": 40, "ignore_eos": true}),
    ] {
        let mut answer = generate(&server, &q8, tiny_prompt, &request);
        answer.record.model.sha256 = Some(identity.sha256);
        forged(
            "Q8_0 answer claimed as F16",
            &answer.record,
            tiny_prompt,
            &tiny,
        );
    }
    drop(server);
    println!(
        "honest checks agreeing: {}/{}; forged answers caught: {}/{} ({substitutions} substitutions, \
         the rest other seeds, models and quantisations)",
        tally.honest_agree, tally.honest, tally.forged_caught, tally.forged
    );
}
