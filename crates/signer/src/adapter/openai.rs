//! OpenAI-compatible `/v1/chat/completions` and `/v1/completions` (as llama.cpp serves them).
//!
//! Only choice 0 is read: a response with several choices (`n > 1`) counts as unreadable,
//! so it is served but not signed.

use serde_json::{Map, Value};

use super::{Generation, pick};

/// Sampling parameters from the request, OpenAI names plus llama.cpp's extensions.
pub(super) fn sampling(object: &Map<String, Value>) -> Map<String, Value> {
    pick(
        object,
        &[
            ("temperature", "temperature"),
            ("top_k", "top_k"),
            ("top_p", "top_p"),
            ("min_p", "min_p"),
            ("repeat_penalty", "repeat_penalty"),
            ("presence_penalty", "presence_penalty"),
            ("frequency_penalty", "frequency_penalty"),
            ("seed", "seed"),
            ("max_tokens", "n_predict"),
            ("max_completion_tokens", "n_predict"),
            ("n_predict", "n_predict"),
            ("samplers", "samplers"),
        ],
    )
}

/// One response body or stream chunk.
pub(super) fn apply(generation: &mut Generation, object: &Map<String, Value>, streamed: bool) {
    if let Some(choices) = object.get("choices").and_then(Value::as_array) {
        for choice in choices {
            if choice.get("index").and_then(Value::as_u64).unwrap_or(0) != 0 {
                generation.unreadable += 1;
                continue;
            }
            let text = if let Some(text) = choice.get("text") {
                Some(text)
            } else if streamed {
                choice.get("delta").and_then(|d| d.get("content"))
            } else {
                choice.get("message").and_then(|m| m.get("content"))
            };
            if let Some(text) = text.and_then(Value::as_str) {
                generation.text.push_str(text);
            }
            if let Some(reason) = choice.get("finish_reason") {
                generation.set_reason(reason);
            }
        }
    }
    if let Some(usage) = object.get("usage").and_then(Value::as_object) {
        if let Some(n) = usage.get("completion_tokens").and_then(Value::as_u64) {
            generation.completion_tokens = Some(n);
        }
        if let Some(n) = usage.get("prompt_tokens").and_then(Value::as_u64) {
            generation.prompt_tokens = Some(n);
        }
    }
}
