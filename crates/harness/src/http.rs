//! A minimal HTTP/1.1 client for tests and recordings: one request per connection
//! (`Connection: close`), the response read to the end of the stream. It keeps the exact
//! bytes sent and received, and decodes the body (`Content-Length` or chunked).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a read may block: generation on a loaded CPU can pause for a while.
pub const READ_TIMEOUT: Duration = Duration::from_secs(300);

/// What can go wrong in an exchange.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Connecting, writing or reading failed.
    #[error("HTTP {what} {address}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The server.
        address: SocketAddr,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The response is not well-formed HTTP/1.1.
    #[error("malformed HTTP response: {0}")]
    Malformed(String),
}

/// One request and its response.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// The request bytes as sent.
    pub request: Vec<u8>,
    /// The response bytes as received (status line, headers, body in its transfer encoding).
    pub response: Vec<u8>,
    /// The status code.
    pub status: u16,
    /// The header fields, in order, names as received.
    pub headers: Vec<(String, String)>,
    /// The body, with any chunked transfer encoding removed.
    pub body: Vec<u8>,
}

impl Exchange {
    /// The first header of that name (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, HttpError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| HttpError::Malformed(format!("body is not JSON: {e}")))
    }

    /// The response head: status line and header fields, up to and including the blank line.
    pub fn response_head(&self) -> &[u8] {
        match find(&self.response, b"\r\n\r\n") {
            Some(end) => &self.response[..end + 4],
            None => &self.response,
        }
    }
}

/// `GET path`.
pub fn get(address: SocketAddr, path: &str) -> Result<Exchange, HttpError> {
    send(address, "GET", path, &[], None)
}

/// `POST path` with `body` as `application/json`.
pub fn post_json(address: SocketAddr, path: &str, body: &[u8]) -> Result<Exchange, HttpError> {
    send(
        address,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        Some(body),
    )
}

/// Sends `method path` with `Host`, the given header fields, `Content-Length` when there is a
/// body, and `Connection: close`; reads the response to the end of the stream.
pub fn send(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Exchange, HttpError> {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("Connection: close\r\n\r\n");
    let mut request = request.into_bytes();
    if let Some(body) = body {
        request.extend_from_slice(body);
    }
    let io = |what| {
        move |source| HttpError::Io {
            what,
            address,
            source,
        }
    };
    let mut stream =
        TcpStream::connect_timeout(&address, Duration::from_secs(5)).map_err(io("connect"))?;
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .map_err(io("configure"))?;
    stream.write_all(&request).map_err(io("write"))?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(io("read"))?;
    let (status, headers, body) = parse_response(&response)?;
    Ok(Exchange {
        request,
        response,
        status,
        headers,
        body,
    })
}

/// A parsed response: status, header fields, decoded body.
pub type Parsed = (u16, Vec<(String, String)>, Vec<u8>);

/// Parses a complete HTTP/1.1 response: status, header fields and decoded body.
pub fn parse_response(bytes: &[u8]) -> Result<Parsed, HttpError> {
    let malformed = |what: &str| HttpError::Malformed(what.to_owned());
    let head_end = find(bytes, b"\r\n\r\n").ok_or_else(|| malformed("no end of header"))?;
    let head = std::str::from_utf8(&bytes[..head_end]).map_err(|_| malformed("head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| malformed("bad status line"))?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| malformed("header line without a colon"))?;
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    let raw = &bytes[head_end + 4..];
    let value = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let body = if value("Transfer-Encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        dechunk(raw)?
    } else if let Some(length) = value("Content-Length") {
        let length: usize = length
            .parse()
            .map_err(|_| malformed("bad Content-Length"))?;
        raw.get(..length)
            .ok_or_else(|| malformed("body shorter than Content-Length"))?
            .to_vec()
    } else {
        raw.to_vec()
    };
    Ok((status, headers, body))
}

fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>, HttpError> {
    let malformed = |what: &str| HttpError::Malformed(format!("chunked body: {what}"));
    let mut body = Vec::new();
    loop {
        let line_end = find(raw, b"\r\n").ok_or_else(|| malformed("no chunk size line"))?;
        let size_field = std::str::from_utf8(&raw[..line_end])
            .map_err(|_| malformed("size not ASCII"))?
            .split(';')
            .next()
            .unwrap_or_default()
            .trim();
        let size =
            usize::from_str_radix(size_field, 16).map_err(|_| malformed("bad chunk size"))?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = raw
            .get(..size)
            .ok_or_else(|| malformed("truncated chunk"))?;
        body.extend_from_slice(chunk);
        raw = raw
            .get(size..)
            .and_then(|rest| rest.strip_prefix(b"\r\n"))
            .ok_or_else(|| malformed("chunk not followed by CRLF"))?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_and_chunked_bodies() {
        let (status, headers, body) =
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nhiEXTRA")
                .unwrap();
        assert_eq!((status, body.as_slice()), (200, &b"hi"[..]));
        assert_eq!(headers[1], ("X-A".to_owned(), "b".to_owned()));

        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                        5\r\ndata:\r\n3;ext=1\r\n x\n\r\n0\r\n\r\n";
        let (_, _, body) = parse_response(chunked).unwrap();
        assert_eq!(body, b"data: x\n");
    }

    #[test]
    fn rejects_truncated_responses() {
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
                .is_err()
        );
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_response(b"SPDY 200\r\n\r\n").is_err());
    }
}
