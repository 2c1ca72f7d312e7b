//! `provenance serve` as a process, with curl as the client and a canned upstream on loopback
//! that answers in llama.cpp's OpenAI-compatible format: the answer comes back unchanged with
//! the provenance headers, the event is served at the advertised URL and `provenance verify`
//! accepts it against the text and the disclosed prompt; an unreachable upstream gives a 502
//! with the reason and nothing signed.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod serve_common;

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};

use provenance::Keys;
use serve_common::{
    closed_port, curl, event_id, header, prompt_opens, read_request, runtime, serve, verify,
};

const SSE: &[&str] = &[
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" world\"}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: [DONE]\n\n",
];
const JSON: &str = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Hello world"},"finish_reason":"stop"}],"usage":{"completion_tokens":2,"prompt_tokens":4}}"#;

const DYING: &[&str] = &[
    "data: {\"content\":\"Hel\",\"stop\":false}\n\n",
    "data: {\"content\":\"lo\",\"stop\":false}\n\n",
];

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
    let Some((head, body)) = read_request(&mut reader) else {
        return;
    };
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
    } else if head.starts_with("POST /v1/completions") {
        // Slow: one message every 20 ms.
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
        if stream.write_all(head.as_bytes()).is_err() {
            return;
        }
        for n in 0..10 {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let chunk = format!("data: {{\"choices\":[{{\"index\":0,\"text\":\"{n} \"}}]}}\n\n");
            if stream
                .write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes())
                .is_err()
            {
                return;
            }
        }
        let last = "data: {\"choices\":[{\"index\":0,\"text\":\"\",\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
        format!("{:x}\r\n{last}\r\n0\r\n\r\n", last.len())
    } else if head.starts_with("POST /completion") {
        // Dies mid-stream: two messages, then the connection closes without the last chunk.
        let mut out = String::from(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
        );
        for chunk in DYING {
            out.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
        }
        out
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

#[test]
fn curl_through_the_proxy_gets_signed_answers_that_verify() {
    let dir = tempfile::tempdir().unwrap();
    let port = upstream();
    let server = serve(dir.path(), &format!("http://127.0.0.1:{port}"), &[]);
    let url = format!("{}/v1/chat/completions", server.base);
    // What a chat request commits to (`chat.v1`): its messages, as RFC 8785 JSON.
    let messages = r#"{"messages":[{"content":"Say hello","role":"user"}]}"#;

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

    // Tools, the tool choice and the output format are committed to with the messages: the
    // disclosed prompt must hold them, and the messages alone do not open the commitment.
    let request = r#"{"model":"tiny","messages":[{"role":"user","content":"Say hello"}],
        "tools":[{"type":"function","function":{"name":"greet","parameters":{"type":"object"}}}],
        "tool_choice":"auto","response_format":{"type":"json_object"},"temperature":0.5}"#;
    let (status, headers, _) = curl(&["-H", "content-type: application/json", "-d", request, &url]);
    assert_eq!(status, 200);
    let committed = concat!(
        r#"{"messages":[{"content":"Say hello","role":"user"}],"response_format":{"type":"json_object"},"#,
        r#""tool_choice":"auto","tools":[{"function":{"name":"greet","parameters":{"type":"object"}},"type":"function"}]}"#
    );
    verify(dir.path(), &server.base, &headers, "Hello world", committed);
    assert!(!prompt_opens(dir.path(), &server.base, &headers, messages));
    let mut other = committed.replace("\"auto\"", "\"none\"");
    assert!(!prompt_opens(dir.path(), &server.base, &headers, &other));
    other = committed.replace("json_object", "text");
    assert!(!prompt_opens(dir.path(), &server.base, &headers, &other));

    // Other routes pass through, unsigned.
    let (status, headers, body) = curl(&[&format!("{}/v1/models", server.base)]);
    assert_eq!(status, 200);
    assert!(body.starts_with(b"{\"object\":\"list\""));
    assert!(headers.iter().all(|(k, _)| k != "provenance-request-id"));
    // Unknown ids: 404.
    let (status, _, _) = curl(&[&format!("{}/provenance/{}", server.base, "0".repeat(32))]);
    assert_eq!(status, 404);

    // The signer's counters and timings, for Prometheus: three answers signed, each timed.
    let (status, headers, body) = curl(&[&format!("{}/provenance/metrics", server.base)]);
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-type" && v == "text/plain; version=0.0.4")
    );
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains("\nprovenance_events_signed_total 3\n"),
        "{text}"
    );
    assert!(
        text.contains("\nprovenance_signer_added_seconds_count 3\n"),
        "{text}"
    );
    assert!(
        text.contains("\nprovenance_answers_unsigned_total 0\n"),
        "{text}"
    );
}

