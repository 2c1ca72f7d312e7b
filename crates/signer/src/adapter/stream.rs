//! Bounded, incremental parsers for the two streaming framings model servers use: Server-Sent
//! Events (`text/event-stream`: OpenAI-compatible APIs, llama.cpp `/completion`) and newline
//! delimited JSON (`application/x-ndjson`: Ollama).
//!
//! Bytes arrive in arbitrary pieces (a frame may end in the middle of a line, or of a UTF-8
//! character); the parsers keep the unfinished line and hand out complete messages. Memory is
//! bounded: a line or SSE message longer than the cap is an [`Item::Overflow`] and is
//! skipped up to its end, never held.
//!
//! Only what the signer needs is parsed: SSE `data:` fields (joined with `\n`, as the SSE
//! specification says), `event:` names, and NDJSON lines. `id:`, `retry:` and comments are
//! ignored. A stream that ends without a final newline still yields its last message from
//! [`Framing::finish`].

/// Largest line or message, by default: 1 MiB (a streamed chunk of a model answer is a few
/// hundred bytes).
pub const DEFAULT_MAX_MESSAGE: usize = 1024 * 1024;

/// One complete message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// An SSE event: its `event:` name (when given) and its `data:` payload.
    Event {
        /// The `event:` field, when present.
        name: Option<String>,
        /// The `data:` lines joined with `\n`.
        data: Vec<u8>,
    },
    /// One NDJSON line, without its line terminator (blank lines are skipped).
    Line(Vec<u8>),
    /// A line or message over the cap was skipped.
    Overflow,
}

/// Which framing to parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `text/event-stream`.
    Sse,
    /// `application/x-ndjson`.
    Ndjson,
}

/// An incremental parser for one stream.
#[derive(Debug)]
pub struct Framing {
    kind: Kind,
    max: usize,
    /// The unfinished line.
    line: Vec<u8>,
    /// The current line is over the cap: drop bytes until its end.
    skipping: bool,
    /// The previous byte was `\r` (so a following `\n` belongs to the same line end).
    after_cr: bool,
    /// SSE: the message being assembled.
    data: Vec<u8>,
    has_data: bool,
    name: Option<String>,
    message_overflow: bool,
}

impl Framing {
    /// A parser with the default cap.
    pub fn new(kind: Kind) -> Self {
        Self::with_max(kind, DEFAULT_MAX_MESSAGE)
    }

    /// A parser whose lines and messages may be at most `max` bytes.
    pub fn with_max(kind: Kind, max: usize) -> Self {
        Self {
            kind,
            max,
            line: Vec::new(),
            skipping: false,
            after_cr: false,
            data: Vec::new(),
            has_data: false,
            name: None,
            message_overflow: false,
        }
    }

    /// Feeds the next piece of the stream; complete messages go to `out` in order.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut impl FnMut(Item)) {
        while !bytes.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if bytes[0] == b'\n' {
                    bytes = &bytes[1..];
                    continue;
                }
            }
            let Some(end) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') else {
                self.push(bytes, out);
                return;
            };
            self.push(&bytes[..end], out);
            self.after_cr = bytes[end] == b'\r';
            bytes = &bytes[end + 1..];
            self.end_line(out);
        }
    }

    /// Ends the stream: an unterminated last line or message is delivered.
    pub fn finish(&mut self, out: &mut impl FnMut(Item)) {
        if !self.line.is_empty() || self.skipping {
            self.end_line(out);
        }
        if self.kind == Kind::Sse {
            self.dispatch(out);
        }
    }

    fn push(&mut self, bytes: &[u8], out: &mut impl FnMut(Item)) {
        if self.skipping {
            return;
        }
        if self.line.len() + bytes.len() > self.max {
            self.line.clear();
            self.skipping = true;
            if self.kind == Kind::Ndjson {
                out(Item::Overflow);
            } else {
                self.message_overflow = true;
            }
            return;
        }
        self.line.extend_from_slice(bytes);
    }

    fn end_line(&mut self, out: &mut impl FnMut(Item)) {
        let line = std::mem::take(&mut self.line);
        if std::mem::take(&mut self.skipping) {
            return;
        }
        match self.kind {
            Kind::Ndjson => {
                if !line.iter().all(u8::is_ascii_whitespace) {
                    out(Item::Line(line));
                }
            }
            Kind::Sse => self.sse_line(&line, out),
        }
    }

    fn sse_line(&mut self, line: &[u8], out: &mut impl FnMut(Item)) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.message_overflow {
                    return;
                }
                let extra = value.len() + usize::from(self.has_data);
                if self.data.len() + extra > self.max {
                    self.data.clear();
                    self.message_overflow = true;
                    return;
                }
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => self.name = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut impl FnMut(Item)) {
        let name = self.name.take();
        if std::mem::take(&mut self.message_overflow) {
            self.data.clear();
            self.has_data = false;
            out(Item::Overflow);
            return;
        }
        if !std::mem::take(&mut self.has_data) {
            return;
        }
        out(Item::Event {
            name,
            data: std::mem::take(&mut self.data),
        });
    }
}

