//! The server's routes around a model service, served by `App::serve`.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use provenance::{Keys, Model};
use provenance_signer::delivery::Delivery;
use provenance_signer::relay_server::Hub;
use provenance_signer::server::App;
use provenance_signer::server::routes::ModelRequest;
use provenance_signer::{Signer, SqliteStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Each request through the signing stack carries its own connection's flush count: the
/// second request on a connection sees the flush of the first answer.
#[tokio::test]
async fn signed_requests_carry_their_connections_flush_count() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    // The model: answers with the flush count the request carries.
    let probe = tower::service_fn(|request: ModelRequest| async move {
        let flushes = request
            .extensions()
            .get::<Delivery>()
            .map(Delivery::flushes);
        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(format!(
            "{flushes:?}"
        )))))
    });
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("events.sqlite")).unwrap();
    let signer = Signer::builder(Keys::generate(), Model::named("tiny")).build(Arc::new(store));
    let app = App::builder(Arc::new(signer), Hub::default()).service(probe);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async {
        let _ = stopped.await;
    }));

    let mut tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut counts = Vec::new();
    for _ in 0..2 {
        tcp.write_all(b"GET /v1/models HTTP/1.1\r\nhost: box\r\n\r\n")
            .await
            .unwrap();
        counts.push(read_body(&mut tcp).await);
    }
    let parse = |body: &str| -> u64 {
        let count = body.strip_prefix("Some(").and_then(|b| b.strip_suffix(')'));
        count
            .unwrap_or_else(|| panic!("no flush count in the request: {body}"))
            .parse()
            .unwrap()
    };
    assert!(parse(&counts[1]) > parse(&counts[0]), "{counts:?}");
    stop.send(()).unwrap();
    drop(tcp);
    server.await.unwrap().unwrap();
}

/// The event route answers as docs/signer.md says: `200` with the event and its `nevent`,
/// `410` with the reason when no event will exist, `404` for an unknown id or a path that is
/// no id.
#[tokio::test]
async fn the_event_route_answers_200_410_and_404() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    // The model: a llama.cpp `/completion` answer, whole; `"broken": true` gets a stream
    // with a message that is not JSON, which cannot be signed.
    let model = tower::service_fn(|request: ModelRequest| async move {
        use http_body_util::BodyExt;
        let body = request.into_body().collect().await.unwrap().to_bytes();
        let (kind, answer): (_, &[u8]) = if body.windows(8).any(|w| w == b"\"broken\"") {
            (
                "text/event-stream",
                b"data: {\"content\":\"a\",\"stop\":false}\n\ndata: not json\n\ndata: {\"content\":\"\",\"stop\":true}\n\n",
            )
        } else {
            (
                "application/json",
                br#"{"content":"The sky is blue.","stop":true,"stop_type":"eos"}"#,
            )
        };
        let response = http::Response::builder()
            .header("content-type", kind)
            .body(Full::new(Bytes::from_static(answer)))
            .unwrap();
        Ok::<_, Infallible>(response)
    });
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("events.sqlite")).unwrap();
    let hub = Hub::default();
    let signer = Signer::builder(Keys::generate(), Model::named("tiny"))
        .on_stored(hub.hook())
        .build(Arc::new(store));
    let app = App::builder(Arc::new(signer), hub)
        .relay_hints(vec!["ws://box.example".to_owned()])
        .service(model);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async {
        let _ = stopped.await;
    }));

    let (status, head, _) = exchange(address, "POST", "/completion", r#"{"prompt":"hi"}"#).await;
    assert_eq!(status, 200, "{head}");
    let id = header(&head, "provenance-request-id");
    let (status, head, body) = exchange(address, "GET", &format!("/provenance/{id}"), "").await;
    assert_eq!(status, 200, "{head}");
    let event = provenance::Event::from_json(&body).unwrap();
    let nevent = header(&head, "provenance-nevent");
    let provenance::nip19::Nip19::Nevent(decoded) = provenance::nip19::decode(&nevent).unwrap()
    else {
        panic!("not an nevent: {nevent}");
    };
    assert_eq!(decoded.id, event.id);
    assert_eq!(decoded.relays, ["ws://box.example"]);

    let broken = r#"{"prompt":"hi","broken":true}"#;
    let (status, head, _) = exchange(address, "POST", "/completion", broken).await;
    assert_eq!(status, 200, "{head}");
    let id = header(&head, "provenance-request-id");
    let (status, _, body) = exchange(address, "GET", &format!("/provenance/{id}"), "").await;
    assert_eq!(status, 410);
    assert!(body.contains("could not be read"), "{body}");

    let unknown = format!("/provenance/{}", "0".repeat(32));
    assert_eq!(exchange(address, "GET", &unknown, "").await.0, 404);
    let (status, _, body) = exchange(address, "GET", "/provenance/not-an-id", "").await;
    assert_eq!(status, 404);
    assert!(body.contains("\"type\":\"provenance\""), "{body}");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// One request on its own connection: (status, head, body).
async fn exchange(
    address: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String, String) {
    let mut tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: box\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    // Until the server closes the connection, or breaks it (an answer that cannot be signed).
    let mut bytes = Vec::new();
    let mut buf = [0; 4096];
    while let Ok(n @ 1..) = tcp.read(&mut buf).await {
        bytes.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

/// A header of a response head.
fn header(head: &str, name: &str) -> String {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no {name} in {head}"))
}

/// One response with a `content-length` body, read from a kept-alive connection.
async fn read_body(tcp: &mut tokio::net::TcpStream) -> String {
    let mut bytes = Vec::new();
    let mut buf = [0; 1024];
    loop {
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "the connection closed mid-response");
        bytes.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .unwrap()
                .parse()
                .unwrap();
            if body.len() >= length {
                return body[..length].to_owned();
            }
        }
    }
}
