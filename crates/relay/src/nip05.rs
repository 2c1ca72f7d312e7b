//! [NIP-05] lookups: `name@domain` to a public key, from
//! `https://<domain>/.well-known/nostr.json?name=<name>`.
//!
//! As distrustful as the relay client: one request per lookup, a deadline for the whole
//! exchange, a cap on the bytes read, redirects refused (NIP-05: "Fetchers MUST ignore any HTTP
//! redirects"), and a one-line [`Nip05Error`] for every way it can fail. A name resolves only
//! to what the domain serves *now*: a caller that wants a key to stay trusted whatever the
//! domain later serves pins the key instead.
//!
//! The request is HTTP/1.0 with `Connection: close`, so the answer is the body up to the end
//! of the connection (no chunked encoding to undo). Over the network it is always HTTPS
//! (rustls with the webpki roots, needs the default `tls` feature); only a loopback host
//! (`localhost`, `127.0.0.1`, `[::1]`, with an optional port) is asked over plain HTTP, since
//! that traffic never leaves the machine (a local test server, or a resolver on the box).
//!
//! [NIP-05]: https://github.com/nostr-protocol/nips/blob/master/05.md

use std::time::Duration;

use nostr::prelude::PublicKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Limits of one lookup.
#[derive(Clone, Debug)]
pub struct Nip05Options {
    /// Deadline for connecting, sending and reading the whole answer.
    pub timeout: Duration,
    /// Most bytes of the answer read (status line, headers and body).
    pub max_bytes: usize,
}

impl Default for Nip05Options {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            max_bytes: 64 * 1024,
        }
    }
}

/// Why a NIP-05 name did not resolve.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Nip05Error {
    /// The identifier is not `local-part@domain` as NIP-05 writes it.
    #[error("{0:?} is not a NIP-05 identifier (name@domain, the name in a-z 0-9 - _ .)")]
    Identifier(String),
    /// Connecting, the TLS session, sending or reading failed.
    #[error("cannot fetch {url}: {reason}")]
    Fetch {
        /// The URL asked.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The deadline passed.
    #[error("cannot fetch {url}: no complete answer within {after:?}")]
    Timeout {
        /// The URL asked.
        url: String,
        /// The deadline.
        after: Duration,
    },
    /// The server answered something other than `200`, a redirect included.
    #[error("{url} answered {status}{hint}")]
    Status {
        /// The URL asked.
        url: String,
        /// The status line's code and reason.
        status: String,
        /// Why that matters, when it is not obvious.
        hint: &'static str,
    },
    /// The answer does not map the name to a public key.
    #[error("{url}: {reason}")]
    Answer {
        /// The URL asked.
        url: String,
        /// What is wrong with the answer.
        reason: String,
    },
}

/// Resolves `identifier` (`name@domain`; `domain` alone means `_@domain`) to the public key
/// the domain's `nostr.json` gives the name.
pub async fn resolve(identifier: &str, options: &Nip05Options) -> Result<PublicKey, Nip05Error> {
    let (name, host) = parse_identifier(identifier)?;
    let loopback = is_loopback(host);
    let url = format!(
        "{}://{host}/.well-known/nostr.json?name={name}",
        if loopback { "http" } else { "https" }
    );
    let exchange = fetch(host, &name, loopback, &url, options.max_bytes);
    let answer = match tokio::time::timeout(options.timeout, exchange).await {
        Ok(answer) => answer?,
        Err(_) => {
            return Err(Nip05Error::Timeout {
                url,
                after: options.timeout,
            });
        }
    };
    key_from_answer(&url, &name, &answer)
}

/// The lowercase local part and the host (with port, if any) of an identifier.
fn parse_identifier(identifier: &str) -> Result<(String, &str), Nip05Error> {
    let bad = || Nip05Error::Identifier(identifier.chars().take(120).collect());
    let (name, host) = match identifier.split_once('@') {
        Some((name, host)) => (name, host),
        None => ("_", identifier),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && !host.starts_with(['.', '-', ':'])
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '[' | ']'));
    if !(name_ok && host_ok) {
        return Err(bad());
    }
    Ok((name.to_ascii_lowercase(), host))
}

/// Whether `host` (with an optional port) names this machine.
fn is_loopback(host: &str) -> bool {
    let bare = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.split(':').next().unwrap_or("")
    };
    matches!(bare, "localhost" | "127.0.0.1" | "::1")
}

/// Connects, sends the request and reads the whole answer (at most `max_bytes`).
async fn fetch(
    host: &str,
    name: &str,
    loopback: bool,
    url: &str,
    max_bytes: usize,
) -> Result<Vec<u8>, Nip05Error> {
    let failed = |reason: String| Nip05Error::Fetch {
        url: url.to_owned(),
        reason,
    };
    let (hostname, port) = split_host_port(host, if loopback { 80 } else { 443 })
        .ok_or_else(|| failed("the port is not a number".to_owned()))?;
    let tcp = TcpStream::connect((hostname, port))
        .await
        .map_err(|e| failed(e.to_string()))?;
    let request = format!(
        "GET /.well-known/nostr.json?name={name} HTTP/1.0\r\nHost: {host}\r\n\
         Accept: application/json\r\nUser-Agent: provenance\r\nConnection: close\r\n\r\n"
    );
    if loopback {
        exchange(tcp, &request, max_bytes).await.map_err(failed)
    } else {
        tls_exchange(tcp, hostname, &request, max_bytes)
            .await
            .map_err(failed)
    }
}

