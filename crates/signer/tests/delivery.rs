//! An answer that breaks mid-stream, served by hyper's HTTP/1 server over an in-process
//! connection: every byte the truncated event covers reaches the client before the
//! connection closes. A server drops its unwritten buffer when a body fails, so the signer
//! holds the error back until the connection has been flushed (`provenance_signer::delivery`).
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod common;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::Frames;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::StreamBody;
use http_body_util::combinators::BoxBody;
use hyper_util::rt::TokioIo;
use provenance::Keys;
use provenance::digest::sha256;
use provenance::event::{Limits, parse_event, verify};
use provenance::nostr::prelude::{Event, Filter};
use provenance::record::Model;
use provenance_signer::delivery::DeliveryIo;
use provenance_signer::service::HEADER_REQUEST_ID;
use provenance_signer::{Lookup, RequestId, Signer, SigningBody, SigningLayer, Store, StoreError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::util::BoxCloneService;
use tower::{Layer, ServiceExt, service_fn};

/// Events in memory, stored as they are submitted: the body's signing step never waits, so
/// nothing but the signer's own hold-back gives the server a chance to flush.
#[derive(Default)]
struct Memory(Mutex<HashMap<RequestId, String>>);

impl Store for Memory {
    fn put(&self, id: RequestId, event: &Event) -> Result<(), StoreError> {
        self.0.lock().unwrap().insert(id, event.as_json());
        Ok(())
    }
    fn get(&self, id: RequestId) -> Result<Option<String>, StoreError> {
        Ok(self.0.lock().unwrap().get(&id).cloned())
    }
    fn query(&self, _: &Filter, _: usize) -> Result<Vec<Event>, StoreError> {
        Ok(Vec::new())
    }
}

/// The upstream's answer: every message, then the error. At once (`pause` false): the server
/// gets the last bytes and the break in one go, as when the upstream's last packet carries
/// both. Or with a pause before the error, in which the server writes everything out.
fn dying(pause: bool) -> BoxBody<Bytes, std::io::Error> {
    if !pause {
        return BoxBody::new(Frames {
            frames: messages().into(),
            fail_at_end: true,
            stall_at_end: false,
            says_end: false,
        });
    }
    BoxBody::new(StreamBody::new(futures_util::stream::unfold(
        (messages().into_iter(), false),
        |(mut messages, broke)| async move {
            if let Some(message) = messages.next() {
                return Some((Ok(Frame::data(message)), (messages, broke)));
            }
            if broke {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            Some((
                Err(std::io::Error::other("upstream died")),
                (messages, true),
            ))
        },
    )))
}

fn messages() -> Vec<Bytes> {
    (0..1_999)
        .map(|n| {
            Bytes::from(format!(
                "data: {{\"content\":\"w{n} \",\"stop\":false}}\n\n"
            ))
        })
        .collect()
}

type Signing = BoxCloneService<
    Request<hyper::body::Incoming>,
    Response<SigningBody<BoxBody<Bytes, std::io::Error>>>,
    Infallible,
>;

/// The signing layer over an upstream whose answers break ([`dying`]).
fn signing(pause: bool) -> (Arc<Signer>, Signing) {
    let signer = Arc::new(
        Signer::builder(Keys::generate(), Model::named("tiny")).build(Arc::new(Memory::default())),
    );
    let upstream = service_fn(move |_: Request<_>| async move {
        Ok::<_, Infallible>(
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(dying(pause))
                .unwrap(),
        )
    });
    let signing = SigningLayer::new(signer.clone()).layer(upstream);
    (signer, BoxCloneService::new(signing))
}

/// Serves one broken answer over a connection of `capacity` bytes; the client waits
/// `client_delay` before it reads. Returns the response head, the body bytes the client
/// decoded, whether the chunked body ended properly, and the signer.
async fn broken_answer(
    capacity: usize,
    counted: bool,
    client_delay: Duration,
    pause: bool,
) -> (String, Vec<u8>, bool, Arc<Signer>) {
    let (signer, signing) = signing(pause);

    let (mut client, server) = tokio::io::duplex(capacity);
    let io = DeliveryIo::new(server);
    let delivery = io.delivery();
    let service = hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
        if counted {
            request.extensions_mut().insert(delivery.clone());
        }
        signing.clone().oneshot(request)
    });
    let connection = tokio::spawn(
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), service),
    );

    let request = r#"{"prompt":"p","stream":true}"#;
    client
        .write_all(
            format!(
                "POST /completion HTTP/1.1\r\nhost: model\r\ncontent-length: {}\r\n\r\n{request}",
                request.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    tokio::time::sleep(client_delay).await;
    let mut raw = Vec::new();
    client.read_to_end(&mut raw).await.unwrap();
    // The server gives the connection up: the body's error ends it.
    assert!(connection.await.unwrap().is_err());

    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let (body, ended) = dechunk(&raw[split + 4..]);
    (head, body, ended, signer)
}

/// The data of a chunked body, and whether its last chunk came.
fn dechunk(mut rest: &[u8]) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        let Some(line) = rest.windows(2).position(|w| w == b"\r\n") else {
            return (body, false);
        };
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..line]).unwrap(), 16).unwrap();
        if size == 0 {
            return (body, true);
        }
        let data = &rest[line + 2..];
        if data.len() < size + 2 {
            return (body, false);
        }
        body.extend_from_slice(&data[..size]);
        rest = &data[size + 2..];
    }
}

