//! NIP-05 lookups against HTTP servers on loopback: the request sent, a good answer, and the
//! ways a server can fail (redirect, wrong key, oversized answer, silence).
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::time::Duration;

use provenance_relay::nip05::{Nip05Error, Nip05Options, resolve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const KEY: &str = "b0635d6a9851d3aed0cd6c495b282167acf761729078d975fc341b22650b07b9";

/// Serves one connection with `answer` (after `delay`); returns the address and the request
/// the server received.
async fn server(answer: Vec<u8>, delay: Duration) -> (String, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            let n = socket.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        tokio::time::sleep(delay).await;
        let _ = socket.write_all(&answer).await;
        let _ = socket.shutdown().await;
        String::from_utf8(request).unwrap()
    });
    (addr, handle)
}

fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn a_name_resolves_to_the_key_the_domain_serves() {
    let body = format!(
        r#"{{"names":{{"alice":"{KEY}","bob":"{}"}}}}"#,
        "0".repeat(64)
    );
    let (addr, request) = server(ok(&body), Duration::ZERO).await;
    let key = resolve(&format!("Alice@{addr}"), &Nip05Options::default())
        .await
        .unwrap();
    assert_eq!(key.to_hex(), KEY);
    let request = request.await.unwrap();
    assert!(
        request.starts_with("GET /.well-known/nostr.json?name=alice HTTP/1.0\r\n"),
        "{request}"
    );
    assert!(
        request.contains(&format!("\r\nHost: {addr}\r\n")),
        "{request}"
    );
}

#[tokio::test]
async fn failures_are_one_line_errors() {
    let redirect =
        b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/.well-known/nostr.json\r\n\r\n"
            .to_vec();
    let other_name = ok(&format!(r#"{{"names":{{"carol":"{KEY}"}}}}"#));
    let huge = ok(&format!(
        r#"{{"names":{{"alice":"{KEY}"}},"pad":"{}"}}"#,
        "x".repeat(100_000)
    ));
    for (answer, expect) in [
        (redirect, "must not follow"),
        (other_name, "has no key for \"alice\""),
        (huge, "larger than"),
        (b"HTTP/1.1 500 Oops\r\n\r\n".to_vec(), "answered 500 Oops"),
    ] {
        let (addr, _) = server(answer, Duration::ZERO).await;
        let e = resolve(&format!("alice@{addr}"), &Nip05Options::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(expect), "{e} should say {expect}");
        assert!(!e.contains('\n'), "{e}");
    }
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let (addr, _) = server(ok("{}"), Duration::from_secs(30)).await;
    let options = Nip05Options {
        timeout: Duration::from_millis(300),
        ..Nip05Options::default()
    };
    let e = resolve(&format!("alice@{addr}"), &options)
        .await
        .unwrap_err();
    assert!(matches!(e, Nip05Error::Timeout { .. }), "{e}");
}

#[tokio::test]
async fn nobody_listening_is_a_fetch_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let e = resolve(&format!("alice@{addr}"), &Nip05Options::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Nip05Error::Fetch { .. }), "{e}");
}
