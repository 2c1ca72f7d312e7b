//! What a hostile client can hold of `provenance serve` and `provenance lookup serve`, each a
//! process on loopback: idle sockets beyond the connection cap do not keep a real request
//! out, a socket that sends nothing, half a request head or a trickle of a body is closed
//! after its timeout.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod serve_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serve_common::serve;

/// The timeouts and cap under test: one second each, four connections.
const LIMITS: &[&str] = &[
    "--max-connections",
    "4",
    "--header-timeout",
    "1",
    "--body-timeout",
    "1",
];

/// An upstream nobody listens on: the box serves anyway, and its own routes answer.
const NOWHERE: &str = "http://127.0.0.1:9";

struct Lookup(Child);

impl Drop for Lookup {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `provenance lookup serve` on an ephemeral port, with `LIMITS`; its address.
fn lookup(dir: &std::path::Path) -> (Lookup, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_provenance"))
        .args(["lookup", "serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.join("index.sqlite"))
        .args(LIMITS)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_owned();
    (Lookup(child), addr)
}

/// A GET with a 10 s read timeout: the status line, and how long it took.
fn get(addr: &str, path: &str) -> (String, Duration) {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    (line.trim().to_owned(), start.elapsed())
}

/// Sends `prefix` and nothing more; how long until the server closes the connection (after
/// whatever it answers), or `None` when it is still open after 10 s.
fn closed_after(addr: &str, prefix: &[u8]) -> Option<Duration> {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(prefix).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut sink = Vec::new();
    match s.read_to_end(&mut sink) {
        Ok(_) => Some(start.elapsed()),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Some(start.elapsed()),
        Err(_) => None,
    }
}

/// The checks shared by both servers, against `addr` whose `path` answers 200 to a GET and
/// whose `post` reads a JSON body.
fn holds(addr: &str, path: &str, post: &str) {
    // Twice the cap in idle sockets: the real request waits for the header timeout to free a
    // slot, then gets through.
    let idle: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let (status, took) = get(addr, path);
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(took < Duration::from_secs(8), "took {took:?}");
    drop(idle);

    // Nothing sent, half a head, a body that stops: each closed after about a second.
    let half_head = format!("GET {path} HTTP/1.1\r\nHost: x\r\n");
    let trickle = format!(
        "POST {post} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"a\":"
    );
    for prefix in [&b""[..], half_head.as_bytes(), trickle.as_bytes()] {
        let took = closed_after(addr, prefix);
        assert!(
            took.is_some_and(|t| t < Duration::from_secs(5)),
            "{:?}: still open or slow: {took:?}",
            String::from_utf8_lossy(prefix)
        );
    }

    // A keep-alive connection left idle after an answer is closed too.
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let start = Instant::now();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    assert!(
        String::from_utf8_lossy(&all).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&all)
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn serve_closes_idle_slow_and_trickling_connections_and_caps_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), NOWHERE, LIMITS);
    let addr = server.base.trim_start_matches("http://").to_owned();
    holds(&addr, "/provenance/metrics", "/v1/chat/completions");
}

#[test]
fn lookup_serve_closes_idle_slow_and_trickling_connections_and_caps_them() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr) = lookup(dir.path());
    holds(&addr, "/healthz", "/v1/lookup");
}

#[test]
fn auth_refuses_a_request_without_authorization_before_reading_its_body() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), NOWHERE, &["--auth-any"]);
    let addr = server.base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    // A 4 MiB body announced, 1 KiB of it sent: the answer comes without the rest.
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        4 << 20
    )
    .unwrap();
    s.write_all(&[b' '; 1024]).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 401"), "{line:?}");
}

#[test]
fn the_relay_closes_a_websocket_that_announces_a_frame_over_the_message_cap() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), NOWHERE, &[]);
    let addr = server.base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    // A masked text frame announcing 1 MiB, 100 bytes of it sent: the server must not wait
    // for (and buffer) the rest.
    let mut frame = vec![0x81, 0xff];
    frame.extend_from_slice(&(1u64 << 20).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    frame.extend_from_slice(&[b'x'; 100]);
    s.write_all(&frame).unwrap();
    let start = Instant::now();
    let mut rest = Vec::new();
    let closed = match s.read_to_end(&mut rest) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(closed, "still open after {:?}", start.elapsed());
}

