//! The teacher-forced check (`provenance_replay::score`) on the real `llama-score` built beside
//! `llama-server` by `.ci/llama-server.sh`: honest greedy and seeded answers of the tiny model
//! and Gemma 3 270M score as agreeing at every position; a substituted output token, another
//! seed, another model and another quantisation are caught at a position; the tool must
//! belong to the recorded engine's build.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::path::{Path, PathBuf};

use provenance::commitment::Salt;
use provenance::record::{Model, Output, PromptCommitment, Record, TokenIds};
use provenance_gguf::GgmlType;
use provenance_gguf::write::{TinyLlama, tiny_llama};
use provenance_harness::{LlamaServer, TempDir, gemma_path, llama_server_path, write_tiny_model};
use provenance_replay::score::{ScoreInputs, ScoreReport, Tolerance, locate, score};
use provenance_replay::{EngineSettings, FlashAttn, Outcome, Refusal, capture};
use serde_json::{Value, json};

const SALT: [u8; 32] = [9; 32];

const PROMPT: &str = "kalo mine ka ~ kalo mine ka ~ kalo mine ka ~ kalo mine";

fn settings() -> EngineSettings {
    EngineSettings {
        ctx: 512,
        batch: 2048,
        ubatch: 512,
        flash_attn: FlashAttn::On,
        repack: true,
        threads: Some(2),
    }
}

fn tool() -> PathBuf {
    let path = locate(&llama_server_path().unwrap());
    assert!(
        path.is_file(),
        "{} missing: build it with `bash .ci/llama-server.sh`",
        path.display()
    );
    path
}

/// Generates an answer on the real llama-server and writes the record a signer would.
fn original(model: &Path, prompt: &str, request: Value) -> Record {
    let engine = settings();
    let args: Vec<String> = engine.args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = LlamaServer::start(model, &args).unwrap();
    let props: Value = server.get("/props").unwrap().json().unwrap();
    let engine = &EngineSettings {
        ctx: props["default_generation_settings"]["n_ctx"]
            .as_u64()
            .unwrap(),
        ..engine
    };
    let mut body = request;
    body["prompt"] = json!(prompt);
    body["cache_prompt"] = json!(false);
    body["return_tokens"] = json!(true);
    let answer: Value = server
        .post_json("/completion", &body)
        .unwrap()
        .json()
        .unwrap();
    let identity = provenance_gguf::digest_file(model).unwrap();
    let mut model_record = Model::named("m");
    model_record.sha256 = Some(identity.sha256);
    model_record.blake3 = Some(identity.blake3);
    let mut record = Record::new(
        Output::from_text(answer["content"].as_str().unwrap()),
        model_record,
    );
    record.output.finish_reason = answer["stop_type"].as_str().map(str::to_owned);
    let mut commitment = PromptCommitment::commit(
        provenance::commitment::FORMAT_TEXT,
        prompt.as_bytes(),
        &Salt::from_bytes(SALT),
    );
    commitment.tokens = answer["tokens_evaluated"].as_u64();
    record.prompt = Some(commitment);
    let build = capture::engine_build(
        &llama_server_path()
            .unwrap()
            .with_file_name("llama-server.json"),
    );
    record.replay = Some(capture::from_completion(
        engine,
        build,
        Some(false),
        &answer,
        None,
        true,
    ));
    record
}

fn check(record: &Record, prompt: &str, model: &Path) -> Result<ScoreReport, Refusal> {
    check_with(record, prompt, model, Tolerance::default())
}

/// Gemma 3 270M Q4_K_M: the batched pass differs from one-token decoding by up to 0.71 in a
/// logit (docs/replay.md), so near ties up to 1 logit are tolerated.
fn gemma_tolerance() -> Tolerance {
    Tolerance {
        logit: 1.0,
        draw: 1e-2,
    }
}

