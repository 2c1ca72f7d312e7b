//! `provenance serve` in front of a real `llama-server` (llama.cpp built by
//! `.ci/llama-server.sh`), serving the tiny generated GGUF and the real Gemma 3 270M: every
//! llama.cpp route, whole and streamed, and inline mode, each answer checked by
//! `provenance verify` against the text curl received, the disclosed prompt and the weights;
//! and the box's relay pushing events signed after a subscription opened.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod serve_common;

use std::path::{Path, PathBuf};

use serde_json::Value;
use serve_common::{
    Nip01Client, curl, event_id, gemma_path, header, http, llama, llama_server_path, prompt_opens,
    serve_model, verify_model,
};

/// The text a client reads from a whole or streamed body (choice 0 / `content`).
fn client_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let documents: Vec<Value> = if text.starts_with("data:") || text.contains("\ndata:") {
        text.split("\n\n")
            .filter_map(|m| m.trim_start().strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .filter_map(|d| serde_json::from_str(d).ok())
            .collect()
    } else {
        vec![serde_json::from_slice(body).unwrap()]
    };
    let mut out = String::new();
    for d in documents {
        for pointer in [
            "/choices/0/delta/content",
            "/choices/0/message/content",
            "/choices/0/text",
            "/content",
        ] {
            if let Some(s) = d.pointer(pointer).and_then(Value::as_str) {
                out.push_str(s);
            }
        }
    }
    out
}