#[test]
fn a_nip98_header_accepted_before_a_restart_is_refused_after_it() {
    use provenance::nostr::nips::nip98::{HttpData, HttpMethod};

    let dir = tempfile::tempdir().unwrap();
    // The signed URL must not depend on the port, which changes with the restart.
    let options = ["--auth-any", "--public-url", "http://box.test"];
    let token = serve_common::runtime()
        .block_on(
            HttpData::new(
                "http://box.test/v1/models".parse().unwrap(),
                HttpMethod::GET,
            )
            .to_authorization(&provenance::Keys::generate()),
        )
        .unwrap();
    let authorization = format!("Authorization: {token}");
    let status = |base: &str| {
        let (status, _, body) =
            serve_common::curl(&["-H", &authorization, &format!("{base}/v1/models")]);
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    {
        let server = serve(dir.path(), NOWHERE, &options);
        // Accepted: the request goes on to the upstream, which is down.
        let (code, body) = status(&server.base);
        assert_eq!(code, 502, "{body}");
    }
    let server = serve(dir.path(), NOWHERE, &options);
    let (code, body) = status(&server.base);
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("already used"), "{body}");
}

/// An upstream that answers `GET /v1/models` with the request head it received (and 404 to
/// anything else); its port.
fn echo_upstream() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let response = if head.starts_with("GET /v1/models") {
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{head}",
                    head.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    .to_owned()
            };
            let _ = stream.write_all(response.as_bytes());
        }
    });
    port
}

#[test]
fn headers_named_in_connection_are_not_forwarded_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let port = echo_upstream();
    let server = serve(dir.path(), &format!("http://127.0.0.1:{port}"), &[]);
    let (status, _, body) = serve_common::curl(&[
        "-H",
        "Connection: keep-alive, X-Hop",
        "-H",
        "X-Hop: secret",
        "-H",
        "X-Kept: yes",
        &format!("{}/v1/models", server.base),
    ]);
    let seen = String::from_utf8_lossy(&body).to_ascii_lowercase();
    assert_eq!(status, 200, "{seen}");
    assert!(seen.contains("x-kept: yes"), "{seen}");
    assert!(!seen.contains("x-hop"), "{seen}");
}

/// An upstream that compresses when the request allows it, as nginx with `gzip on` does: a
/// chat completion comes back plain only to a request that asks for `identity` (`always`:
/// not even then).
fn compressing_upstream(always: bool) -> u16 {
    const JSON: &str = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Hello world"},"finish_reason":"stop"}],"usage":{"completion_tokens":2,"prompt_tokens":4}}"#;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let Some((head, _)) = serve_common::read_request(&mut reader) else {
                continue;
            };
            let lower = head.to_ascii_lowercase();
            let response = if !head.starts_with("POST /v1/chat/completions") {
                "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    .to_owned()
            } else if !always && lower.contains("accept-encoding: identity") {
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{JSON}",
                    JSON.len()
                )
            } else {
                // Stands for gzip: what matters is that it is not the JSON.
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\ncontent-length: 4\r\nconnection: close\r\n\r\n\x1f\x08\x00\x00"
                    .to_owned()
            };
            let _ = stream.write_all(response.as_bytes());
        }
    });
    port
}

#[test]
fn generations_ask_the_upstream_for_identity_so_a_compressing_upstream_answers_plain() {
    let dir = tempfile::tempdir().unwrap();
    let port = compressing_upstream(false);
    let server = serve(dir.path(), &format!("http://127.0.0.1:{port}"), &[]);
    let (status, headers, body) = serve_common::curl(&[
        "-H",
        "Accept-Encoding: gzip, deflate",
        "-d",
        r#"{"messages":[{"role":"user","content":"Say hello"}]}"#,
        &format!("{}/v1/chat/completions", server.base),
    ]);
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Hello world"), "{body}");
    assert!(
        !serve_common::header(&headers, "provenance-event-url").is_empty(),
        "{headers:?}"
    );
}

#[test]
fn a_compressed_answer_to_a_generation_is_a_502_not_a_wrong_signature() {
    let dir = tempfile::tempdir().unwrap();
    let port = compressing_upstream(true);
    let server = serve(dir.path(), &format!("http://127.0.0.1:{port}"), &[]);
    let (status, _, body) = serve_common::curl(&[
        "-d",
        r#"{"messages":[{"role":"user","content":"Say hello"}]}"#,
        &format!("{}/v1/chat/completions", server.base),
    ]);
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("Content-Encoding: gzip"), "{body}");
}
