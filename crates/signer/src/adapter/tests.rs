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
    assert_eq!(info.prompt_format, FORMAT_MESSAGES);
    assert_eq!(info.prompt, br#"[{"content":"hi","role":"user"}]"#);
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
    assert_eq!(info.prompt_format, FORMAT_JSON);
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
