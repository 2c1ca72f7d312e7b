//! Replays on the real `llama-server` (the portable build of `.ci/llama-server.sh`): an answer
//! generated once is replayed by a fresh engine and matches token for token (greedy and
//! seeded, the tiny model and Gemma 3 270M); a record that claims another seed, sampler
//! value, prompt, model file, quantisation or batch setting than the one that generated the
//! answer is caught at the first divergent token; bad inputs are refused in one line.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::path::{Path, PathBuf};

use provenance::commitment::Salt;
use provenance::record::{Model, Output, PromptCommitment, Record};
use provenance_gguf::GgmlType;
use provenance_gguf::write::{TinyLlama, tiny_llama};
use provenance_harness::{LlamaServer, TempDir, gemma_path, llama_server_path, write_tiny_model};
use provenance_replay::{
    EngineChoice, EngineSettings, FlashAttn, Inputs, Outcome, Refusal, Report, capture, replay,
};
use serde_json::{Value, json};

const SALT: [u8; 32] = [9; 32];

/// The settings the originals run with (all stated, so the record can say them).
fn settings(ubatch: u64) -> EngineSettings {
    EngineSettings {
        ctx: 512,
        batch: 2048,
        ubatch,
        flash_attn: FlashAttn::On,
        repack: true,
        threads: Some(2),
    }
}

fn settings_args() -> Vec<&'static str> {
    vec![
        "--ctx-size",
        "512",
        "--batch-size",
        "2048",
        "--ubatch-size",
        "512",
        "--flash-attn",
        "on",
        "--repack",
        "--parallel",
        "1",
        "--threads",
        "2",
    ]
}

fn binary() -> PathBuf {
    llama_server_path().unwrap()
}

