use serde_json::json;

use super::stream::{Framing, Kind};
use super::*;

fn stream(api: Api, bytes: &[u8]) -> Generation {
    let mut generation = Generation::default();
    let mut framing = Framing::new(api.framing());
    let mut items = Vec::new();
    framing.feed(bytes, &mut |item| items.push(item));
    framing.finish(&mut |item| items.push(item));
    for item in &items {
        generation.apply_item(api, item);
    }
    generation
}

#[test]
fn routes() {
    assert_eq!(Api::route("/v1/chat/completions"), Some(Api::OpenAiChat));
    assert_eq!(Api::route("/v1/completions"), Some(Api::OpenAiCompletions));
    assert_eq!(Api::route("/completion"), Some(Api::LlamaCompletion));
    assert_eq!(Api::route("/api/generate"), Some(Api::OllamaGenerate));
    assert_eq!(Api::route("/api/chat"), Some(Api::OllamaChat));
    for other in [
        "/v1/models",
        "/tokenize",
        "/props",
        "/api/tags",
        "/api/show",
        "/",
    ] {
        assert_eq!(Api::route(other), None, "{other}");
    }
    assert_eq!(Api::OllamaChat.framing(), Kind::Ndjson);
}

#[test]
fn requests_give_prompt_bytes_sampling_and_stream_flag() {
    let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.5,"max_tokens":8,"stream":true}"#;
    let info = parse_request(Api::OpenAiChat, body).unwrap();
    assert_eq!(info.prompt_format, FORMAT_CHAT);
    assert_eq!(
        info.prompt,
        br#"{"messages":[{"content":"hi","role":"user"}]}"#
    );
    assert!(info.stream);
    assert_eq!(info.model.as_deref(), Some("m"));
    assert_eq!(info.sampling.get("n_predict"), Some(&json!(8)));

    let info = parse_request(
        Api::LlamaCompletion,
        br#"{"prompt":"Once","n_predict":4,"seed":1}"#,
    )
    .unwrap();
    assert_eq!(
        (info.prompt_format.as_str(), &info.prompt[..]),
        ("text", &b"Once"[..])
    );
    assert!(!info.stream);
    assert_eq!(info.sampling.get("seed"), Some(&json!(1)));

    let info = parse_request(
        Api::OllamaGenerate,
        br#"{"model":"g","prompt":"Why?","options":{"num_predict":3,"temperature":0}}"#,
    )
    .unwrap();
    assert!(info.stream, "Ollama streams unless told not to");
    assert_eq!(info.sampling.get("n_predict"), Some(&json!(3)));

    // A system prompt is committed to with the prompt.
    let info = parse_request(
        Api::OllamaGenerate,
        br#"{"prompt":"Why?","system":"Be brief.","stream":false}"#,
    )
    .unwrap();
    assert_eq!(info.prompt_format, FORMAT_COMPLETION);
    assert_eq!(info.prompt, br#"{"prompt":"Why?","system":"Be brief."}"#);

    let info = parse_request(Api::OpenAiCompletions, br#"{"prompt":[1,2,3]}"#).unwrap();
    assert_eq!(
        (info.prompt_format.as_str(), &info.prompt[..]),
        (FORMAT_JSON, &b"[1,2,3]"[..])
    );

    assert!(parse_request(Api::OpenAiChat, b"not json").is_err());
    assert!(parse_request(Api::OpenAiChat, b"[1]").is_err());
    assert!(parse_request(Api::OllamaChat, br#"{"prompt":"x"}"#).is_err());
}

/// What a chat request commits to covers the tools, functions, tool choice and output format
/// it sets: changing any of them changes the commitment under the same salt.
#[test]
fn chat_commitment_covers_tools_and_output_formats() {
    use provenance::commitment::{PromptCommitment, Salt};
    let salt = Salt::from_bytes([3; 32]);
    let commit = |api: Api, body: &serde_json::Value| {
        let info = parse_request(api, body.to_string().as_bytes()).unwrap();
        assert_eq!(info.prompt_format, FORMAT_CHAT);
        PromptCommitment::commit(info.prompt_format.as_str(), &info.prompt, &salt).commitment
    };
    let tool = json!([{"type": "function", "function": {"name": "weather", "parameters": {}}}]);
    let other_tool =
        json!([{"type": "function", "function": {"name": "stocks", "parameters": {}}}]);
    let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}});
    // (field, a value, another value), per API.
    type Cases<'a> = [(Api, &'a [(&'a str, serde_json::Value, serde_json::Value)]); 2];
    let cases: Cases<'_> = [
        (
            Api::OpenAiChat,
            &[
                ("tools", tool.clone(), other_tool.clone()),
                ("functions", json!([{"name": "f"}]), json!([{"name": "g"}])),
                ("tool_choice", json!("auto"), json!("required")),
                ("function_call", json!("auto"), json!("none")),
                (
                    "response_format",
                    json!({"type": "json_object"}),
                    json!({"type": "json_schema", "json_schema": {"schema": schema}}),
                ),
                ("json_schema", schema.clone(), json!({"type": "array"})),
                ("grammar", json!("root ::= \"a\""), json!("root ::= \"b\"")),
                (
                    "chat_template_kwargs",
                    json!({"enable_thinking": false}),
                    json!({}),
                ),
            ],
        ),
        (
            Api::OllamaChat,
            &[
                ("format", json!("json"), schema.clone()),
                ("tools", tool, other_tool),
                ("think", json!(true), json!(false)),
            ],
        ),
    ];
    for (api, fields) in cases {
        let base = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        let plain = commit(api, &base);
        for (field, one, two) in fields {
            let mut with = base.clone();
            with[*field] = one.clone();
            let first = commit(api, &with);
            with[*field] = two.clone();
            let second = commit(api, &with);
            assert_ne!(first, plain, "{api:?} {field}");
            assert_ne!(first, second, "{api:?} {field}");
            // Sampling and delivery settings are recorded in clear, not committed to.
            with["temperature"] = json!(0.1);
            with["stream"] = json!(true);
            assert_eq!(commit(api, &with), second, "{api:?} {field}");
        }
    }
}

/// What a completion request commits to covers the grammar, JSON schema, output format and
/// the other fields that shape what the model is given: changing any of them changes the
/// commitment under the same salt; sampling and delivery settings do not.
#[test]
fn completion_commitment_covers_grammars_and_output_formats() {
    use provenance::commitment::{PromptCommitment, Salt};
    let salt = Salt::from_bytes([3; 32]);
    let commit = |api: Api, body: &serde_json::Value| {
        let info = parse_request(api, body.to_string().as_bytes()).unwrap();
        (
            info.prompt_format,
            PromptCommitment::commit(info.prompt_format.as_str(), &info.prompt, &salt).commitment,
        )
    };
    let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}});
    type Cases<'a> = [(Api, &'a [(&'a str, serde_json::Value, serde_json::Value)]); 3];
    let llama: &[(&str, serde_json::Value, serde_json::Value)] = &[
        ("grammar", json!("root ::= \"a\""), json!("root ::= \"b\"")),
        ("json_schema", schema.clone(), json!({"type": "array"})),
        ("suffix", json!("end"), json!("fin")),
    ];
    let cases: Cases<'_> = [
        (Api::LlamaCompletion, llama),
        (Api::OpenAiCompletions, llama),
        (
            Api::OllamaGenerate,
            &[
                ("format", json!("json"), schema.clone()),
                ("raw", json!(true), json!(false)),
                (
                    "template",
                    json!("{{ .Prompt }}"),
                    json!("[INST] {{ .Prompt }}"),
                ),
                ("system", json!("Be brief."), json!("Be long.")),
                ("think", json!(true), json!(false)),
            ],
        ),
    ];
    for (api, fields) in cases {
        let base = json!({"model": "m", "prompt": "hi"});
        let (format, plain) = commit(api, &base);
        assert_eq!(format, "text", "{api:?}: no field set, the prompt alone");
        for (field, one, two) in fields {
            let mut with = base.clone();
            with[*field] = one.clone();
            let (format, first) = commit(api, &with);
            assert_eq!(format, FORMAT_COMPLETION, "{api:?} {field}");
            with[*field] = two.clone();
            let (_, second) = commit(api, &with);
            assert_ne!(first, plain, "{api:?} {field}");
            assert_ne!(first, second, "{api:?} {field}");
            with["temperature"] = json!(0.1);
            with["stream"] = json!(true);
            with["n_predict"] = json!(3);
            assert_eq!(commit(api, &with).1, second, "{api:?} {field}");
        }
    }
}

