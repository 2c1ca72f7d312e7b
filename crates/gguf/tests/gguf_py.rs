//! Differential tests against llama.cpp's own Python GGUF reader (PyPI `gguf`), on the
//! generated fixtures and on a real model: the Gemma 3 270M Q4_K_M GGUF.
//!
//! Needs `python3` with `gguf` installed (`python3 -m pip install gguf==0.19.0`; another
//! interpreter can be named in `PROVENANCE_PYTHON`) and the model, installed by
//! `scripts/fetch-gemma.sh` at its default path or named in `PROVENANCE_GEMMA_GGUF`. Missing
//! either is a test failure that says how to install it, never a skip.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::path::{Path, PathBuf};
use std::process::Command;

use provenance_gguf::{Gguf, Hasher, Value, ValueType};
use serde_json::Value as Json;

/// The SHA-256 the PyPI package checks after assembling the file (its `data/SHA256SUMS`).
const GEMMA_SHA256: &str = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";

fn gguf_py(path: &Path) -> Json {
    let python = std::env::var("PROVENANCE_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gguf_py_dump.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}; install Python 3 and `python3 -m pip install gguf==0.19.0`"));
    assert!(
        output.status.success(),
        "gguf-py failed on {}: {}\n(install the reader with `python3 -m pip install gguf==0.19.0`)",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the dump script prints JSON")
}

fn gguf_py_type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::U8 => "UINT8",
        ValueType::I8 => "INT8",
        ValueType::U16 => "UINT16",
        ValueType::I16 => "INT16",
        ValueType::U32 => "UINT32",
        ValueType::I32 => "INT32",
        ValueType::F32 => "FLOAT32",
        ValueType::Bool => "BOOL",
        ValueType::String => "STRING",
        ValueType::Array => "ARRAY",
        ValueType::U64 => "UINT64",
        ValueType::I64 => "INT64",
        ValueType::F64 => "FLOAT64",
    }
}

/// Checks our reading of `path` against gguf-py's, field by field and tensor by tensor.
fn assert_same_as_gguf_py(path: &Path) -> Gguf {
    let bytes = std::fs::read(path).unwrap();
    let ours = Gguf::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let theirs = gguf_py(path);
    let where_ = path.display();
    assert_eq!(
        theirs["data_offset"], ours.data_offset,
        "{where_}: data offset"
    );
    assert_eq!(theirs["alignment"], ours.alignment, "{where_}: alignment");

    let tensors = theirs["tensors"].as_array().unwrap();
    assert_eq!(tensors.len(), ours.tensors.len(), "{where_}: tensor count");
    for (t, o) in tensors.iter().zip(&ours.tensors) {
        assert_eq!(t["name"], o.name.as_str(), "{where_}: tensor order");
        let name = &o.name;
        assert_eq!(
            t["type"],
            o.ggml_type.to_string().as_str(),
            "{where_}: {name} type"
        );
        assert_eq!(
            t["shape"],
            serde_json::json!(o.dims),
            "{where_}: {name} shape"
        );
        assert_eq!(t["offset"], o.data_offset, "{where_}: {name} offset");
        assert_eq!(t["size"], o.n_bytes, "{where_}: {name} size");
        assert_eq!(t["n_elements"], o.n_elements, "{where_}: {name} elements");
    }

    let fields = theirs["fields"].as_object().unwrap();
    let mut compared = 0;
    for entry in &ours.metadata {
        let key = &entry.key;
        let expected = match &entry.value {
            Value::F32(_) | Value::F64(_) => continue,
            Value::Array(a) if a.is_empty() || a.element_type() == ValueType::Array => continue,
            Value::Array(a) => {
                serde_json::json!({"array": gguf_py_type_name(a.element_type()), "len": a.len()})
            }
            Value::Bool(b) => Json::from(*b),
            Value::String(_) => Json::from(entry.value.as_str().unwrap()),
            Value::I8(v) => Json::from(*v),
            Value::I16(v) => Json::from(*v),
            Value::I32(v) => Json::from(*v),
            Value::I64(v) => Json::from(*v),
            other => Json::from(other.as_u64().unwrap()),
        };
        assert_eq!(fields.get(key), Some(&expected), "{where_}: metadata {key}");
        compared += 1;
    }
    assert!(compared > 0, "{where_}: no metadata compared");
    ours
}

#[test]
fn fixtures_read_the_same_as_gguf_py() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/gguf/valid");
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        assert_same_as_gguf_py(&entry.unwrap().path());
        files += 1;
    }
    assert_eq!(files, 3);
}

fn gemma_path() -> PathBuf {
    if let Some(path) = std::env::var_os("PROVENANCE_GEMMA_GGUF") {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .expect("HOME or XDG_CACHE_HOME is set");
    cache.join("provenance/models/gemma-3-270m-q4_k_m.gguf")
}

#[test]
fn gemma_sha256_equals_sha256sum_and_tensors_equal_gguf_py() {
    let path = gemma_path();
    assert!(
        path.is_file(),
        "the Gemma 3 270M GGUF is missing at {}: run scripts/fetch-gemma.sh (or set \
         PROVENANCE_GEMMA_GGUF)",
        path.display()
    );
    let identity = Hasher::new().hash_file(&path).unwrap();

    let sha256sum = Command::new("sha256sum").arg(&path).output().unwrap();
    assert!(sha256sum.status.success());
    let sha256sum = String::from_utf8(sha256sum.stdout).unwrap();
    assert_eq!(
        sha256sum.split_whitespace().next(),
        Some(identity.sha256.to_string().as_str())
    );
    assert_eq!(identity.sha256.to_string(), GEMMA_SHA256);

    let gguf = assert_same_as_gguf_py(&path);
    assert_eq!(identity.tensors.len(), gguf.tensors.len());
    for (t, info) in identity.tensors.iter().zip(&gguf.tensors) {
        assert_eq!(
            (t.name.as_str(), t.offset, t.size),
            (info.name.as_str(), info.data_offset, info.n_bytes)
        );
    }
    let s = &identity.summary;
    assert_eq!(s.architecture.as_deref(), Some("gemma3"));
    assert_eq!(s.file_type_name.as_deref(), Some("Q4_K_M"));
    assert_eq!(
        s.parameter_count,
        gguf.tensors.iter().map(|t| t.n_elements).sum::<u64>()
    );
    assert_eq!(s.vocabulary_size, Some(262_144));
    assert_eq!(s.context_length, gguf.get_u64("gemma3.context_length"));
    assert!(s.vocabulary.is_some() && s.scores.is_some());
}
