//! `provenance verify --quiet` on one event that holds prints the summary (docs/cli.md: only
//! what did not verify, and the summary), so that a quiet check says something.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn event_line(path: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/events")
        .join(path);
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    format!("{}\n", fixture["event"])
}

#[test]
fn quiet_on_one_event_that_holds_prints_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("event.json");
    std::fs::write(&file, event_line("valid/full.json")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_provenance"))
        .args(["verify", "--quiet"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8(o.stdout).unwrap();
    assert_eq!(stdout, "1 event: 1 verified, 0 failed, 0 errors\n");
}
