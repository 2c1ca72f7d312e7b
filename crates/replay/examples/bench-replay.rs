//! Replay wall time against the original generation, same machine, same run: an answer is
//! generated on a running llama-server (the original), then replayed by
//! `provenance_replay::replay` (model digests, a fresh engine started with the recorded
//! settings, tokenisation, the generation); prints the times of each part.
//!
//! ```text
//! cargo run --release -p provenance-replay --example bench-replay -- [N_PREDICT] [RUNS]
//! ```
//!
//! Uses Gemma 3 270M (`scripts/fetch-gemma.sh`) and the llama-server of `.ci/llama-server.sh`.

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::time::Instant;

use provenance::commitment::Salt;
use provenance::record::{Model, Output, PromptCommitment, Record};
use provenance_harness::{LlamaServer, gemma_path, llama_server_path};
use provenance_replay::{EngineChoice, EngineSettings, FlashAttn, Inputs, capture, replay};
use serde_json::{Value, json};

fn main() {
    let mut args = std::env::args().skip(1);
    let n_predict: u64 = args.next().map_or(64, |a| a.parse().unwrap());
    let runs: u64 = args.next().map_or(3, |a| a.parse().unwrap());
    let model = gemma_path().unwrap();
    let binary = llama_server_path().unwrap();
    let engine = EngineSettings {
        ctx: 512,
        batch: 2048,
        ubatch: 512,
        flash_attn: FlashAttn::On,
        repack: true,
        threads: Some(2),
    };
    let flags: Vec<String> = engine.args();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let started = Instant::now();
    let server = LlamaServer::start(&model, &flags).unwrap();
    println!(
        "original engine start: {} ms",
        started.elapsed().as_millis()
    );
    let identity = provenance_gguf::digest_file(&model).unwrap();
    let salt = Salt::from_bytes([3; 32]);
    let prompt = "Write a short story about a lighthouse keeper who finds a message in a bottle.";
    println!(
        "run original_ms replay_total_ms model_digest_ms engine_start_ms generation_ms tokens match"
    );
    for run in 0..runs {
        let body = json!({"prompt": prompt, "n_predict": n_predict, "seed": 100 + run,
            "temperature": 0.8, "cache_prompt": false, "return_tokens": true,
            "ignore_eos": true});
        let started = Instant::now();
        let answer: Value = server
            .post_json("/completion", &body)
            .unwrap()
            .json()
            .unwrap();
        let original_ms = started.elapsed().as_millis();
        let mut m = Model::named("gemma");
        m.sha256 = Some(identity.sha256);
        let mut record = Record::new(Output::from_text(answer["content"].as_str().unwrap()), m);
        let mut commitment = PromptCommitment::commit("text", prompt.as_bytes(), &salt);
        commitment.tokens = answer["tokens_evaluated"].as_u64();
        record.prompt = Some(commitment);
        let build = capture::engine_build(&binary.with_file_name("llama-server.json"));
        let engine = EngineSettings {
            ctx: 512,
            ..engine.clone()
        };
        record.replay = Some(capture::from_completion(
            &engine,
            build,
            Some(false),
            &answer,
            None,
            true,
        ));
        let started = Instant::now();
        let digest = Instant::now();
        provenance_gguf::digest_file(&model).unwrap();
        let digest_ms = digest.elapsed().as_millis();
        let report = replay(&Inputs {
            record: &record,
            prompt: prompt.as_bytes(),
            salt: &salt,
            model: &model,
            engine: EngineChoice::Binary(binary.clone()),
            allow_other_engine: false,
        })
        .unwrap();
        // The replay hashed the model once more itself; count that pass once.
        let total_ms = started.elapsed().as_millis() - digest_ms;
        println!(
            "{run} {original_ms} {total_ms} {digest_ms} {} {} {} {}",
            report.startup_ms,
            report.generation_ms,
            report.replayed_tokens,
            report.matched()
        );
    }
}