#[test]
fn openai_chat_stream_and_body() {
    let sse = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null}}],\"model\":\"m\"}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}],\"usage\":{\"completion_tokens\":2,\"prompt_tokens\":5}}\n\n",
        "data: [DONE]\n\n"
    );
    let g = stream(Api::OpenAiChat, sse.as_bytes());
    assert_eq!(g.text, "Hello");
    assert_eq!(g.finish_reason.as_deref(), Some("length"));
    assert_eq!((g.completion_tokens, g.prompt_tokens), (Some(2), Some(5)));
    assert!(g.complete);
    assert!(g.last);
    assert_eq!(g.unreadable, 0);
    // The finish reason completes the answer, but `[DONE]` is the last message.
    let g = stream(
        Api::OpenAiChat,
        sse.trim_end_matches("data: [DONE]\n\n").as_bytes(),
    );
    assert!(g.complete && !g.last);

    let mut g = Generation::default();
    g.apply_body(
        Api::OpenAiChat,
        br#"{"choices":[{"index":0,"message":{"content":"Hi"},"finish_reason":"stop"}]}"#,
    );
    assert_eq!(
        (g.text.as_str(), g.finish_reason.as_deref()),
        ("Hi", Some("stop"))
    );

    // n > 1: every choice is read, and the output covers them all.
    let mut g = Generation::default();
    g.apply_body(
        Api::OpenAiCompletions,
        br#"{"choices":[{"index":0,"text":"a\"","finish_reason":"stop"},{"index":1,"text":"b","finish_reason":"length"}]}"#,
    );
    assert_eq!(g.unreadable, 0);
    assert_eq!(g.finish_reason.as_deref(), Some("stop"), "choice 0's");
    assert_eq!(
        g.output(),
        (
            r#"[{"index":0,"content":"a\""},{"index":1,"content":"b"}]"#.to_owned(),
            true
        )
    );
    // Streamed, the deltas of each choice go to that choice.
    let sse = concat!(
        "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"x\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"y\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"z\"}}]}\n\n",
        "data: [DONE]\n\n"
    );
    let g = stream(Api::OpenAiChat, sse.as_bytes());
    assert_eq!(
        g.output().0,
        r#"[{"index":0,"content":"y"},{"index":1,"content":"xz"}]"#
    );
    // One choice: its text, as it is.
    let g = stream(
        Api::OpenAiChat,
        b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"y\"}}]}\n\n",
    );
    assert_eq!(g.output(), ("y".to_owned(), false));
}

