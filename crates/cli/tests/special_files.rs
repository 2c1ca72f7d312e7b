//! Special files where a model file is expected: a FIFO with no writer makes `hash` and
//! `verify --model` fail at once with one line, instead of blocking forever in `open`.
#![cfg(unix)]
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the binary with `args`; `None` when it is still running after 10 s (then killed).
fn run_bounded(args: &[&str], home: &std::path::Path) -> Option<Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_provenance"))
        .args(args)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn hash_and_verify_model_refuse_a_fifo_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("model.gguf");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let fifo = fifo.to_str().unwrap();
    for args in [
        vec!["hash", fifo],
        vec!["hash", "--no-cache", fifo],
        vec!["verify", "--model", fifo, "--no-cache", "event.json"],
        vec!["verify", "--model", fifo, "event.json"],
    ] {
        let out = run_bounded(&args, dir.path())
            .unwrap_or_else(|| panic!("{args:?} still blocked after 10 s"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("not a regular file"), "{args:?}: {stderr}");
    }
}
