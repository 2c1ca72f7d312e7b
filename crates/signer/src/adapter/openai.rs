//! OpenAI-compatible `/v1/chat/completions` and `/v1/completions` (as llama.cpp serves them).
//!
//! Every choice is read: the text, reasoning (`reasoning_content`) and tool calls of choice 0
//! in [`Generation`], the others (`n > 1`) in [`Generation::other_choices`]; the record then
//! covers all of them ([`Generation::output`]).

use serde_json::{Map, Value};

use super::{Generation, ToolCall, pick};

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
            ("stop", "stop"),
        ],
    )
}

/// One response body or stream chunk.
pub(super) fn apply(generation: &mut Generation, object: &Map<String, Value>, streamed: bool) {
    if let Some(choices) = object.get("choices").and_then(Value::as_array) {
        for choice in choices {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
            // The message, or the streamed delta; legacy completions have `text` only.
            let part = choice.get(if streamed { "delta" } else { "message" });
            let text = choice
                .get("text")
                .or_else(|| part.and_then(|p| p.get("content")))
                .and_then(Value::as_str);
            let reasoning = part
                .and_then(|p| p.get("reasoning_content"))
                .and_then(Value::as_str);
            let calls = part
                .and_then(|p| p.get("tool_calls"))
                .and_then(Value::as_array);
            let (content, thought, tool_calls) = if index == 0 {
                (
                    &mut generation.text,
                    &mut generation.reasoning,
                    &mut generation.tool_calls,
                )
            } else {
                let c = generation.other_choices.entry(index).or_default();
                (&mut c.content, &mut c.reasoning, &mut c.tool_calls)
            };
            content.push_str(text.unwrap_or_default());
            thought.push_str(reasoning.unwrap_or_default());
            for (position, call) in calls.into_iter().flatten().enumerate() {
                apply_call(tool_calls, position, call, streamed);
            }
            // The record's finish reason is choice 0's.
            if let Some(reason) = choice.get("finish_reason").filter(|_| index == 0) {
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

/// One tool call, whole or (streamed) a piece of one: the piece's `index` says which call
/// it continues; its name and arguments are appended.
fn apply_call(calls: &mut Vec<ToolCall>, position: usize, call: &Value, streamed: bool) {
    let at = if streamed {
        call.get("index")
            .and_then(Value::as_u64)
            .and_then(|i| usize::try_from(i).ok())
            .unwrap_or(position)
    } else {
        calls.len()
    };
    // Bounded: an index far past the calls so far is not a call of this answer.
    if at > calls.len() {
        return;
    }
    if at == calls.len() {
        calls.push(ToolCall::default());
    }
    let function = call.get("function");
    let field = |name: &str| function.and_then(|f| f.get(name));
    if let Some(name) = field("name").and_then(Value::as_str) {
        calls[at].name.push_str(name);
    }
    match field("arguments") {
        Some(Value::String(arguments)) => calls[at].arguments.push_str(arguments),
        // Not the published shape (a string), but an object is what some engines send.
        Some(other @ Value::Object(_)) => calls[at].arguments.push_str(&other.to_string()),
        _ => {}
    }
}
