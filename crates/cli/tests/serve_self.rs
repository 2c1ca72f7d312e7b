//! `provenance serve --upstream` naming the server's own address is refused at start-up, with
//! one line, instead of forwarding every request to itself until the descriptors run out.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod serve_common;

use std::process::Command;
use std::time::{Duration, Instant};

use serve_common::{key_file, model};

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(upstream: &str, listen: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_provenance"))
        .args(["serve", "--upstream", upstream, "--listen", listen])
        .arg("--model")
        .arg(model())
        .arg("--key")
        .arg(key_file(dir.path()))
        .arg("--store")
        .arg(dir.path().join("events.sqlite"))
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            return (false, String::from_utf8_lossy(&out.stderr).into_owned());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_upstream_that_is_the_server_itself_is_refused() {
    let port = free_port();
    for (upstream, listen) in [
        (
            format!("http://127.0.0.1:{port}"),
            format!("127.0.0.1:{port}"),
        ),
        (
            format!("http://localhost:{port}/"),
            format!("127.0.0.1:{port}"),
        ),
        (
            format!("http://127.0.0.1:{port}"),
            format!("0.0.0.0:{port}"),
        ),
    ] {
        let (ok, stderr) = serve(&upstream, &listen);
        assert!(!ok, "{upstream} on {listen} was not refused: {stderr}");
        assert!(
            stderr.contains("this server's own address") && stderr.trim().lines().count() == 1,
            "{upstream} on {listen}: {stderr}"
        );
    }
}