#[test]
fn upstream_down_is_a_502_with_the_reason_and_nothing_signed() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(
        dir.path(),
        &format!("http://127.0.0.1:{}", closed_port()),
        &[],
    );
    let request = r#"{"messages":[{"role":"user","content":"hi"}]}"#;
    let url = format!("{}/v1/chat/completions", server.base);
    let (status, headers, body) = curl(&["-d", request, &url]);
    assert_eq!(status, 502);
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("unreachable"), "{body}");
    assert!(headers.iter().all(|(k, _)| k != "provenance-request-id"));
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

    // The event's nevent names the box as a relay, and `provenance verify` fetches it there.
    let (_, event_headers, _) = curl(&[&format!(
        "{}{}",
        server.base,
        header(&headers, "provenance-event-url")
    )]);
    let nevent = header(&event_headers, "provenance-nevent");
    let decoded = provenance::nip19::decode_nevent(nevent).unwrap();
    assert_eq!(decoded.id, id);
    assert_eq!(decoded.relays[0], own);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_provenance"))
        .args(["verify", nevent, "--relay", &own])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

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

#[test]
fn upstream_dying_mid_stream_breaks_the_response_and_the_event_says_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let port = upstream();
    let server = serve(dir.path(), &format!("http://127.0.0.1:{port}"), &[]);
    let url = format!("{}/completion", server.base);
    let headers_file = dir.path().join("h");
    let out = std::process::Command::new("curl")
        .args(["-sS", "-N", "-D"])
        .arg(&headers_file)
        .args(["-d", r#"{"prompt":"p","stream":true}"#, &url])
        .output()
        .unwrap();
    assert!(!out.status.success(), "curl must see the broken stream");
    assert_eq!(
        out.stdout,
        DYING.concat().as_bytes(),
        "the bytes before the break arrive"
    );
    let text = std::fs::read_to_string(&headers_file).unwrap();
    let event_url = text
        .lines()
        .find_map(|l| l.strip_prefix("provenance-event-url: "))
        .unwrap()
        .trim();
    let (status, _, event) = curl(&[&format!("{}{event_url}", server.base)]);
    assert_eq!(status, 200);
    let event = provenance::event::parse_event_bytes(&event, &Default::default()).unwrap();
    let verification = provenance::event::verify(&event);
    let verified = verification.verified().unwrap();
    assert!(verified.record().output.truncated);
    assert_eq!(
        verified.check_output(b"Hello").status,
        provenance::verdict::Status::Proven
    );
    assert_eq!(
        verified.record().response.as_ref().unwrap().sha256,
        provenance::digest::sha256(DYING.concat().as_bytes())
    );
}

#[test]
fn kill_9_under_load_loses_no_event_a_client_saw_end() {
    let dir = tempfile::tempdir().unwrap();
    let port = upstream();
    let upstream_url = format!("http://127.0.0.1:{port}");
    let mut server = serve(dir.path(), &upstream_url, &["--durability", "process"]);
    let url = format!("{}/v1/completions", server.base);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let clients: Vec<_> = (0..24)
        .map(|n| {
            let (url, done) = (url.clone(), done.clone());
            let headers = dir.path().join(format!("headers-{n}"));
            std::thread::spawn(move || {
                // Staggered starts, so that the kill finds answers at every stage.
                std::thread::sleep(std::time::Duration::from_millis(40 * n));
                let out = std::process::Command::new("curl")
                    .args(["-sS", "-N", "-D"])
                    .arg(&headers)
                    .args(["-d", r#"{"prompt":"count","stream":true}"#, &url])
                    .output()
                    .unwrap();
                let complete = out.status.success() && out.stdout.ends_with(b"data: [DONE]\n\n");
                let text = std::fs::read_to_string(&headers).unwrap_or_default();
                let event_url = text
                    .lines()
                    .find_map(|l| l.strip_prefix("provenance-event-url: "))
                    .map(|u| u.trim().to_owned());
                if complete {
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                (complete, event_url)
            })
        })
        .collect();
    // Kill as soon as a few answers have ended, while the others are mid-stream.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while done.load(std::sync::atomic::Ordering::SeqCst) < 3 && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    let results: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let seen_end: Vec<_> = results
        .iter()
        .filter(|(complete, _)| *complete)
        .map(|(_, url)| url.clone().expect("a complete answer names its event"))
        .collect();
    let cut = results.iter().filter(|(complete, _)| !complete).count();
    assert!(
        !seen_end.is_empty() && cut > 0,
        "{} complete, {cut} cut",
        seen_end.len()
    );

    let restarted = serve(dir.path(), &upstream_url, &[]);
    for event_url in &seen_end {
        let (status, _, event) = curl(&[&format!("{}{event_url}", restarted.base)]);
        assert_eq!(status, 200, "{event_url} lost");
        let event = provenance::event::parse_event_bytes(&event, &Default::default()).unwrap();
        assert!(provenance::event::verify(&event).holds());
    }
}

#[test]
fn a_config_file_sets_the_options_and_the_command_line_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = upstream();
    let config = dir.path().join("serve.conf");
    std::fs::write(
        &config,
        format!(
            "upstream = http://127.0.0.1:{port}\nmodel = {}\nkey = {}\nstore = {}\nlisten = 127.0.0.1:1\n",
            serve_common::model().display(),
            serve_common::key_file(dir.path()).display(),
            dir.path().join("events.sqlite").display(),
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_provenance"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut BufReader::new(child.stderr.take().unwrap()), &mut line)
        .unwrap();
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .map(|w| w.trim_end_matches(',').to_owned());
    let outcome = base.map(|base| {
        curl(&[
            "-d",
            r#"{"messages":[{"role":"user","content":"hi"}]}"#,
            &format!("{base}/v1/chat/completions"),
        ])
    });
    let _ = child.kill();
    let _ = child.wait();
    let (status, headers, _) = outcome.unwrap_or_else(|| panic!("no address in {line:?}"));
    assert_eq!(status, 200);
    assert!(headers.iter().any(|(k, _)| k == "provenance-request-id"));
}

/// An upstream that says it has `slots` slots (llama.cpp's `/props`), answers each generation
/// after 50 ms and records how many it was working on at once; returns its port and that
/// maximum.
fn counting_upstream(slots: usize) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (now, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let seen = max.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (now, max) = (now.clone(), max.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                while let Some((head, _)) = read_request(&mut reader) {
                    let body = if head.starts_with("GET /props") {
                        format!(r#"{{"build_info":"b1","total_slots":{slots}}}"#)
                    } else {
                        let working = now.fetch_add(1, Ordering::SeqCst) + 1;
                        max.fetch_max(working, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        now.fetch_sub(1, Ordering::SeqCst);
                        JSON.to_owned()
                    };
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, seen)
}

/// The most generations the upstream worked on at once while 8 clients sent 3 each; every
/// one answered.
fn most_at_once(slots: usize, extra: &[&str]) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let (port, max) = counting_upstream(slots);
    let server = serve(dir.path(), &format!("http://127.0.0.1:{port}"), extra);
    let url = format!("{}/v1/chat/completions", server.base);
    let request = r#"{"messages":[{"role":"user","content":"Say hello"}]}"#;
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                for _ in 0..3 {
                    let (status, _, _) = serve_common::http("POST", &url, request);
                    assert_eq!(status, 200);
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    max.load(std::sync::atomic::Ordering::SeqCst)
}

#[test]
fn generations_wait_in_the_proxy_beyond_the_upstreams_slots() {
    assert_eq!(
        most_at_once(2, &[]),
        3,
        "one more than llama.cpp's slot count is the default"
    );
    assert_eq!(most_at_once(2, &["--upstream-concurrency", "2"]), 2);
    assert!(
        most_at_once(2, &["--upstream-concurrency", "0"]) > 3,
        "0: no limit"
    );
}