#[test]
fn llama_completion_stream_reports_settings() {
    let sse = concat!(
        "data: {\"content\":\"A\",\"stop\":false}\n\n",
        "data: {\"content\":\"B\",\"stop\":false}\n\n",
        "data: {\"content\":\"\",\"stop\":true,\"stop_type\":\"limit\",\"tokens_predicted\":2,\"tokens_evaluated\":3,\"generation_settings\":{\"temperature\":0.8,\"top_k\":40}}\n\n",
    );
    let g = stream(Api::LlamaCompletion, sse.as_bytes());
    assert_eq!(g.text, "AB");
    assert_eq!(g.finish_reason.as_deref(), Some("limit"));
    assert_eq!(g.settings.get("top_k"), Some(&json!(40)));
    assert!(g.complete && g.last);
}

#[test]
fn ollama_ndjson_and_incomplete_streams() {
    let ndjson = concat!(
        "{\"model\":\"g\",\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"done\":false}\n",
        "{\"model\":\"g\",\"message\":{\"role\":\"assistant\",\"content\":\"!\"},\"done\":false}\n",
        "{\"model\":\"g\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"eval_count\":2,\"prompt_eval_count\":7}\n",
    );
    let g = stream(Api::OllamaChat, ndjson.as_bytes());
    assert_eq!(g.text, "Hi!");
    assert_eq!(g.finish_reason.as_deref(), Some("stop"));
    assert_eq!(g.completion_tokens, Some(2));
    assert!(g.complete && g.last);
    // Without the final message, the answer is not complete.
    let first_two: String = ndjson.lines().take(2).map(|l| format!("{l}\n")).collect();
    let g = stream(Api::OllamaChat, first_two.as_bytes());
    assert!(!g.complete && !g.last);
    assert_eq!(g.text, "Hi!");
    let g = stream(
        Api::OllamaGenerate,
        b"{\"response\":\"x\",\"done\":false}\nnot json\n",
    );
    assert_eq!(g.unreadable, 1);
}

