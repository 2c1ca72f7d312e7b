//! Ollama `/api/generate` (`response` pieces) and `/api/chat` (`message.content` pieces),
//! ending with a `done: true` message that carries `done_reason`, `eval_count` and
//! `prompt_eval_count`. Sampling parameters live in the request's `options`. Thinking
//! (`thinking` at the top level of `/api/generate`, in `message` of `/api/chat`) is the
//! reasoning, and `message.tool_calls` (each whole, its `arguments` an object) are the tool
//! calls: both are part of the output, in the JSON form of docs/event-format.md.

use serde_json::{Map, Value};

use super::{Generation, ToolCall, pick};

/// Sampling parameters from the request's `options`.
pub(super) fn sampling(object: &Map<String, Value>) -> Map<String, Value> {
    let Some(options) = object.get("options").and_then(Value::as_object) else {
        return Map::new();
    };
    pick(
        options,
        &[
            ("temperature", "temperature"),
            ("top_k", "top_k"),
            ("top_p", "top_p"),
            ("min_p", "min_p"),
            ("repeat_penalty", "repeat_penalty"),
            ("presence_penalty", "presence_penalty"),
            ("frequency_penalty", "frequency_penalty"),
            ("seed", "seed"),
            ("num_predict", "n_predict"),
            ("stop", "stop"),
        ],
    )
}

/// One response body or stream line.
pub(super) fn apply(generation: &mut Generation, object: &Map<String, Value>) {
    let piece = object
        .get("response")
        .or_else(|| object.get("message").and_then(|m| m.get("content")));
    if let Some(text) = piece.and_then(Value::as_str) {
        generation.text.push_str(text);
    }
    let message = object.get("message");
    let thinking = object
        .get("thinking")
        .or_else(|| message.and_then(|m| m.get("thinking")))
        .and_then(Value::as_str);
    if let Some(thought) = thinking {
        generation.reasoning.push_str(thought);
    }
    let calls = message
        .and_then(|m| m.get("tool_calls"))
        .and_then(Value::as_array);
    for call in calls.into_iter().flatten() {
        let function = call.get("function");
        let field = |name: &str| function.and_then(|f| f.get(name));
        let arguments = match field("arguments") {
            Some(Value::String(text)) => text.clone(),
            Some(other @ Value::Object(_)) => other.to_string(),
            _ => String::new(),
        };
        generation.tool_calls.push(ToolCall {
            name: field("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            arguments,
        });
    }
    if object.get("done").and_then(Value::as_bool) == Some(true) {
        generation.complete = true;
        generation.last = true;
        if let Some(reason) = object.get("done_reason") {
            generation.set_reason(reason);
        }
    }
    if let Some(n) = object.get("eval_count").and_then(Value::as_u64) {
        generation.completion_tokens = Some(n);
    }
    if let Some(n) = object.get("prompt_eval_count").and_then(Value::as_u64) {
        generation.prompt_tokens = Some(n);
    }
}
