//! `provenance replay --score` on the real `llama-score` built beside the portable
//! llama-server: the golden seeded answer scores as agreeing at every position with the
//! default margins and tolerance (exit 0, text and `--json`), and with the one-token fallback
//! forced at every position (`--one-token`) reaches the same verdict and names those
//! positions; a record claiming another seed or a substituted token is caught at a named
//! position, decided by one-token decoding (exit 1); and a scoring program without its build
//! record is refused in one line (exit 2).

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

#[allow(dead_code)] // Each test file uses part of it.
mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::golden::{Case, text};
use provenance::record::TokenIds;
use provenance_harness::llama_server_path;
use serde_json::{Value, json};

fn score(case: &Case, event: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_provenance"))
        .arg("replay")
        .arg(event)
        .arg("--model")
        .arg(&case.model)
        .arg("--prompt")
        .arg(&case.prompt)
        .args(["--salt", &case.salt, "--score", "--llama-server"])
        .arg(llama_server_path().unwrap())
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn the_golden_answer_scores_and_a_claimed_other_seed_or_token_is_caught() {
    let case = Case::new("replay-score");
    let event = case.tmp.write("event.json", case.event.as_bytes());
    let out = score(&case, &event, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(
            "score MATCH: the sampler picks the recorded token at all 32 positions with the \
             recorded engine's build"
        ),
        "{stdout}"
    );
    let out = score(&case, &event, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["check"], "score", "{report}");
    assert_eq!(report["outcome"]["result"], "match", "{report}");
    assert_eq!(report["agreeing"], 32, "{report}");
    assert_eq!(report["tool"]["other_engine"], false, "{report}");
    assert!(report["timings"]["decode_ms"].is_f64(), "{report}");
    assert_eq!(report["mode"], "batched", "{report}");

    // The fallback forced at every position: the same verdict, and every position after the
    // first (which comes from the prompt's last token, as in generation) named as decided by
    // one-token decoding, in the text and in the report.
    let out = score(&case, &event, &["--one-token"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("\n  decided by one-token decoding: ") && stdout.contains(" (all)"),
        "{stdout}"
    );
    let out = score(&case, &event, &["--one-token", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let forced: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(forced["outcome"]["result"], "match", "{forced}");
    assert_eq!(forced["mode"], "one-token", "{forced}");
    let positions: Vec<u64> = forced["fallbacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["position"].as_u64().unwrap())
        .collect();
    assert_eq!(&positions[..31], (1..32).collect::<Vec<u64>>(), "{forced}");

    // The record claims seed 43; the answer came from 42.
    let other = case.resigned("other-seed.json", |r| {
        r.replay
            .as_mut()
            .unwrap()
            .settings
            .insert("seed".into(), json!(43));
    });
    let out = score(&case, &other, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("score DIVERGED: token "), "{stdout}");
    assert!(
        stdout.contains("\n  recorded: ") && stdout.contains("\n  picked: "),
        "{stdout}"
    );

    // Token 5 replaced by another id.
    let forged = case.resigned("forged.json", |r| {
        let section = r.replay.as_mut().unwrap();
        let mut ids = section.output_tokens.as_ref().unwrap().ids.clone().unwrap();
        ids[5] = (ids[5] + 1) % 300;
        section.output_tokens = Some(TokenIds::of(&ids, None, true));
    });
    let out = score(&case, &forged, &["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"]["result"], "diverged", "{report}");
    assert_eq!(report["outcome"]["position"], 5, "{report}");
    // Reported from one-token logits, never from the batched pass alone.
    assert!(
        report["fallbacks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["position"] == 5),
        "{report}"
    );
}

#[test]
fn a_scoring_program_without_its_build_record_is_refused_in_one_line() {
    let case = Case::new("replay-score-bad");
    let event = case.tmp.write("event.json", case.event.as_bytes());
    let tool = provenance_replay::score::locate(&llama_server_path().unwrap());
    let copy = case.tmp.path("llama-score");
    std::fs::copy(&tool, &copy).unwrap();
    let out = score(&case, &event, &["--llama-score", copy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no build record"), "{stderr}");
}
