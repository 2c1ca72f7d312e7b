//! The exact bytes `provenance verify` writes, JSON Lines and text: one full `--json` verdict
//! line of the golden `full` event (every record field, evidence claims), one whose record
//! text needs every kind of JSON escape, and a digest of the whole output over every event
//! fixture, so that a faster renderer cannot change a byte unnoticed.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

#[allow(dead_code)] // Each test file uses part of it.
mod common;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use common::Tmp;

/// Runs `provenance verify ARGS` with `stdin`; returns stdout (asserting it is UTF-8).
fn verify(args: &[&str], stdin: &[u8]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_provenance"));
    command.arg("verify").args(args);
    let (o, written) = common::output_with_stdin(command, stdin);
    written.unwrap();
    String::from_utf8(o.stdout).unwrap()
}

fn fixture(path: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/events")
        .join(path);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The fixture's bare event as one JSON line.
fn event_line(fixture: &Value) -> String {
    format!("{}\n", fixture["event"])
}

/// Every event fixture, valid then invalid, in file name order, one per line.
fn all_fixture_lines() -> String {
    let mut lines = String::new();
    for dir in ["valid", "invalid"] {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/events")
            .join(dir);
        let mut names: Vec<_> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort();
        for name in names {
            lines.push_str(&event_line(&fixture(&format!("{dir}/{name}"))));
        }
    }
    lines
}

const FULL_VERDICT: &str = r##"{"type":"verdict","data":{"input":"<stdin>:1","id":"dba7e1654f777ea2cf1c6591718c5457130ab4b626b84b844736452fceea161b","author":"385c3a6ec0b9d57a4330dbd6284989be5bd00e41c535f9ca39b6ae7c521b81cd","kind":1988,"holds":true,"claims":[{"code":"event.id.match","status":"proven","detail":"id dba7e1654f777ea2cf1c6591718c5457130ab4b626b84b844736452fceea161b recomputed"},{"code":"event.sig.valid","status":"proven","detail":"BIP-340 signature by 385c3a6ec0b9d57a4330dbd6284989be5bd00e41c535f9ca39b6ae7c521b81cd over id dba7e1654f777ea2cf1c6591718c5457130ab4b626b84b844736452fceea161b"},{"code":"event.kind.provenance","status":"proven","detail":"kind 1988"},{"code":"record.content.valid","status":"proven","detail":"canonical record, version 1"},{"code":"event.tags.consistent","status":"proven","detail":"x, m and model tags match the record"},{"code":"model.digest.asserted","status":"asserted","detail":"model \"gemma-3-270m-it-Q4_K_M.gguf\", weights sha256 d61bd2b6ee1998598ca9ba633fd8a4709362916a26140f1c3c5baf8e6bcb74b3"},{"code":"generation.settings.asserted","status":"asserted","detail":"runtime and sampling settings of llama.cpp b6000, not replayed"},{"code":"attestation.evidence.unchecked","status":"unknown","detail":"sev-snp evidence 845e91831319e89c4d656bdb80c278ac09a7230d61e5dfd2e1b1fbb436ac8917 not checked"},{"code":"signer.trust.unknown","status":"unknown","detail":"no trust list given: the author is whoever holds the key"},{"code":"output.hash.match","status":"proven","detail":"sha256 4489b99a287517af6e7c4bdab43bf6ba44326429bf416f10352ce3b59c1bf800 of 32 bytes matches"},{"code":"prompt.commitment.match","status":"proven","detail":"disclosed prompt (54 bytes, format text) opens the commitment"}],"record":{"v":1,"output":{"sha256":"4489b99a287517af6e7c4bdab43bf6ba44326429bf416f10352ce3b59c1bf800","bytes":32,"mime":"text/plain; charset=utf-8","normalized":{"rule":"nfc-ws-v1","sha256":"557be7eca214f1889cdb6dfa348eb7c937648c9d6be72bfc1b8204adf7552a43"},"finish_reason":"stop","tokens":8},"prompt":{"scheme":"sha256-salted-v1","format":"text","commitment":"862f138624f0b7e74972b7ad2b4d4c84aec00b8b9212d5dda1f59a23416ecfcc","tokens":14},"model":{"name":"gemma-3-270m-it-Q4_K_M.gguf","sha256":"d61bd2b6ee1998598ca9ba633fd8a4709362916a26140f1c3c5baf8e6bcb74b3","blake3":"1111111111111111111111111111111111111111111111111111111111111111","tensor_root":"2222222222222222222222222222222222222222222222222222222222222222","bytes":253115680,"architecture":"gemma3","quantization":"Q4_K_M","parameters":268098176,"tokenizer_sha256":"5f97e3774c51edd1d63706c2ec3826c564a067794770cdab0f8c4797971cacf9","chat_template_sha256":"5cde0f1298f41f7d1c8b907a36992a7a513225a2615bd6e307bf1a9149b06b40"},"runtime":{"engine":"llama.cpp","version":"b6000","binary_sha256":"5ec30eef7dc17ed011aad0ff850ff19f242392c3276865a05caa06cecbc6f96a","params":{"batch":2048,"cache_prompt":false,"ctx":4096,"flash_attn":"off","threads":2,"ubatch":512}},"sampling":{"seed":42,"temperature":0.8,"top_k":40,"top_p":0.95,"min_p":0.05,"repeat_penalty":1.0,"presence_penalty":0.0,"frequency_penalty":0.0,"max_tokens":64,"samplers":["penalties","top_k","top_p","min_p","temperature"]},"request":{"api":"openai.chat","sha256":"5e4ce7b36ba37b78a5d5f9fd08e6b7b54ba6879d651aa46ec9e1d6fa24ebe30a"},"response":{"sha256":"0339b1bd266794d1a92672e2c2e63079da1a86447cc684d76dc7e219b6d37d34","bytes":14,"streamed":true},"time":{"start_ms":1793491198500,"end_ms":1793491199800},"attestations":[{"kind":"sev-snp","sha256":"845e91831319e89c4d656bdb80c278ac09a7230d61e5dfd2e1b1fbb436ac8917"}]}}}"##;

#[test]
fn a_full_verdict_line_is_pinned_byte_for_byte() {
    let t = Tmp::new("verify-output");
    let full = fixture("valid/full.json");
    let evidence = &full["evidence"];
    let output = t.write_str(
        "output.txt",
        evidence["output"].as_str().unwrap().as_bytes(),
    );
    let prompt = t.write_str(
        "prompt.txt",
        evidence["prompt"].as_str().unwrap().as_bytes(),
    );
    let salt = evidence["salt"].as_str().unwrap();
    let out = verify(
        &[
            "--json", "-", "--output", &output, "--prompt", &prompt, "--salt", salt,
        ],
        event_line(&full).as_bytes(),
    );
    let first = out.lines().next().unwrap();
    assert_eq!(first, FULL_VERDICT);
}

const HARD_TEXT_VERDICT: &str = r##"{"type":"verdict","data":{"input":"<stdin>:1","id":"096baabb8a55c8717da4a6df9bf6d31b716ff0b0176c3cf35113ecb5cca58913","author":"385c3a6ec0b9d57a4330dbd6284989be5bd00e41c535f9ca39b6ae7c521b81cd","kind":1988,"holds":true,"claims":[{"code":"event.id.match","status":"proven","detail":"id 096baabb8a55c8717da4a6df9bf6d31b716ff0b0176c3cf35113ecb5cca58913 recomputed"},{"code":"event.sig.valid","status":"proven","detail":"BIP-340 signature by 385c3a6ec0b9d57a4330dbd6284989be5bd00e41c535f9ca39b6ae7c521b81cd over id 096baabb8a55c8717da4a6df9bf6d31b716ff0b0176c3cf35113ecb5cca58913"},{"code":"event.kind.provenance","status":"proven","detail":"kind 1988"},{"code":"record.content.valid","status":"proven","detail":"canonical record, version 1"},{"code":"event.tags.consistent","status":"proven","detail":"x, m and model tags match the record"},{"code":"output.hash.asserted","status":"asserted","detail":"output sha256 bf22798790e95ef61af76731c4a7ec25c1062199f3cb4c4e0357db7b5446daec (116 bytes, text/plain; charset=utf-8)"},{"code":"prompt.commitment.absent","status":"unknown","detail":"no prompt commitment"},{"code":"model.digest.absent","status":"unknown","detail":"model \"météo\\u{2028}😀\" is named without a weights digest"},{"code":"signer.trust.unknown","status":"unknown","detail":"no trust list given: the author is whoever holds the key"}],"record":{"v":1,"output":{"sha256":"bf22798790e95ef61af76731c4a7ec25c1062199f3cb4c4e0357db7b5446daec","bytes":116,"mime":"text/plain; charset=utf-8","normalized":{"rule":"nfc-ws-v1","sha256":"c34bd80e763a20d288f83675fdd9420eced1b8d2f167d65ea4f19a0d5749a370"},"finish_reason":"length","text":"tab\there, nul\u0000, bell\u0007, del, \"quotes\" \\ back line para 😀 𝄞 </script><script>alert(1)</script> café café"},"model":{"name":"météo 😀"}}}}"##;

#[test]
fn a_verdict_needing_every_json_escape_is_pinned_byte_for_byte() {
    let hard = fixture("valid/hard-text.json");
    let out = verify(&["--json", "-"], event_line(&hard).as_bytes());
    let first = out.lines().next().unwrap();
    assert_eq!(first, HARD_TEXT_VERDICT);
}

#[test]
fn the_output_over_every_fixture_is_pinned() {
    // Pinned again when the record gained its optional `replay` section, and again for its
    // `payment` section: each time the one difference is the list of known fields in the
    // `unknown field` error of a fixture, which gained the new name (the earlier digests were
    // reproduced with that word taken out).
    let input = all_fixture_lines();
    let mut wrong = Vec::new();
    for (args, expected) in [
        (
            &["--json", "-"][..],
            "7cea18a24ebb347a678fa44b7796b79058d4f7fc9340f63b0a76bd7092471a5e",
        ),
        (
            &["-"][..],
            "daca7de605aa098d038c1edcb581cdfdc4ee6ada4887180a9883584b42064b32",
        ),
        (
            &["--json", "--quiet", "-"][..],
            "e120a2bee2adb9901af170106ba26fed638dd7d8ae3ab70c35a4be2691e835ec",
        ),
    ] {
        let out = verify(args, input.as_bytes());
        let digest = provenance::digest::sha256(out.as_bytes()).to_string();
        if digest != expected {
            wrong.push(format!("verify {args:?}: sha256 {digest}, wrote:\n{out}\n"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