/// Every llama.cpp route, whole and streamed, through the proxy; returns the texts.
fn every_route(dir: &Path, base: &str, model: &Path, n: u32) -> Vec<String> {
    let question = "What colour is the sky?";
    let messages = format!(r#"{{"messages":[{{"content":"{question}","role":"user"}}]}}"#);
    let mut texts = Vec::new();
    for stream in [false, true] {
        let cases = [
            (
                "/v1/chat/completions",
                format!(
                    r#"{{"messages":[{{"role":"user","content":"{question}"}}],"max_tokens":{n},"seed":7,"stream":{stream}}}"#
                ),
                messages.clone(),
            ),
            (
                "/v1/completions",
                format!(r#"{{"prompt":"{question}","max_tokens":{n},"seed":7,"stream":{stream}}}"#),
                question.to_owned(),
            ),
            (
                "/completion",
                format!(r#"{{"prompt":"{question}","n_predict":{n},"seed":7,"stream":{stream}}}"#),
                question.to_owned(),
            ),
        ];
        for (path, request, prompt) in cases {
            let url = format!("{base}{path}");
            let (status, headers, body) =
                curl(&["-H", "content-type: application/json", "-d", &request, &url]);
            assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
            let text = client_text(&body);
            verify_model(dir, base, &headers, &text, &prompt, model);
            let (_, _, event) = curl(&[&format!(
                "{base}{}",
                header(&headers, "provenance-event-url")
            )]);
            let event: Value = serde_json::from_slice(&event).unwrap();
            let record: Value = serde_json::from_str(event["content"].as_str().unwrap()).unwrap();
            assert_eq!(record["runtime"]["engine"], "llama.cpp", "{path}");
            assert_eq!(
                record["response"]["streamed"].as_bool().unwrap_or(false),
                stream
            );
            // llama.cpp's defaults are filled in (top_k is not in any request).
            assert!(record["sampling"]["top_k"].is_u64(), "{path}: {record}");
            texts.push(text);
        }
    }
    texts
}

#[test]
fn tiny_model_every_route_whole_streamed_and_inline() {
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/gguf/valid/tiny-llama-f16.gguf");
    let llama = llama(&model);
    let dir = tempfile::tempdir().unwrap();
    let binary = llama_server_path();
    let engine = binary.to_str().unwrap();
    {
        let server = serve_model(
            dir.path(),
            &llama.url(),
            &model,
            &["--engine-binary", engine],
        );
        every_route(dir.path(), &server.base, &model, 8);
    }
    // Inline: the event travels in the response too.
    let inline_dir = tempfile::tempdir().unwrap();
    let server = serve_model(inline_dir.path(), &llama.url(), &model, &["--inline"]);
    let url = format!("{}/completion", server.base);
    let (_, _, body) = curl(&["-d", r#"{"prompt":"hi","n_predict":4,"stream":true}"#, &url]);
    let text = String::from_utf8(body).unwrap();
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    let data = last.strip_prefix("event: provenance\ndata: ").unwrap();
    let inline: Value = serde_json::from_str(data).unwrap();
    let event = serde_json::to_string(&inline["event"]).unwrap();
    let event = provenance::event::parse_event(&event, &Default::default()).unwrap();
    assert!(provenance::event::verify(&event).holds());
}

/// The box's relay keeps subscriptions open: one opened before a generation receives the
/// event signed for it (whole and streamed), after `EOSE`; after `CLOSE`, nothing more.
#[test]
fn relay_subscription_opened_before_a_generation_receives_its_event() {
    let model = serve_common::model();
    let llama = llama(&model);
    let dir = tempfile::tempdir().unwrap();
    let server = serve_model(dir.path(), &llama.url(), &model, &[]);
    let mut client = Nip01Client::connect(&server.base.replacen("http://", "ws://", 1));
    client.send(r#"["REQ","live",{"kinds":[1988]}]"#);
    assert_eq!(client.next(), r#"["EOSE","live"]"#, "nothing stored yet");
    client.send(r#"["REQ","notes",{"kinds":[1]}]"#);
    assert_eq!(client.next(), r#"["EOSE","notes"]"#);
    let url = format!("{}/completion", server.base);
    for stream in [false, true] {
        let request = format!(r#"{{"prompt":"hi","n_predict":8,"stream":{stream}}}"#);
        let (status, headers, _) = curl(&["-d", &request, &url]);
        assert_eq!(status, 200);
        let id = event_id(&server.base, &headers);
        let message: Value = serde_json::from_str(&client.next()).unwrap();
        assert_eq!(message[0], "EVENT");
        assert_eq!(message[1], "live", "only the matching subscription");
        let event =
            provenance::event::parse_event(&message[2].to_string(), &Default::default()).unwrap();
        assert_eq!(event.id, id);
        assert!(provenance::event::verify(&event).holds());
    }
    // CLOSE has no answer; a barrier shows that nothing more comes for "live": the next
    // event is handed to the connection before the relay reads the COUNT after it.
    client.send(r#"["CLOSE","live"]"#);
    client.send(r#"["COUNT","closed",{"kinds":[1988]}]"#);
    assert_eq!(client.next(), r#"["COUNT","closed",{"count":2}]"#);
    let (status, _, _) = curl(&["-d", r#"{"prompt":"hi","n_predict":4}"#, &url]);
    assert_eq!(status, 200);
    client.send(r#"["COUNT","after",{"kinds":[1988]}]"#);
    assert_eq!(client.next(), r#"["COUNT","after",{"count":3}]"#);
}

/// A grammar or JSON schema a completion request holds the model to is committed to with the
/// prompt (`completion.v1`): the disclosed object of both opens the commitment with
/// `provenance verify --prompt FILE --salt HEX`, the prompt alone does not.
#[test]
fn completion_grammar_and_json_schema_are_committed_to() {
    let model = serve_common::model();
    let llama = llama(&model);
    let dir = tempfile::tempdir().unwrap();
    let server = serve_model(dir.path(), &llama.url(), &model, &[]);
    let cases = [
        (
            "/completion",
            r#"{"prompt":"Yes or no?","n_predict":4,"grammar":"root ::= \"yes\" | \"no\""}"#,
            r#"{"grammar":"root ::= \"yes\" | \"no\"","prompt":"Yes or no?"}"#,
        ),
        (
            "/v1/completions",
            r#"{"prompt":"A number:","max_tokens":4,"json_schema":{"type":"integer"}}"#,
            r#"{"json_schema":{"type":"integer"},"prompt":"A number:"}"#,
        ),
    ];
    for (path, request, committed) in cases {
        let url = format!("{}{path}", server.base);
        let (status, headers, body) = curl(&["-d", request, &url]);
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        let (_, _, event) = curl(&[&format!(
            "{}{}",
            server.base,
            header(&headers, "provenance-event-url")
        )]);
        let event: Value = serde_json::from_slice(&event).unwrap();
        let record: Value = serde_json::from_str(event["content"].as_str().unwrap()).unwrap();
        assert_eq!(record["prompt"]["format"], "completion.v1", "{path}");
        assert!(
            prompt_opens(dir.path(), &server.base, &headers, committed),
            "{path}"
        );
        let prompt: Value = serde_json::from_str(committed).unwrap();
        let alone = prompt["prompt"].as_str().unwrap();
        assert!(
            !prompt_opens(dir.path(), &server.base, &headers, alone),
            "{path}"
        );
    }
}

/// Many clients at once, streamed and whole answers mixed: every request is answered and its
/// event is stored and verifies. llama-server closes a connection shortly after each streamed
/// answer while announcing keep-alive, and reads the requests of only a few connections at a
/// time: a proxy that reused such a connection answered `502`, and one that opened a
/// connection per waiting client left most of them unread.
#[test]
fn many_concurrent_clients_are_all_answered_and_signed() {
    let model = serve_common::model();
    let llama = llama(&model);
    let dir = tempfile::tempdir().unwrap();
    let server = serve_model(dir.path(), &llama.url(), &model, &[]);
    let base = server.base.clone();
    let clients: Vec<_> = (0..32)
        .map(|client| {
            let base = base.clone();
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                for n in 0..6 {
                    let (path, body) = if (client + n) % 2 == 0 {
                        (
                            "/completion",
                            r#"{"prompt":"hi","n_predict":8,"stream":true}"#,
                        )
                    } else {
                        (
                            "/v1/chat/completions",
                            r#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":8}"#,
                        )
                    };
                    let (status, headers, answer) = http("POST", &format!("{base}{path}"), body);
                    assert_eq!(
                        status,
                        200,
                        "client {client}, request {n}: {}",
                        String::from_utf8_lossy(&answer)
                    );
                    ids.push(header(&headers, "provenance-event-url").to_owned());
                }
                ids
            })
        })
        .collect();
    let urls: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert_eq!(urls.len(), 32 * 6);
    for url in urls {
        // The end of an answer is released only once its event is stored.
        let (status, _, event) = http("GET", &format!("{base}{url}"), "");
        assert_eq!(status, 200, "{url}");
        let event = provenance::event::parse_event_bytes(&event, &Default::default()).unwrap();
        assert!(provenance::event::verify(&event).holds());
    }
}

#[test]
fn gemma_answers_in_english_and_every_answer_verifies() {
    let model = gemma_path();
    assert!(
        model.is_file(),
        "{} is missing: run `bash scripts/fetch-gemma.sh`",
        model.display()
    );
    let llama = llama(&model);
    let dir = tempfile::tempdir().unwrap();
    let server = serve_model(dir.path(), &llama.url(), &model, &[]);
    let texts = every_route(dir.path(), &server.base, &model, 12);
    // A real model writes words: at least one answer has a space-separated ASCII word.
    assert!(
        texts.iter().any(|t| t
            .split_whitespace()
            .any(|w| w.len() > 2 && w.chars().all(|c| c.is_ascii_alphabetic()))),
        "{texts:?}"
    );
}
