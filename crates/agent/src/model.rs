//! What the agent asks: a [`Model`] that answers a conversation with a signed answer.
//!
//! [`SignedChat`] is the one `provenance serve` uses: an OpenAI chat completion sent through
//! the server's own signing path ([`provenance_signer::server::LocalClient`]), so a direct
//! message is answered, signed, stored and published exactly as an HTTP caller's request is.

use std::future::Future;
use std::pin::Pin;

use provenance::{Event, EventId};
use provenance_signer::server::LocalClient;
use serde_json::{Map, Value, json};

use crate::conversation::Turn;

/// A signed answer to a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The model's text.
    pub text: String,
    /// The id of the provenance event that signs the answer.
    pub event_id: EventId,
    /// That event as a `nevent` with relay hints.
    pub nevent: String,
    /// The event itself.
    pub event: Event,
    /// The tokens the model reported: prompt and output.
    pub usage: Option<provenance_pay::Usage>,
}

/// What the model is asked.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// The conversation, oldest first; the last turn is the new question.
    pub turns: &'a [Turn],
    /// The most tokens the asker wants; the model's own limit caps it.
    pub max_tokens: Option<u32>,
    /// Checked sampling fields (`temperature`, `top_p`, `top_k`, `seed`, ...) for the request.
    pub sampling: &'a Map<String, Value>,
}

/// A boxed future, so that [`Model`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Answers conversations. The error is one line, sent to the person who asked.
pub trait Model: Send + Sync + 'static {
    /// The answer to `ask`.
    fn answer<'a>(&'a self, ask: Ask<'a>) -> BoxFuture<'a, Result<Answer, String>>;
}

/// An OpenAI chat completion through the signing path; see the module.
#[derive(Debug, Clone)]
pub struct SignedChat {
    client: LocalClient,
    route: String,
    model: Option<String>,
    max_tokens: u32,
    system: Option<String>,
}

impl SignedChat {
    /// Chat completions at `/v1/chat/completions` through `client`, at most 512 tokens, no
    /// system prompt, no `model` field.
    pub fn new(client: LocalClient) -> Self {
        Self {
            client,
            route: "/v1/chat/completions".to_owned(),
            model: None,
            max_tokens: 512,
            system: None,
        }
    }

    /// The route of the chat completions. `/v1/chat/completions` by default.
    pub fn route(mut self, route: &str) -> Self {
        route.clone_into(&mut self.route);
        self
    }

    /// The `model` field of each request. None by default (llama-server answers with the
    /// model it serves).
    pub fn model(mut self, name: Option<String>) -> Self {
        self.model = name;
        self
    }

    /// `max_tokens` of each request. 512 by default.
    pub fn max_tokens(mut self, n: u32) -> Self {
        self.max_tokens = n;
        self
    }

    /// A system prompt before every conversation. None by default.
    pub fn system(mut self, text: Option<String>) -> Self {
        self.system = text;
        self
    }

    /// The request body for `ask`: the sampling fields, then the messages and `max_tokens`
    /// (the smaller of the asker's and this client's).
    pub fn body(&self, ask: Ask<'_>) -> Value {
        let mut messages = Vec::with_capacity(ask.turns.len() + 1);
        if let Some(system) = &self.system {
            messages.push(json!({"role": "system", "content": system}));
        }
        for turn in ask.turns {
            messages.push(json!({"role": turn.role.as_str(), "content": turn.text}));
        }
        let max_tokens = ask
            .max_tokens
            .map_or(self.max_tokens, |n| n.min(self.max_tokens));
        let mut body = Value::Object(ask.sampling.clone());
        body["messages"] = Value::from(messages);
        body["max_tokens"] = Value::from(max_tokens);
        if let Some(model) = &self.model {
            body["model"] = Value::from(model.clone());
        }
        body
    }
}

impl Model for SignedChat {
    fn answer<'a>(&'a self, ask: Ask<'a>) -> BoxFuture<'a, Result<Answer, String>> {
        Box::pin(async move {
            let body = serde_json::to_vec(&self.body(ask)).map_err(|e| e.to_string())?;
            let signed = self
                .client
                .post(&self.route, body)
                .await
                .map_err(|e| e.to_string())?;
            let value: Value = serde_json::from_slice(&signed.body)
                .map_err(|e| format!("the model's answer is not JSON: {e}"))?;
            let text = value["choices"][0]["message"]["content"]
                .as_str()
                .ok_or("the model's answer has no choices[0].message.content")?
                .to_owned();
            Ok(Answer {
                text,
                event_id: signed.event.id,
                nevent: signed.nevent,
                event: signed.event,
                usage: value["usage"]["completion_tokens"].as_u64().map(|output| {
                    provenance_pay::Usage {
                        input: value["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
                        output,
                    }
                }),
            })
        })
    }
}
