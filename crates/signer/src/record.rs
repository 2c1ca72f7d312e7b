//! Building the core [`Record`] for one generation from what the signer saw.
//!
//! The sampling settings are merged in three layers, later ones winning key by key: the
//! engine's defaults (llama.cpp `/props` `default_generation_settings`, given once at
//! start-up), what the request asked for, and what the engine reports it used (llama.cpp
//! `generation_settings` in the response). Values are kept only when they fit a record:
//! finite numbers, integers within the I-JSON range.

use std::collections::BTreeMap;

use provenance::commitment::Salt;
use provenance::digest::Sha256Digest;
use provenance::record::{
    EngineBuild, Model, Output, PromptCommitment, Record, Replay, Request, Response, Runtime,
    Sampling, Times, TokenIds,
};
use serde_json::{Map, Value};

use crate::adapter::{Api, Generation, RequestInfo, merge_sampling};

/// The largest integer a record may carry (2^53 - 1).
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The most stop strings a record lists.
const MAX_STOP: usize = 64;

/// Settings that say how the answer was delivered, not how it was sampled.
const NOT_SAMPLING: &[&str] = &[
    "model",
    "stream",
    "n_probs",
    "timings_per_token",
    "post_sampling_probs",
    "return_tokens",
    "id_slot",
    "cache_prompt",
    "n_indent",
];

/// Everything about one exchange, gathered by the service and the body.
pub(crate) struct Exchange<'a> {
    pub(crate) request: &'a RequestInfo,
    pub(crate) request_sha256: Sha256Digest,
    pub(crate) salt: &'a Salt,
    pub(crate) caller: Option<String>,
    pub(crate) payment: Option<provenance::record::Payment>,
    pub(crate) start_ms: u64,
    pub(crate) end_ms: u64,
    pub(crate) generation: &'a Generation,
    pub(crate) response_sha256: Sha256Digest,
    pub(crate) response_bytes: u64,
    pub(crate) streamed: bool,
    pub(crate) truncated: bool,
}

/// What the operator configured once: model identity, runtime, defaults.
pub(crate) struct Fixed<'a> {
    pub(crate) model: &'a Model,
    pub(crate) runtime: Option<&'a Runtime>,
    pub(crate) sampling_defaults: &'a Map<String, Value>,
    pub(crate) include_text: bool,
    /// Write `output.fingerprints` for a text answer.
    pub(crate) fingerprints: bool,
    /// References to attestation evidence binding the signing key.
    pub(crate) attestations: &'a [provenance::record::AttestationRef],
}

pub(crate) fn build(fixed: &Fixed<'_>, x: &Exchange<'_>) -> Record {
    let generation = x.generation;
    let (covered, json) = generation.output();
    let mut output = if json {
        Output::from_bytes(covered.as_bytes(), "application/json")
    } else {
        Output::from_text(&covered)
    };
    output.finish_reason = generation.finish_reason.clone();
    output.tokens = generation.completion_tokens;
    output.truncated = x.truncated;
    if fixed.fingerprints && !json {
        output = output.with_fingerprints(&covered);
    }
    if fixed.include_text {
        output.text = Some(covered);
    }
    let mut record = Record::new(output, fixed.model.clone());
    let mut prompt =
        PromptCommitment::commit(x.request.prompt_format.as_str(), &x.request.prompt, x.salt);
    prompt.tokens = generation.prompt_tokens;
    record.prompt = Some(prompt);
    record.runtime = fixed.runtime.cloned();
    let merged = merge_sampling(&[
        fixed.sampling_defaults,
        &x.request.sampling,
        &generation.settings,
    ]);
    record.sampling = Some(sampling(merged));
    record.request = Some(Request {
        api: x.request.api.name().to_owned(),
        sha256: Some(x.request_sha256),
        caller: x.caller.clone(),
    });
    record.response = Some(Response {
        sha256: x.response_sha256,
        bytes: x.response_bytes,
        streamed: x.streamed,
    });
    record.time = Some(Times {
        start_ms: x.start_ms,
        end_ms: x.end_ms.max(x.start_ms),
    });
    record.replay = replay(fixed, x);
    record.payment.clone_from(&x.payment);
    record.attestations = fixed.attestations.to_vec();
    record
}

