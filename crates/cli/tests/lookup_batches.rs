//! `provenance lookup ingest --batch-bytes`: batches end at the byte cap, as the report says.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::process::Command;

use provenance_fixtures as kit;

const BIN: &str = env!("CARGO_BIN_EXE_provenance");

/// Runs `lookup ingest` on `file` into a fresh index with `args`; returns its standard output.
fn ingest(dir: &std::path::Path, name: &str, file: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["lookup", "ingest", "--db"])
        .arg(dir.join(name))
        .args(args)
        .arg(file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    stdout
}

#[test]
fn batch_bytes_cuts_ingest_batches() {
    let dir = tempfile::tempdir().unwrap();
    let keys = kit::golden_keys();
    let lines: Vec<String> = (0..5)
        .map(|i| kit::synthetic_event(&keys, i).as_json())
        .collect();
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let each = ingest(dir.path(), "a.sqlite", &file, &["--batch-bytes", "1"]);
    assert!(
        each.contains("5 indexed, 0 already indexed, 0 rejected"),
        "{each}"
    );
    assert!(each.contains(", 5 batches)"), "{each}");
    let default = ingest(dir.path(), "b.sqlite", &file, &[]);
    assert!(default.contains(", 1 batch)"), "{default}");
    let bad = Command::new(BIN)
        .args(["lookup", "ingest", "--db"])
        .arg(dir.path().join("c.sqlite"))
        .args(["--batch-bytes", "lots"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--batch-bytes"));
}