/// Tool calls and reasoning are what the model produced: the output covers them (shapes of
/// OpenAI's published chat completion object and chunk; llama.cpp's `reasoning_content`).
#[test]
fn tool_calls_and_reasoning_are_in_the_output() {
    let mut g = Generation::default();
    g.apply_body(
        Api::OpenAiChat,
        br#"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Paris\"}"}}]},"finish_reason":"tool_calls"}]}"#,
    );
    assert_eq!(g.unreadable, 0);
    let expected = r#"[{"index":0,"content":"","tool_calls":[{"name":"get_weather","arguments":"{\"location\":\"Paris\"}"}]}]"#;
    assert_eq!(g.output(), (expected.to_owned(), true));
    // Streamed: the pieces of each call, by its index.
    let sse = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"location\\\":\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: [DONE]\n\n"
    );
    let g = stream(Api::OpenAiChat, sse.as_bytes());
    assert_eq!(g.output(), (expected.to_owned(), true));
    // Reasoning apart from the text.
    let mut g = Generation::default();
    g.apply_body(
        Api::OpenAiChat,
        br#"{"choices":[{"index":0,"message":{"content":"4","reasoning_content":"2+2"},"finish_reason":"stop"}]}"#,
    );
    assert_eq!(
        g.output().0,
        r#"[{"index":0,"content":"4","reasoning":"2+2"}]"#
    );
}

/// Ollama's tool calls (whole, `arguments` an object) and thinking are in the output, whole
/// and streamed (shapes of Ollama's published API: `docs/api.md`, "Chat request (with tools)"
/// and thinking; no Ollama server can be installed here).
#[test]
fn ollama_tool_calls_and_thinking_are_in_the_output() {
    let whole = br#"{"model":"llama3.2","created_at":"2024-07-22T20:33:28.123648Z","message":{"role":"assistant","content":"","thinking":"The user wants weather.","tool_calls":[{"function":{"name":"get_current_weather","arguments":{"format":"celsius","location":"Paris, FR"}}}]},"done_reason":"stop","done":true,"eval_count":111,"prompt_eval_count":217}"#;
    let mut g = Generation::default();
    g.apply_body(Api::OllamaChat, whole);
    assert_eq!(g.unreadable, 0);
    let expected = r#"[{"index":0,"content":"","reasoning":"The user wants weather.","tool_calls":[{"name":"get_current_weather","arguments":"{\"format\":\"celsius\",\"location\":\"Paris, FR\"}"}]}]"#;
    assert_eq!(g.output(), (expected.to_owned(), true));
    // Streamed: thinking in pieces, the call whole in one line.
    let ndjson = concat!(
        "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"thinking\":\"The user \"},\"done\":false}\n",
        "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"thinking\":\"wants weather.\"},\"done\":false}\n",
        "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"get_current_weather\",\"arguments\":{\"format\":\"celsius\",\"location\":\"Paris, FR\"}}}]},\"done\":false}\n",
        "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\"}\n",
    );
    let g = stream(Api::OllamaChat, ndjson.as_bytes());
    assert_eq!(g.output(), (expected.to_owned(), true));
    // /api/generate's thinking is at the top level.
    let mut g = Generation::default();
    g.apply_body(
        Api::OllamaGenerate,
        br#"{"model":"m","response":"4","thinking":"2+2","done":true,"done_reason":"stop"}"#,
    );
    assert_eq!(
        g.output().0,
        r#"[{"index":0,"content":"4","reasoning":"2+2"}]"#
    );
}

