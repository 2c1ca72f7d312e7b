//! What `provenance serve` says at start-up about its upstream: one line when the upstream
//! does not answer (it still starts, and answers 502 until the upstream is up), and a refusal
//! when `--engine-binary` is not the build the upstream reports, since every record would
//! name a binary the upstream does not run. Against the real llama-server.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod serve_common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::mpsc;
use std::time::Duration;

use serve_common::{closed_port, llama, llama_server_path, model, serve_command};

/// `provenance serve` as a child whose stderr lines arrive on a channel.
struct Started {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Started {
    /// The stderr lines that arrive within `wait`.
    fn lines_within(&self, wait: Duration) -> Vec<String> {
        let deadline = std::time::Instant::now() + wait;
        let mut lines = Vec::new();
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(_) => break,
            }
        }
        lines
    }
}

fn start(dir: &Path, upstream: &str, extra: &[&str]) -> Started {
    let mut child = serve_command(dir, upstream, &model(), extra)
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    Started { child, lines }
}

/// A stand-in engine binary whose `--version` states another llama.cpp build.
fn other_build(dir: &Path) -> PathBuf {
    let path = dir.join("llama-server-other");
    std::fs::write(
        &path,
        "#!/bin/sh\necho 'version: 9.9.9 (build 4242, commit deadbee)'\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

#[test]
fn an_upstream_that_does_not_answer_is_named_in_one_line_and_serving_starts() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = format!("http://127.0.0.1:{}", closed_port());
    let server = start(dir.path(), &upstream, &[]);
    let lines = server.lines_within(Duration::from_secs(5));
    assert!(
        lines
            .first()
            .is_some_and(|l| l.contains("serving on http://")),
        "{lines:?}"
    );
    let down: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("does not answer"))
        .collect();
    assert_eq!(down.len(), 1, "{lines:?}");
    assert!(down[0].contains(&upstream), "{}", down[0]);
    assert!(down[0].contains("Connection refused"), "{}", down[0]);
    assert!(down[0].contains("502"), "{}", down[0]);
}

#[test]
fn an_engine_binary_of_another_build_than_the_upstream_is_refused_and_the_same_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let llama = llama(&model());
    let other = other_build(dir.path());
    let mut refused = start(
        dir.path(),
        &llama.url(),
        &["--engine-binary", other.to_str().unwrap()],
    );
    let status = refused.child.wait().unwrap();
    let lines = refused.lines_within(Duration::from_secs(2));
    assert_eq!(status.code(), Some(2), "{lines:?}");
    let text = lines.join("\n");
    assert!(text.contains("llama-server-other"), "{text}");
    assert!(text.contains("llama.cpp b4242-deadbee"), "{text}");
    assert!(text.contains("llama.cpp b0-unknown"), "{text}");

    // The binary the upstream runs: it starts and says nothing more about the engine.
    let same_dir = tempfile::tempdir().unwrap();
    let binary = llama_server_path();
    let server = start(
        same_dir.path(),
        &llama.url(),
        &["--engine-binary", binary.to_str().unwrap()],
    );
    let lines = server.lines_within(Duration::from_secs(3));
    assert!(
        lines
            .first()
            .is_some_and(|l| l.contains("serving on http://")),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 1, "{lines:?}");
}
