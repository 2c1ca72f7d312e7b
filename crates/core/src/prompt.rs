//! The prompt bytes a commitment covers, by the record's `prompt.format`.
//!
//! A prompt commitment ([`crate::commitment`]) is `SHA-256(salt || prompt bytes)`; the
//! format says how those bytes were formed from the request, so that whoever discloses a
//! prompt can form the same bytes again:
//!
//! | format | committed bytes |
//! |---|---|
//! | `text` | the `prompt` string's UTF-8 bytes |
//! | `json` | RFC 8785 JSON of a non-string `prompt`, or of the object of `prompt` and the other prompt fields a completion request set (earlier signers: `suffix`, and Ollama's `system`, `template`, `images`, `context`, `raw`; it does not cover grammars or output formats) |
//! | `chat.v1` | RFC 8785 JSON of the object of a chat request's `messages` and every field of [`CHAT_FIELDS`] it sets to something other than `null`, `""`, `[]` or `{}` |
//! | `completion.v1` | RFC 8785 JSON of the object of a completion request's `prompt` and every field of [`COMPLETION_FIELDS`] it sets to something other than `null`, `""`, `[]` or `{}` |
//! | `responses.v1` | RFC 8785 JSON of the object of an OpenAI Responses request's `input` and every field of [`RESPONSES_FIELDS`] it sets to something other than `null`, `""`, `[]` or `{}` |
//! | `anthropic.v1` | RFC 8785 JSON of the object of an Anthropic-style Messages request's `messages` and every field of [`ANTHROPIC_FIELDS`] it sets to something other than `null`, `""`, `[]` or `{}` |
//! | `messages` | RFC 8785 JSON of a chat request's `messages` array alone (earlier signers; it does not cover tools or output formats) |
//!
//! A format's meaning never changes: a chat commitment that covers more fields gets a new
//! name (`chat.v2`), and records with an older name stay verifiable by that name's rule.
//!
//! [`disclosed`] turns what a caller discloses into the committed bytes: for the JSON
//! formats it accepts the value however it is written (and, for `chat.v1`, `completion.v1`
//! and `messages`, the whole request body as it was sent), since only the canonical form is
//! hashed.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::canonical::{CanonicalError, value_to_canonical};

/// Format: RFC 8785 JSON of a chat request's `messages` and its [`CHAT_FIELDS`] (see the
/// module documentation).
pub const FORMAT_CHAT: &str = "chat.v1";

/// Format: RFC 8785 JSON of a chat request's `messages` array alone. Written by earlier
/// signers; still verifiable.
pub const FORMAT_MESSAGES: &str = "messages";

/// Format: RFC 8785 JSON of a non-string prompt, or of an object holding `prompt` and the
/// other prompt fields of a completion request. Signers now write it only for a non-string
/// prompt alone; a prompt with other fields is [`FORMAT_COMPLETION`].
pub const FORMAT_JSON: &str = "json";

/// Format: RFC 8785 JSON of a completion request's `prompt` and its [`COMPLETION_FIELDS`]
/// (see the module documentation).
pub const FORMAT_COMPLETION: &str = "completion.v1";

/// Format: RFC 8785 JSON of an OpenAI Responses request's `input` and its
/// [`RESPONSES_FIELDS`] (see [`responses`]).
pub const FORMAT_RESPONSES: &str = "responses.v1";

/// The fields of an OpenAI Responses request (`/v1/responses`), besides `input`, that
/// `responses.v1` covers: the instructions (system prompt), the tools offered, the output
/// format (`text`), reasoning switches and the earlier response it continues. Sampling
/// settings are not here: the record carries them in clear.
pub const RESPONSES_FIELDS: &[&str] = &[
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "text",
    "reasoning",
    "previous_response_id",
    "conversation",
    "prompt",
];

/// Format: RFC 8785 JSON of an Anthropic-style Messages request's `messages` and its
/// [`ANTHROPIC_FIELDS`] (see [`anthropic`]).
pub const FORMAT_ANTHROPIC: &str = "anthropic.v1";

/// The fields of an Anthropic-style Messages request (`/v1/messages`), besides `messages`,
/// that `anthropic.v1` covers: the system prompt, the tools offered, extended thinking.
/// Sampling settings are not here: the record carries them in clear.
pub const ANTHROPIC_FIELDS: &[&str] = &["system", "tools", "tool_choice", "thinking"];

