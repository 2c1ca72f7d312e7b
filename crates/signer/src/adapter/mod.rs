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
//! | `openai.responses` | `POST /v1/responses` | SSE with typed events, with `"stream": true` |
//! | `anthropic.messages` | `POST /v1/messages` | SSE with typed events, with `"stream": true` |
//!
//! Adapters never fail a request: a body they cannot read is forwarded untouched and answered
//! unsigned (see [`crate::service`]).

mod anthropic;
#[doc(hidden)]
pub mod fuzzing;
mod llama;
mod ollama;
mod openai;
mod responses;
pub mod stream;

pub(crate) use llama::make_replayable;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The API flavours the signer understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Api {
    /// Anthropic-style Messages `/v1/messages`.
    AnthropicMessages,
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
    /// OpenAI Responses `/v1/responses`.
    OpenAiResponses,
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
            "/v1/responses" | "/responses" => Some(Self::OpenAiResponses),
            "/v1/messages" | "/messages" => Some(Self::AnthropicMessages),
            _ => None,
        }
    }

    /// Whether a `POST` to `path` asks an engine to generate through an API the signer does not
    /// read yet (llama.cpp infill): such an answer passes unsigned, counted and logged.
    pub fn unsigned_generation(path: &str) -> bool {
        matches!(path.trim_end_matches('/'), "/infill")
    }

    /// The name written to the record's `request.api`.
    pub fn name(self) -> &'static str {
        match self {
            Self::LlamaCompletion => "llama.completion",
            Self::OllamaChat => "ollama.chat",
            Self::OllamaGenerate => "ollama.generate",
            Self::OpenAiChat => "openai.chat",
            Self::OpenAiCompletions => "openai.completions",
            Self::OpenAiResponses => "openai.responses",
            Self::AnthropicMessages => "anthropic.messages",
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

    /// Whether this API's SSE messages are typed events (`event:` names) that carry the
    /// answer, rather than `data:` messages beside named events the signer skips.
    fn typed_events(self) -> bool {
        matches!(self, Self::OpenAiResponses | Self::AnthropicMessages)
    }
}

/// The prompt formats (see [`provenance::prompt`]): chat requests commit to `chat.v1`, the
/// object of `messages` and the fields of [`provenance::prompt::CHAT_FIELDS`] they set;
/// completion requests to `completion.v1`, the object of `prompt` and the fields of
/// [`provenance::prompt::COMPLETION_FIELDS`] they set (a grammar, an output format, a system
/// prompt, ...), or, when they set none, to `text` (a string prompt) or `json` (any other
/// prompt value). `messages` is no longer written, nor `json` with other fields.
pub use provenance::prompt::{
    FORMAT_ANTHROPIC, FORMAT_CHAT, FORMAT_COMPLETION, FORMAT_JSON, FORMAT_MESSAGES,
    FORMAT_RESPONSES,
};

/// How the committed prompt bytes of a request were formed; the record names it
/// ([`PromptFormat::as_str`]) so that a verifier forms the same bytes from a disclosed prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PromptFormat {
    /// The `prompt` string itself (`text`).
    Text,
    /// The canonical JSON of a `prompt` that is not a string (`json`).
    Json,
    /// A chat request's messages and the fields that shape them (`chat.v1`).
    Chat,
    /// A completion request's prompt and the fields that shape it (`completion.v1`).
    Completion,
    /// An OpenAI Responses request's input and the fields that shape it (`responses.v1`).
    Responses,
    /// An Anthropic-style Messages request's messages and the fields that shape them
    /// (`anthropic.v1`).
    Anthropic,
}

impl PromptFormat {
    /// The name records carry: [`provenance::commitment::FORMAT_TEXT`], [`FORMAT_JSON`],
    /// [`FORMAT_CHAT`], [`FORMAT_COMPLETION`], [`FORMAT_RESPONSES`] or [`FORMAT_ANTHROPIC`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => provenance::commitment::FORMAT_TEXT,
            Self::Json => FORMAT_JSON,
            Self::Chat => FORMAT_CHAT,
            Self::Completion => FORMAT_COMPLETION,
            Self::Responses => FORMAT_RESPONSES,
            Self::Anthropic => FORMAT_ANTHROPIC,
        }
    }
}

impl std::fmt::Display for PromptFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for PromptFormat {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}

/// What a request says.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestInfo {
    /// The API.
    pub api: Api,
    /// The model the caller named.
    pub model: Option<String>,
    /// Whether the answer will be streamed.
    pub stream: bool,
    /// How the committed prompt bytes were formed.
    pub prompt_format: PromptFormat,
    /// The committed prompt bytes.
    pub prompt: Vec<u8>,
    /// Sampling parameters the caller set, by llama.cpp's names (see [`SAMPLING_KEYS`]).
    pub sampling: Map<String, Value>,
    /// llama.cpp's `cache_prompt`, when the request says it.
    pub cache_prompt: Option<bool>,
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
    "stop",
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
        Api::OpenAiResponses => (
            PromptFormat::Responses,
            provenance::prompt::responses(&object)
                .ok_or(RequestError::Prompt { field: "input" })??,
        ),
        Api::AnthropicMessages => (
            PromptFormat::Anthropic,
            provenance::prompt::anthropic(&object)
                .ok_or(RequestError::Prompt { field: "messages" })??,
        ),
    };
    let sampling = match api {
        Api::OpenAiChat | Api::OpenAiCompletions => openai::sampling(&object),
        Api::LlamaCompletion => llama::sampling(&object),
        Api::OllamaChat | Api::OllamaGenerate => ollama::sampling(&object),
        Api::OpenAiResponses => responses::sampling(&object),
        Api::AnthropicMessages => anthropic::sampling(&object),
    };
    Ok(RequestInfo {
        api,
        model,
        stream,
        prompt_format,
        prompt,
        sampling,
        cache_prompt: object.get("cache_prompt").and_then(Value::as_bool),
    })
}