/// The replay section of a llama.cpp `/completion` answer whose token ids the engine returned
/// (`return_tokens`), with what the operator stated about the engine in the runtime's
/// `params` (`ctx`, `batch`, `ubatch`, `flash_attn`, `repack`, `threads`, `slots`,
/// `build_flags`, `instruction_set`, `build_source`): llama-server does not report its batch,
/// ubatch, flash-attention or repack settings, so what the operator did not state stays
/// absent. Published ids follow `include_text` (ids say what the text says).
fn replay(fixed: &Fixed<'_>, x: &Exchange<'_>) -> Option<Replay> {
    let generation = x.generation;
    let runtime = fixed.runtime.filter(|r| r.engine == "llama.cpp")?;
    // Every generated token's id, or none: llama-server's stream leaves out the ids of tokens
    // whose text ends inside a UTF-8 character (the count goes on), so a stream can come
    // with fewer ids than tokens.
    if x.request.api != Api::LlamaCompletion
        || generation.tokens.is_empty()
        || generation.completion_tokens != Some(generation.tokens.len() as u64)
        || x.truncated
    {
        return None;
    }
    // The ids recorded are those before the end-of-generation token.
    let mut ids = generation.tokens.as_slice();
    if generation.finish_reason.as_deref() == Some("eos") {
        ids = &ids[..ids.len() - 1];
    }
    let params = &runtime.params;
    let unsigned = |key: &str| params.get(key).and_then(Value::as_u64);
    let flags: Vec<String> = params
        .get("build_flags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let text = |key: &str| params.get(key).and_then(Value::as_str).map(str::to_owned);
    let engine = EngineBuild {
        binary_sha256: runtime.binary_sha256,
        instruction_set: text("instruction_set"),
        flags,
        source: text("build_source"),
    };
    let settings = generation
        .settings
        .iter()
        .filter(|(key, _)| !NOT_SAMPLING.contains(&key.as_str()) && key.as_str() != "max_tokens")
        .filter(|(_, value)| fits(value))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Some(Replay {
        engine: (engine != EngineBuild::default()).then_some(engine),
        ctx: unsigned("ctx"),
        batch: unsigned("batch"),
        ubatch: unsigned("ubatch"),
        flash_attn: text("flash_attn").filter(|v| v == "on" || v == "off"),
        repack: params.get("repack").and_then(Value::as_bool),
        threads: unsigned("threads"),
        slots: unsigned("slots"),
        cache_prompt: x.request.cache_prompt,
        prompt_cache_tokens: generation.prompt_cache_tokens,
        prompt_tokens: None,
        output_tokens: Some(TokenIds::of(ids, None, fixed.include_text)),
        settings,
        ..Replay::new()
    })
}

/// Whether a setting fits a record: I-JSON integers, finite numbers, at any depth.
fn fits(value: &Value) -> bool {
    match value {
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.unsigned_abs() <= MAX_SAFE_INTEGER,
            (_, Some(u), _) => u <= MAX_SAFE_INTEGER,
            (_, _, Some(f)) => f.is_finite(),
            _ => false,
        },
        Value::Array(items) => items.iter().all(fits),
        Value::Object(map) => map.values().all(fits),
        _ => true,
    }
}