/// Properties checked by the fuzz target `stream_parse` and by the seed tests. Not a stable
/// API.
#[doc(hidden)]
pub mod fuzzing {
    use super::{Framing, Item, Kind};

    /// Parses `data` (after a one-byte header choosing the framing and the piece size) once
    /// whole and once in pieces: the items must be the same, whatever the split, and no item
    /// may exceed the cap.
    pub fn check_split(data: &[u8]) {
        let Some((&head, rest)) = data.split_first() else {
            return;
        };
        let kind = if head & 1 == 0 {
            Kind::Sse
        } else {
            Kind::Ndjson
        };
        let piece = usize::from(head >> 1).max(1);
        let max = 64;
        let whole = run(kind, max, &[rest]);
        let pieces: Vec<&[u8]> = rest.chunks(piece).collect();
        let split = run(kind, max, &pieces);
        assert_eq!(whole, split, "splitting the input changed the items");
        for item in &whole {
            match item {
                Item::Event { data, .. } | Item::Line(data) => assert!(data.len() <= max),
                Item::Overflow => {}
            }
        }
    }

    /// All items of `pieces` fed in order, then finished.
    pub fn run(kind: Kind, max: usize, pieces: &[&[u8]]) -> Vec<Item> {
        let mut framing = Framing::with_max(kind, max);
        let mut items = Vec::new();
        for piece in pieces {
            framing.feed(piece, &mut |item| items.push(item));
        }
        framing.finish(&mut |item| items.push(item));
        items
    }
}

#[cfg(test)]
mod tests {
    use super::fuzzing::run;
    use super::*;

    fn event(data: &str) -> Item {
        Item::Event {
            name: None,
            data: data.as_bytes().to_vec(),
        }
    }

    #[test]
    fn sse_messages_across_splits_and_line_endings() {
        let stream = b"data: {\"a\":1}\n\ndata: x\r\ndata: y\r\n\r\n: comment\n\nevent: done\ndata:[DONE]\n\n";
        let expected = vec![
            event("{\"a\":1}"),
            event("x\ny"),
            Item::Event {
                name: Some("done".into()),
                data: b"[DONE]".to_vec(),
            },
        ];
        assert_eq!(run(Kind::Sse, 1024, &[stream]), expected);
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(run(Kind::Sse, 1024, &bytes), expected);
        // A \r\n split between two pieces is one line end, not two.
        assert_eq!(
            run(Kind::Sse, 1024, &[b"data: a\r", b"\n\r", b"\n"]),
            vec![event("a")]
        );
    }

    #[test]
    fn ndjson_lines_and_unterminated_last_line() {
        let items = run(Kind::Ndjson, 1024, &[b"{\"a\":1}\n\n{\"b\"", b":2}"]);
        assert_eq!(
            items,
            vec![
                Item::Line(b"{\"a\":1}".to_vec()),
                Item::Line(b"{\"b\":2}".to_vec())
            ]
        );
    }

    #[test]
    fn oversized_lines_and_messages_are_skipped_not_held() {
        let long = vec![b'x'; 100];
        let mut ndjson = long.clone();
        ndjson.extend_from_slice(b"\nok\n");
        assert_eq!(
            run(Kind::Ndjson, 10, &[&ndjson]),
            vec![Item::Overflow, Item::Line(b"ok".to_vec())]
        );
        // Two data lines that together pass the cap.
        let sse = b"data: 123456\ndata: 123456\n\ndata: ok\n\n";
        assert_eq!(
            run(Kind::Sse, 10, &[sse]),
            vec![Item::Overflow, event("ok")]
        );
    }

    #[test]
    fn unterminated_sse_message_is_delivered_at_finish() {
        assert_eq!(run(Kind::Sse, 64, &[b"data: last"]), vec![event("last")]);
    }
}
