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
    Model, Output, PromptCommitment, Record, Request, Response, Runtime, Sampling, Times,
};
use serde_json::{Map, Value};

use crate::adapter::{Generation, RequestInfo, merge_sampling};

/// The largest integer a record may carry (2^53 - 1).
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

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
}

pub(crate) fn build(fixed: &Fixed<'_>, x: &Exchange<'_>) -> Record {
    let generation = x.generation;
    let mut output = Output::from_text(&generation.text);
    output.finish_reason = generation.finish_reason.clone();
    output.tokens = generation.completion_tokens;
    output.truncated = x.truncated;
    if fixed.include_text {
        output.text = Some(generation.text.clone());
    }
    let mut record = Record::new(output, fixed.model.clone());
    let mut prompt = PromptCommitment::commit(x.request.prompt_format, &x.request.prompt, x.salt);
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
    record
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
