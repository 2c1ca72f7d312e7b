//! `provenance replay` on the real portable llama-server: the golden fixture replays (exit 0,
//! text and `--json`), a record claiming another seed diverges at a named token (exit 1), and
//! bad inputs get one line and exit 2 (prompt, other engine binary, missing section) or 1
//! (an event that does not verify).

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

#[allow(dead_code)] // Each test file uses part of it.
mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::golden::{Case, text};
use provenance::event::{Limits, parse_event};
use provenance_harness::llama_server_path;
use serde_json::{Value, json};

fn case() -> Case {
    Case::new("replay")
}

fn replay(case: &Case, event: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_provenance"))
        .arg("replay")
        .arg(event)
        .arg("--model")
        .arg(&case.model)
        .arg("--prompt")
        .arg(&case.prompt)
        .args(["--salt", &case.salt])
        .args(extra)
        .output()
        .unwrap()
}

fn with_binary(case: &Case, event: &Path, extra: &[&str]) -> Output {
    let binary = llama_server_path().unwrap();
    let mut args = vec!["--llama-server", binary.to_str().unwrap()];
    args.extend_from_slice(extra);
    replay(case, event, &args)
}

#[test]
fn the_golden_answer_replays_and_a_claimed_other_seed_diverges() {
    let case = case();
    let event = case.tmp.write("event.json", case.event.as_bytes());
    let out = with_binary(&case, &event, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .starts_with("replay MATCH: 32 output tokens identical on the recorded engine binary"),
        "{stdout}"
    );

    let out = with_binary(&case, &event, &["--json"]);
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"]["result"], "match", "{report}");
    assert_eq!(report["engine"]["other_engine"], false);
    assert_eq!(report["replayed_tokens"], 32);

    // The record claims seed 43; the answer came from 42.
    let other = case.resigned("other-seed.json", |r| {
        r.replay
            .as_mut()
            .unwrap()
            .settings
            .insert("seed".into(), json!(43));
    });
    let out = with_binary(&case, &other, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("replay DIVERGED: token "), "{stdout}");
    assert!(
        stdout.contains("\n  recorded: ") && stdout.contains("\n  replayed: "),
        "{stdout}"
    );
    assert!(stdout.contains("\n  top there: "), "{stdout}");
    let out = with_binary(&case, &other, &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"]["result"], "diverged", "{report}");
    assert!(report["outcome"]["position"].is_u64(), "{report}");
    assert!(
        report["outcome"]["replayed"]["logprob"].is_f64(),
        "{report}"
    );
}

#[test]
fn bad_inputs_get_one_line_and_exit_2_or_1() {
    let case = case();
    let event = case.tmp.write("event.json", case.event.as_bytes());
    let one_line = |out: &Output, code: i32, needle: &str| {
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let stderr = text(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    };

    // A prompt that does not open the commitment.
    let wrong = case.tmp.write("wrong.txt", b"kalo");
    let out = Command::new(env!("CARGO_BIN_EXE_provenance"))
        .args(["replay", event.to_str().unwrap(), "--model"])
        .arg(&case.model)
        .arg("--prompt")
        .arg(&wrong)
        .args(["--salt", &case.salt, "--llama-server"])
        .arg(llama_server_path().unwrap())
        .output()
        .unwrap();
    one_line(&out, 2, "do not open the record's prompt commitment");

    // Another engine binary (the same program with one more byte): refused, then replayed
    // when allowed, and said so.
    let binary = std::fs::read(llama_server_path().unwrap()).unwrap();
    let other = case.tmp.path("llama-server-other");
    std::fs::write(&other, [binary.as_slice(), b"\0"].concat()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let other = other.to_str().unwrap();
    let out = replay(&case, &event, &["--llama-server", other]);
    one_line(&out, 2, "pass --allow-other-engine");
    let out = replay(
        &case,
        &event,
        &["--llama-server", other, "--allow-other-engine"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("on ANOTHER engine than recorded"));

    // An engine that will not start.
    let out = replay(
        &case,
        &event,
        &["--llama-server", "/bin/false", "--allow-other-engine"],
    );
    one_line(&out, 2, "engine: llama-server exited during start-up");

    // A record without a replay section.
    let bare = case.resigned("bare.json", |r| r.replay = None);
    one_line(&with_binary(&case, &bare, &[]), 2, "no replay section");

    // An event whose content was changed after signing does not verify: nothing to replay.
    let mut value: Value = serde_json::from_str(case.event.trim()).unwrap();
    let content = value["content"]
        .as_str()
        .unwrap()
        .replace("\"seed\":42", "\"seed\":43");
    value["content"] = json!(content);
    let forged = case.tmp.write("forged.json", value.to_string().as_bytes());
    one_line(
        &with_binary(&case, &forged, &[]),
        1,
        "the event does not verify",
    );

    // No engine named.
    one_line(
        &replay(&case, &event, &[]),
        2,
        "--llama-server BIN or --server URL",
    );
}

/// The golden answer published to a relay and replayed by its `nevent`: fetched by the
/// nevent's relay hint, its id checked, replayed; an id that no relay has is one line, exit 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_named_by_its_nevent_is_fetched_and_replayed() {
    use provenance_relay::testing::MockRelay;

    let case = case();
    let event = parse_event(case.event.trim(), &Limits::default()).unwrap();
    let relay = MockRelay::start().await.unwrap();
    let reports = provenance_relay::publish(
        &[relay.url().to_owned()],
        &event,
        &provenance_relay::Options::default(),
    )
    .await;
    assert!(reports[0].outcome.as_ref().unwrap().accepted);
    let nevent = |id| {
        provenance::nip19::Nevent {
            id,
            relays: vec![relay.url().to_owned()],
            author: None,
            kind: Some(1988),
        }
        .encode()
        .unwrap()
    };
    let run = |name: String| {
        let case = &case;
        let binary = llama_server_path().unwrap();
        move || {
            Command::new(env!("CARGO_BIN_EXE_provenance"))
                .args(["replay", &name, "--model"])
                .arg(&case.model)
                .arg("--prompt")
                .arg(&case.prompt)
                .args(["--salt", &case.salt, "--llama-server"])
                .arg(binary)
                .output()
                .unwrap()
        }
    };
    let out = tokio::task::block_in_place(run(nevent(event.id)));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("replay MATCH"),
        "{}",
        text(&out.stdout)
    );

    let missing = provenance::EventId::from_byte_array([7; 32]);
    let out = tokio::task::block_in_place(run(nevent(missing)));
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("not found on 1 relays") && stderr.trim_end().lines().count() == 1,
        "{stderr}"
    );
}
