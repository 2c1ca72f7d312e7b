//! `provenance hash`: the real binary on generated models, with fake Ollama stores and a
//! private cache directory.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> String {
    repo()
        .join("fixtures/gguf")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// A scratch directory that is also the cache and the Ollama store of the command.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("provenance-hash-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_provenance"))
            .arg("hash")
            .args(args)
            .env("XDG_CACHE_HOME", self.0.join("cache"))
            .env("OLLAMA_MODELS", self.0.join("ollama"))
            .output()
            .unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn messages(o: &Output) -> Vec<Value> {
    String::from_utf8(o.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn of_type<'a>(messages: &'a [Value], kind: &str) -> Vec<&'a Value> {
    messages
        .iter()
        .filter(|m| m["type"] == kind)
        .map(|m| &m["data"])
        .collect()
}

fn sha256_hex(path: &str) -> String {
    provenance::digest::sha256(&fs::read(path).unwrap()).to_string()
}

#[test]
fn json_lines_describe_the_model_and_every_tensor() {
    let s = Scratch::new("json");
    let path = fixture("valid/tiny-llama-f16.gguf");
    let out = s.run(&["--json", "--no-cache", &path]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = messages(&out);
    let model = of_type(&m, "model");
    assert_eq!(model.len(), 1);
    assert_eq!(model[0]["sha256"], sha256_hex(&path));
    assert_eq!(model[0]["summary"]["architecture"], "llama");
    assert_eq!(model[0]["summary"]["file_type_name"], "F16");
    assert_eq!(model[0]["from_cache"], false);
    assert_eq!(of_type(&m, "tensor").len(), 21);
    assert_eq!(m.last().unwrap()["type"], "summary");
    assert_eq!(m.last().unwrap()["data"]["ok"], true);
    // --no-cache stores nothing.
    assert!(!s.0.join("cache").exists());
}

#[test]
fn human_output_names_the_digests() {
    let s = Scratch::new("human");
    let path = fixture("valid/tiny-llama-q8_0-v2.gguf");
    let out = s.run(&[&path]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("sha256        {}", sha256_hex(&path))),
        "{text}"
    );
    assert!(text.contains("file type     Q8_0 (7)"), "{text}");
    assert!(
        out.stderr.is_empty(),
        "no progress bar when stderr is not a terminal"
    );
}

#[test]
fn compare_lists_differing_tensors_and_exits_1() {
    let s = Scratch::new("compare");
    let a = fixture("valid/tiny-llama-f16.gguf");
    let b = fixture("valid/tiny-llama-q8_0-v2.gguf");
    let out = s.run(&["--json", &a, "--compare", &b]);
    assert_eq!(out.status.code(), Some(1));
    let m = messages(&out);
    let diffs = of_type(&m, "tensor_difference");
    // Norms are F32 ones in both: only the 16 weight matrices differ.
    assert_eq!(diffs.len(), 16);
    assert!(diffs.iter().all(|d| d["kind"] == "changed"));
    let summary = &m.last().unwrap()["data"];
    assert_eq!(summary["differing_tensors"], 16);
    assert_eq!(summary["identical"], false);
    assert_eq!(summary["ok"], false);

    let same = s.run(&["--json", &a, "--compare", &a]);
    assert_eq!(same.status.code(), Some(0));
    assert_eq!(messages(&same).last().unwrap()["data"]["identical"], true);
}

#[test]
fn malformed_and_missing_files_are_one_line_errors_with_status_2() {
    let s = Scratch::new("errors");
    for (input, needle) in [
        (fixture("invalid/overlapping_tensors.gguf"), "overlap"),
        (fixture("invalid/truncated.gguf"), "truncated"),
        (fixture("valid/absent.gguf"), "absent.gguf"),
        ("ollama:../etc".to_owned(), "invalid model name"),
        ("ollama:nothing-here".to_owned(), "not found"),
    ] {
        let out = s.run(&[&input]);
        assert_eq!(out.status.code(), Some(2), "{input}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{input}: {err}");
        assert!(
            err.starts_with("provenance: ") && err.contains(needle),
            "{input}: {err}"
        );
    }
}

fn ollama_model(store: &Path, model: &str, blob: &[u8], named: &str) {
    let manifests = store
        .join("manifests/registry.ollama.ai/library")
        .join(model);
    fs::create_dir_all(&manifests).unwrap();
    fs::create_dir_all(store.join("blobs")).unwrap();
    fs::write(store.join("blobs").join(format!("sha256-{named}")), blob).unwrap();
    let manifest = serde_json::json!({"schemaVersion": 2, "layers": [
        {"mediaType": "application/vnd.ollama.image.model",
         "digest": format!("sha256:{named}"), "size": blob.len()}]});
    fs::write(manifests.join("latest"), manifest.to_string()).unwrap();
}

#[test]
fn ollama_blob_is_checked_against_its_name() {
    let s = Scratch::new("ollama");
    let path = fixture("valid/tiny-llama-f16.gguf");
    let blob = fs::read(&path).unwrap();
    let good = sha256_hex(&path);
    ollama_model(&s.0.join("ollama"), "tiny", &blob, &good);
    let out = s.run(&["--json", "ollama:tiny"]);
    assert_eq!(out.status.code(), Some(0));
    let m = messages(&out);
    assert_eq!(of_type(&m, "model")[0]["store_match"], true);
    assert_eq!(of_type(&m, "model")[0]["sha256"], good);

    // A blob whose bytes do not match its name (a corrupt store) fails the check.
    ollama_model(&s.0.join("ollama"), "corrupt", &blob, &"ab".repeat(32));
    let out = s.run(&["--json", "ollama:corrupt"]);
    assert_eq!(out.status.code(), Some(1));
    let m = messages(&out);
    assert_eq!(of_type(&m, "model")[0]["store_match"], false);
    assert_eq!(m.last().unwrap()["data"]["store_mismatches"], 1);
}

#[test]
fn second_run_is_answered_from_the_cache() {
    let s = Scratch::new("cache");
    let path = s.0.join("m.gguf");
    fs::copy(fixture("valid/tiny-llama-f16.gguf"), &path).unwrap();
    // Entries are only stored for files whose times are at least 2 s old.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let path = path.to_string_lossy().into_owned();
    let first = messages(&s.run(&["--json", &path]));
    let second = messages(&s.run(&["--json", &path]));
    assert_eq!(of_type(&first, "model")[0]["from_cache"], false);
    assert_eq!(of_type(&second, "model")[0]["from_cache"], true);
    assert_eq!(
        of_type(&first, "model")[0]["sha256"],
        of_type(&second, "model")[0]["sha256"]
    );
    assert_eq!(of_type(&first, "tensor"), of_type(&second, "tensor"));
}
