//! The signing layer in front of the real llama-server, with `replayable` on and the engine
//! settings stated: its records of `/completion` answers, whole and streamed, replay token
//! for token. Without the stated settings the record is refused as incomplete, not replayed
//! with guesses.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use provenance::Keys;
use provenance::commitment::Salt;
use provenance::event::{Limits, parse_event, verify};
use provenance::record::{Model, Record, Runtime};
use provenance_harness::{LlamaServer, TempDir, gemma_path, llama_server_path, write_tiny_model};
use provenance_replay::{
    EngineChoice, EngineSettings, FlashAttn, Inputs, Refusal, capture, replay,
};
use provenance_signer::service::{HEADER_PROMPT_SALT, HEADER_REQUEST_ID, ProxyBody};
use provenance_signer::{Lookup, RequestId, Signer, SigningLayer, SqliteStore};
use serde_json::{Value, json};
use tower::{Layer, ServiceExt, service_fn};

const PROMPT: &str = "The lighthouse keeper opened the bottle and read";

fn engine() -> EngineSettings {
    EngineSettings {
        ctx: 512,
        batch: 2048,
        ubatch: 512,
        flash_attn: FlashAttn::On,
        repack: true,
        threads: Some(2),
    }
}

/// The runtime an operator states: what `/props` says plus the engine's settings and build.
fn runtime(server: &LlamaServer, stated: bool) -> Runtime {
    let props: Value = server.get("/props").unwrap().json().unwrap();
    let binary = llama_server_path().unwrap();
    let mut runtime = Runtime {
        engine: "llama.cpp".into(),
        binary_sha256: Some(provenance::digest::sha256(&std::fs::read(&binary).unwrap())),
        ..Runtime::default()
    };
    runtime.params.insert(
        "ctx".into(),
        props["default_generation_settings"]["n_ctx"].clone(),
    );
    if stated {
        let e = engine();
        let build = capture::engine_build(&binary.with_file_name("llama-server.json")).unwrap();
        for (key, value) in [
            ("batch", json!(e.batch)),
            ("ubatch", json!(e.ubatch)),
            ("flash_attn", json!(e.flash_attn.as_str())),
            ("repack", json!(e.repack)),
            ("threads", json!(e.threads)),
            ("build_flags", json!(build.flags)),
        ] {
            runtime.params.insert(key.into(), value);
        }
    }
    runtime
}

/// One request through the signing layer to llama-server; the record and the salt.
async fn signed(
    server: &LlamaServer,
    runtime: Runtime,
    model: &Model,
    body: Value,
) -> (Record, Salt) {
    let dir = TempDir::new("signer-replay").unwrap();
    let store = SqliteStore::open(&dir.path().join("events.sqlite")).unwrap();
    let signer = Arc::new(
        Signer::builder(Keys::generate(), model.clone())
            .runtime(runtime)
            .include_text(true)
            .replayable(true)
            .build(Arc::new(store)),
    );
    let address: SocketAddr = server.address();
    let upstream = service_fn(move |request: Request<ProxyBody<Full<Bytes>>>| async move {
        let body = request.into_body().collect().await.unwrap().to_bytes();
        // What the engine is sent: the replayable form.
        let sent: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (&sent["cache_prompt"], &sent["return_tokens"]),
            (&json!(false), &json!(true))
        );
        let exchange = tokio::task::spawn_blocking(move || {
            provenance_harness::http::post_json(address, "/completion", &body).unwrap()
        })
        .await
        .unwrap();
        let kind = exchange
            .header("content-type")
            .unwrap_or("application/json")
            .to_owned();
        Ok::<_, Infallible>(
            Response::builder()
                .header("content-type", kind)
                .body(Full::new(Bytes::from(exchange.body)))
                .unwrap(),
        )
    });
    let service = SigningLayer::new(signer.clone()).layer(upstream);
    let request = Request::post("/completion")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    let id: RequestId = response.headers()[HEADER_REQUEST_ID]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let salt: Salt = response.headers()[HEADER_PROMPT_SALT]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    response.into_body().collect().await.unwrap();
    let json = loop {
        match signer.lookup(id).unwrap() {
            Lookup::Done(json) => break json,
            Lookup::InProgress => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            other => panic!("no event: {other:?}"),
        }
    };
    let event = parse_event(&json, &Limits::default()).unwrap();
    (verify(&event).record().unwrap().clone(), salt)
}