/// A chat request's prompt: its messages and the fields that shape what the model is asked
/// (tools, output format, ...), as [`provenance::prompt::chat`] forms them.
fn messages(object: &Map<String, Value>) -> Result<(PromptFormat, Vec<u8>), RequestError> {
    let json =
        provenance::prompt::chat(object).ok_or(RequestError::Prompt { field: "messages" })??;
    Ok((PromptFormat::Chat, json))
}

/// A completion request's prompt: `completion.v1` when it sets any of
/// [`provenance::prompt::COMPLETION_FIELDS`] (a suffix, a grammar, an output format, a system
/// prompt, ...); otherwise the `prompt` string alone (`text`) or the prompt value (`json`).
fn prompt(object: &Map<String, Value>) -> Result<(PromptFormat, Vec<u8>), RequestError> {
    if provenance::prompt::completion_sets_fields(object) {
        let json = provenance::prompt::completion(object)
            .ok_or(RequestError::Prompt { field: "prompt" })??;
        return Ok((PromptFormat::Completion, json));
    }
    match object.get("prompt") {
        Some(Value::String(text)) => Ok((PromptFormat::Text, text.as_bytes().to_vec())),
        Some(value @ (Value::Array(_) | Value::Object(_))) => Ok((
            PromptFormat::Json,
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

/// One choice of an answer with several (OpenAI `n > 1`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Choice {
    /// Its text.
    pub content: String,
    /// Its reasoning, apart from the text.
    pub reasoning: String,
    /// Its tool calls, in order.
    pub tool_calls: Vec<ToolCall>,
}

/// One tool call the model made: the function's name and its arguments as the engine wrote
/// them (OpenAI: a string of JSON; streamed, the pieces concatenated).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ToolCall {
    /// The function's name.
    pub name: String,
    /// The arguments.
    pub arguments: String,
}

/// What a response says, accumulated over its messages.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Generation {
    /// The output text, in order (of choice 0, when the API has choices).
    pub text: String,
    /// Reasoning the engine gave apart from the text (`reasoning_content`), of choice 0.
    pub reasoning: String,
    /// The tool calls of choice 0, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Every other choice, by index (OpenAI `n > 1`); empty for one choice.
    pub other_choices: BTreeMap<u64, Choice>,
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
    /// Generated token ids, in order, when the engine returns them (llama.cpp
    /// `return_tokens`).
    pub tokens: Vec<u32>,
    /// Prompt tokens the engine took from its cache (llama.cpp `timings.cache_n`).
    pub prompt_cache_tokens: Option<u64>,
    /// The engine said the generation is complete (a finish reason, `done`, `stop`, or the
    /// SSE `[DONE]`).
    pub complete: bool,
    /// The engine sent the last message of a stream, after which it sends nothing more: the
    /// SSE `[DONE]` of the OpenAI APIs, llama.cpp's `stop: true`, Ollama's `done: true`. A
    /// client may close the connection as soon as it has read it.
    pub last: bool,
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
            // Not a data message, except in the APIs whose answer comes in typed events.
            stream::Item::Event { name: Some(_), .. } if !api.typed_events() => return,
            stream::Item::Event { data, .. } | stream::Item::Line(data) => data,
            stream::Item::Overflow => {
                self.unreadable += 1;
                return;
            }
        };
        if data.as_slice() == b"[DONE]" {
            self.complete = true;
            self.last = true;
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
            Api::OpenAiResponses => responses::apply(self, object, streamed),
            Api::AnthropicMessages => anthropic::apply(self, object, streamed),
        }
    }

    /// The output the record covers, and whether it is the JSON form. One choice of text
    /// only: its text (`text/plain`). Several choices (`n > 1`), tool calls or reasoning: a
    /// JSON array with one object per choice in index order, written compactly,
    /// `{"index":<n>,"content":<text>}` followed by `"reasoning":<text>` when there is
    /// reasoning and `"tool_calls":[{"name":<name>,"arguments":<arguments>}, ...]` when there
    /// are tool calls (`application/json`; docs/event-format.md).
    pub fn output(&self) -> (String, bool) {
        if self.other_choices.is_empty() && self.reasoning.is_empty() && self.tool_calls.is_empty()
        {
            return (self.text.clone(), false);
        }
        let first = (
            0,
            self.text.as_str(),
            self.reasoning.as_str(),
            &self.tool_calls,
        );
        let others = self
            .other_choices
            .iter()
            .map(|(i, c)| (*i, c.content.as_str(), c.reasoning.as_str(), &c.tool_calls));
        let string = |s: &str| Value::String(s.to_owned()).to_string();
        let items: Vec<String> = std::iter::once(first)
            .chain(others)
            .map(|(index, content, reasoning, calls)| {
                let mut item = format!(r#"{{"index":{index},"content":{}"#, string(content));
                if !reasoning.is_empty() {
                    item.push_str(&format!(r#","reasoning":{}"#, string(reasoning)));
                }
                if !calls.is_empty() {
                    let calls: Vec<String> = calls
                        .iter()
                        .map(|c| {
                            format!(
                                r#"{{"name":{},"arguments":{}}}"#,
                                string(&c.name),
                                string(&c.arguments)
                            )
                        })
                        .collect();
                    item.push_str(&format!(r#","tool_calls":[{}]"#, calls.join(",")));
                }
                item.push('}');
                item
            })
            .collect();
        (format!("[{}]", items.join(",")), true)
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
