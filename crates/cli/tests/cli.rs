//! Tests of the `provenance` binary itself: arguments in, stdout/stderr/exit status out.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

#[allow(dead_code)] // Each test file uses part of it.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use common::Tmp;

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_provenance"));
    cmd.env_remove("PROVENANCE_PASSPHRASE");
    cmd
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn run_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut command = bin();
    command.args(args);
    let (output, written) = common::output_with_stdin(command, stdin);
    written.unwrap();
    output
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// JSON Lines output, parsed; asserts every line has the envelope shape.
fn messages(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            assert!(v["type"].is_string() && v.get("data").is_some(), "{l}");
            v
        })
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn keygen(t: &Tmp) -> PathBuf {
    let key = t.path("key.nsec");
    let o = run(&["keygen", "-o", s(&key)]);
    assert!(o.status.success(), "{}", stderr(&o));
    key
}

fn sign(t: &Tmp, key: &Path, text: &str, extra: &[&str]) -> (PathBuf, Output) {
    let out = t.write("answer.txt", text.as_bytes());
    let mut args = vec![
        "sign",
        "--key",
        s(key),
        "--model-name",
        "gemma3:270m",
        "--output-file",
        s(&out),
    ];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let ev = t.write("event.json", &o.stdout);
    (ev, o)
}

