//! The teacher-forced check (`provenance_replay::score`) on the real `llama-score` built beside
//! `llama-server` by `.ci/llama-server.sh`: honest greedy and seeded answers of the tiny model
//! and Gemma 3 270M score as agreeing at every position with the default margins and
//! tolerance, where the batched pass alone picks other tokens at some positions and the
//! one-token fallback decides them; a substituted output token, another seed, another model
//! and another quantisation are caught at a position; a running scorer gives what a fresh
//! process gives; the tool must belong to the recorded engine's build.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::path::{Path, PathBuf};

use provenance::commitment::Salt;
use provenance::record::{Model, Output, PromptCommitment, Record, TokenIds};
use provenance_gguf::GgmlType;
use provenance_gguf::write::{TinyLlama, tiny_llama};
use provenance_harness::{LlamaServer, TempDir, gemma_path, llama_server_path, write_tiny_model};
use provenance_replay::score::{
    Margin, ScoreInputs, ScoreReport, Scorer, Tolerance, locate, score,
};
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
    score(&inputs(record, prompt, model, false))
}

/// Every position decided by one-token decoding (the fallback forced everywhere).
fn check_one_token(record: &Record, prompt: &str, model: &Path) -> Result<ScoreReport, Refusal> {
    score(&inputs(record, prompt, model, true))
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
        tool: tool(),
        allow_other_engine: false,
        one_token,
        tolerance: Tolerance::default(),
        margin: Margin::default(),
    }
}

fn salt() -> &'static Salt {
    static VALUE: std::sync::OnceLock<Salt> = std::sync::OnceLock::new();
    VALUE.get_or_init(|| Salt::from_bytes(SALT))
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

/// Gemma 3 270M answers the bench found the batched pass alone would misjudge (it picks
/// another token than one-token decoding at some of their positions): seeded, 64 tokens.
const GEMMA_PROMPT: &str =
    "Write a short story about a lighthouse keeper who finds a message in a bottle.";

fn gemma_seeded(seed: u64) -> Value {
    json!({"n_predict": 64, "seed": seed, "temperature": 0.8, "top_k": 40, "top_p": 0.95,
           "ignore_eos": true})
}

#[test]
fn honest_gemma_answers_agree_with_default_tolerances_through_the_fallback() {
    let gemma = gemma_path().unwrap();
    let mut batch_wrong = 0;
    for request in [
        json!({"n_predict": 64, "temperature": 0.0, "ignore_eos": true}),
        gemma_seeded(71),
        gemma_seeded(72),
        json!({"n_predict": 32, "seed": 5, "temperature": 0.9, "top_k": 40}),
    ] {
        let record = original(&gemma, GEMMA_PROMPT, request.clone());
        let n = ids(&record).len();
        let report = check(&record, GEMMA_PROMPT, &gemma).unwrap();
        assert!(report.matched(), "{request}: {report:?}");
        assert_eq!(report.mode, "batched");
        // The fallback forced at every position gives the same verdict, and names every
        // position after the first (position 0 comes from the prompt, as in generation).
        let forced = check_one_token(&record, GEMMA_PROMPT, &gemma).unwrap();
        assert!(forced.matched(), "{request}: {forced:?}");
        assert_eq!(forced.mode, "one-token");
        assert!(forced.fallbacks.len() >= n - 1, "{forced:?}");
        // Wherever the batched pass alone picks another token than one-token decoding, the
        // default check did not trust it: the fallback decided that position.
        for f in forced
            .fallbacks
            .iter()
            .filter(|f| f.batch_picked != f.picked)
        {
            batch_wrong += 1;
            let decided = report
                .fallbacks
                .iter()
                .find(|g| g.position == f.position)
                .unwrap_or_else(|| {
                    panic!(
                        "{request}: the batched pass picks {} instead of {} at {}, and the check \
                         did not fall back there: {report:?}",
                        f.batch_picked, f.picked, f.position
                    )
                });
            assert_eq!(decided.picked, f.picked);
            assert_eq!(decided.batch_picked, f.batch_picked);
        }
        assert_eq!(report.batch_disagreements, {
            report
                .fallbacks
                .iter()
                .filter(|f| f.batch_picked != f.picked)
                .count() as u64
        });
    }
    // These answers include positions where trusting the batched pass would be a false
    // reject: the fallback is exercised, not only present.
    assert!(
        batch_wrong > 0,
        "no position where the batched pass alone is wrong"
    );
}

