//! Replay end to end, as an operator and an auditor meet it: `provenance serve --replayable`
//! with the engine settings stated (`--engine-param`) and the engine binary given (its
//! `llama-server.json` build record beside it), in front of the real portable llama-server; a
//! seeded `/completion` answer goes through it; `provenance replay` on the event it signed, with
//! the disclosed prompt and salt, the weights and the same binary, regenerates the same token
//! ids (exit 0). Without the stated settings the record cannot be replayed (exit 2, one line).

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod serve_common;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use serve_common::{curl, header, llama_server_path, serve_model};

/// The settings llama-server is started with, stated to `provenance serve` the same way.
const ENGINE: &[&str] = &[
    "-c",
    "1024",
    "-b",
    "2048",
    "-ub",
    "512",
    "--flash-attn",
    "on",
    "--repack",
];
const STATED: &[&str] = &[
    "--engine-param",
    "batch=2048",
    "--engine-param",
    "ubatch=512",
    "--engine-param",
    "flash_attn=on",
    "--engine-param",
    "repack=true",
];

/// Asks for a seeded answer through the proxy at `base`; writes the event and the prompt into
/// `dir` and returns the salt.
fn answer(dir: &Path, base: &str) -> String {
    let prompt = "kalo mine";
    let body = format!(r#"{{"prompt":"{prompt}","n_predict":16,"temperature":0.9,"seed":11}}"#);
    let (status, headers, response) = curl(&["-d", &body, &format!("{base}/completion")]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&response));
    let salt = header(&headers, "provenance-prompt-salt").to_owned();
    let url = format!("{base}{}", header(&headers, "provenance-event-url"));
    // The event is stored before the last byte went out: it is there at once.
    let (status, _, event) = curl(&[&url]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&event));
    std::fs::write(dir.join("event.json"), &event).unwrap();
    std::fs::write(dir.join("prompt.txt"), prompt).unwrap();
    salt
}

fn replay(dir: &Path, model: &Path, salt: &str, json: bool) -> Output {
    Command::new(env!("CARGO_BIN_EXE_provenance"))
        .arg("replay")
        .arg(dir.join("event.json"))
        .arg("--model")
        .arg(model)
        .arg("--prompt")
        .arg(dir.join("prompt.txt"))
        .args(["--salt", salt])
        .args(json.then_some("--json"))
        .arg("--llama-server")
        .arg(llama_server_path())
        .output()
        .unwrap()
}

#[test]
fn an_answer_signed_by_serve_replays_token_for_token_with_provenance_replay() {
    let dir = tempfile::tempdir().unwrap();
    let model = provenance_harness::write_tiny_model(dir.path()).unwrap();
    let llama = provenance_harness::LlamaServer::start(&model, ENGINE).unwrap();
    let binary = llama_server_path();
    let mut extra = vec!["--replayable", "--engine-binary", binary.to_str().unwrap()];
    extra.extend_from_slice(STATED);
    let salt = {
        let server = serve_model(dir.path(), &llama.url(), &model, &extra);
        answer(dir.path(), &server.base)
    };
    drop(llama);

    // The record carries what replay needs, the build record's flags included.
    let event: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("event.json")).unwrap()).unwrap();
    let record: Value = serde_json::from_str(event["content"].as_str().unwrap()).unwrap();
    let section = &record["replay"];
    assert_eq!(section["batch"], 2048, "{section}");
    assert_eq!(section["flash_attn"], "on", "{section}");
    assert_eq!(
        section["engine"]["instruction_set"], "x86-64-v3",
        "{section}"
    );
    assert_eq!(section["prompt_cache_tokens"], 0, "{section}");

    let out = replay(dir.path(), &model, &salt, true);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("match"), "{stdout}");
}

#[test]
fn an_answer_signed_without_the_engine_settings_is_refused_by_replay_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let model = provenance_harness::write_tiny_model(dir.path()).unwrap();
    let llama = provenance_harness::LlamaServer::start(&model, ENGINE).unwrap();
    let binary = llama_server_path();
    let salt = {
        let server = serve_model(
            dir.path(),
            &llama.url(),
            &model,
            &["--replayable", "--engine-binary", binary.to_str().unwrap()],
        );
        answer(dir.path(), &server.base)
    };
    drop(llama);
    let out = replay(dir.path(), &model, &salt, false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("batch"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