/// A recorded exchange of `fixtures/traffic/llama.cpp-apis/` (real llama-server).
fn recorded(name: &str) -> (Vec<u8>, Vec<u8>) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/traffic/llama.cpp-apis");
    let request = std::fs::read(dir.join(format!("{name}.request.http"))).unwrap_or_default();
    let at = request
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(request.len(), |at| at + 4);
    let body = std::fs::read(dir.join(format!("{name}.response.body"))).unwrap_or_default();
    (request[at..].to_vec(), body)
}

const RECORDED_TEXT: &str = "Name three primary colours.\n(a) (b) (c)\n(a) (b) (c)\n(a) (b)";

#[test]
fn responses_and_messages_routes_and_requests() {
    assert_eq!(Api::route("/v1/responses"), Some(Api::OpenAiResponses));
    assert_eq!(Api::route("/v1/messages/"), Some(Api::AnthropicMessages));
    assert!(!Api::unsigned_generation("/v1/responses"));
    assert!(!Api::unsigned_generation("/v1/messages"));
    assert!(Api::unsigned_generation("/infill"));
    assert_eq!(Api::OpenAiResponses.name(), "openai.responses");
    assert_eq!(Api::AnthropicMessages.name(), "anthropic.messages");

    let (body, _) = recorded("responses-stream");
    let info = parse_request(Api::OpenAiResponses, &body).unwrap();
    assert!(info.stream);
    assert_eq!(info.prompt_format, FORMAT_RESPONSES);
    assert_eq!(info.prompt, br#"{"input":"Name three primary colours."}"#);
    assert_eq!(info.sampling["n_predict"], 32);
    assert_eq!(info.sampling["temperature"], 0);
    let with = br#"{"input":[{"role":"user","content":"hi"}],"instructions":"terse","max_output_tokens":4}"#;
    let info = parse_request(Api::OpenAiResponses, with).unwrap();
    assert!(!info.stream);
    assert_eq!(
        info.prompt,
        br#"{"input":[{"content":"hi","role":"user"}],"instructions":"terse"}"#
    );
    assert!(matches!(
        parse_request(Api::OpenAiResponses, br#"{"model":"m"}"#),
        Err(RequestError::Prompt { field: "input" })
    ));

    let (body, _) = recorded("messages");
    let info = parse_request(Api::AnthropicMessages, &body).unwrap();
    assert!(!info.stream);
    assert_eq!(info.prompt_format, FORMAT_ANTHROPIC);
    assert_eq!(
        info.prompt,
        br#"{"messages":[{"content":"Name three primary colours.","role":"user"}]}"#
    );
    assert_eq!(info.sampling["n_predict"], 32);
    let with = br#"{"system":"terse","messages":[],"max_tokens":4,"stop_sequences":["."],"thinking":{"type":"enabled","budget_tokens":9}}"#;
    let info = parse_request(Api::AnthropicMessages, with).unwrap();
    assert_eq!(
        info.prompt,
        br#"{"messages":[],"system":"terse","thinking":{"budget_tokens":9,"type":"enabled"}}"#
    );
    assert_eq!(info.sampling["stop"], json!(["."]));
}

#[test]
fn recorded_responses_whole_and_streamed() {
    let (_, body) = recorded("responses");
    let mut whole = Generation::default();
    whole.apply_body(Api::OpenAiResponses, &body);
    assert_eq!(whole.output(), (RECORDED_TEXT.to_owned(), false));
    assert!(whole.complete);
    assert_eq!(whole.finish_reason.as_deref(), Some("completed"));
    assert_eq!(
        (whole.prompt_tokens, whole.completion_tokens),
        (Some(14), Some(32))
    );
    assert_eq!(whole.model.as_deref(), Some("gemma-3-270m"));

    let (_, body) = recorded("responses-stream");
    let streamed = stream(Api::OpenAiResponses, &body);
    assert_eq!(streamed.output(), (RECORDED_TEXT.to_owned(), false));
    assert!(streamed.complete && streamed.last);
    assert_eq!(streamed.unreadable, 0);
    assert_eq!(streamed.finish_reason.as_deref(), Some("completed"));
    assert_eq!(streamed.completion_tokens, Some(32));
    // Cut before `response.completed`: incomplete, not the last message.
    let at = body
        .windows(28)
        .position(|w| w == b"event: response.completed\nda")
        .unwrap_or(body.len());
    let cut = stream(Api::OpenAiResponses, &body[..at]);
    assert_eq!(cut.text, RECORDED_TEXT);
    assert!(!cut.complete && !cut.last);
}

#[test]
fn recorded_messages_whole_and_streamed() {
    let (_, body) = recorded("messages");
    let mut whole = Generation::default();
    whole.apply_body(Api::AnthropicMessages, &body);
    assert_eq!(whole.output(), (RECORDED_TEXT.to_owned(), false));
    assert_eq!(whole.finish_reason.as_deref(), Some("max_tokens"));
    // `input_tokens` does not count the cached ones (5 + 9 cached).
    assert_eq!(
        (whole.prompt_tokens, whole.completion_tokens),
        (Some(14), Some(32))
    );

    let (_, body) = recorded("messages-stream");
    let streamed = stream(Api::AnthropicMessages, &body);
    assert_eq!(streamed.output(), (RECORDED_TEXT.to_owned(), false));
    assert!(streamed.complete && streamed.last);
    assert_eq!(streamed.finish_reason.as_deref(), Some("max_tokens"));
    assert_eq!(
        (streamed.prompt_tokens, streamed.completion_tokens),
        (Some(14), Some(32))
    );
    let at = body
        .windows(20)
        .position(|w| w == b"event: message_stop\n")
        .unwrap_or(body.len());
    let cut = stream(Api::AnthropicMessages, &body[..at]);
    assert_eq!(cut.finish_reason.as_deref(), Some("max_tokens"));
    assert!(!cut.complete && !cut.last, "complete only at message_stop");
}

/// Tool calls and reasoning in the shapes the APIs publish (the tiny and small models make
/// none): written by hand, not recorded.
#[test]
fn responses_and_messages_tool_calls_and_reasoning() {
    let body = json!({"status": "completed", "output": [
        {"type": "reasoning", "content": [{"type": "reasoning_text", "text": "think"}]},
        {"type": "function_call", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
        {"type": "message", "content": [{"type": "output_text", "text": "ok"}]}
    ]});
    let mut g = Generation::default();
    g.apply_body(Api::OpenAiResponses, body.to_string().as_bytes());
    let expected = r#"[{"index":0,"content":"ok","reasoning":"think","tool_calls":[{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}]}]"#;
    assert_eq!(g.output(), (expected.to_owned(), true));

    let events = [
        ("response.reasoning_text.delta", json!({"delta": "think"})),
        (
            "response.output_item.done",
            json!({"item": {"type": "function_call", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}),
        ),
        ("response.output_text.delta", json!({"delta": "ok"})),
        (
            "response.completed",
            json!({"response": {"status": "completed"}}),
        ),
    ];
    let mut sse = String::new();
    for (kind, mut data) in events {
        data["type"] = json!(kind);
        sse.push_str(&format!("event: {kind}\ndata: {data}\n\n"));
    }
    let g = stream(Api::OpenAiResponses, sse.as_bytes());
    assert_eq!(g.output(), (expected.to_owned(), true));
    assert!(g.complete && g.last);

    let body = json!({"stop_reason": "tool_use", "content": [
        {"type": "thinking", "thinking": "think"},
        {"type": "text", "text": "ok"},
        {"type": "tool_use", "name": "get_weather", "input": {"city": "Paris"}}
    ]});
    let mut g = Generation::default();
    g.apply_body(Api::AnthropicMessages, body.to_string().as_bytes());
    assert_eq!(g.output(), (expected.to_owned(), true));
    let events = [
        json!({"type": "message_start", "message": {"model": "m", "usage": {"input_tokens": 3}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "think"}}),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "ok"}}),
        json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "name": "get_weather", "input": {}}}),
        json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"city\":"}}),
        json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "\"Paris\"}"}}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 5}}),
        json!({"type": "message_stop"}),
    ];
    let sse: String = events
        .iter()
        .map(|e| {
            format!(
                "event: {}\ndata: {e}\n\n",
                e["type"].as_str().unwrap_or_default()
            )
        })
        .collect();
    let g = stream(Api::AnthropicMessages, sse.as_bytes());
    assert_eq!(g.output(), (expected.to_owned(), true));
    assert!(g.complete && g.last);
    assert_eq!((g.prompt_tokens, g.completion_tokens), (Some(3), Some(5)));
}
