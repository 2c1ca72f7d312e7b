//! Filling a record's `replay` section from what `llama-server` answered, for operators and
//! tools that call it directly (the signing proxy fills the same section itself).

use std::path::Path;

use provenance::record::{EngineBuild, REPLAY_SCHEME, Replay, TokenIds};
use serde_json::Value;

use crate::plan::EngineSettings;

/// The build record `.ci/llama-server.sh` writes beside the binary (`llama-server.json`), as
/// the record's [`EngineBuild`]. `None` when the file cannot be read or is not such a record.
pub fn engine_build(path: &Path) -> Option<EngineBuild> {
    let text = std::fs::read_to_string(path).ok()?;
    let value: Value = serde_json::from_str(&text).ok()?;
    let binary_sha256 = value.get("binary_sha256")?.as_str()?.parse().ok()?;
    Some(EngineBuild {
        binary_sha256: Some(binary_sha256),
        instruction_set: value
            .get("instruction_set")
            .and_then(Value::as_str)
            .map(str::to_owned),
        flags: value
            .get("cmake_flags")
            .and_then(Value::as_array)
            .map(|flags| {
                flags
                    .iter()
                    .filter_map(|f| f.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        source: match (value.get("package"), value.get("version")) {
            (Some(Value::String(p)), Some(Value::String(v))) => Some(format!("{p} {v}")),
            _ => None,
        },
    })
}

/// What a replay section says, given the engine's settings, its build, the request's
/// `cache_prompt` and its `/completion` answer (non-streamed, with `return_tokens`).
/// `prompt_ids` are digested with `salt`; `publish_ids` puts the ids themselves in.
pub fn from_completion(
    engine: &EngineSettings,
    build: Option<EngineBuild>,
    cache_prompt: Option<bool>,
    answer: &Value,
    prompt_ids: Option<(&[u32], &[u8; 32])>,
    publish_ids: bool,
) -> Replay {
    let output = answer
        .get("tokens")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok()))
                .collect::<Option<Vec<u32>>>()
        })
        // The ids before an end-of-generation token, as the signer records them.
        .map(|ids| crate::before_eos(ids, answer));
    Replay {
        scheme: REPLAY_SCHEME.to_owned(),
        engine: build,
        ctx: Some(engine.ctx),
        batch: Some(engine.batch),
        ubatch: Some(engine.ubatch),
        flash_attn: Some(engine.flash_attn.as_str().to_owned()),
        repack: Some(engine.repack),
        threads: engine.threads,
        slots: None,
        cache_prompt,
        prompt_cache_tokens: answer.pointer("/timings/cache_n").and_then(Value::as_u64),
        prompt_tokens: prompt_ids.map(|(ids, salt)| TokenIds::of(ids, Some(salt), publish_ids)),
        output_tokens: output.map(|ids| TokenIds::of(&ids, None, publish_ids)),
        settings: answer
            .get("generation_settings")
            .and_then(Value::as_object)
            .map(|s| crate::settings_from_response(s).into_iter().collect())
            .unwrap_or_default(),
    }
}
