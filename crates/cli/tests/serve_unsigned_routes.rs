//! Generating routes the signer does not read yet (llama.cpp's `/infill`) pass unsigned, but not invisibly: each such answer is counted in
//! `provenance_answers_unsigned_total`. The upstream is canned (it answers 200 to anything,
//! as llama-server does on these routes); other routes are not counted.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod serve_common;

const UNSIGNED: &str = "provenance_answers_unsigned_total";

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};

use serve_common::{curl, metric, read_request, serve};

fn answer(mut stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    while read_request(&mut reader).is_some() {
        let body = r#"{"object":"response","output":[]}"#;
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

#[test]
fn generating_routes_that_pass_unsigned_are_counted() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || answer(stream));
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &format!("http://127.0.0.1:{port}"), &[]);
    assert_eq!(metric(&server.base, UNSIGNED), 0);
    for path in ["/infill", "/infill/", "/infill"] {
        let (status, _, _) = curl(&[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            r#"{"input_prefix":"fn main() {","input_suffix":"}"}"#,
            &format!("{}{path}", server.base),
        ]);
        assert_eq!(status, 200);
    }
    let _ = curl(&[&format!("{}/v1/models", server.base)]);
    assert_eq!(metric(&server.base, UNSIGNED), 3);
}