#[test]
fn keygen_creates_a_0600_nsec_and_refuses_to_overwrite() {
    let t = Tmp::new("keygen");
    let key = keygen(&t);
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(text.starts_with("nsec1"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let o = run(&["keygen", "-o", s(&key)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("already exists; pass --force"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(&key).unwrap(),
        text,
        "the old key must survive"
    );
    let o = run(&["keygen", "-o", s(&key), "--force", "--json"]);
    assert!(o.status.success());
    let m = messages(&o);
    assert_eq!(m[0]["type"], "key");
    assert!(m[0]["data"]["npub"].as_str().unwrap().starts_with("npub1"));
}

#[test]
fn a_key_readable_by_others_is_refused() {
    let t = Tmp::new("perm");
    let key = keygen(&t);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = t.write("a.txt", b"x");
        let o = run(&[
            "sign",
            "--key",
            s(&key),
            "--model-name",
            "m",
            "--output-file",
            s(&out),
        ]);
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));
    }
}

#[test]
fn encrypted_key_signs_with_the_passphrase_only() {
    let t = Tmp::new("ncryptsec");
    let key = t.path("key.ncryptsec");
    let o = bin()
        .args(["keygen", "--encrypt", "--log-n", "10", "-o", s(&key)])
        .env("PROVENANCE_PASSPHRASE", "correct horse")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .starts_with("ncryptsec1")
    );
    let out = t.write("a.txt", b"hello");
    let sign = |pass: Option<&str>| {
        let mut c = bin();
        c.args([
            "sign",
            "--key",
            s(&key),
            "--model-name",
            "m",
            "--output-file",
            s(&out),
        ]);
        if let Some(p) = pass {
            c.env("PROVENANCE_PASSPHRASE", p);
        }
        c.stdin(Stdio::null()).output().unwrap()
    };
    let o = sign(Some("correct horse"));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = sign(Some("wrong"));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("wrong passphrase"), "{}", stderr(&o));
    let o = sign(None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("PROVENANCE_PASSPHRASE"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn sign_then_verify_with_output_and_prompt_evidence() {
    let t = Tmp::new("roundtrip");
    let key = keygen(&t);
    let prompt = t.write("prompt.txt", b"Why is the sky blue?");
    let out = t.write("answer.txt", b"Rayleigh scattering.");
    let o = run(&[
        "sign",
        "--key",
        s(&key),
        "--model-name",
        "gemma3:270m",
        "--output-file",
        s(&out),
        "--prompt",
        s(&prompt),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = messages(&o);
    assert_eq!(m[0]["type"], "signed");
    let salt = m[0]["data"]["prompt_salt"].as_str().unwrap().to_owned();
    assert!(
        m[0]["data"]["nevent"]
            .as_str()
            .unwrap()
            .starts_with("nevent1")
    );
    let ev = t.write(
        "event.json",
        serde_json::to_string(&m[0]["data"]["event"])
            .unwrap()
            .as_bytes(),
    );

    let o = run(&[
        "verify",
        s(&ev),
        "--output",
        s(&out),
        "--prompt",
        s(&prompt),
        "--salt",
        &salt,
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let m = messages(&o);
    let codes: Vec<&str> = m[0]["data"]["claims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    for want in [
        "event.id.match",
        "event.sig.valid",
        "record.content.valid",
        "output.hash.match",
        "prompt.commitment.match",
    ] {
        assert!(codes.contains(&want), "{codes:?}");
    }
    assert!(
        !codes.contains(&"output.hash.asserted"),
        "evidence replaces the assertion: {codes:?}"
    );
    assert_eq!(m.last().unwrap()["type"], "summary");
    assert_eq!(m.last().unwrap()["data"]["verified"], 1);

    // Wrong evidence: exit 1 with the mismatch codes.
    let other = t.write("other.txt", b"Mie scattering.");
    let wrong_salt = "00".repeat(32);
    let o = run(&[
        "verify",
        s(&ev),
        "--output",
        s(&other),
        "--prompt",
        s(&prompt),
        "--salt",
        &wrong_salt,
    ]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(text.starts_with("FAILED"), "{text}");
    assert!(
        text.contains("output.hash.mismatch") && text.contains("prompt.commitment.mismatch"),
        "{text}"
    );
}

#[test]
fn trust_list_decides_the_signer_claim() {
    let t = Tmp::new("trust");
    let key = keygen(&t);
    let (ev, _) = sign(&t, &key, "hi", &[]);
    let pubkey_out = run(&["inspect", "--json", s(&ev)]);
    let author = messages(&pubkey_out)[0]["data"]["event"]["pubkey"]
        .as_str()
        .unwrap()
        .to_owned();
    let trust = t.write(
        "trust.txt",
        format!("# operators\n{author}  # our box\n").as_bytes(),
    );
    let o = run(&["verify", s(&ev), "--trust", s(&trust)]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("signer.trust.listed"));
    // x = 2^256 - 1 is not a field element, so no curve point has it.
    let other = t.write("other.txt", format!("{}\n", "f".repeat(64)).as_bytes());
    let o = run(&["verify", s(&ev), "--trust", s(&other)]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an invalid key in the list is an error: {}",
        stderr(&o)
    );
    let genuine_other = "npub1sg6plzptd64u62a878hep2kev88swjh3tw00gjsfl8f237lmu63q0uf63m";
    let other = t.write("other.txt", format!("{genuine_other}\n").as_bytes());
    let o = run(&["verify", s(&ev), "--trust", s(&other)]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("signer.trust.unlisted"));
}

/// Writes the bare events of a fixture directory into one JSON Lines file.
fn fixture_events(t: &Tmp, dir: &str) -> PathBuf {
    let mut paths: Vec<_> = std::fs::read_dir(repo().join("fixtures/events").join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    let mut lines = String::new();
    for p in paths {
        let fixture: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        lines.push_str(&fixture["event"].to_string());
        lines.push('\n');
    }
    t.write(&format!("{dir}.jsonl"), lines.as_bytes())
}

#[test]
fn fixtures_directories_give_the_documented_exit_codes() {
    let t = Tmp::new("fixtures");
    let valid = fixture_events(&t, "valid");
    let o = run(&["verify", s(&valid)]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let invalid = fixture_events(&t, "invalid");
    let o = run(&["verify", "--json", s(&invalid)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let m = messages(&o);
    let summary = &m.last().unwrap()["data"];
    assert_eq!(summary["errors"], 0);
    // Every structurally broken fixture fails (evidence fixtures pass without their evidence).
    assert!(summary["failed"].as_u64().unwrap() >= 15, "{summary}");
}

#[test]
fn jsonl_batch_goes_on_after_bad_lines() {
    let t = Tmp::new("batch");
    let key = keygen(&t);
    let (ev, _) = sign(&t, &key, "one", &[]);
    let good = std::fs::read_to_string(&ev).unwrap();
    let mut batch = String::new();
    batch.push_str(&good);
    batch.push_str("{\"id\": \"truncated\n");
    batch.push_str("not json at all\n");
    batch.push_str(&good);
    let o = run_stdin(&["verify", "--json", "-"], batch.as_bytes());
    assert_eq!(o.status.code(), Some(2), "errors win: {}", stdout(&o));
    let m = messages(&o);
    let types: Vec<&str> = m.iter().map(|v| v["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["verdict", "error", "error", "verdict", "summary"],
        "{}",
        stdout(&o)
    );
    assert_eq!(m[1]["data"]["input"], "<stdin>:2");
    assert_eq!(m[4]["data"]["verified"], 2);
    assert_eq!(m[4]["data"]["errors"], 2);
}

#[test]
fn invalid_utf8_and_oversized_events_are_item_errors() {
    let mut batch = b"{\"content\":\"\xff\xfe\"}\n".to_vec();
    batch.extend_from_slice(format!("{{\"content\":\"{}\"}}\n", "a".repeat(600 * 1024)).as_bytes());
    let o = run_stdin(&["verify", "-"], &batch);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("<stdin>:1: not valid UTF-8"), "{err}");
    assert!(
        err.contains("<stdin>:2: line is over the limit of 524288 bytes"),
        "{err}"
    );
}

#[test]
fn pretty_printed_single_event_file_is_read_whole() {
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("fixtures/events/valid/full.json")).unwrap(),
    )
    .unwrap();
    let t = Tmp::new("pretty");
    let ev = t.write(
        "pretty.json",
        serde_json::to_string_pretty(&fixture["event"])
            .unwrap()
            .as_bytes(),
    );
    let o = run(&["verify", s(&ev)]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn unusable_inputs_exit_2_with_one_clear_line() {
    let t = Tmp::new("bad");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["verify".into(), "{".into()], "No such file"),
        (vec!["verify".into(), t.write("e.json", b"{\"id\":\"00\"}").to_str().unwrap().into()], "missing field"),
        (vec!["verify".into(), t.write("h.json", format!("{{\"id\":\"{}\",\"pubkey\":\"{}\",\"created_at\":1,\"kind\":1,\"tags\":[],\"content\":\"\",\"sig\":\"{}\"}}", "g".repeat(64), "0".repeat(64), "0".repeat(128)).as_bytes()).to_str().unwrap().into()], "event field `id` must be 64 lowercase hex characters"),
        (vec!["verify".into(), "nevent1qqqqq".into()], "checksum"),
        (vec!["verify".into(), "note1".to_owned() + &"q".repeat(60)], "note1"),
        (vec!["verify".into(), "--salt".into(), "zz".into(), "--prompt".into(), "x".into(), "f".into()], "No such file"),
    ];
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.starts_with("provenance: "), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn bech32m_note_is_refused() {
    // A note with a valid 32-byte payload but the bech32m checksum constant.
    let o = run(&["verify", "--relay", "ws://127.0.0.1:9", &bech32m_note()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bech32m"), "{}", stderr(&o));
}

fn bech32m_note() -> String {
    const CHARSET: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    fn polymod(values: &[u8]) -> u32 {
        let generator = [
            0x3b6a57b2u32,
            0x26508e6d,
            0x1ea119fa,
            0x3d4233dd,
            0x2a1462b3,
        ];
        let mut chk = 1u32;
        for v in values {
            let b = chk >> 25;
            chk = ((chk & 0x1ffffff) << 5) ^ u32::from(*v);
            for (i, g) in generator.iter().enumerate() {
                if (b >> i) & 1 == 1 {
                    chk ^= g;
                }
            }
        }
        chk
    }
    let hrp = b"note";
    let mut data = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for byte in [7u8; 32] {
        acc = (acc << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            data.push(((acc >> bits) & 31) as u8);
        }
    }
    if bits > 0 {
        data.push(((acc << (5 - bits)) & 31) as u8);
    }
    let mut values: Vec<u8> = hrp.iter().map(|c| c >> 5).collect();
    values.push(0);
    values.extend(hrp.iter().map(|c| c & 31));
    values.extend(&data);
    values.extend([0; 6]);
    let m = polymod(&values) ^ 0x2bc830a3;
    data.extend((0..6).map(|i| ((m >> (5 * (5 - i))) & 31) as u8));
    format!(
        "note1{}",
        data.iter()
            .map(|&d| CHARSET[d as usize] as char)
            .collect::<String>()
    )
}

#[test]
fn inspect_shows_nevent_fields_and_never_an_nsec() {
    let t = Tmp::new("inspect");
    let key = keygen(&t);
    let (_, o) = sign(&t, &key, "hi", &["--relay-hint", "ws://127.0.0.1:7777"]);
    let nevent = stderr(&o)
        .lines()
        .find_map(|l| l.strip_prefix("provenance: signed "))
        .unwrap()
        .to_owned();
    let o = run(&["inspect", "--json", &nevent]);
    assert!(o.status.success());
    let m = messages(&o);
    assert_eq!(m[0]["data"]["type"], "nevent");
    assert_eq!(m[0]["data"]["event_kind"], 1988);
    assert_eq!(m[0]["data"]["relays"][0], "ws://127.0.0.1:7777");
    let nsec = std::fs::read_to_string(&key).unwrap();
    let o = run(&["inspect", nsec.trim()]);
    assert!(!stdout(&o).contains(nsec.trim()) && !stderr(&o).contains(nsec.trim()));
}

#[test]
fn help_documents_the_exit_status() {
    let o = run(&["--help"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("EXIT STATUS") && stdout(&o).contains("errors win"));
}

#[test]
fn include_text_publishes_the_output_and_refuses_non_utf8() {
    let t = Tmp::new("include-text");
    let key = keygen(&t);
    let text = "caf\u{e9} \u{1f600}\nsecond line";
    let (ev, _) = sign(&t, &key, text, &["--include-text"]);
    let o = run(&["inspect", "--json", s(&ev)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(messages(&o)[0]["data"]["record"]["output"]["text"], text);
    // Without the flag, only hashes are published.
    let (ev, _) = sign(&t, &key, text, &[]);
    let o = run(&["inspect", "--json", s(&ev)]);
    assert!(
        messages(&o)[0]["data"]["record"]["output"]
            .get("text")
            .is_none()
    );

    let binary = t.write("binary.bin", b"\xff\xfe not text");
    let o = run(&[
        "sign",
        "--key",
        s(&key),
        "--model-name",
        "m",
        "--output-file",
        s(&binary),
        "--include-text",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is not UTF-8 text"), "{}", stderr(&o));
}
