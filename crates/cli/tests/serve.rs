//! `provenance serve` as a process, with curl as the client and a canned upstream on loopback
//! that answers in llama.cpp's OpenAI-compatible format: the answer comes back unchanged with
//! the provenance headers, the event is served at the advertised URL and `provenance verify`
//! accepts it against the text and the disclosed prompt; an unreachable upstream gives a 502
//! with the reason and nothing signed.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use provenance::Keys;
use provenance::nostr::nips::nip19::ToBech32;

const SSE: &[&str] = &[
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" world\"}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: [DONE]\n\n",
];
const JSON: &str = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Hello world"},"finish_reason":"stop"}],"usage":{"completion_tokens":2,"prompt_tokens":4}}"#;

/// A canned upstream: one thread, one request per connection.
fn upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || answer(stream));
        }
    });
    port
}

fn answer(mut stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut head = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let body = String::from_utf8(body).unwrap();
    let response = if head.starts_with("POST /v1/chat/completions")
        && body.contains("\"stream\":true")
    {
        let mut out = String::from(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        );
        for chunk in SSE {
            out.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
        }
        out.push_str("0\r\n\r\n");
        out
    } else if head.starts_with("POST /v1/chat/completions") {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{JSON}",
            JSON.len()
        )
    } else if head.starts_with("GET /v1/models") {
        let models = r#"{"object":"list","data":[{"id":"tiny"}]}"#;
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{models}",
            models.len()
        )
    } else {
        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned()
    };
    let _ = stream.write_all(response.as_bytes());
}

struct Serve {
    child: Child,
    base: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn key_file(dir: &Path) -> PathBuf {
    let path = dir.join("key.nsec");
    let nsec = Keys::generate().secret_key().to_bech32().unwrap();
    std::fs::write(&path, nsec).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

fn model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/gguf/valid/tiny-llama-f16.gguf")
}

fn serve(dir: &Path, upstream: &str, extra: &[&str]) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_provenance"))
        .args(["serve", "--upstream", upstream, "--listen", "127.0.0.1:0"])
        .arg("--model")
        .arg(model())
        .arg("--key")
        .arg(key_file(dir))
        .arg("--store")
        .arg(dir.join("events.sqlite"))
        .args(extra)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .trim_end_matches(',')
        .to_owned();
    Serve { child, base }
}

/// curl: (status, headers, body).
fn curl(args: &[&str]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let headers = dir.path().join("headers");
    let out = Command::new("curl")
        .args(["-sS", "-N", "-D"])
        .arg(&headers)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&headers).unwrap();
    let mut lines = text.lines();
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, out.stdout)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    &headers
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .1
}

