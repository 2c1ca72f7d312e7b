//! A small blocking HTTP/1.1 client for `llama-server`: one request per connection, plain
//! `http://` only (a replay engine runs on loopback or a trusted network), bounded reads.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::Value;

/// The largest response read (a completion with probabilities for a few thousand tokens).
const MAX_RESPONSE_BYTES: u64 = 256 * 1024 * 1024;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not `http://host:port`.
    #[error("server URL {0:?} is not http://HOST:PORT")]
    Url(String),
    /// Connecting, writing or reading failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The response is not HTTP/1.x, or is cut short.
    #[error("malformed HTTP response: {0}")]
    Malformed(&'static str),
    /// The response is larger than the limit.
    #[error("response over {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    /// The status is not 200.
    #[error("HTTP {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The body is not JSON.
    #[error("response is not JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Where a server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    address: SocketAddr,
    host: String,
}

impl Endpoint {
    /// Parses `http://host:port` (a trailing `/` is allowed; no path, no TLS).
    pub fn parse(url: &str) -> Result<Self, HttpError> {
        let bad = || HttpError::Url(url.to_owned());
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let host = rest.strip_suffix('/').unwrap_or(rest);
        if host.is_empty() || host.contains('/') || !host.contains(':') {
            return Err(bad());
        }
        let address = host
            .to_socket_addrs()
            .map_err(|_| bad())?
            .next()
            .ok_or_else(bad)?;
        Ok(Self {
            address,
            host: host.to_owned(),
        })
    }

    /// The endpoint of a socket address.
    pub fn from_address(address: SocketAddr) -> Self {
        Self {
            address,
            host: address.to_string(),
        }
    }

    /// `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host)
    }

    /// `GET path`, the body as JSON.
    pub fn get(&self, path: &str, timeout: Duration) -> Result<Value, HttpError> {
        self.exchange("GET", path, None, timeout)
    }

    /// `POST path` with a JSON body, the answer as JSON.
    pub fn post(&self, path: &str, body: &Value, timeout: Duration) -> Result<Value, HttpError> {
        self.exchange("POST", path, Some(body.to_string().as_bytes()), timeout)
    }

    fn exchange(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Value, HttpError> {
        let mut stream = TcpStream::connect_timeout(&self.address, timeout.min(CONNECT))?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let body = body.unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.host,
            body.len()
        );
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut raw = Vec::new();
        (&mut stream)
            .take(MAX_RESPONSE_BYTES + 1)
            .read_to_end(&mut raw)?;
        if raw.len() as u64 > MAX_RESPONSE_BYTES {
            return Err(HttpError::TooLarge);
        }
        let (status, body) = parse_response(&raw)?;
        if status != 200 {
            let text = String::from_utf8_lossy(&body);
            let text: String = text.chars().take(300).collect();
            return Err(HttpError::Status { status, body: text });
        }
        Ok(serde_json::from_slice(&body)?)
    }
}

const CONNECT: Duration = Duration::from_secs(5);

/// Status and decoded body of a whole HTTP/1.x response.
fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), HttpError> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(HttpError::Malformed("no end of headers"))?;
    let head =
        std::str::from_utf8(&raw[..end]).map_err(|_| HttpError::Malformed("headers not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    if !status_line.starts_with("HTTP/1.") {
        return Err(HttpError::Malformed("not HTTP/1.x"));
    }
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(HttpError::Malformed("no status code"))?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        }
    }
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(length) = length {
        rest.get(..length)
            .ok_or(HttpError::Malformed("body shorter than Content-Length"))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or(HttpError::Malformed("chunk size line"))?;
        let size = std::str::from_utf8(&rest[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .ok_or(HttpError::Malformed("chunk size"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest
            .get(..size)
            .ok_or(HttpError::Malformed("chunk cut short"))?;
        body.extend_from_slice(chunk);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(Endpoint::parse("http://127.0.0.1:8080").is_ok());
        assert!(Endpoint::parse("http://127.0.0.1:8080/").is_ok());
        for bad in [
            "127.0.0.1:8080",
            "https://127.0.0.1:1",
            "http://h",
            "http://1.2.3.4:1/x",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn responses() {
        let (status, body) =
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}x").unwrap_or_default();
        assert_eq!((status, body.as_slice()), (200, b"{}".as_slice()));
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{\"\r\n3\r\na\":\r\n2\r\n1}\r\n0\r\n\r\n";
        let (_, body) = parse_response(raw).unwrap_or_default();
        assert_eq!(body, b"{\"a\":1}");
        assert!(parse_response(b"garbage").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}").is_err());
    }
}
