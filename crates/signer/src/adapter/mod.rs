//! API adapters: what the signer reads from each API flavour.
//!
//! For a request, an adapter finds the prompt (and how its bytes are formed for the
//! commitment), the sampling parameters the caller asked for, the model name and whether the
//! answer will be streamed. For a response, it turns the body (one JSON document, or the
//! messages of an SSE / NDJSON stream, see [`stream`]) into the output text, the finish
//! reason, token counts and the settings the engine reports.
//!
//! | [`Api`] | route | streaming |
//! |---|---|---|
//! | `openai.chat` | `POST /v1/chat/completions` | SSE with `"stream": true` |
//! | `openai.completions` | `POST /v1/completions` | SSE with `"stream": true` |
//! | `llama.completion` | `POST /completion` (and `/completions`) | SSE with `"stream": true` |
//! | `ollama.generate` | `POST /api/generate` | NDJSON unless `"stream": false` |
//! | `ollama.chat` | `POST /api/chat` | NDJSON unless `"stream": false` |
//!
//! Adapters never fail a request: a body they cannot read is forwarded untouched and answered
//! unsigned (see [`crate::service`]).

mod llama;
mod ollama;
mod openai;
pub mod stream;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The API flavours the signer understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Api {
    /// llama.cpp's native `/completion`.
    LlamaCompletion,
    /// Ollama `/api/chat`.
    OllamaChat,
    /// Ollama `/api/generate`.
    OllamaGenerate,
    /// OpenAI-compatible `/v1/chat/completions`.
    OpenAiChat,
    /// OpenAI-compatible `/v1/completions`.
    OpenAiCompletions,
}

impl Api {
    /// The API a `POST` to `path` is, if any.
    pub fn route(path: &str) -> Option<Self> {
        match path.trim_end_matches('/') {
            "/v1/chat/completions" | "/chat/completions" => Some(Self::OpenAiChat),
            "/v1/completions" => Some(Self::OpenAiCompletions),
            "/completion" | "/completions" => Some(Self::LlamaCompletion),
            "/api/generate" => Some(Self::OllamaGenerate),
            "/api/chat" => Some(Self::OllamaChat),
            _ => None,
        }
    }

    /// The name written to the record's `request.api`.
    pub fn name(self) -> &'static str {
        match self {
            Self::LlamaCompletion => "llama.completion",
            Self::OllamaChat => "ollama.chat",
            Self::OllamaGenerate => "ollama.generate",
            Self::OpenAiChat => "openai.chat",
            Self::OpenAiCompletions => "openai.completions",
        }
    }

    /// Whether a request that says nothing about streaming is streamed (Ollama streams by
    /// default, the others do not).
    fn streams_by_default(self) -> bool {
        matches!(self, Self::OllamaChat | Self::OllamaGenerate)
    }

    /// The stream framing this API uses.
    pub fn framing(self) -> stream::Kind {
        match self {
            Self::OllamaChat | Self::OllamaGenerate => stream::Kind::Ndjson,
            _ => stream::Kind::Sse,
        }
    }
}

/// The prompt formats (see [`provenance::prompt`]): chat requests commit to `chat.v1`, the
/// object of `messages` and the fields of [`provenance::prompt::CHAT_FIELDS`] they set;
/// completion requests to `completion.v1`, the object of `prompt` and the fields of
/// [`provenance::prompt::COMPLETION_FIELDS`] they set (a grammar, an output format, a system
/// prompt, ...), or, when they set none, to `text` (a string prompt) or `json` (any other
/// prompt value). `messages` is no longer written, nor `json` with other fields.
pub use provenance::prompt::{FORMAT_CHAT, FORMAT_COMPLETION, FORMAT_JSON, FORMAT_MESSAGES};

/// What a request says.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestInfo {
    /// The API.
    pub api: Api,
    /// The model the caller named.
    pub model: Option<String>,
    /// Whether the answer will be streamed.
    pub stream: bool,
    /// How the committed prompt bytes were formed (`text`, `json`, `chat.v1`,
    /// `completion.v1`).
    pub prompt_format: &'static str,
    /// The committed prompt bytes.
    pub prompt: Vec<u8>,
    /// Sampling parameters the caller set, by llama.cpp's names (see [`SAMPLING_KEYS`]).
    pub sampling: Map<String, Value>,
}

/// The sampling parameter names used throughout, llama.cpp's `generation_settings` names.
pub const SAMPLING_KEYS: &[&str] = &[
    "temperature",
    "top_k",
    "top_p",
    "min_p",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "n_predict",
    "samplers",
];

/// Why a request body was not understood.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The body is not JSON.
    #[error("request body is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The body is JSON but not an object.
    #[error("request body is not a JSON object")]
    NotObject,
    /// The prompt field is missing or of the wrong type.
    #[error("request has no usable `{field}` field")]
    Prompt {
        /// The field looked for.
        field: &'static str,
    },
    /// The prompt could not be written as canonical JSON.
    #[error("prompt cannot be canonicalised: {0}")]
    Canonical(#[from] provenance::canonical::CanonicalError),
}