#[test]
fn gemma_substitutions_another_seed_or_model_are_caught() {
    let gemma = gemma_path().unwrap();
    let honest = original(&gemma, GEMMA_PROMPT, gemma_seeded(71));
    let claimed = ids(&honest);
    // A substituted token is caught at its position, from one-token logits.
    for position in [1, claimed.len() / 2, claimed.len() - 1] {
        let mut record = honest.clone();
        let mut forged = claimed.clone();
        forged[position] = (forged[position] + 1) % 300;
        set_ids(&mut record, &forged);
        let report = check(&record, GEMMA_PROMPT, &gemma).unwrap();
        assert_eq!(caught(&report), position as u64, "{report:?}");
        assert!(
            report
                .fallbacks
                .iter()
                .any(|f| f.position == position as u64),
            "{report:?}"
        );
    }
    let greedy = original(
        &gemma,
        GEMMA_PROMPT,
        json!({"n_predict": 32, "temperature": 0.0, "ignore_eos": true}),
    );
    let mut forged = ids(&greedy);
    forged[9] = (forged[9] + 7) % 300;
    let mut record = greedy.clone();
    set_ids(&mut record, &forged);
    assert_eq!(caught(&check(&record, GEMMA_PROMPT, &gemma).unwrap()), 9);

    // Another seed.
    let mut record = original(&gemma, GEMMA_PROMPT, gemma_seeded(73));
    record
        .replay
        .as_mut()
        .unwrap()
        .settings
        .insert("seed".into(), json!(71));
    caught(&check(&record, GEMMA_PROMPT, &gemma).unwrap());

    // Another model: the tiny model's answer claimed as Gemma's (the prompt count left out,
    // since the two tokenise it differently) is caught at an output position.
    let dir = TempDir::new("score").unwrap();
    let tiny = write_tiny_model(dir.path()).unwrap();
    let mut record = original(&tiny, GEMMA_PROMPT, sampled(7));
    record.model = honest.model.clone();
    record.prompt.as_mut().unwrap().tokens = None;
    caught(&check(&record, GEMMA_PROMPT, &gemma).unwrap());

    // And Gemma's answer claimed as the tiny model's: ids the tiny vocabulary does not have.
    let mut record = honest.clone();
    record.model = original(&tiny, PROMPT, sampled(7)).model;
    record.prompt.as_mut().unwrap().tokens = None;
    let report = check(&record, GEMMA_PROMPT, &tiny).unwrap();
    caught(&report);
}

#[test]
fn a_running_scorer_gives_what_a_fresh_process_gives() {
    let dir = TempDir::new("score").unwrap();
    let model = write_tiny_model(dir.path()).unwrap();
    let gemma = gemma_path().unwrap();
    let tiny_answer = original(&model, PROMPT, sampled(7));
    let gemma_answer = original(&gemma, GEMMA_PROMPT, gemma_seeded(72));
    let mut scorer = Scorer::start(&tool()).unwrap();
    for (record, prompt, model) in [
        (&tiny_answer, PROMPT, &model),
        (&gemma_answer, GEMMA_PROMPT, &gemma),
        (&tiny_answer, PROMPT, &model),
    ] {
        let fresh = check(record, prompt, model).unwrap();
        let first = scorer.score(&inputs(record, prompt, model, false)).unwrap();
        let again = scorer.score(&inputs(record, prompt, model, false)).unwrap();
        assert!(fresh.matched() && first.matched() && again.matched());
        assert!(fresh.timings.loaded && !again.timings.loaded, "{again:?}");
        // Bit for bit the same decisions: the model kept loaded changes nothing.
        assert_eq!(fresh.positions, first.positions);
        assert_eq!(fresh.positions, again.positions);
        assert_eq!(fresh.fallbacks, again.fallbacks);
    }
    // A request the tool refuses answers with one line and the scorer goes on.
    let mut constrained = tiny_answer.clone();
    constrained
        .replay
        .as_mut()
        .unwrap()
        .settings
        .insert("grammar".into(), json!("root ::= \"ka\""));
    let e = scorer
        .score(&inputs(&constrained, PROMPT, &model, false))
        .unwrap_err();
    assert!(e.to_string().contains("grammar"), "{e}");
    assert!(!e.to_string().contains('\n'), "{e}");
    assert!(
        scorer
            .score(&inputs(&tiny_answer, PROMPT, &model, false))
            .unwrap()
            .matched()
    );
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
        allow_other_engine: true,
        ..inputs(&foreign, PROMPT, &model, false)
    })
    .unwrap();
    assert!(report.matched() && report.tool.other_engine, "{report:?}");

    // A copy of the tool without its build record beside it.
    let copy = dir.path().join("llama-score");
    std::fs::copy(tool(), &copy).unwrap();
    let e = score(&ScoreInputs {
        tool: copy,
        ..inputs(&record, PROMPT, &model, false)
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
fn forcing_one_token_decoding_everywhere_gives_the_same_verdict() {
    // The fallback at every position decodes the claimed tokens one at a time, as generation
    // does; the default check must reach the same verdict at the same positions, and where
    // the batched pass decided a position its log-probabilities stay close to one-token
    // decoding's (measured: 4.4e-4 for the tiny F16 model, 0.11 for Gemma 3 270M Q4_K_M).
    let dir = TempDir::new("score").unwrap();
    let tiny = write_tiny_model(dir.path()).unwrap();
    for (model, prompt, bound) in [
        (tiny, PROMPT, 1e-2),
        (gemma_path().unwrap(), GEMMA_PROMPT, 0.5),
    ] {
        let record = original(&model, prompt, sampled(3));
        let batched = check(&record, prompt, &model).unwrap();
        let forced = check_one_token(&record, prompt, &model).unwrap();
        assert!(
            batched.matched() && forced.matched(),
            "{batched:?} {forced:?}"
        );
        assert_eq!(forced.mode, "one-token");
        for (b, s) in batched.positions.iter().zip(&forced.positions) {
            assert_eq!(b["picked"], s["picked"]);
            if b["decided_by"] == "batch" {
                let (b, s) = (
                    b["logprob"].as_f64().unwrap(),
                    s["logprob"].as_f64().unwrap(),
                );
                assert!(
                    (b - s).abs() < bound,
                    "logprob batched {b}, one at a time {s}"
                );
            } else {
                // Decided by the same one-token logits in both: the same numbers.
                assert_eq!(b["logprob"], s["logprob"]);
            }
        }
    }
}
