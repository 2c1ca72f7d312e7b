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
        (info.prompt_format, &info.prompt[..]),
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
        (info.prompt_format, &info.prompt[..]),
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
        PromptCommitment::commit(info.prompt_format, &info.prompt, &salt).commitment
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
            PromptCommitment::commit(info.prompt_format, &info.prompt, &salt).commitment,
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
    assert_eq!(g.unreadable, 0);

    let mut g = Generation::default();
    g.apply_body(
        Api::OpenAiChat,
        br#"{"choices":[{"index":0,"message":{"content":"Hi"},"finish_reason":"stop"}]}"#,
    );
    assert_eq!(
        (g.text.as_str(), g.finish_reason.as_deref()),
        ("Hi", Some("stop"))
    );

    // n > 1 is not signed.
    let mut g = Generation::default();
    g.apply_body(
        Api::OpenAiCompletions,
        br#"{"choices":[{"index":0,"text":"a"},{"index":1,"text":"b"}]}"#,
    );
    assert_eq!(g.unreadable, 1);
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
    assert!(g.complete);
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
    assert!(g.complete);
    // Without the final message, the answer is not complete.
    let first_two: String = ndjson.lines().take(2).map(|l| format!("{l}\n")).collect();
    let g = stream(Api::OllamaChat, first_two.as_bytes());
    assert!(!g.complete);
    assert_eq!(g.text, "Hi!");
    let g = stream(
        Api::OllamaGenerate,
        b"{\"response\":\"x\",\"done\":false}\nnot json\n",
    );
    assert_eq!(g.unreadable, 1);
}