/// Maps llama.cpp-named settings onto [`Sampling`]; the rest go to `extra`.
fn sampling(mut merged: BTreeMap<String, Value>) -> Sampling {
    let mut take = |key: &str| merged.remove(key);
    let float = |v: Option<Value>| v.and_then(|v| v.as_f64()).filter(|f| f.is_finite());
    let unsigned = |v: Option<Value>| {
        v.and_then(|v| v.as_u64())
            .filter(|n| *n <= MAX_SAFE_INTEGER)
    };
    let mut sampling = Sampling {
        temperature: float(take("temperature")),
        top_k: unsigned(take("top_k")),
        top_p: float(take("top_p")),
        min_p: float(take("min_p")),
        repeat_penalty: float(take("repeat_penalty")),
        presence_penalty: float(take("presence_penalty")),
        frequency_penalty: float(take("frequency_penalty")),
        seed: None,
        max_tokens: None,
        samplers: Vec::new(),
        extra: BTreeMap::new(),
    };
    if let Some(seed) = take("seed") {
        match unsigned(Some(seed.clone())) {
            Some(seed) => sampling.seed = Some(seed),
            None => keep(&mut sampling.extra, "seed", seed),
        }
    }
    if let Some(n) = take("n_predict") {
        match unsigned(Some(n.clone())) {
            Some(n) => sampling.max_tokens = Some(n),
            // llama.cpp's -1: no limit. Kept as said.
            None => keep(&mut sampling.extra, "n_predict", n),
        }
    }
    if let Some(Value::Array(names)) = take("samplers") {
        sampling.samplers = names
            .iter()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect();
    }
    // Stop strings, as a list (OpenAI also takes one string): they end the answer, so the
    // record commits to them. None, or a list over the bounds, records nothing.
    let stop = match take("stop") {
        Some(Value::String(one)) => vec![one],
        Some(Value::Array(list)) => list
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    if !stop.is_empty() && stop.len() <= MAX_STOP && stop.iter().all(|s| s.len() <= 1024) {
        sampling.extra.insert("stop".to_owned(), Value::from(stop));
    }
    for (key, value) in merged {
        if !NOT_SAMPLING.contains(&key.as_str()) {
            keep(&mut sampling.extra, &key, value);
        }
    }
    sampling
}

/// Keeps scalar settings that fit a record (I-JSON numbers, booleans, short strings).
fn keep(extra: &mut BTreeMap<String, Value>, key: &str, value: Value) {
    let fits = match &value {
        Value::Bool(_) => true,
        Value::String(s) => s.len() <= 256,
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.unsigned_abs() <= MAX_SAFE_INTEGER,
            (_, Some(u), _) => u <= MAX_SAFE_INTEGER,
            (_, _, Some(f)) => f.is_finite(),
            _ => false,
        },
        _ => false,
    };
    if fits {
        extra.insert(key.to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn replay_of(runtime: &Runtime, request: &[u8], generation: &Generation) -> Option<Replay> {
        let info = crate::adapter::parse_request(Api::LlamaCompletion, request).unwrap();
        let model = Model::named("m");
        let fixed = Fixed {
            model: &model,
            runtime: Some(runtime),
            sampling_defaults: &Map::new(),
            include_text: true,
            fingerprints: false,
            attestations: &[],
        };
        let x = Exchange {
            request: &info,
            request_sha256: provenance::digest::sha256(request),
            salt: &Salt::from_bytes([1; 32]),
            caller: None,
            payment: None,
            start_ms: 1,
            end_ms: 2,
            generation,
            response_sha256: provenance::digest::sha256(b""),
            response_bytes: 0,
            streamed: false,
            truncated: false,
        };
        build(&fixed, &x).replay
    }

    #[test]
    fn llama_answers_with_token_ids_get_a_replay_section() {
        let mut runtime = Runtime {
            engine: "llama.cpp".into(),
            binary_sha256: Some(provenance::digest::sha256(b"bin")),
            ..Runtime::default()
        };
        for (key, value) in [
            ("ctx", json!(512)),
            ("batch", json!(2048)),
            ("ubatch", json!(512)),
            ("flash_attn", json!("on")),
            ("repack", json!(true)),
            ("build_flags", json!(["-DGGML_NATIVE=OFF"])),
        ] {
            runtime.params.insert(key.into(), value);
        }
        let generation = Generation {
            text: "ab".into(),
            completion_tokens: Some(2),
            tokens: vec![5, 6],
            prompt_cache_tokens: Some(0),
            settings: json!({"seed": 3, "temperature": 0.5, "samplers": ["top_k"],
                "n_predict": 2, "max_tokens": 2, "stream": false, "n_probs": 0,
                "huge": 9007199254740993u64})
            .as_object()
            .unwrap()
            .clone(),
            complete: true,
            ..Generation::default()
        };
        let request = br#"{"prompt":"hi","cache_prompt":false,"return_tokens":true}"#;
        let replay = replay_of(&runtime, request, &generation).unwrap();
        assert_eq!(replay.scheme, provenance::record::REPLAY_SCHEME);
        assert_eq!(
            (replay.ctx, replay.batch, replay.ubatch),
            (Some(512), Some(2048), Some(512))
        );
        assert_eq!(
            (replay.flash_attn.as_deref(), replay.repack),
            (Some("on"), Some(true))
        );
        assert_eq!(replay.threads, None, "not stated: unknown");
        assert_eq!(
            (replay.cache_prompt, replay.prompt_cache_tokens),
            (Some(false), Some(0))
        );
        let engine = replay.engine.unwrap();
        assert_eq!(engine.binary_sha256, runtime.binary_sha256);
        assert_eq!(engine.flags, vec!["-DGGML_NATIVE=OFF"]);
        let output = replay.output_tokens.unwrap();
        assert_eq!((output.count, output.ids), (2, Some(vec![5, 6])));
        let keys: Vec<&str> = replay.settings.keys().map(String::as_str).collect();
        assert_eq!(keys, ["n_predict", "samplers", "seed", "temperature"]);

        // An answer that ended with the end-of-generation token: the ids before it.
        let ended = Generation {
            tokens: vec![5, 6, 2],
            completion_tokens: Some(3),
            finish_reason: Some("eos".into()),
            ..generation.clone()
        };
        let output = replay_of(&runtime, request, &ended)
            .unwrap()
            .output_tokens
            .unwrap();
        assert_eq!(output.ids, Some(vec![5, 6]));
        // A stream that left out an id (a token ending inside a UTF-8 character): none.
        let lost = Generation {
            tokens: vec![5, 2],
            ..ended.clone()
        };
        assert_eq!(replay_of(&runtime, request, &lost), None);

        // No ids (return_tokens not asked), ids that do not add up, another engine: none.
        let without = Generation {
            tokens: Vec::new(),
            ..generation.clone()
        };
        assert_eq!(replay_of(&runtime, request, &without), None);
        let short = Generation {
            tokens: vec![5],
            ..generation.clone()
        };
        assert_eq!(replay_of(&runtime, request, &short), None);
        let ollama = Runtime {
            engine: "ollama".into(),
            ..runtime.clone()
        };
        assert_eq!(replay_of(&ollama, request, &generation), None);
    }

    #[test]
    fn sampling_layers_and_limits() {
        let defaults = json!({"temperature": 0.8, "top_k": 40, "seed": 4294967295u64,
            "n_predict": -1, "mirostat": 0, "stream": false, "grammar": ""});
        let request = json!({"temperature": 0.2, "n_predict": 16});
        let reported = json!({"top_k": 20, "samplers": ["top_k", "temperature"],
            "big": 9007199254740993u64, "obj": {"a": 1}});
        let merged = merge_sampling(&[
            defaults.as_object().unwrap(),
            request.as_object().unwrap(),
            reported.as_object().unwrap(),
        ]);
        let s = sampling(merged);
        assert_eq!(s.temperature, Some(0.2));
        assert_eq!(s.top_k, Some(20));
        assert_eq!(s.max_tokens, Some(16));
        assert_eq!(s.seed, Some(4294967295));
        assert_eq!(s.samplers, vec!["top_k", "temperature"]);
        assert_eq!(s.extra.get("mirostat"), Some(&json!(0)));
        assert_eq!(s.extra.get("grammar"), Some(&json!("")));
        // Not sampling, not I-JSON, not scalar: left out.
        for key in ["stream", "big", "obj"] {
            assert!(!s.extra.contains_key(key), "{key}");
        }
        // A negative n_predict (no limit) is kept as said.
        let s = sampling(merge_sampling(&[defaults.as_object().unwrap()]));
        assert_eq!(s.max_tokens, None);
        assert_eq!(s.extra.get("n_predict"), Some(&json!(-1)));
    }
}
