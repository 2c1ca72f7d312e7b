//! `llama-server` (built by `.ci/llama-server.sh`) serving the tiny generated model and the
//! real Gemma 3 270M: start-up, the PID-scoped shutdown, and the determinism that replay
//! relies on (same token ids for two identical `/completion` requests with a fixed seed and
//! `cache_prompt: false`).

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use provenance_harness::{Error, LlamaServer, TempDir, gemma_path, write_tiny_model};
use serde_json::{Value, json};

/// The server settings of these tests: small context, one slot, two threads.
const ARGS: &[&str] = &["--ctx-size", "512", "--parallel", "1", "--threads", "2"];

fn completion(server: &LlamaServer, body: &Value) -> Value {
    let exchange = server.post_json("/completion", body).unwrap();
    assert_eq!(exchange.status, 200, "{}", exchange.text());
    exchange.json().unwrap()
}

fn token_ids(response: &Value) -> Vec<u64> {
    response["tokens"]
        .as_array()
        .unwrap_or_else(|| panic!("no tokens in {response}"))
        .iter()
        .map(|t| t.as_u64().unwrap())
        .collect()
}

/// Two identical sampled requests give the same token ids, a different seed gives others.
fn assert_deterministic(server: &LlamaServer, prompt: &str, n_predict: u64) -> Value {
    let request = |seed: u64| {
        json!({
            "prompt": prompt,
            "n_predict": n_predict,
            "seed": seed,
            "temperature": 1.0,
            "cache_prompt": false,
            "return_tokens": true,
        })
    };
    let first = completion(server, &request(7));
    let second = completion(server, &request(7));
    let tokens = token_ids(&first);
    assert!(!tokens.is_empty(), "no tokens generated: {first}");
    assert_eq!(tokens, token_ids(&second), "same request, different tokens");
    assert_eq!(first["content"], second["content"]);
    let settings = &first["generation_settings"];
    assert_eq!(settings["seed"], 7, "{settings}");
    let others: Vec<Vec<u64>> = (8..11)
        .map(|seed| token_ids(&completion(server, &request(seed))))
        .collect();
    assert!(
        others.iter().any(|other| *other != tokens),
        "four seeds, one output: sampling ignored the seed"
    );
    first
}

#[test]
fn tiny_model_is_served_deterministically() {
    let dir = TempDir::new("tiny-model").unwrap();
    let model = write_tiny_model(dir.path()).unwrap();
    let size = std::fs::metadata(&model).unwrap().len();
    assert!(size < 1 << 20, "tiny model is {size} bytes");
    let server = LlamaServer::start(&model, ARGS).unwrap();

    let props = server.get("/props").unwrap().json().unwrap();
    assert_eq!(props["model_path"], "tiny-llama-f16.gguf", "{props}");

    let first = assert_deterministic(&server, "kalo mine", 24);
    assert_eq!(token_ids(&first).len() as u64, first["tokens_predicted"]);

    // The tiny vocabulary has whole words but no pieces to merge them from, and no "▁"
    // token: SentencePiece falls back to byte tokens (id = 3 + byte), and the escaped spaces
    // (U+2581, with the leading one SentencePiece adds) come back as that character.
    let tokens = server
        .post_json("/tokenize", &json!({"content": "ka ~"}))
        .unwrap()
        .json()
        .unwrap()["tokens"]
        .clone();
    let bytes: Vec<u64> = "\u{2581}ka\u{2581}~"
        .bytes()
        .map(|b| 3 + u64::from(b))
        .collect();
    assert_eq!(tokens, json!(bytes));
    let text = server
        .post_json("/detokenize", &json!({"tokens": tokens}))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(text["content"], "\u{2581}ka\u{2581}~");

    // The chat template of the tiny model applies.
    let chat = server
        .post_json(
            "/apply-template",
            &json!({"messages": [{"role": "user", "content": "hi"}]}),
        )
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(chat["prompt"], "[INST] hi [/INST]", "{chat}");
}

#[test]
fn gemma_is_served_deterministically() {
    let server = LlamaServer::start(&gemma_path().unwrap(), ARGS).unwrap();
    let first = assert_deterministic(&server, "The capital of France is", 12);
    let text = first["content"].as_str().unwrap();
    assert!(!text.trim().is_empty(), "{first}");

    // Greedy decoding of a factual prompt: the real model writes real words.
    let greedy = completion(
        &server,
        &json!({"prompt": "The Eiffel Tower is in the city of", "n_predict": 8,
                "temperature": 0, "cache_prompt": false}),
    );
    assert!(
        greedy["content"].as_str().unwrap().contains("Paris"),
        "{greedy}"
    );
}

#[test]
fn drop_kills_the_server_it_started() {
    let dir = TempDir::new("tiny-model").unwrap();
    let model = write_tiny_model(dir.path()).unwrap();
    let server = LlamaServer::start(&model, ARGS).unwrap();
    let (pid, address) = (server.pid(), server.address());
    assert!(server.url().starts_with("http://127.0.0.1:"));
    assert_eq!(server.get("/health").unwrap().status, 200);
    drop(server);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} still there"
    );
    assert!(provenance_harness::http::get(address, "/health").is_err());
}

#[test]
fn missing_parts_name_the_script_that_installs_them() {
    let message = Error::LlamaServerMissing {
        path: "nowhere/llama-server".into(),
    }
    .to_string();
    assert!(message.contains(".ci/llama-server.sh"), "{message}");
    let message = Error::GemmaMissing {
        path: "nowhere/model.gguf".into(),
    }
    .to_string();
    assert!(message.contains("scripts/fetch-gemma.sh"), "{message}");

    let missing = LlamaServer::start(std::path::Path::new("no/such/model.gguf"), &[]);
    assert!(
        matches!(
            missing,
            Err(Error::ModelMissing { .. } | Error::LlamaServerMissing { .. })
        ),
        "{missing:?}"
    );
}

/// The binary the tests run is the portable build of `.ci/llama-server.sh` that
/// `llama-server.json` beside it describes: one fixed instruction set (x86-64-v3, no AVX-512,
/// no AMX) and the sha256 recorded there, so that every machine runs the same code path and a
/// third party can rebuild the reference engine. A build tuned to the CPU it was built on
/// crashed on another (AMX in a guest that does not grant it) and gives other tokens.
#[test]
fn the_llama_server_under_test_is_the_recorded_portable_build() {
    let binary = provenance_harness::llama_server_path().unwrap();
    let record = binary.with_file_name("llama-server.json");
    let text = std::fs::read_to_string(&record).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build the portable llama-server with `bash .ci/llama-server.sh`",
            record.display()
        )
    });
    let build: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(build["instruction_set"], "x86-64-v3", "{build}");
    let flags: Vec<&str> = build["cmake_flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for flag in [
        "-DGGML_NATIVE=OFF",
        "-DGGML_AVX2=ON",
        "-DGGML_AVX512=OFF",
        "-DGGML_AMX_INT8=OFF",
        "-DGGML_BACKEND_DL=OFF",
    ] {
        assert!(flags.contains(&flag), "{flag} missing from {flags:?}");
    }
    let sum = std::process::Command::new("sha256sum")
        .arg(&binary)
        .output()
        .unwrap();
    let sum = String::from_utf8(sum.stdout).unwrap();
    assert_eq!(
        sum.split_whitespace().next(),
        build["binary_sha256"].as_str(),
        "{} is not the binary that {} records",
        binary.display(),
        record.display()
    );
}
