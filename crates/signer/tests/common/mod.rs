//! Helpers shared by the signer's integration tests.
// Each test binary uses some of them.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use serde_json::Value;

/// A body that yields given frames, then maybe an error, or (`stall_at_end`) nothing ever
/// again.
pub(crate) struct Frames {
    pub(crate) frames: VecDeque<Bytes>,
    pub(crate) fail_at_end: bool,
    pub(crate) stall_at_end: bool,
    /// Say `is_end_stream` once the frames are out (hyper's bodies with a known length do).
    pub(crate) says_end: bool,
}

impl Body for Frames {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        assert!(
            !self.is_end_stream(),
            "polled after saying the body has ended"
        );
        Poll::Ready(match self.frames.pop_front() {
            Some(bytes) => Some(Ok(Frame::data(bytes))),
            None if self.stall_at_end => return Poll::Pending,
            None if self.fail_at_end => {
                self.fail_at_end = false;
                Some(Err(std::io::Error::other("upstream died")))
            }
            None => None,
        })
    }

    fn is_end_stream(&self) -> bool {
        self.says_end && self.frames.is_empty() && !self.fail_at_end
    }
}

/// The text a client reads from a response body (one JSON document, an SSE stream or NDJSON),
/// with code independent of the adapters.
pub(crate) fn client_text(body: &[u8]) -> String {
    let text = std::str::from_utf8(body).unwrap();
    let documents: Vec<Value> = if let Ok(whole) = serde_json::from_str(text) {
        vec![whole]
    } else if text.contains("data:") {
        // A message's `data:` line (typed events have an `event:` line before it).
        text.split("\n\n")
            .filter_map(|m| m.lines().find_map(|l| l.strip_prefix("data: ")))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    } else {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let mut out = String::new();
    for d in documents {
        for pointer in [
            "/choices/0/delta/content",
            "/choices/0/message/content",
            "/choices/0/text",
            "/content",
            "/response",
            "/message/content",
            // OpenAI Responses (a whole body) and Anthropic Messages (whole, streamed).
            "/output/0/content/0/text",
            "/content/0/text",
            "/delta/text",
        ] {
            if let Some(s) = d.pointer(pointer).and_then(Value::as_str) {
                out.push_str(s);
            }
        }
        if d["type"] == "response.output_text.delta" {
            out.push_str(d["delta"].as_str().unwrap());
        }
    }
    out
}