/// Reads a request body of `api`.
pub fn parse_request(api: Api, body: &[u8]) -> Result<RequestInfo, RequestError> {
    let value: Value = serde_json::from_slice(body)?;
    let Value::Object(object) = value else {
        return Err(RequestError::NotObject);
    };
    let stream = object
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(api.streams_by_default());
    let model = object
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let (prompt_format, prompt) = match api {
        Api::OpenAiChat | Api::OllamaChat => messages(&object)?,
        Api::OpenAiCompletions | Api::LlamaCompletion | Api::OllamaGenerate => prompt(&object)?,
    };
    let sampling = match api {
        Api::OpenAiChat | Api::OpenAiCompletions => openai::sampling(&object),
        Api::LlamaCompletion => llama::sampling(&object),
        Api::OllamaChat | Api::OllamaGenerate => ollama::sampling(&object),
    };
    Ok(RequestInfo {
        api,
        model,
        stream,
        prompt_format,
        prompt,
        sampling,
    })
}

/// A chat request's prompt: its messages and the fields that shape what the model is asked
/// (tools, output format, ...), as [`provenance::prompt::chat`] forms them.
fn messages(object: &Map<String, Value>) -> Result<(&'static str, Vec<u8>), RequestError> {
    let json =
        provenance::prompt::chat(object).ok_or(RequestError::Prompt { field: "messages" })??;
    Ok((FORMAT_CHAT, json))
}

/// A completion request's prompt: `completion.v1` when it sets any of
/// [`provenance::prompt::COMPLETION_FIELDS`] (a suffix, a grammar, an output format, a system
/// prompt, ...); otherwise the `prompt` string alone (`text`) or the prompt value (`json`).
fn prompt(object: &Map<String, Value>) -> Result<(&'static str, Vec<u8>), RequestError> {
    if provenance::prompt::completion_sets_fields(object) {
        let json = provenance::prompt::completion(object)
            .ok_or(RequestError::Prompt { field: "prompt" })??;
        return Ok((FORMAT_COMPLETION, json));
    }
    match object.get("prompt") {
        Some(Value::String(text)) => Ok((
            provenance::commitment::FORMAT_TEXT,
            text.as_bytes().to_vec(),
        )),
        Some(value @ (Value::Array(_) | Value::Object(_))) => Ok((
            FORMAT_JSON,
            provenance::canonical::value_to_canonical(value)?.into_bytes(),
        )),
        _ => Err(RequestError::Prompt { field: "prompt" }),
    }
}

/// Copies the listed keys of `from` (renamed `from name -> our name`) into a sampling map.
fn pick(from: &Map<String, Value>, names: &[(&str, &str)]) -> Map<String, Value> {
    let mut out = Map::new();
    for (theirs, ours) in names {
        if let Some(value) = from.get(*theirs).filter(|v| !v.is_null()) {
            out.insert((*ours).to_owned(), value.clone());
        }
    }
    out
}

/// What a response says, accumulated over its messages.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Generation {
    /// The output text, in order.
    pub text: String,
    /// Why generation stopped, as the engine reported it.
    pub finish_reason: Option<String>,
    /// Generated tokens, as the engine reported them.
    pub completion_tokens: Option<u64>,
    /// Prompt tokens, as the engine reported them.
    pub prompt_tokens: Option<u64>,
    /// The model name the engine answered with.
    pub model: Option<String>,
    /// Settings the engine reports it used (llama.cpp `generation_settings`).
    pub settings: Map<String, Value>,
    /// The engine said the generation is complete (a finish reason, `done`, `stop`, or the
    /// SSE `[DONE]`).
    pub complete: bool,
    /// Messages that could not be read.
    pub unreadable: u64,
}

impl Generation {
    /// Applies one whole (non-streamed) response body.
    pub fn apply_body(&mut self, api: Api, body: &[u8]) {
        match serde_json::from_slice::<Value>(body) {
            Ok(value) => self.apply(api, &value, false),
            Err(_) => self.unreadable += 1,
        }
        // A whole body is the whole answer.
        self.complete = self.unreadable == 0;
    }

    /// Applies one stream message.
    pub fn apply_item(&mut self, api: Api, item: &stream::Item) {
        let data = match item {
            stream::Item::Event { name: Some(_), .. } => return, // not a data message
            stream::Item::Event { data, .. } | stream::Item::Line(data) => data,
            stream::Item::Overflow => {
                self.unreadable += 1;
                return;
            }
        };
        if data.as_slice() == b"[DONE]" {
            self.complete = true;
            return;
        }
        match serde_json::from_slice::<Value>(data) {
            Ok(value) => self.apply(api, &value, true),
            Err(_) => self.unreadable += 1,
        }
    }

    fn apply(&mut self, api: Api, value: &Value, streamed: bool) {
        let Some(object) = value.as_object() else {
            self.unreadable += 1;
            return;
        };
        if let Some(model) = object.get("model").and_then(Value::as_str) {
            self.model = Some(model.to_owned());
        }
        match api {
            Api::OpenAiChat | Api::OpenAiCompletions => openai::apply(self, object, streamed),
            Api::LlamaCompletion => llama::apply(self, object),
            Api::OllamaChat | Api::OllamaGenerate => ollama::apply(self, object),
        }
    }

    fn set_reason(&mut self, reason: &Value) {
        if let Some(reason) = reason.as_str() {
            self.finish_reason = Some(reason.to_owned());
            self.complete = true;
        }
    }
}

/// Merges sampling maps: later maps override earlier ones, key by key.
pub fn merge_sampling(layers: &[&Map<String, Value>]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for layer in layers {
        for (key, value) in *layer {
            if !value.is_null() {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
