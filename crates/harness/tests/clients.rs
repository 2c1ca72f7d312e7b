//! The client scripts of tests/clients work against a real server: the official `openai`
//! package (pinned by `.ci/python-clients.sh`) talks to llama-server serving Gemma 3 270M,
//! streaming and not, and assembles the same text both ways. The signing proxy's tests run
//! the same scripts through the proxy. The `ollama` script needs an Ollama API upstream,
//! which only the proxy's recorded-upstream tests provide.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::path::Path;
use std::process::Command;

use provenance_harness::{LlamaServer, clients_python, gemma_path};
use serde_json::Value;

#[test]
fn openai_client_script_talks_to_llama_server() {
    let python = clients_python().unwrap();
    let server = LlamaServer::start(
        &gemma_path().unwrap(),
        &["--ctx-size", "1024", "--parallel", "1", "--threads", "2"],
    )
    .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/openai_client.py");
    let output = Command::new(python)
        .arg(script)
        .arg(server.url())
        .args(["--header-prefix", "server"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}\n{}", server.log());
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(summary["client"].as_str().unwrap().starts_with("openai "));
    for (whole, streamed) in [("chat", "chat_stream"), ("completion", "completion_stream")] {
        let text = summary[whole]["text"].as_str().unwrap();
        assert!(!text.is_empty(), "{summary}");
        // Greedy decoding: the stream assembles to the same text.
        assert_eq!(summary[streamed]["text"], text, "{summary}");
        assert!(summary[streamed]["chunks"].as_u64().unwrap() > 1);
        assert!(
            summary[streamed]["usage"]["completion_tokens"]
                .as_u64()
                .unwrap()
                > 0
        );
        // Headers come through the raw-response API (llama.cpp names itself in `Server`).
        assert_eq!(
            summary[whole]["headers"]["server"], "llama.cpp",
            "{summary}"
        );
        assert_eq!(summary[streamed]["headers"]["server"], "llama.cpp");
    }
}

/// The Ollama exchanges under fixtures/traffic/ollama parse with the `ollama` package's own
/// response models (what `ollama.Client` builds from each body or stream line).
#[test]
fn ollama_fixtures_fit_the_ollama_client_models() {
    let python = clients_python().unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/traffic/ollama");
    let check = r#"
import json, sys
from ollama._types import ChatResponse, GenerateResponse, ListResponse, ShowResponse
models = {"/api/generate": GenerateResponse, "/api/chat": ChatResponse,
          "/api/tags": ListResponse, "/api/show": ShowResponse}
d = sys.argv[1]
n = 0
for entry in json.load(open(f"{d}/index.json")):
    body = open(f"{d}/{entry['name']}.response.body", "rb").read()
    lines = body.split(b"\n")[:-1] if entry["stream"] else [body]
    for line in lines:
        models[entry["path"]](**json.loads(line))
        n += 1
print(n)
"#;
    let output = Command::new(python)
        .args(["-c", check])
        .arg(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let parsed: u32 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap();
    assert_eq!(parsed, 15, "objects parsed: 2 + 7 + 1 + 2 + 1 + 1 + 1");
}
