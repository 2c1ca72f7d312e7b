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
        generation.last = true;
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
    // With `return_tokens`, each stream message carries its tokens' ids (the last one none),
    // a whole body all of them.
    if let Some(ids) = object.get("tokens").and_then(Value::as_array) {
        generation.tokens.extend(
            ids.iter()
                .filter_map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok())),
        );
    }
    if let Some(n) = object
        .get("timings")
        .and_then(|t| t.get("cache_n"))
        .and_then(Value::as_u64)
    {
        generation.prompt_cache_tokens = Some(n);
    }
}

/// A `/completion` request body made replayable: `cache_prompt: false` (the whole prompt
/// computed, as a replay computes it) and `return_tokens: true` (the token ids a replay
/// compares). `None` when the body is not a JSON object or already says both.
pub(crate) fn make_replayable(body: &[u8]) -> Option<Vec<u8>> {
    let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    if object.get("cache_prompt") == Some(&Value::Bool(false))
        && object.get("return_tokens") == Some(&Value::Bool(true))
    {
        return None;
    }
    object.insert("cache_prompt".to_owned(), Value::Bool(false));
    object.insert("return_tokens".to_owned(), Value::Bool(true));
    serde_json::to_vec(&object).ok()
}

#[cfg(test)]
mod replay_tests {
    use super::*;

    #[test]
    fn replayable_requests_compute_the_whole_prompt_and_return_ids() {
        let body = make_replayable(br#"{"prompt":"hi","cache_prompt":true}"#).unwrap_or_default();
        let value: Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(value["cache_prompt"], false);
        assert_eq!(value["return_tokens"], true);
        assert_eq!(value["prompt"], "hi");
        assert_eq!(make_replayable(&body), None, "already replayable");
        assert_eq!(make_replayable(b"[1]"), None);
    }

    #[test]
    fn token_ids_and_cache_use_are_collected() {
        let mut g = Generation::default();
        for message in [
            serde_json::json!({"content": "a", "tokens": [5], "stop": false}),
            serde_json::json!({"content": "b", "tokens": [6, 7], "stop": false}),
            serde_json::json!({"content": "", "tokens": [], "stop": true,
                "timings": {"cache_n": 0}}),
        ] {
            apply(&mut g, message.as_object().unwrap_or(&Map::new()));
        }
        assert_eq!(g.tokens, vec![5, 6, 7]);
        assert_eq!(g.prompt_cache_tokens, Some(0));
    }
}