/// Generates an answer on a server started with `engine`, and writes the record a signer
/// would: model digests, prompt commitment, replay section with published ids.
fn original(model: &Path, engine: &EngineSettings, prompt: &str, request: Value) -> Record {
    let args: Vec<String> = engine.args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = LlamaServer::start(model, &args).unwrap();
    // The context a slot has (llama-server caps --ctx-size at the model's training context).
    let props: Value = server.get("/props").unwrap().json().unwrap();
    let engine = &EngineSettings {
        ctx: props["default_generation_settings"]["n_ctx"]
            .as_u64()
            .unwrap(),
        ..engine.clone()
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
    let text = answer["content"].as_str().unwrap();
    let identity = provenance_gguf::digest_file(model).unwrap();
    let mut model_record = Model::named("m");
    model_record.sha256 = Some(identity.sha256);
    model_record.blake3 = Some(identity.blake3);
    let mut record = Record::new(Output::from_text(text), model_record);
    let mut commitment = PromptCommitment::commit(
        provenance::commitment::FORMAT_TEXT,
        prompt.as_bytes(),
        &Salt::from_bytes(SALT),
    );
    commitment.tokens = answer["tokens_evaluated"].as_u64();
    record.prompt = Some(commitment);
    let build = capture::engine_build(&binary().with_file_name("llama-server.json"));
    assert!(build.is_some(), "llama-server.json beside the binary");
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

fn run(record: &Record, prompt: &str, model: &Path) -> Result<Report, Refusal> {
    replay(&Inputs {
        record,
        prompt: prompt.as_bytes(),
        salt: &Salt::from_bytes(SALT),
        model,
        engine: EngineChoice::Binary(binary()),
        allow_other_engine: false,
    })
}

fn sampled(seed: u64) -> Value {
    json!({"n_predict": 24, "seed": seed, "temperature": 1.0})
}

fn diverged(report: &Report) -> &provenance_replay::Divergence {
    match &report.outcome {
        Outcome::Diverged(d) => d,
        Outcome::Match => panic!("expected a divergence: {report:?}"),
    }
}

const PROMPT: &str = "kalo mine ka ~ kalo mine ka ~ kalo mine ka ~ kalo mine";

#[test]
fn greedy_and_seeded_answers_replay_token_exact() {
    let dir = TempDir::new("replay").unwrap();
    let model = write_tiny_model(dir.path()).unwrap();
    for request in [
        json!({"n_predict": 24, "temperature": 0.0}),
        sampled(7),
        json!({"n_predict": 24, "seed": 11, "temperature": 0.7, "top_k": 20, "top_p": 0.9,
               "min_p": 0.02, "repeat_penalty": 1.1}),
    ] {
        let record = original(&model, &settings(512), PROMPT, request.clone());
        let report = run(&record, PROMPT, &model).unwrap();
        assert!(report.matched(), "{request}: {report:?}");
        assert!(report.replayed_tokens > 0, "{report:?}");
        assert_eq!(report.replayed_tokens, report.recorded_tokens);
        assert!(!report.engine.other_engine);
        assert!(report.engine.args.iter().any(|a| a == "--cache-ram"));
    }
}

#[test]
fn a_record_claiming_another_seed_or_sampler_value_diverges_at_the_first_token_that_differs() {
    let dir = TempDir::new("replay").unwrap();
    let model = write_tiny_model(dir.path()).unwrap();
    // The answer came from seed 8; the record says 7.
    let mut record = original(&model, &settings(512), PROMPT, sampled(8));
    let replay_section = record.replay.as_mut().unwrap();
    replay_section.settings.insert("seed".into(), json!(7));
    let report = run(&record, PROMPT, &model).unwrap();
    let d = diverged(&report);
    let position = d.position.unwrap() as usize;
    let ids = record
        .replay
        .as_ref()
        .unwrap()
        .output_tokens
        .clone()
        .unwrap();
    let recorded = d.recorded.as_ref().unwrap();
    let replayed = d.replayed.as_ref().unwrap();
    assert_eq!(recorded.id, ids.ids.unwrap()[position]);
    assert_ne!(recorded.id, replayed.id);
    assert!(
        replayed.text.is_some() && replayed.logprob.is_some(),
        "{d:?}"
    );
    assert!(!d.alternatives.is_empty(), "{d:?}");
    assert!(
        d.reason.starts_with(&format!("token {position}:")),
        "{}",
        d.reason
    );

    // The answer was sampled with top_k 5; the record says 40.
    let mut request = sampled(7);
    request["top_k"] = json!(5);
    let mut record = original(&model, &settings(512), PROMPT, request);
    let replay_section = record.replay.as_mut().unwrap();
    replay_section.settings.insert("top_k".into(), json!(40));
    let report = run(&record, PROMPT, &model).unwrap();
    assert!(diverged(&report).position.is_some(), "{report:?}");
}

#[test]
fn a_record_claiming_another_prompt_model_or_batch_setting_diverges() {
    let dir = TempDir::new("replay").unwrap();
    let model = write_tiny_model(dir.path()).unwrap();

    // The answer came from another prompt; the record commits to PROMPT (and its count).
    let other = "kalo mine ka ~ kalo mine ka ~ kalo mine ka ~ kalo kalo";
    let honest = original(&model, &settings(512), PROMPT, sampled(7));
    let mut record = original(&model, &settings(512), other, sampled(7));
    record.prompt = honest.prompt.clone();
    let report = run(&record, PROMPT, &model).unwrap();
    assert!(diverged(&report).position.is_some(), "{report:?}");

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
        let mut record = original(&path, &settings(512), PROMPT, sampled(7));
        record.model = honest.model.clone();
        let report = run(&record, PROMPT, &model).unwrap();
        assert!(diverged(&report).position.is_some(), "{report:?}");
    }

    // The answer came from an engine with ubatch 8 (the prompt split in batches of 8); the
    // record says 512.
    let mut record = original(&model, &settings(8), PROMPT, sampled(7));
    record.replay.as_mut().unwrap().ubatch = Some(512);
    let report = run(&record, PROMPT, &model).unwrap();
    assert!(diverged(&report).position.is_some(), "{report:?}");
}

#[test]
fn bad_inputs_are_refused_in_one_line() {
    let dir = TempDir::new("replay").unwrap();
    let model = write_tiny_model(dir.path()).unwrap();
    let record = original(&model, &settings(512), PROMPT, sampled(7));
    let one_line = |e: Refusal| {
        let message = e.to_string();
        assert!(!message.contains('\n'), "{message}");
        message
    };

    // A prompt that does not open the commitment.
    let e = run(&record, "kalo", &model).unwrap_err();
    assert!(matches!(e, Refusal::Prompt), "{e}");
    one_line(e);

    // Weights with other digests.
    let other = dir.path().join("other.gguf");
    std::fs::write(
        &other,
        tiny_llama(&TinyLlama {
            seed: 3,
            ..TinyLlama::default()
        })
        .build(),
    )
    .unwrap();
    let e = run(&record, PROMPT, &other).unwrap_err();
    assert!(one_line(e).contains("sha256"));

    // Another engine binary: refused, then run when allowed and reported as such.
    let mut foreign = record.clone();
    foreign
        .replay
        .as_mut()
        .unwrap()
        .engine
        .as_mut()
        .unwrap()
        .binary_sha256 = Some(provenance::digest::sha256(b"another build"));
    let e = run(&foreign, PROMPT, &model).unwrap_err();
    assert!(one_line(e).contains("--allow-other-engine"));
    let report = replay(&Inputs {
        record: &foreign,
        prompt: PROMPT.as_bytes(),
        salt: &Salt::from_bytes(SALT),
        model: &model,
        engine: EngineChoice::Binary(binary()),
        allow_other_engine: true,
    })
    .unwrap();
    assert!(report.matched() && report.engine.other_engine, "{report:?}");

    // An engine that will not start.
    let e = replay(&Inputs {
        record: &record,
        prompt: PROMPT.as_bytes(),
        salt: &Salt::from_bytes(SALT),
        model: &model,
        engine: EngineChoice::Binary("/bin/false".into()),
        allow_other_engine: true,
    })
    .unwrap_err();
    assert!(one_line(e).starts_with("engine: llama-server exited"));

    // A record missing a value.
    let mut missing = record.clone();
    missing.replay.as_mut().unwrap().batch = None;
    let e = run(&missing, PROMPT, &model).unwrap_err();
    assert!(one_line(e).contains("replay.batch"));
}

#[test]
fn a_running_server_with_other_settings_is_refused() {
    let dir = TempDir::new("replay").unwrap();
    let model = write_tiny_model(dir.path()).unwrap();
    let record = original(&model, &settings(512), PROMPT, sampled(7));
    let server = LlamaServer::start(&model, &["--ctx-size", "512", "--parallel", "2"]).unwrap();
    let salt = Salt::from_bytes(SALT);
    let inputs = |allow, url: &str| Inputs {
        record: &record,
        prompt: PROMPT.as_bytes(),
        salt: &salt,
        model: &model,
        engine: EngineChoice::Server(provenance_replay::Endpoint::parse(url).unwrap()),
        allow_other_engine: allow,
    };
    // Its binary cannot be checked.
    assert!(
        replay(&inputs(false, &server.url()))
            .unwrap_err()
            .to_string()
            .contains("cannot be checked")
    );
    // It has two slots.
    let e = replay(&inputs(true, &server.url()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("the server has 2 slots"), "{e}");
    // A server with the recorded settings replays, reported as another engine.
    drop(server);
    let server = LlamaServer::start(&model, &settings_args()).unwrap();
    let report = replay(&inputs(true, &server.url())).unwrap();
    assert!(report.matched() && report.engine.other_engine, "{report:?}");
}

#[test]
fn gemma_seeded_answer_replays_and_another_seed_diverges() {
    let model = gemma_path().unwrap();
    let prompt = "The lighthouse keeper opened the bottle and read";
    let request = json!({"n_predict": 16, "seed": 5, "temperature": 0.9, "top_k": 40});
    let record = original(&model, &settings(512), prompt, request);
    let report = run(&record, prompt, &model).unwrap();
    assert!(report.matched(), "{report:?}");

    let mut other = record.clone();
    other
        .replay
        .as_mut()
        .unwrap()
        .settings
        .insert("seed".into(), json!(6));
    let report = run(&other, prompt, &model).unwrap();
    let d = diverged(&report);
    assert!(d.replayed.as_ref().unwrap().text.is_some(), "{d:?}");
}