fn verify(dir: &Path, base: &str, headers: &[(String, String)], text: &str, prompt: &str) {
    let (status, _, event) = curl(&[&format!(
        "{base}{}",
        header(headers, "provenance-event-url")
    )]);
    assert_eq!(status, 200);
    let event_file = dir.join("event.json");
    std::fs::write(&event_file, &event).unwrap();
    std::fs::write(dir.join("answer.txt"), text).unwrap();
    std::fs::write(dir.join("prompt.txt"), prompt).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_provenance"))
        .arg("verify")
        .arg(&event_file)
        .arg("--output")
        .arg(dir.join("answer.txt"))
        .arg("--prompt")
        .arg(dir.join("prompt.txt"))
        .args(["--salt", header(headers, "provenance-prompt-salt")])
        .arg("--model")
        .arg(model())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn curl_through_the_proxy_gets_signed_answers_that_verify() {
    let dir = tempfile::tempdir().unwrap();
    let port = upstream();
    let server = serve(dir.path(), &format!("http://127.0.0.1:{port}"), &[]);
    let url = format!("{}/v1/chat/completions", server.base);
    let messages = r#"[{"content":"Say hello","role":"user"}]"#;

    let request = r#"{"model":"tiny","messages":[{"role":"user","content":"Say hello"}]}"#;
    let (status, headers, body) =
        curl(&["-H", "content-type: application/json", "-d", request, &url]);
    assert_eq!(status, 200);
    assert_eq!(body, JSON.as_bytes(), "the answer is passed on unchanged");
    verify(dir.path(), &server.base, &headers, "Hello world", messages);

    let request =
        r#"{"model":"tiny","messages":[{"role":"user","content":"Say hello"}],"stream":true}"#;
    let (status, headers, body) =
        curl(&["-H", "content-type: application/json", "-d", request, &url]);
    assert_eq!(status, 200);
    assert_eq!(body, SSE.concat().as_bytes());
    verify(dir.path(), &server.base, &headers, "Hello world", messages);

    // Other routes pass through, unsigned.
    let (status, headers, body) = curl(&[&format!("{}/v1/models", server.base)]);
    assert_eq!(status, 200);
    assert!(body.starts_with(b"{\"object\":\"list\""));
    assert!(headers.iter().all(|(k, _)| k != "provenance-request-id"));
    // Unknown ids: 404.
    let (status, _, _) = curl(&[&format!("{}/provenance/{}", server.base, "0".repeat(32))]);
    assert_eq!(status, 404);
}

#[test]
fn upstream_down_is_a_502_with_the_reason_and_nothing_signed() {
    let dir = tempfile::tempdir().unwrap();
    // A port with nothing listening: bind, note, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = serve(dir.path(), &format!("http://127.0.0.1:{port}"), &[]);
    let request = r#"{"messages":[{"role":"user","content":"hi"}]}"#;
    let url = format!("{}/v1/chat/completions", server.base);
    let (status, headers, body) = curl(&["-d", request, &url]);
    assert_eq!(status, 502);
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("unreachable"), "{body}");
    assert!(headers.iter().all(|(k, _)| k != "provenance-request-id"));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn event_id(base: &str, headers: &[(String, String)]) -> provenance::EventId {
    let (status, _, event) = curl(&[&format!(
        "{base}{}",
        header(headers, "provenance-event-url")
    )]);
    assert_eq!(status, 200);
    let event = provenance::event::parse_event_bytes(&event, &Default::default()).unwrap();
    event.id
}

#[test]
fn the_box_answers_nip01_queries_for_its_events_and_publishes_through_the_outbox() {
    use provenance::nostr::prelude::{Filter, Kind};
    use provenance_relay::testing::MockRelay;
    use provenance_relay::{Options, fetch};

    let rt = runtime();
    let relay = rt.block_on(MockRelay::start()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = upstream();
    let server = serve(
        dir.path(),
        &format!("http://127.0.0.1:{port}"),
        &["--relay", relay.url()],
    );
    let request = r#"{"messages":[{"role":"user","content":"Say hello"}]}"#;
    let url = format!("{}/v1/chat/completions", server.base);
    let (_, headers, _) = curl(&["-d", request, &url]);
    let id = event_id(&server.base, &headers);

    // The box itself, as a relay (the websocket on its own port).
    let own = server.base.replace("http://", "ws://");
    let filter = Filter::new().kind(Kind::Custom(provenance::event::KIND));
    let found = rt.block_on(fetch(
        std::slice::from_ref(&own),
        &filter,
        &Options::default(),
    ));
    assert!(
        found.relays.iter().all(|r| r.outcome.is_ok()),
        "{:?}",
        found.relays
    );
    assert_eq!(found.events.len(), 1);
    assert!(found.events[0].json.contains(&id.to_hex()));

    // The external relay, through the outbox (it wakes on every stored event).
    let by_id = Filter::new().id(id);
    let mut delivered = false;
    for _ in 0..50 {
        let found = rt.block_on(fetch(
            &[relay.url().to_owned()],
            &by_id,
            &Options::default(),
        ));
        if found.events.len() == 1 {
            delivered = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(delivered, "the outbox did not deliver the event");
}

#[test]
fn nip98_auth_refuses_with_the_reason_and_records_the_caller_only_when_asked() {
    use provenance::nostr::nips::nip98::{HttpData, HttpMethod, Sha256Hash};

    let dir = tempfile::tempdir().unwrap();
    let port = upstream();
    let server = serve(
        dir.path(),
        &format!("http://127.0.0.1:{port}"),
        &["--auth-any", "--record-caller"],
    );
    let url = format!("{}/v1/chat/completions", server.base);
    let request = r#"{"messages":[{"role":"user","content":"Say hello"}]}"#;
    let (status, _, body) = curl(&["-d", request, &url]);
    assert_eq!(status, 401);
    assert!(String::from_utf8_lossy(&body).contains("message"));

    let caller = Keys::generate();
    let token = runtime()
        .block_on(
            HttpData::new(url.parse().unwrap(), HttpMethod::POST)
                .payload(Sha256Hash::from_byte_array(
                    *provenance::digest::sha256(request.as_bytes()).as_bytes(),
                ))
                .to_authorization(&caller),
        )
        .unwrap();
    let authorization = format!("Authorization: {token}");
    let (status, headers, _) = curl(&["-H", &authorization, "-d", request, &url]);
    assert_eq!(status, 200);
    let (_, _, event) = curl(&[&format!(
        "{}{}",
        server.base,
        header(&headers, "provenance-event-url")
    )]);
    let event = provenance::event::parse_event_bytes(&event, &Default::default()).unwrap();
    let record: provenance::Record = serde_json::from_str(&event.content).unwrap();
    assert_eq!(
        record.request.unwrap().caller,
        Some(caller.public_key().to_hex())
    );
    // The same header again is a replay.
    let (status, _, _) = curl(&["-H", &authorization, "-d", request, &url]);
    assert_eq!(status, 401);
}
