//! Measures what keeps `llama-server`'s token ids identical and what changes them: the same
//! request repeated, a restart, threads, slots, batch and ubatch sizes, flash attention,
//! repack, the prompt cache, `n_probs`, the context size. Prints one line per condition:
//! whether the token ids (and the chosen tokens' log-probabilities) equal the baseline's.
//!
//! ```text
//! cargo run -p provenance-replay --example determinism -- tiny
//! cargo run -p provenance-replay --example determinism -- gemma
//! ```
//!
//! Uses the `llama-server` of `.ci/llama-server.sh` and the models of `provenance-harness`.

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use provenance_harness::{LlamaServer, TempDir, gemma_path, write_tiny_model};
use serde_json::{Value, json};

const BASE: &[&str] = &["--ctx-size", "512", "--parallel", "1", "--threads", "2"];

fn run(
    server: &LlamaServer,
    prompt: &Value,
    cache: bool,
    n_probs: u64,
    temp: f64,
) -> (Vec<u64>, Vec<f64>, Value) {
    let body = json!({"prompt": prompt, "n_predict": 32, "seed": 7, "temperature": temp,
        "cache_prompt": cache, "return_tokens": true, "n_probs": n_probs});
    let x = server.post_json("/completion", &body).unwrap();
    assert_eq!(x.status, 200, "{}", x.text());
    let v: Value = x.json().unwrap();
    let ids = v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap())
        .collect();
    let probs = v["completion_probabilities"]
        .as_array()
        .map(|a| a.iter().map(|p| p["logprob"].as_f64().unwrap()).collect())
        .unwrap_or_default();
    (ids, probs, v)
}

fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "tiny".into());
    let dir = TempDir::new("determinism").unwrap();
    let (model, prompt, temp) = if which == "gemma" {
        (
            gemma_path().unwrap(),
            "Write a long story about a lighthouse keeper who finds a message in a bottle on a stormy night. The message is from someone he knew long ago, and it asks him to do something strange. He thinks about it for a while and then",
            1.0,
        )
    } else {
        (
            write_tiny_model(dir.path()).unwrap(),
            "kalo mine ka ~ kalo mine ka ~ kalo mine ka ~ kalo mine",
            1.0,
        )
    };
    let start = |extra: &[&str]| {
        let mut args: Vec<&str> = BASE.to_vec();
        // later arguments win
        args.extend_from_slice(extra);
        LlamaServer::start(&model, &args).unwrap()
    };
    let base = start(&[]);
    let ids_prompt: Value = base
        .post_json(
            "/tokenize",
            &json!({"content": prompt, "add_special": true, "parse_special": true}),
        )
        .unwrap()
        .json()
        .unwrap()["tokens"]
        .clone();
    let text = json!(prompt);
    let (b_ids, b_probs, b_full) = run(&base, &text, false, 1, temp);
    println!(
        "model {which}: prompt {} tokens, {} generated, tokens_evaluated {}, timings.cache_n {}",
        ids_prompt.as_array().unwrap().len(),
        b_ids.len(),
        b_full["tokens_evaluated"],
        b_full["timings"]["cache_n"]
    );
    println!(
        "settings keys: {}",
        b_full["generation_settings"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(",")
    );
    let report = |name: &str, (ids, probs, full): (Vec<u64>, Vec<f64>, Value)| {
        let worst = probs
            .iter()
            .zip(&b_probs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f64, f64::max);
        let first = ids.iter().zip(&b_ids).position(|(a, b)| a != b);
        let same_probs = probs.is_empty() || probs == b_probs;
        println!(
            "{name:<40} ids {} logprobs {}{} max|dlogprob| {worst:.3e} cache_n {}",
            if ids == b_ids { "same" } else { "DIFFER" },
            if probs.is_empty() {
                "n/a"
            } else if same_probs {
                "same"
            } else {
                "DIFFER"
            },
            first
                .map(|i| format!(" (first at {i})"))
                .unwrap_or_default(),
            full["timings"]["cache_n"]
        );
    };
    report("repeat", run(&base, &text, false, 1, temp));
    report(
        "prompt as token ids",
        run(&base, &ids_prompt, false, 1, temp),
    );
    report("n_probs 0", run(&base, &text, false, 0, temp));
    report("n_probs 10", run(&base, &text, false, 10, temp));
    report(
        "cache_prompt true, fresh after false",
        run(&base, &text, true, 1, temp),
    );
    report(
        "cache_prompt true, prompt cached",
        run(&base, &text, true, 1, temp),
    );
    drop(base);
    for (name, extra) in [
        ("restart", &[][..]),
        ("threads 1", &["--threads", "1"][..]),
        (
            "parallel 4 (4 slots)",
            &["--parallel", "4", "--ctx-size", "2048"][..],
        ),
        ("ctx 2048", &["--ctx-size", "2048"][..]),
        ("batch 512", &["--batch-size", "512"][..]),
        (
            "ubatch 8 (prompt split)",
            &["--ubatch-size", "8", "--batch-size", "8"][..],
        ),
        ("ubatch 16", &["--ubatch-size", "16"][..]),
        ("flash-attn on", &["--flash-attn", "on"][..]),
        ("flash-attn off", &["--flash-attn", "off"][..]),
        ("no-repack", &["--no-repack"][..]),
        ("cont-batching off", &["--no-cont-batching"][..]),
    ] {
        let server = start(extra);
        report(name, run(&server, &text, false, 1, temp));
    }
    // Another request generating in the other slot at the same time (continuous batching
    // puts both in one batch).
    let server = start(&["--parallel", "2", "--ctx-size", "1024"]);
    let other = json!({"prompt": "A different prompt that keeps the other slot busy for a while",
        "n_predict": 160, "seed": 1, "temperature": 1.0, "cache_prompt": false,
        "ignore_eos": true});
    std::thread::scope(|scope| {
        let busy = scope.spawn(|| server.post_json("/completion", &other).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(20));
        let result = run(&server, &text, false, 1, temp);
        let overlapped = !busy.is_finished();
        report(
            &format!("parallel 2, other slot busy (overlap {overlapped})"),
            result,
        );
        busy.join().unwrap();
    });
}