fn run(
    record: &Record,
    salt: &Salt,
    model: &std::path::Path,
) -> Result<provenance_replay::Report, Refusal> {
    replay(&Inputs {
        record,
        prompt: PROMPT.as_bytes(),
        salt,
        model,
        engine: EngineChoice::Binary(llama_server_path().unwrap()),
        allow_other_engine: false,
    })
}

async fn start(path: &std::path::Path) -> (LlamaServer, Model) {
    let args: Vec<String> = engine().args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = LlamaServer::start(path, &args).unwrap();
    let identity = provenance_gguf::digest_file(path).unwrap();
    let mut model = Model::named("m");
    model.sha256 = Some(identity.sha256);
    (server, model)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_answers_whole_and_streamed_replay_token_exact() {
    let path = gemma_path().unwrap();
    let (server, model) = start(&path).await;
    for stream in [false, true] {
        let body = json!({"prompt": PROMPT, "n_predict": 12, "seed": 3, "temperature": 0.8,
            "top_k": 20, "stream": stream});
        let (record, salt) = signed(&server, runtime(&server, true), &model, body).await;
        let section = record
            .replay
            .clone()
            .unwrap_or_else(|| panic!("no replay section: {record:?}"));
        let count = section.output_tokens.as_ref().unwrap().count;
        // The ids before an end-of-generation token, which the output's count includes.
        let eos = u64::from(record.output.finish_reason.as_deref() == Some("eos"));
        assert!(
            count > 0 && Some(count + eos) == record.output.tokens,
            "{section:?}"
        );
        assert_eq!(section.prompt_cache_tokens, Some(0));
        let report = tokio::task::spawn_blocking({
            let path = path.clone();
            move || run(&record, &salt, &path)
        })
        .await
        .unwrap()
        .unwrap();
        assert!(report.matched(), "stream {stream}: {report:?}");
    }

    // The operator did not state batch, ubatch, flash attention or repack: refused.
    let body = json!({"prompt": PROMPT, "n_predict": 4, "seed": 3, "temperature": 0.8});
    let (record, salt) = signed(&server, runtime(&server, false), &model, body).await;
    let error = run(&record, &salt, &path).unwrap_err().to_string();
    assert!(error.contains("replay.batch"), "{error}");
}

/// llama-server's stream leaves out the id of a token whose text ends inside a UTF-8
/// character (here the tiny model's second token, byte 0xC2 of U+00A8, with this seed on
/// this build): the record then has no replay section rather than a wrong list of ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_left_out_token_ids_gets_no_replay_section() {
    let dir = TempDir::new("signer-replay").unwrap();
    let path = write_tiny_model(dir.path()).unwrap();
    let (server, model) = start(&path).await;
    let tiny_prompt = "kalo mine ka ~ kalo mine ka ~ kalo mine";
    let request = |stream| {
        json!({"prompt": tiny_prompt, "n_predict": 16, "seed": 3,
        "temperature": 0.8, "top_k": 20, "stream": stream})
    };
    let (whole, _) = signed(&server, runtime(&server, true), &model, request(false)).await;
    let ids = whole.replay.unwrap().output_tokens.unwrap().ids.unwrap();
    assert_eq!(ids[..2], [180, 197], "the answer this test is about");
    let (streamed, _) = signed(&server, runtime(&server, true), &model, request(true)).await;
    assert_eq!(streamed.output.tokens, whole.output.tokens);
    assert_eq!(streamed.replay, None);
}
