//! The official `openai` and `ollama` Python packages, unmodified, through `provenance serve`
//! (`tests/clients/*.py`, installed by `.ci/python-clients.sh`): the `openai` client against a
//! real llama-server with the tiny GGUF, the `ollama` client against a canned upstream that
//! answers as Ollama's published API documents (no Ollama server can be installed here). Every
//! answer they assembled verifies against its event.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod serve_common;

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use serve_common::{curl, llama, read_request, serve_model, verify_model};

/// The interpreter of the venv `.ci/python-clients.sh` makes.
fn python() -> PathBuf {
    provenance_harness::clients_python().unwrap_or_else(|e| panic!("{e}"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tiny() -> PathBuf {
    repo().join("fixtures/gguf/valid/tiny-llama-f16.gguf")
}

/// Runs a client script against `base`; returns its summary.
fn client(script: &str, base: &str) -> Value {
    let out = Command::new(python())
        .arg(repo().join("tests/clients").join(script))
        .arg(base)
        .args(["--header-prefix", "provenance-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Checks one request of a summary: its headers point to an event that verifies against the
/// text the client assembled and the prompt.
fn check(dir: &Path, base: &str, result: &Value, prompt: &str, model: &Path) {
    let headers: Vec<(String, String)> = result["headers"]
        .as_object()
        .unwrap_or_else(|| panic!("no provenance headers in {result}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let text = result["text"].as_str().unwrap();
    assert!(!text.is_empty());
    verify_model(dir, base, &headers, text, prompt, model);
}

#[test]
fn openai_package_through_the_proxy_to_llama_server() {
    let llama = llama(&tiny());
    let dir = tempfile::tempdir().unwrap();
    let server = serve_model(dir.path(), &llama.url(), &tiny(), &[]);
    let summary = client("openai_client.py", &server.base);
    let question = "Name three primary colours.";
    let messages = format!(r#"{{"messages":[{{"content":"{question}","role":"user"}}]}}"#);
    for (key, prompt) in [
        ("chat", messages.as_str()),
        ("chat_stream", messages.as_str()),
        ("completion", "The three primary colours are"),
        ("completion_stream", "The three primary colours are"),
    ] {
        check(dir.path(), &server.base, &summary[key], prompt, &tiny());
    }
}

/// Answers as Ollama does (shapes from its API documentation), streamed unless
/// `"stream": false`.
fn ollama_upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || ollama_answer(stream));
        }
    });
    port
}

fn ollama_answer(mut stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    while let Some((head, body)) = read_request(&mut reader) {
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let chat = head.starts_with("POST /api/chat");
        let piece = |text: &str, done: bool| {
            let mut object = serde_json::json!({
                "model": body["model"], "created_at": "2023-08-04T08:52:19.385406455-07:00", "done": done,
            });
            if chat {
                object["message"] = serde_json::json!({"role": "assistant", "content": text});
            } else {
                object["response"] = Value::from(text);
            }
            if done {
                object["done_reason"] = Value::from("stop");
                object["total_duration"] = Value::from(4883583458u64);
                object["prompt_eval_count"] = Value::from(26);
                object["eval_count"] = Value::from(3);
            }
            object
        };
        let response = if body["stream"] == Value::Bool(false) {
            let mut whole = piece("The sky is blue.", true);
            if !chat {
                whole["context"] = serde_json::json!([1, 2, 3]);
            }
            let text = whole.to_string();
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\n\r\n{text}",
                text.len()
            )
        } else {
            let mut out = String::from(
                "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n",
            );
            for (text, done) in [
                ("The", false),
                (" sky is", false),
                (" blue.", false),
                ("", true),
            ] {
                let line = format!("{}\n", piece(text, done));
                out.push_str(&format!("{:x}\r\n{line}\r\n", line.len()));
            }
            out.push_str("0\r\n\r\n");
            out
        };
        if stream.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

#[test]
fn ollama_package_through_the_proxy_to_recorded_ollama_answers() {
    let port = ollama_upstream();
    let dir = tempfile::tempdir().unwrap();
    let server = serve_model(
        dir.path(),
        &format!("http://127.0.0.1:{port}"),
        &tiny(),
        &[],
    );
    let summary = client("ollama_client.py", &server.base);
    let question = "Why is the sky blue?";
    let messages = format!(r#"{{"messages":[{{"content":"{question}","role":"user"}}]}}"#);
    for (key, prompt) in [
        ("generate", question),
        ("generate_stream", question),
        ("chat", messages.as_str()),
        ("chat_stream", messages.as_str()),
    ] {
        assert_eq!(summary[key]["done_reason"], "stop", "{key}");
        check(dir.path(), &server.base, &summary[key], prompt, &tiny());
    }
    // Nothing else was touched: the client got exactly the upstream's objects.
    assert_eq!(summary["generate_stream"]["objects"], 4);
    let _ = curl(&[&format!("{}/api/tags", server.base)]);
}