/// The client got every message the upstream sent, saw the break, and the event covers
/// exactly those bytes.
fn check(head: &str, body: &[u8], ended: bool, signer: &Signer) {
    assert!(!ended, "the client must see the stream break");
    assert_eq!(
        body.len(),
        messages().concat().len(),
        "the client got {} of the {} bytes the upstream sent before it broke",
        body.len(),
        messages().concat().len()
    );
    assert_eq!(body, messages().concat());
    let id: RequestId = head
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{HEADER_REQUEST_ID}: ")))
        .unwrap()
        .parse()
        .unwrap();
    let Lookup::Done(json) = signer.lookup(id).unwrap() else {
        panic!("no event for {id}")
    };
    let event = parse_event(&json, &Limits::default()).unwrap();
    let verification = verify(&event);
    let record = verification.verified().unwrap().record().clone();
    assert!(record.output.truncated);
    assert_eq!(record.response.unwrap().sha256, sha256(body));
}

#[tokio::test]
async fn a_slow_client_gets_every_byte_the_truncated_event_covers() {
    // 256 bytes of socket and a client that does not read yet: when the upstream breaks, the
    // server's buffer holds the last messages (hyper writes every 16 chunks; 1,999 is not a
    // multiple) and can write them only once the client reads. One yield is not enough here.
    let (head, body, ended, signer) =
        broken_answer(256, true, Duration::from_millis(100), false).await;
    check(&head, &body, ended, &signer);
}

#[tokio::test]
async fn without_a_delivery_count_a_client_that_keeps_reading_gets_every_byte() {
    // The socket takes the whole answer: the one yield before the error lets the server write
    // out its buffer.
    let (head, body, ended, signer) = broken_answer(1 << 20, false, Duration::ZERO, false).await;
    check(&head, &body, ended, &signer);
}

#[tokio::test]
async fn a_break_after_everything_was_written_out_does_not_wait_forever() {
    // Nothing is left to write when the error comes: the flush the body waits for is the one
    // hyper's HTTP/1 server makes after every poll of the body.
    let (head, body, ended, signer) = broken_answer(1 << 20, true, Duration::ZERO, true).await;
    check(&head, &body, ended, &signer);
}

#[tokio::test]
async fn over_http2_the_break_does_not_wait_for_a_flush() {
    // Written out before the break: the connection has nothing more to flush.
    let (_, signing) = signing(true);
    let (client, server) = tokio::io::duplex(1 << 20);
    let io = DeliveryIo::new(server);
    let delivery = io.delivery();
    let service = hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(delivery.clone());
        signing.clone().oneshot(request)
    });
    tokio::spawn(
        hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .serve_connection(TokioIo::new(io), service),
    );
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(client),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let request = Request::post("http://model/completion")
        .body(http_body_util::Full::new(Bytes::from(
            r#"{"prompt":"p","stream":true}"#,
        )))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let mut body = response.into_body();
    let mut got = Vec::new();
    let broke = tokio::time::timeout(Duration::from_secs(10), async {
        use http_body_util::BodyExt;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => got.extend_from_slice(frame.data_ref().unwrap()),
                Err(_) => return true,
            }
        }
        false
    })
    .await
    .expect("the stream never broke: the body waited for a flush that never came");
    assert!(broke, "the client must see the stream break");
    assert!(messages().concat().starts_with(&got));
}
