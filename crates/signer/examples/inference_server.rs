//! A Rust inference server that signs its own answers by mounting the layer.
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
use http::{Request, Response, StatusCode};
use http_body_util::{Full, StreamBody};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use provenance::{Keys, Model};
use provenance_signer::delivery::DeliveryIo;
use provenance_signer::service::ProxyBody;
use provenance_signer::{Lookup, Signer, SigningLayer, SqliteStore};
use tower::{Layer, ServiceExt, service_fn};

type Frames = http_body_util::Either<
    StreamBody<
        futures_util::stream::Iter<std::vec::IntoIter<Result<http_body::Frame<Bytes>, Infallible>>>,
    >,
    Full<Bytes>,
>;

/// The model: answers `/completion` with a short SSE stream.
async fn model(
    request: Request<ProxyBody<hyper::body::Incoming>>,
) -> Result<Response<Frames>, Infallible> {
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
    let signer =
        Arc::new(Signer::builder(Keys::generate(), Model::named("example")).build(Arc::new(store)));
    let signing = SigningLayer::new(signer.clone()).layer(service_fn(model));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:8099").await?;
    eprintln!(
        "listening on http://127.0.0.1:8099, signing as {}",
        signer.public_key()
    );
    loop {
        let (stream, _) = listener.accept().await?;
        // Streamed answers are small writes; do not let Nagle's algorithm hold them back.
        stream.set_nodelay(true)?;
        // Count the connection's flushes, so that an answer that breaks mid-stream reaches
        // the client whole up to the break (`provenance_signer::delivery`).
        let stream = DeliveryIo::new(stream);
        let delivery = stream.delivery();
        let (signing, signer) = (signing.clone(), signer.clone());
        // GET /provenance/<id> answers from the store; everything else goes through the layer.
        let service = service_fn(move |mut request: Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(delivery.clone());
            let (signing, signer) = (signing.clone(), signer.clone());
            async move {
                if let Some(id) = request.uri().path().strip_prefix("/provenance/") {
                    let found = id.parse().ok().and_then(|id| signer.lookup(id).ok());
                    let (status, body) = match found {
                        Some(Lookup::Done(json)) => (StatusCode::OK, json),
                        Some(Lookup::InProgress) => (StatusCode::ACCEPTED, String::new()),
                        _ => (StatusCode::NOT_FOUND, String::new()),
                    };
                    let mut response =
                        Response::new(http_body_util::Either::Right(Full::new(Bytes::from(body))));
                    *response.status_mut() = status;
                    return Ok::<_, Infallible>(response);
                }
                let response = signing.oneshot(request).await?;
                Ok(response.map(http_body_util::Either::Left))
            }
        });
        tokio::spawn(async move {
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .await;
        });
    }
}