#[cfg(feature = "tls")]
async fn tls_exchange(
    tcp: TcpStream,
    hostname: &str,
    request: &str,
    max_bytes: usize,
) -> Result<Vec<u8>, String> {
    use rustls::pki_types::ServerName;
    let config = crate::conn::tls_client_config().map_err(|e| e.to_string())?;
    let server =
        ServerName::try_from(hostname.to_owned()).map_err(|e| format!("server name: {e}"))?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(server, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    exchange(stream, request, max_bytes).await
}

#[cfg(not(feature = "tls"))]
async fn tls_exchange(
    _tcp: TcpStream,
    _hostname: &str,
    _request: &str,
    _max_bytes: usize,
) -> Result<Vec<u8>, String> {
    Err("HTTPS needs the `tls` feature of provenance-relay".to_owned())
}

/// Sends `request` and reads until the server closes, refusing more than `max_bytes`.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &str,
    max_bytes: usize,
) -> Result<Vec<u8>, String> {
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let mut limited = (&mut stream).take(max_bytes as u64 + 1);
    match limited.read_to_end(&mut answer).await {
        Ok(_) => {}
        // A TLS server that closes without close_notify after a complete answer: what was
        // read is checked like any other answer (a cut body fails to parse as JSON).
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    if answer.len() > max_bytes {
        return Err(format!("the answer is larger than {max_bytes} bytes"));
    }
    Ok(answer)
}

/// `host:port`, `[v6]:port` or a bare host, with `default` as the port.
fn split_host_port(host: &str, default: u16) -> Option<(&str, u16)> {
    if let Some(rest) = host.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(port) => Some((addr, port.parse().ok()?)),
            None if after.is_empty() => Some((addr, default)),
            None => None,
        };
    }
    match host.split_once(':') {
        Some((h, port)) => Some((h, port.parse().ok()?)),
        None => Some((host, default)),
    }
}

/// The key `names[name]` of a `200` answer.
fn key_from_answer(url: &str, name: &str, answer: &[u8]) -> Result<PublicKey, Nip05Error> {
    let wrong = |reason: String| Nip05Error::Answer {
        url: url.to_owned(),
        reason,
    };
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| wrong("not an HTTP answer (no end of headers)".to_owned()))?;
    let head = String::from_utf8_lossy(&answer[..split]);
    let body = &answer[split + 4..];
    let status_line = head.lines().next().unwrap_or("");
    let status = status_line
        .split_once(' ')
        .map_or("", |(_, s)| s)
        .trim()
        .to_owned();
    if !status.starts_with("200") {
        let hint = if status.starts_with('3') {
            " (a redirect: NIP-05 says fetchers must not follow it)"
        } else {
            ""
        };
        return Err(Nip05Error::Status {
            url: url.to_owned(),
            status: status.chars().take(80).collect(),
            hint,
        });
    }
    if head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.contains("chunked"))
    {
        return Err(wrong("chunked answer to an HTTP/1.0 request".to_owned()));
    }
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| wrong(format!("the body is not JSON: {e}")))?;
    let hex = json
        .get("names")
        .and_then(|names| names.get(name))
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| wrong(format!("\"names\" has no key for {name:?}")))?;
    PublicKey::from_hex(hex)
        .ok()
        .filter(|k| k.xonly().is_ok())
        .ok_or_else(|| wrong(format!("the key for {name:?} is not a 64-hex public key")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert_eq!(
            parse_identifier("Bob@example.com").unwrap(),
            ("bob".to_owned(), "example.com")
        );
        assert_eq!(
            parse_identifier("example.com").unwrap(),
            ("_".to_owned(), "example.com")
        );
        assert_eq!(
            parse_identifier("a.b-c_d@127.0.0.1:8080").unwrap().1,
            "127.0.0.1:8080"
        );
        for bad in [
            "",
            "@example.com",
            "bob@",
            "bob@exa mple.com",
            "b/ob@example.com",
            "bob@example.com/path",
            "bob@.example.com",
            "bob@ex?ample.com",
        ] {
            assert!(parse_identifier(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_hosts() {
        for host in ["localhost", "127.0.0.1:9", "[::1]:80", "localhost:1"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["example.com", "127.0.0.2", "localhost.example.com", "[::2]"] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn host_and_port() {
        assert_eq!(split_host_port("a.example", 443), Some(("a.example", 443)));
        assert_eq!(split_host_port("127.0.0.1:81", 80), Some(("127.0.0.1", 81)));
        assert_eq!(split_host_port("[::1]:81", 80), Some(("::1", 81)));
        assert_eq!(split_host_port("[::1]", 80), Some(("::1", 80)));
        assert_eq!(split_host_port("a:b", 80), None);
        assert_eq!(split_host_port("[::1]x", 80), None);
    }

    const KEY: &str = "b0635d6a9851d3aed0cd6c495b282167acf761729078d975fc341b22650b07b9";

    fn answer(status: &str, body: &str) -> Vec<u8> {
        format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\r\n{body}").into_bytes()
    }

    #[test]
    fn answers() {
        let ok = answer("200 OK", &format!(r#"{{"names":{{"bob":"{KEY}"}}}}"#));
        assert_eq!(key_from_answer("u", "bob", &ok).unwrap().to_hex(), KEY);
        let cases = [
            (answer("301 Moved", "{}"), "redirect"),
            (answer("404 Not Found", ""), "404"),
            (answer("200 OK", "not json"), "not JSON"),
            (answer("200 OK", r#"{"names":{}}"#), "has no key"),
            (
                answer("200 OK", r#"{"names":{"bob":"npub1xyz"}}"#),
                "not a 64-hex",
            ),
            (b"garbage".to_vec(), "no end of headers"),
        ];
        for (bytes, expect) in cases {
            let e = key_from_answer("u", "bob", &bytes).unwrap_err().to_string();
            assert!(e.contains(expect), "{e} should say {expect}");
        }
    }
}
