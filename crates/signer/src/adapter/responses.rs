//! OpenAI Responses `/v1/responses` (as llama.cpp serves it).
//!
//! A whole body carries `output`, a list of items: `message` items hold `output_text` parts,
//! `reasoning` items the reasoning, `function_call` items a tool call (`name`, `arguments`).
//! A stream is SSE whose events are typed (`event:` and the data's `type`):
//! `response.output_text.delta` pieces of the text, `response.reasoning_text.delta` pieces
//! of the reasoning, `response.output_item.done` with a `function_call` item for each tool
//! call, and a last `response.completed` (or `response.incomplete`, `response.failed`) with
//! the whole response: its `status`, `usage` and model.

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
            ("max_output_tokens", "n_predict"),
            ("n_predict", "n_predict"),
            ("samplers", "samplers"),
            ("stop", "stop"),
        ],
    )
}

/// One response body, or one stream event.
pub(super) fn apply(generation: &mut Generation, object: &Map<String, Value>, streamed: bool) {
    if !streamed {
        whole(generation, object);
        return;
    }
    let text = |key: &str| object.get(key).and_then(Value::as_str).unwrap_or_default();
    match object
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
    {
        "response.output_text.delta" => generation.text.push_str(text("delta")),
        "response.reasoning_text.delta" => generation.reasoning.push_str(text("delta")),
        "response.output_item.done" => {
            if let Some(item) = object.get("item").and_then(Value::as_object)
                && item.get("type").and_then(Value::as_str) == Some("function_call")
            {
                generation.tool_calls.push(call(item));
            }
        }
        kind @ ("response.completed" | "response.incomplete" | "response.failed") => {
            generation.last = true;
            if let Some(response) = object.get("response").and_then(Value::as_object) {
                finish(generation, response);
            }
            if kind == "response.failed" {
                generation.complete = false;
            }
        }
        _ => {}
    }
}

/// A whole response: its output items, then its status and usage.
fn whole(generation: &mut Generation, response: &Map<String, Value>) {
    for item in response
        .get("output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
    {
        let parts = || {
            item.get("content")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        };
        match item.get("type").and_then(Value::as_str) {
            Some("message") => {
                for part in parts().filter(|p| p["type"] == "output_text") {
                    generation
                        .text
                        .push_str(part["text"].as_str().unwrap_or_default());
                }
            }
            Some("reasoning") => {
                for part in parts().filter(|p| p["type"] == "reasoning_text") {
                    generation
                        .reasoning
                        .push_str(part["text"].as_str().unwrap_or_default());
                }
            }
            Some("function_call") => generation.tool_calls.push(call(item)),
            _ => {}
        }
    }
    finish(generation, response);
}

/// The status, usage and model of a whole response (a body, or the last stream event's).
fn finish(generation: &mut Generation, response: &Map<String, Value>) {
    if let Some(model) = response.get("model").and_then(Value::as_str) {
        generation.model = Some(model.to_owned());
    }
    // `incomplete` says why in `incomplete_details.reason` (`max_output_tokens`, ...).
    let reason = response
        .get("incomplete_details")
        .and_then(|d| d.get("reason"))
        .or_else(|| response.get("status"));
    if matches!(
        response.get("status").and_then(Value::as_str),
        Some("completed" | "incomplete")
    ) && let Some(reason) = reason
    {
        generation.set_reason(reason);
    }
    if let Some(usage) = response.get("usage").and_then(Value::as_object) {
        if let Some(n) = usage.get("output_tokens").and_then(Value::as_u64) {
            generation.completion_tokens = Some(n);
        }
        if let Some(n) = usage.get("input_tokens").and_then(Value::as_u64) {
            generation.prompt_tokens = Some(n);
        }
    }
}

/// A `function_call` item: its name and its arguments (a string of JSON).
fn call(item: &Map<String, Value>) -> ToolCall {
    let field = |name: &str| item.get(name).and_then(Value::as_str).unwrap_or_default();
    ToolCall {
        name: field("name").to_owned(),
        arguments: field("arguments").to_owned(),
    }
}
