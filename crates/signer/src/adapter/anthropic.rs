//! Anthropic-style Messages `/v1/messages` (as llama.cpp serves it).
//!
//! A whole body carries `content`, a list of blocks: `text` blocks the text, `thinking`
//! blocks the reasoning, `tool_use` blocks a tool call (`name`, `input`), and `stop_reason`
//! and `usage`. A stream is SSE with typed events: `message_start` (the model, the input
//! tokens), `content_block_start` (a block's type; a `tool_use` block's name),
//! `content_block_delta` (`text_delta`, `thinking_delta`, `input_json_delta` pieces),
//! `message_delta` (`stop_reason`, output tokens) and a last `message_stop`.

use serde_json::{Map, Value};

use super::{Generation, ToolCall, pick};

/// Sampling parameters from the request, Anthropic names plus llama.cpp's extensions.
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
            ("n_predict", "n_predict"),
            ("samplers", "samplers"),
            ("stop_sequences", "stop"),
        ],
    )
}

/// One response body, or one stream event.
pub(super) fn apply(generation: &mut Generation, object: &Map<String, Value>, streamed: bool) {
    if !streamed {
        for block in object
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            block_start(generation, block);
        }
        finish(generation, object);
        return;
    }
    match object
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
    {
        "message_start" => {
            if let Some(message) = object.get("message").and_then(Value::as_object) {
                if let Some(model) = message.get("model").and_then(Value::as_str) {
                    generation.model = Some(model.to_owned());
                }
                usage(generation, message);
            }
        }
        "content_block_start" => {
            if let Some(block) = object.get("content_block") {
                block_start(generation, block);
            }
        }
        "content_block_delta" => {
            let delta = object.get("delta");
            let field = |name: &str| {
                delta
                    .and_then(|d| d.get(name))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            };
            match delta.and_then(|d| d.get("type")).and_then(Value::as_str) {
                Some("text_delta") => generation.text.push_str(field("text")),
                Some("thinking_delta") => generation.reasoning.push_str(field("thinking")),
                Some("input_json_delta") => {
                    if let Some(call) = generation.tool_calls.last_mut() {
                        call.arguments.push_str(field("partial_json"));
                    }
                }
                _ => {}
            }
        }
        "message_delta" => {
            // The reason comes here; the answer is complete only at `message_stop`.
            if let Some(reason) = object
                .get("delta")
                .and_then(|d| d.get("stop_reason"))
                .and_then(Value::as_str)
            {
                generation.finish_reason = Some(reason.to_owned());
            }
            usage(generation, object);
        }
        "message_stop" => {
            generation.last = true;
            generation.complete = generation.finish_reason.is_some();
        }
        _ => {}
    }
}

/// A whole block (a body's), or the start of a streamed one.
fn block_start(generation: &mut Generation, block: &Value) {
    let field = |name: &str| block.get(name).and_then(Value::as_str).unwrap_or_default();
    match field("type") {
        "text" => generation.text.push_str(field("text")),
        "thinking" => generation.reasoning.push_str(field("thinking")),
        "tool_use" => {
            // A whole block's `input` is an object; a streamed one starts empty (`{}`) and
            // its arguments come as `input_json_delta` pieces.
            let arguments = match block.get("input") {
                Some(Value::Object(input)) if !input.is_empty() => {
                    Value::Object(input.clone()).to_string()
                }
                _ => String::new(),
            };
            generation.tool_calls.push(ToolCall {
                name: field("name").to_owned(),
                arguments,
            });
        }
        _ => {}
    }
}

/// `stop_reason` and `usage` of a whole message, or of a `message_delta`.
fn finish(generation: &mut Generation, object: &Map<String, Value>) {
    if let Some(reason) = object.get("stop_reason") {
        generation.set_reason(reason);
    }
    usage(generation, object);
}

fn usage(generation: &mut Generation, object: &Map<String, Value>) {
    let Some(usage) = object.get("usage").and_then(Value::as_object) else {
        return;
    };
    if let Some(n) = usage.get("output_tokens").and_then(Value::as_u64) {
        generation.completion_tokens = Some(n);
    }
    // Anthropic counts cached input tokens apart from `input_tokens`.
    let input = usage.get("input_tokens").and_then(Value::as_u64);
    let cached = ["cache_read_input_tokens", "cache_creation_input_tokens"]
        .iter()
        .filter_map(|k| usage.get(*k).and_then(Value::as_u64))
        .sum::<u64>();
    if let Some(n) = input {
        generation.prompt_tokens = Some(n + cached);
    }
}