/// The fields of a completion request (`/v1/completions`, llama.cpp's `/completion`, Ollama's
/// `/api/generate`), besides `prompt`, that `completion.v1` covers: what the model is given
/// besides the prompt (a suffix, a system prompt, a template, images, context, adapters) and
/// the grammar or output format it is held to. Sampling settings are not here: the record
/// carries them in clear.
pub const COMPLETION_FIELDS: &[&str] = &[
    // OpenAI
    "suffix",
    "response_format",
    // llama.cpp server
    "grammar",
    "json_schema",
    "lora",
    "multimodal_data",
    // vLLM
    "guided_json",
    "guided_regex",
    "guided_choice",
    "guided_grammar",
    // Ollama /api/generate
    "format",
    "system",
    "template",
    "images",
    "context",
    "raw",
    "think",
];

/// The fields of a chat request, besides `messages`, that `chat.v1` covers: what shapes what
/// the model is asked to do (the tools it is offered, the output format or grammar it is held
/// to, template switches), across the OpenAI API, llama.cpp's and vLLM's extensions of it, and
/// Ollama's `/api/chat`. Sampling settings are not here: the record carries them in clear.
pub const CHAT_FIELDS: &[&str] = &[
    // OpenAI
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "functions",
    "function_call",
    "response_format",
    "reasoning_effort",
    "prediction",
    "modalities",
    // llama.cpp server
    "grammar",
    "json_schema",
    "chat_template",
    "chat_template_kwargs",
    "add_generation_prompt",
    "continue_final_message",
    // vLLM
    "documents",
    "guided_json",
    "guided_regex",
    "guided_choice",
    "guided_grammar",
    // Ollama /api/chat
    "format",
    "think",
    "template",
    "system",
];

/// The `chat.v1` committed bytes of a chat request object: RFC 8785 JSON of `{"messages":
/// ..., <each field of CHAT_FIELDS the request sets>}`, where a field set to `null`, `""`,
/// `[]` or `{}` counts as not set. `None` when the request has no `messages` array.
pub fn chat(request: &Map<String, Value>) -> Option<Result<Vec<u8>, CanonicalError>> {
    let messages = request.get("messages").filter(|m| m.is_array())?;
    Some(with_fields(request, "messages", messages, CHAT_FIELDS))
}

/// The `completion.v1` committed bytes of a completion request object: RFC 8785 JSON of
/// `{"prompt": ..., <each field of COMPLETION_FIELDS the request sets>}`, where a field set to
/// `null`, `""`, `[]` or `{}` counts as not set. `None` when the request has no `prompt` (or
/// it is `null`).
pub fn completion(request: &Map<String, Value>) -> Option<Result<Vec<u8>, CanonicalError>> {
    let prompt = request.get("prompt").filter(|p| !p.is_null())?;
    Some(with_fields(request, "prompt", prompt, COMPLETION_FIELDS))
}

/// The `responses.v1` committed bytes of an OpenAI Responses request object: RFC 8785 JSON of
/// `{"input": ..., <each field of RESPONSES_FIELDS the request sets>}`, where a field set to
/// `null`, `""`, `[]` or `{}` counts as not set. `None` when the request has no `input` (or
/// it is `null`).
pub fn responses(request: &Map<String, Value>) -> Option<Result<Vec<u8>, CanonicalError>> {
    let input = request.get("input").filter(|i| !i.is_null())?;
    Some(with_fields(request, "input", input, RESPONSES_FIELDS))
}

/// The `anthropic.v1` committed bytes of an Anthropic-style Messages request object: RFC 8785
/// JSON of `{"messages": ..., <each field of ANTHROPIC_FIELDS the request sets>}`, where a
/// field set to `null`, `""`, `[]` or `{}` counts as not set. `None` when the request has no
/// `messages` array.
pub fn anthropic(request: &Map<String, Value>) -> Option<Result<Vec<u8>, CanonicalError>> {
    let messages = request.get("messages").filter(|m| m.is_array())?;
    Some(with_fields(request, "messages", messages, ANTHROPIC_FIELDS))
}

/// Whether a completion request sets any of [`COMPLETION_FIELDS`]: if not, a signer may
/// commit to its prompt alone (`text` or `json`).
pub fn completion_sets_fields(request: &Map<String, Value>) -> bool {
    COMPLETION_FIELDS
        .iter()
        .any(|field| request.get(*field).is_some_and(|v| !is_empty(v)))
}

