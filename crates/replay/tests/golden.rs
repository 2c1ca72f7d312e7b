//! The golden replay fixtures (`fixtures/replay/`, made by `cargo run -p provenance-replay
//! --example make-fixtures` with the portable llama-server) replayed on this machine: the
//! same binary and model bytes must give the same token ids on any x86-64 CPU that runs the
//! build. A failure here on another CPU is a finding about llama.cpp's determinism across
//! machines (report it with the divergence printed), not something to paper over.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::path::{Path, PathBuf};

use provenance::commitment::Salt;
use provenance::event::{Limits, parse_event, verify};
use provenance_harness::{TempDir, gemma_path, llama_server_path, write_tiny_model};
use provenance_replay::{EngineChoice, Inputs, replay};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/replay")
}

fn replay_fixture(name: &str, model: &Path) {
    let dir = fixtures();
    let json = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
    let event = parse_event(json.trim(), &Limits::default()).unwrap();
    let verification = verify(&event);
    let record = verification.record().unwrap().clone();
    assert!(verification.verified().is_some(), "{name} does not verify");
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("{name}.tokens.json"))).unwrap(),
    )
    .unwrap();
    let ids = record
        .replay
        .as_ref()
        .unwrap()
        .output_tokens
        .as_ref()
        .unwrap();
    assert_eq!(
        serde_json::to_value(&ids.ids).unwrap(),
        expected["output_tokens"],
        "{name}: tokens.json and the event disagree"
    );
    let prompt = std::fs::read(dir.join(format!("{name}.prompt.txt"))).unwrap();
    let salt: Salt = std::fs::read_to_string(dir.join("salt.hex"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let report = replay(&Inputs {
        record: &record,
        prompt: &prompt,
        salt: &salt,
        model,
        engine: EngineChoice::Binary(llama_server_path().unwrap()),
        allow_other_engine: false,
    })
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        report.matched(),
        "{name}: the golden answer does not replay on this machine: {report:#?}"
    );
}

#[test]
fn tiny_model_fixtures_replay_token_exact_here() {
    let dir = TempDir::new("golden").unwrap();
    let model = write_tiny_model(dir.path()).unwrap();
    replay_fixture("tiny-greedy", &model);
    replay_fixture("tiny-seeded", &model);
}

#[test]
fn gemma_fixture_replays_token_exact_here() {
    replay_fixture("gemma-seeded", &gemma_path().unwrap());
}