fn check_with(
    record: &Record,
    prompt: &str,
    model: &Path,
    tolerance: Tolerance,
) -> Result<ScoreReport, Refusal> {
    score(&ScoreInputs {
        record,
        prompt: prompt.as_bytes(),
        salt: &Salt::from_bytes(SALT),
        model,
        tool: tool(),
        allow_other_engine: false,
        sequential: false,
        tolerance,
    })
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

fn set_ids(record: &mut Record, ids: &[u32]) {
    record.replay.as_mut().unwrap().output_tokens = Some(TokenIds::of(ids, None, true));
}

/// The first disagreeing position, or a panic naming the report.
fn caught(report: &ScoreReport) -> u64 {
    match &report.outcome {
        Outcome::Diverged(d) => d.position.unwrap_or_else(|| panic!("no position: {d:?}")),
        Outcome::Match => panic!("expected a disagreement: {report:?}"),
    }
}

fn sampled(seed: u64) -> Value {
    json!({"n_predict": 32, "seed": seed, "temperature": 1.0})
}

#[test]
fn honest_greedy_and_seeded_answers_agree_at_every_position() {
    let dir = TempDir::new("score").unwrap();
    let model = write_tiny_model(dir.path()).unwrap();
    for request in [
        json!({"n_predict": 32, "temperature": 0.0}),
        sampled(7),
        json!({"n_predict": 32, "seed": 11, "temperature": 0.7, "top_k": 20, "top_p": 0.9,
               "min_p": 0.02, "repeat_penalty": 1.1}),
    ] {
        let record = original(&model, PROMPT, request.clone());
        let report = check(&record, PROMPT, &model).unwrap();
        assert!(report.matched(), "{request}: {report:?}");
        assert_eq!(report.recorded_tokens, ids(&record).len() as u64);
        assert!(report.recorded_tokens > 0);
        assert_eq!(report.mode, "batched");
        assert!(!report.tool.other_engine, "{report:?}");
        assert_eq!(
            report.prompt_tokens,
            record.prompt.as_ref().unwrap().tokens.unwrap()
        );
    }
}

#[test]
fn a_substituted_token_another_seed_model_or_quantisation_is_caught() {
    let dir = TempDir::new("score").unwrap();
    let model = write_tiny_model(dir.path()).unwrap();
    let honest = original(&model, PROMPT, sampled(7));
    let claimed = ids(&honest);

    // One output token replaced by another (each position, with the next id in the vocabulary).
    for position in [0, claimed.len() / 2, claimed.len() - 1] {
        let mut record = honest.clone();
        let mut forged = claimed.clone();
        forged[position] = (forged[position] + 1) % 300;
        set_ids(&mut record, &forged);
        let report = check(&record, PROMPT, &model).unwrap();
        assert_eq!(caught(&report), position as u64, "{report:?}");
    }

    // Greedy: a substituted token is caught too.
    let greedy = original(&model, PROMPT, json!({"n_predict": 32, "temperature": 0.0}));
    let mut forged = ids(&greedy);
    forged[3] = (forged[3] + 7) % 300;
    let mut record = greedy.clone();
    set_ids(&mut record, &forged);
    assert_eq!(caught(&check(&record, PROMPT, &model).unwrap()), 3);

    // The answer came from seed 8; the record says 7.
    let mut record = original(&model, PROMPT, sampled(8));
    record
        .replay
        .as_mut()
        .unwrap()
        .settings
        .insert("seed".into(), json!(7));
    caught(&check(&record, PROMPT, &model).unwrap());

    // The answer came from other weights (another PRNG seed, and Q8_0 instead of F16); the
    // record names the tiny model's digests.
    for variant in [
        TinyLlama {
            seed: 2,
            ..TinyLlama::default()
        },
        TinyLlama {
            weight_type: GgmlType::Q8_0,
            ..TinyLlama::default()
        },
    ] {
        let path = dir.path().join(format!("variant-{}.gguf", variant.seed));
        std::fs::write(&path, tiny_llama(&variant).build()).unwrap();
        let mut record = original(&path, PROMPT, sampled(7));
        record.model = honest.model.clone();
        caught(&check(&record, PROMPT, &model).unwrap());
    }
}

#[test]
fn gemma_answers_agree_and_another_seed_or_model_is_caught() {
    let gemma = gemma_path().unwrap();
    let prompt = "The lighthouse keeper opened the bottle and read";
    for request in [
        json!({"n_predict": 32, "temperature": 0.0}),
        json!({"n_predict": 32, "seed": 5, "temperature": 0.9, "top_k": 40}),
    ] {
        let record = original(&gemma, prompt, request.clone());
        let report = check_with(&record, prompt, &gemma, gemma_tolerance()).unwrap();
        assert!(report.matched(), "{request}: {report:?}");
    }

    // Another seed.
    let mut record = original(
        &gemma,
        prompt,
        json!({"n_predict": 32, "seed": 6, "temperature": 0.9, "top_k": 40}),
    );
    record
        .replay
        .as_mut()
        .unwrap()
        .settings
        .insert("seed".into(), json!(5));
    caught(&check_with(&record, prompt, &gemma, gemma_tolerance()).unwrap());

    // Another model: the tiny model's answer claimed as Gemma's (the prompt count left out,
    // since the two tokenise it differently) is caught at an output position.
    let dir = TempDir::new("score").unwrap();
    let tiny = write_tiny_model(dir.path()).unwrap();
    let mut record = original(&tiny, prompt, sampled(7));
    let gemma_record = original(&gemma, prompt, sampled(7));
    record.model = gemma_record.model.clone();
    record.prompt.as_mut().unwrap().tokens = None;
    caught(&check_with(&record, prompt, &gemma, gemma_tolerance()).unwrap());

    // And Gemma's answer claimed as the tiny model's: ids the tiny vocabulary does not have.
    let mut record = gemma_record.clone();
    record.model = original(&tiny, PROMPT, sampled(7)).model;
    record.prompt.as_mut().unwrap().tokens = None;
    let report = check(&record, prompt, &tiny).unwrap();
    caught(&report);
}

#[test]
fn the_tool_must_belong_to_the_recorded_build_and_refusals_are_one_line() {
    let dir = TempDir::new("score").unwrap();
    let model = write_tiny_model(dir.path()).unwrap();
    let record = original(&model, PROMPT, sampled(7));

    // A record naming another engine binary: refused, then scored when allowed, as such.
    let mut foreign = record.clone();
    foreign
        .replay
        .as_mut()
        .unwrap()
        .engine
        .as_mut()
        .unwrap()
        .binary_sha256 = Some(provenance::digest::sha256(b"another build"));
    let e = check(&foreign, PROMPT, &model).unwrap_err();
    let message = e.to_string();
    assert!(
        message.contains("--allow-other-engine") && !message.contains('\n'),
        "{message}"
    );
    let report = score(&ScoreInputs {
        record: &foreign,
        prompt: PROMPT.as_bytes(),
        salt: &Salt::from_bytes(SALT),
        model: &model,
        tool: tool(),
        allow_other_engine: true,
        sequential: false,
        tolerance: Tolerance::default(),
    })
    .unwrap();
    assert!(report.matched() && report.tool.other_engine, "{report:?}");

    // A copy of the tool without its build record beside it.
    let copy = dir.path().join("llama-score");
    std::fs::copy(tool(), &copy).unwrap();
    let e = score(&ScoreInputs {
        record: &record,
        prompt: PROMPT.as_bytes(),
        salt: &Salt::from_bytes(SALT),
        model: &model,
        tool: copy,
        allow_other_engine: false,
        sequential: false,
        tolerance: Tolerance::default(),
    })
    .unwrap_err();
    assert!(e.to_string().contains("no build record"), "{e}");

    // The same checks as replay: a prompt that does not open the commitment, a record
    // without published output ids.
    assert!(matches!(
        check(&record, "kalo", &model).unwrap_err(),
        Refusal::Prompt
    ));
    let mut hidden = record.clone();
    let count = ids(&record);
    hidden.replay.as_mut().unwrap().output_tokens = Some(TokenIds::of(&count, None, false));
    let e = check(&hidden, PROMPT, &model).unwrap_err();
    assert!(e.to_string().contains("output token ids"), "{e}");
}

#[test]
fn the_batched_pass_agrees_with_one_token_decoding() {
    // Sequential mode decodes the claimed tokens one at a time, as generation does; the
    // batched pass must pick the same tokens and its probabilities stay close.
    // Bounds: 4.4e-4 (tiny, F16) and 0.24 (Gemma, Q4_K_M) measured, with room.
    for (model, prompt, dir, bound, tolerance) in [
        (
            None,
            PROMPT,
            Some(TempDir::new("score").unwrap()),
            1e-2,
            Tolerance::default(),
        ),
        (
            Some(gemma_path().unwrap()),
            "The lighthouse keeper opened the bottle and read",
            None,
            0.5,
            gemma_tolerance(),
        ),
    ] {
        let model =
            model.unwrap_or_else(|| write_tiny_model(dir.as_ref().unwrap().path()).unwrap());
        let record = original(&model, prompt, sampled(3));
        let run = |sequential| {
            score(&ScoreInputs {
                record: &record,
                prompt: prompt.as_bytes(),
                salt: &Salt::from_bytes(SALT),
                model: &model,
                tool: tool(),
                allow_other_engine: false,
                sequential,
                tolerance,
            })
            .unwrap()
        };
        let batched = run(false);
        let sequential = run(true);
        assert!(
            batched.matched() && sequential.matched(),
            "{batched:?} {sequential:?}"
        );
        assert_eq!(sequential.mode, "sequential");
        for (b, s) in batched.positions.iter().zip(&sequential.positions) {
            let (b, s) = (
                b["logprob"].as_f64().unwrap(),
                s["logprob"].as_f64().unwrap(),
            );
            assert!(
                (b - s).abs() < bound,
                "logprob batched {b}, one at a time {s}"
            );
        }
    }
}