/// RFC 8785 JSON of `{name: value}` and every one of `fields` that `request` sets.
fn with_fields(
    request: &Map<String, Value>,
    name: &str,
    value: &Value,
    fields: &[&str],
) -> Result<Vec<u8>, CanonicalError> {
    let mut committed = Map::new();
    committed.insert(name.to_owned(), value.clone());
    for field in fields {
        if let Some(value) = request.get(*field).filter(|v| !is_empty(v)) {
            committed.insert((*field).to_owned(), value.clone());
        }
    }
    value_to_canonical(&Value::Object(committed)).map(String::into_bytes)
}

/// `null`, `""`, `[]` and `{}`: what clients send for a field they do not use (the `ollama`
/// package sends `"tools": []`), and what the servers read as not set.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

/// The bytes to check against a commitment of `format`, from what a caller disclosed.
///
/// - `chat.v1`: a JSON object with a `messages` array (the committed object, or the whole
///   request body as sent) gives its [`chat`] bytes;
/// - `completion.v1`: a JSON object with a `prompt` (the committed object, or the whole
///   request body as sent) gives its [`completion`] bytes;
/// - `responses.v1`: a JSON object with an `input` (the committed object, or the whole request
///   body as sent) gives its [`responses`] bytes;
/// - `anthropic.v1`: a JSON object with a `messages` array (the committed object, or the whole
///   request body as sent) gives its [`anthropic`] bytes;
/// - `messages`: a JSON array gives its canonical form, an object its `messages` array's;
/// - `json`: any JSON value gives its canonical form;
///
/// anything else (the `text` format, unknown formats, a file that is not such JSON) is
/// checked as it is.
pub fn disclosed<'a>(format: &str, file: &'a [u8]) -> Cow<'a, [u8]> {
    let canonical = |value: &Value| value_to_canonical(value).ok().map(String::into_bytes);
    let formed = match format {
        FORMAT_CHAT | FORMAT_COMPLETION | FORMAT_RESPONSES | FORMAT_ANTHROPIC | FORMAT_MESSAGES
        | FORMAT_JSON => match serde_json::from_slice::<Value>(file) {
            Ok(value) => match (format, &value) {
                (FORMAT_CHAT, Value::Object(object)) => chat(object).and_then(Result::ok),
                (FORMAT_COMPLETION, Value::Object(object)) => {
                    completion(object).and_then(Result::ok)
                }
                (FORMAT_RESPONSES, Value::Object(object)) => responses(object).and_then(Result::ok),
                (FORMAT_ANTHROPIC, Value::Object(object)) => anthropic(object).and_then(Result::ok),
                (FORMAT_MESSAGES, Value::Array(_)) | (FORMAT_JSON, _) => canonical(&value),
                (FORMAT_MESSAGES, Value::Object(object)) => object
                    .get("messages")
                    .filter(|m| m.is_array())
                    .and_then(canonical),
                _ => None,
            },
            Err(_) => None,
        },
        _ => None,
    };
    formed.map_or(Cow::Borrowed(file), Cow::Owned)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("a JSON object"),
        }
    }

    #[test]
    fn chat_covers_messages_and_the_listed_fields_only() {
        let request = object(json!({
            "model": "m", "temperature": 0.2, "stream": true, "tool_choice": null,
            "functions": [], "format": "", "chat_template_kwargs": {}, "think": false,
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "response_format": {"type": "json_object"},
        }));
        let bytes = chat(&request).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"messages":[{"content":"hi","role":"user"}],"response_format":{"type":"json_object"},"think":false,"tools":[{"function":{"name":"f"},"type":"function"}]}"#
        );
        assert!(chat(&object(json!({"prompt": "x"}))).is_none());
    }

    #[test]
    fn every_listed_field_changes_the_bytes() {
        let base = object(json!({"messages": [{"role": "user", "content": "hi"}]}));
        let plain = chat(&base).unwrap().unwrap();
        for field in CHAT_FIELDS {
            let mut with = base.clone();
            with.insert((*field).to_owned(), json!("x"));
            assert_ne!(chat(&with).unwrap().unwrap(), plain, "{field}");
        }
    }

    #[test]
    fn completion_covers_the_prompt_and_the_listed_fields_only() {
        let request = object(json!({
            "model": "m", "temperature": 0.2, "stream": true, "n_predict": 8, "system": "",
            "images": [], "json_schema": {}, "suffix": null, "raw": false,
            "prompt": "Is the sky blue?", "grammar": "root ::= \"yes\" | \"no\"",
            "format": {"type": "object"},
        }));
        assert!(completion_sets_fields(&request));
        let bytes = completion(&request).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"format":{"type":"object"},"grammar":"root ::= \"yes\" | \"no\"","prompt":"Is the sky blue?","raw":false}"#
        );
        let plain = object(json!({"prompt": [1, 2], "n_predict": 8, "system": null}));
        assert!(!completion_sets_fields(&plain));
        assert_eq!(completion(&plain).unwrap().unwrap(), br#"{"prompt":[1,2]}"#);
        assert!(completion(&object(json!({"messages": []}))).is_none());
        assert!(completion(&object(json!({"prompt": null}))).is_none());
    }

    #[test]
    fn every_listed_completion_field_changes_the_bytes() {
        let base = object(json!({"prompt": "hi"}));
        let plain = completion(&base).unwrap().unwrap();
        for field in COMPLETION_FIELDS {
            let mut with = base.clone();
            with.insert((*field).to_owned(), json!("x"));
            let bytes = completion(&with).unwrap().unwrap();
            assert_ne!(bytes, plain, "{field}");
            // Another value of the field is another commitment too.
            with.insert((*field).to_owned(), json!({"type": "object"}));
            assert_ne!(completion(&with).unwrap().unwrap(), bytes, "{field}");
        }
    }

    #[test]
    fn disclosed_accepts_the_request_body_however_written() {
        let committed = chat(&object(json!({
            "messages": [{"role": "user", "content": "hi"}], "format": {"type": "object"}
        })))
        .unwrap()
        .unwrap();
        let body = b"{ \"format\" : {\"type\":\"object\"}, \"stream\": false,\n \"messages\":[{\"content\":\"hi\",\"role\":\"user\"}] }";
        assert_eq!(disclosed(FORMAT_CHAT, body).as_ref(), committed.as_slice());
        assert_eq!(
            disclosed(FORMAT_CHAT, &committed).as_ref(),
            committed.as_slice()
        );
        // The older format: the array, or a body holding it.
        let messages = br#"[{"content":"hi","role":"user"}]"#;
        assert_eq!(
            disclosed(
                FORMAT_MESSAGES,
                b"[ {\"role\":\"user\",\"content\":\"hi\"} ]"
            )
            .as_ref(),
            messages
        );
        assert_eq!(disclosed(FORMAT_MESSAGES, body).as_ref(), messages);
        assert_eq!(disclosed(FORMAT_JSON, b"[1, 2]").as_ref(), b"[1,2]");
        // completion.v1: the committed object, or the request body as sent.
        let committed = br#"{"json_schema":{"type":"object"},"prompt":"hi"}"#;
        let body =
            b"{\"prompt\": \"hi\", \"n_predict\": 8, \"json_schema\": { \"type\": \"object\" } }";
        assert_eq!(disclosed(FORMAT_COMPLETION, body).as_ref(), committed);
        assert_eq!(disclosed(FORMAT_COMPLETION, committed).as_ref(), committed);
        assert_eq!(disclosed(FORMAT_COMPLETION, b"[1]").as_ref(), b"[1]");
        // Text, unknown formats and non-JSON are checked as they are.
        assert_eq!(disclosed("text", b" {} ").as_ref(), b" {} ");
        let body =
            br#"{"model":"m","input":"hi","instructions":"be brief","tools":[],"temperature":0}"#;
        let committed = br#"{"input":"hi","instructions":"be brief"}"#;
        assert_eq!(disclosed(FORMAT_RESPONSES, body).as_ref(), committed);
        assert_eq!(disclosed(FORMAT_RESPONSES, committed).as_ref(), committed);
        assert_eq!(disclosed(FORMAT_RESPONSES, b"[1]").as_ref(), b"[1]");
        let body = br#"{"model":"m","max_tokens":9,"system":"s","messages":[{"role":"user","content":"hi"}]}"#;
        let committed = br#"{"messages":[{"content":"hi","role":"user"}],"system":"s"}"#;
        assert_eq!(disclosed(FORMAT_ANTHROPIC, body).as_ref(), committed);
        assert_eq!(disclosed(FORMAT_ANTHROPIC, committed).as_ref(), committed);
        assert_eq!(disclosed(FORMAT_CHAT, b"not json").as_ref(), b"not json");
        assert_eq!(disclosed(FORMAT_CHAT, b"[1]").as_ref(), b"[1]");
    }
}
