//! llama.cpp's native `/completion`: `content` pieces, `stop`, `stop_type`, token counts and
//! the effective `generation_settings` (in the whole body, or in the last stream message).

use serde_json::{Map, Value};

use super::{Generation, SAMPLING_KEYS};

/// Sampling parameters from the request (llama.cpp's names are ours).
pub(super) fn sampling(object: &Map<String, Value>) -> Map<String, Value> {
    let names: Vec<(&str, &str)> = SAMPLING_KEYS.iter().map(|k| (*k, *k)).collect();
    super::pick(object, &names)
}

/// One response body or stream message.
pub(super) fn apply(generation: &mut Generation, object: &Map<String, Value>) {
    if let Some(text) = object.get("content").and_then(Value::as_str) {
        generation.text.push_str(text);
    }
    if object.get("stop").and_then(Value::as_bool) == Some(true) {
        generation.complete = true;
        match object.get("stop_type") {
            Some(reason) => generation.set_reason(reason),
            None => generation.finish_reason = Some("stop".to_owned()),
        }
    }
    if let Some(n) = object.get("tokens_predicted").and_then(Value::as_u64) {
        generation.completion_tokens = Some(n);
    }
    if let Some(n) = object.get("tokens_evaluated").and_then(Value::as_u64) {
        generation.prompt_tokens = Some(n);
    }
    if let Some(settings) = object.get("generation_settings").and_then(Value::as_object) {
        generation.settings = settings.clone();
    }
}
