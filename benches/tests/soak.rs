//! The `soak` binary's halves for a few seconds: its canned upstream behind the signing proxy
//! (`provenance_signer::server::Server`, what `provenance serve` runs) with NIP-98 auth, and
//! one client of each kind of its load. The load checks every answer's event and the
//! subscriber's count itself; here it must find nothing wrong and have done each kind of
//! request. scripts/soak-signer.sh runs the same pieces for minutes.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use provenance::nostr::nips::nip19::ToBech32;
use provenance::{Keys, Model};
use provenance_signer::nip98::Allow;
use provenance_signer::server::Server;

/// Kills the child on drop (by its handle: nothing else).
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_short_soak_through_the_proxy_finds_no_failure() {
    let dir = tempfile::tempdir().unwrap();
    let mut upstream = Child(
        Command::new(env!("CARGO_BIN_EXE_soak"))
            .args(["upstream", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(upstream.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let upstream_url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();

    let caller = Keys::generate();
    let key = dir.path().join("caller.nsec");
    std::fs::write(&key, caller.secret_key().to_bech32().unwrap()).unwrap();
    let allow = Allow::parse_list(&caller.public_key().to_bech32().unwrap()).unwrap();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime
        .block_on(
            Server::builder(
                Keys::generate(),
                Model::named("soak"),
                upstream_url.parse().unwrap(),
                dir.path().join("events.sqlite"),
            )
            .listen("127.0.0.1:0".parse().unwrap())
            .auth(Some(allow))
            .bind(),
        )
        .unwrap();
    assert_eq!(
        server.engine().runtime.engine,
        "llama.cpp",
        "the canned upstream answers the start-up probe as llama.cpp"
    );
    let base = format!("http://{}", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = runtime.spawn(server.run(async {
        let _ = stopped.await;
    }));

    let out = Command::new(env!("CARGO_BIN_EXE_soak"))
        .args(["load", "--base", &base, "--seconds", "3", "--key"])
        .arg(&key)
        .args([
            "--whole", "1", "--stream", "1", "--broken", "1", "--unauth", "1",
        ])
        .args(["--subscribers", "1", "--threads", "1"])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("soak: failures 0\n"), "{report}");
    // Each kind of request was made, and answered as it should be.
    for kind in ["whole", "streamed", "broken", "unauthenticated"] {
        let count: u64 = report
            .lines()
            .find_map(|l| l.strip_prefix(&format!("soak: {kind} answers ")))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count of {kind} answers in {report}"));
        assert!(count > 0, "no {kind} answers: {report}");
    }

    let _ = stop.send(());
    runtime.block_on(serving).unwrap().unwrap();
}
