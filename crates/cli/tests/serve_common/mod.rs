//! Helpers of the `provenance serve` tests: the server as a child process, curl as the
//! client, `provenance verify` as the judge.
#![allow(dead_code, unreachable_pub)] // Each test file uses a part.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use provenance::Keys;
use provenance::nostr::nips::nip19::ToBech32;

pub struct Serve {
    pub child: Child,
    pub base: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn key_file(dir: &Path) -> PathBuf {
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

pub fn model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/gguf/valid/tiny-llama-f16.gguf")
}

pub fn serve(dir: &Path, upstream: &str, extra: &[&str]) -> Serve {
    serve_model(dir, upstream, &model(), extra)
}

/// The command of `provenance serve` in front of `upstream` for the weights at `model`, on an
/// ephemeral port, with a fresh key and store in `dir`; stderr piped.
pub fn serve_command(dir: &Path, upstream: &str, model: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_provenance"));
    command
        .args(["serve", "--upstream", upstream, "--listen", "127.0.0.1:0"])
        .arg("--model")
        .arg(model)
        .arg("--key")
        .arg(key_file(dir))
        .arg("--store")
        .arg(dir.join("events.sqlite"))
        .args(extra)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// A loopback port with nothing listening on it (bound, noted, closed).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `provenance serve` in front of `upstream` for the weights at `model`, on an ephemeral port.
pub fn serve_model(dir: &Path, upstream: &str, model: &Path, extra: &[&str]) -> Serve {
    let mut child = serve_command(dir, upstream, model, extra).spawn().unwrap();
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
pub fn curl(args: &[&str]) -> (u16, Vec<(String, String)>, Vec<u8>) {
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

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    &headers
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .1
}

pub fn verify(dir: &Path, base: &str, headers: &[(String, String)], text: &str, prompt: &str) {
    verify_model(dir, base, headers, text, prompt, &model());
}

/// Fetches the event a response points to and runs `provenance verify` on it with the output
/// text, the disclosed prompt and salt, and the weights.
pub fn verify_model(
    dir: &Path,
    base: &str,
    headers: &[(String, String)],
    text: &str,
    prompt: &str,
    model: &Path,
) {
    let event_file = event_file(dir, base, headers);
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
        .arg(model)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fetches the event a response points to into `dir/event.json`.
fn event_file(dir: &Path, base: &str, headers: &[(String, String)]) -> PathBuf {
    let (status, _, event) = curl(&[&format!(
        "{base}{}",
        header(headers, "provenance-event-url")
    )]);
    assert_eq!(status, 200);
    let path = dir.join("event.json");
    std::fs::write(&path, &event).unwrap();
    path
}

/// Whether `prompt`, disclosed with the response's salt, opens the commitment of its event.
pub fn prompt_opens(dir: &Path, base: &str, headers: &[(String, String)], prompt: &str) -> bool {
    let event_file = event_file(dir, base, headers);
    std::fs::write(dir.join("prompt.txt"), prompt).unwrap();
    Command::new(env!("CARGO_BIN_EXE_provenance"))
        .arg("verify")
        .arg(event_file)
        .arg("--prompt")
        .arg(dir.join("prompt.txt"))
        .args(["--salt", header(headers, "provenance-prompt-salt")])
        .output()
        .unwrap()
        .status
        .success()
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub fn event_id(base: &str, headers: &[(String, String)]) -> provenance::EventId {
    let (status, _, event) = curl(&[&format!(
        "{base}{}",
        header(headers, "provenance-event-url")
    )]);
    assert_eq!(status, 200);
    let event = provenance::event::parse_event_bytes(&event, &Default::default()).unwrap();
    event.id
}

/// The llama-server binary (`.ci/llama-server.sh` builds it).
pub fn llama_server_path() -> PathBuf {
    provenance_harness::llama_server_path().unwrap_or_else(|e| panic!("{e}"))
}

/// The Gemma 3 270M GGUF (`scripts/fetch-gemma.sh` installs it).
pub fn gemma_path() -> PathBuf {
    provenance_harness::gemma_path().unwrap_or_else(|e| panic!("{e}"))
}

/// A llama-server on a loopback port serving `model`; stopped on drop.
pub fn llama(model: &Path) -> provenance_harness::LlamaServer {
    provenance_harness::LlamaServer::start(model, &["-c", "1024"]).unwrap_or_else(|e| panic!("{e}"))
}

/// Reads one HTTP/1.1 request (head and `content-length` body) for the canned upstreams;
/// `None` when the client closed the connection.
pub fn read_request(reader: &mut impl BufRead) -> Option<(String, Vec<u8>)> {
    let (mut head, mut length) = (String::new(), 0);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
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
    reader.read_exact(&mut body).ok()?;
    Some((head, body))
}

/// A NIP-01 client in a separate process (`nip01_client.mjs` on Node's built-in WebSocket):
/// [`Nip01Client::send`] writes a message, [`Nip01Client::next`] reads the relay's next one.
pub struct Nip01Client {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Nip01Client {
    /// Connects to the relay at `url` (`ws://...`).
    pub fn connect(url: &str) -> Self {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/serve_common/nip01_client.mjs");
        // Node 20 has the WebSocket global behind a flag, Node 22 and later without.
        let probe = Command::new("node")
            .args([
                "-e",
                "process.exit(typeof WebSocket === 'undefined' ? 1 : 0)",
            ])
            .status()
            .unwrap_or_else(|e| panic!("node (Node.js 20.10 or later) is needed: {e}"));
        let mut command = Command::new("node");
        if !probe.success() {
            command.arg("--experimental-websocket");
        }
        let mut child = command
            .arg(script)
            .arg(url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut client = Self { child, lines };
        assert_eq!(client.next(), r#"["OPEN"]"#);
        client
    }

    pub fn send(&mut self, message: &str) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{message}").unwrap();
        stdin.flush().unwrap();
    }

    /// The relay's next message (waits up to 30 s).
    pub fn next(&mut self) -> String {
        self.lines
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("a message from the relay in time")
    }
}

impl Drop for Nip01Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 exchange on a connection of its own (`Connection: close`), without curl, for
/// tests that run many at once: (status, headers, body as sent, chunked or not).
pub fn http(method: &str, url: &str, body: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(120)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {}", String::from_utf8_lossy(&response)));
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (
        status.parse().unwrap(),
        headers,
        response[end + 4..].to_vec(),
    )
}

/// A canned upstream on a free port of 127.0.0.1: each connection is answered by `answer`, on
/// a thread of its own, for as long as the test runs. Its port.
pub fn canned_upstream(answer: fn(std::net::TcpStream)) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || answer(stream));
        }
    });
    port
}

/// The value of one counter of `GET /provenance/metrics`, by name.
pub fn metric(base: &str, name: &str) -> u64 {
    let (_, _, metrics) = curl(&[&format!("{base}/provenance/metrics")]);
    let text = String::from_utf8(metrics).unwrap();
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in the metrics:\n{text}"));
    value.trim().parse().unwrap()
}
