//! A Rust inference server that signs its own answers: its model service behind the routes of
//! `provenance serve` ([`provenance_signer::server::App`]), which mount the signing layer.
//!
//! The "model" here streams a fixed answer in llama.cpp's `/completion` format; a real server
//! puts its generation behind the same service. Run it and ask:
//!
//! ```sh
//! cargo run -p provenance-signer --example inference_server
//! curl -sN -D - -d '{"prompt":"hi","stream":true}' http://127.0.0.1:8099/completion
//! curl -s http://127.0.0.1:8099/provenance/<Provenance-Request-Id>
//! ```
#![allow(clippy::unwrap_used)] // An example: fail loudly.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{Full, StreamBody};
use provenance::{Keys, Model};
use provenance_signer::relay_server::Hub;
use provenance_signer::server::App;
use provenance_signer::server::routes::ModelRequest;
use provenance_signer::{Signer, SqliteStore};
use tower::service_fn;

type Frames = http_body_util::Either<
    StreamBody<
        futures_util::stream::Iter<std::vec::IntoIter<Result<http_body::Frame<Bytes>, Infallible>>>,
    >,
    Full<Bytes>,
>;

/// The model: answers `/completion` with a short SSE stream.
async fn model(request: ModelRequest) -> Result<Response<Frames>, Infallible> {
    if request.uri().path() != "/completion" {
        let mut response = Response::new(http_body_util::Either::Right(Full::new(Bytes::new())));
        *response.status_mut() = StatusCode::NOT_FOUND;
        return Ok(response);
    }
    let pieces = ["The sky", " is blue."]
        .iter()
        .map(|p| format!("data: {{\"content\":\"{p}\",\"stop\":false}}\n\n"))
        .chain(std::iter::once(
            "data: {\"content\":\"\",\"stop\":true,\"stop_type\":\"eos\"}\n\n".to_owned(),
        ))
        .map(|s| Ok(http_body::Frame::data(Bytes::from(s))))
        .collect::<Vec<_>>();
    let body = StreamBody::new(futures_util::stream::iter(pieces));
    Ok(Response::builder()
        .header("content-type", "text/event-stream")
        .body(http_body_util::Either::Left(body))
        .unwrap())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join("provenance-example");
    std::fs::create_dir_all(&dir)?;
    let store = SqliteStore::open(&dir.join("events.sqlite"))?;
    // Stored events go to the live subscriptions of the relay at `/`.
    let hub = Hub::default();
    let signer = Signer::builder(Keys::generate(), Model::named("example"))
        .on_stored(hub.hook())
        .build(Arc::new(store));
    let signer = Arc::new(signer);
    eprintln!(
        "listening on http://127.0.0.1:8099, signing as {}",
        signer.public_key()
    );
    // The routes of `provenance serve` around the model: GET /provenance/<id> answers
    // 200/202/410/404 as docs/signer.md says, and each connection counts its flushes so that
    // an answer that breaks mid-stream reaches the client whole up to the break.
    let app = App::builder(signer, hub)
        .relay_hints(vec!["ws://127.0.0.1:8099".to_owned()])
        .service(service_fn(model));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8099").await?;
    // Until the process is stopped.
    app.serve(listener, std::future::pending()).await?;
    Ok(())
}
