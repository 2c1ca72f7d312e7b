//! Reading events to verify: files of JSON or JSON Lines, and the capped line reader they and
//! the lookup index's ingest share.
//!
//! A file holds one JSON event (pretty-printed or not) or JSON Lines (one event per line). It
//! is read line by line, so one bad line is reported as an error for that item and the rest of
//! the batch goes on, and memory stays flat in the batch size. A line is never read past its
//! cap ([`read_line_capped`]): an over-long line is one bad item, not an allocation.

use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use provenance::event::{Expect, Limits};

/// One thing to verify: where it came from, its text (or why it could not be read), and what
/// the caller expects of it (an id and author asked for, for an event fetched by id).
#[derive(Clone, Debug)]
pub struct Item {
    /// `file:line`, `file`, or a relay and the input that named the event.
    pub origin: String,
    /// The event JSON, or why the item is not one.
    pub text: Result<String, String>,
    /// What the event must be.
    pub expect: Expect,
}

impl Item {
    /// An item read from a file: nothing is expected of it beyond being an event.
    pub fn new(origin: String, text: Result<String, String>) -> Self {
        Self {
            origin,
            text,
            expect: Expect::default(),
        }
    }
}

/// Why [`read_events`] stopped early.
#[derive(Debug)]
pub enum ReadError {
    /// The input itself could not be read (the message names it).
    Input(String),
    /// The callback failed (writing results, for instance to a closed pipe).
    Output(io::Error),
}

/// What [`read_line_capped`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line {
    /// The end of the input.
    End,
    /// A line of at most the cap, in the buffer with its newline if it had one.
    Read,
    /// A line over the cap: its first bytes are in the buffer and the rest was skipped.
    TooLong,
}

/// Reads the next line into `line` (cleared first), reading at most `cap` bytes of it and
/// skipping the rest of a longer one.
///
/// # Errors
///
/// The reader's I/O errors.
pub fn read_line_capped(
    reader: &mut dyn BufRead,
    cap: usize,
    line: &mut Vec<u8>,
) -> io::Result<Line> {
    line.clear();
    // One byte over the cap, so that "too long" is detected, not truncated.
    let limit = cap as u64 + 1;
    let n = Read::take(&mut *reader, limit).read_until(b'\n', line)?;
    if n == 0 {
        return Ok(Line::End);
    }
    if line.len() as u64 >= limit && line.last() != Some(&b'\n') {
        skip_line(reader)?;
        return Ok(Line::TooLong);
    }
    Ok(Line::Read)
}

/// Reads events from a file, or stdin for `-`, calling `each` per item in order. Stops only on
/// an I/O error of the file itself or when `each` fails.
///
/// # Errors
///
/// [`ReadError::Input`] when the file cannot be read, [`ReadError::Output`] with the error of
/// `each`.
pub fn read_events(
    path: &Path,
    limits: &Limits,
    each: &mut dyn FnMut(Item) -> io::Result<()>,
) -> Result<(), ReadError> {
    let name = if path.as_os_str() == "-" {
        "<stdin>".to_owned()
    } else {
        path.display().to_string()
    };
    let reader: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(fs::File::open(path).map_err(|e| ReadError::Input(format!("{name}: {e}")))?)
    };
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let mut line = Vec::new();
    let mut number = 0usize;
    // Lines of a pretty-printed (multi-line) event are gathered here.
    let mut pending: Option<(usize, Vec<u8>)> = None;
    loop {
        let read = read_line_capped(&mut reader, limits.max_event_bytes, &mut line)
            .map_err(|e| ReadError::Input(format!("{name}: {e}")))?;
        match read {
            Line::End => break,
            Line::Read => number += 1,
            Line::TooLong => {
                number += 1;
                let message = format!("line is over the limit of {} bytes", limits.max_event_bytes);
                emit(each, format!("{name}:{number}"), Err(message))?;
                continue;
            }
        }
        let trimmed = trim(&line);
        if let Some((start, buf)) = pending.as_mut() {
            buf.extend_from_slice(&line);
            if buf.len() > limits.max_event_bytes {
                let origin = format!("{name}:{start}");
                pending = None;
                emit(
                    each,
                    origin,
                    Err(format!(
                        "event is over the limit of {} bytes",
                        limits.max_event_bytes
                    )),
                )?;
                continue;
            }
            if serde_json::from_slice::<serde::de::IgnoredAny>(buf).is_ok() {
                let (start, buf) = pending.take().unwrap_or_default();
                emit(each, format!("{name}:{start}"), utf8(buf))?;
            }
            continue;
        }
        if trimmed.is_empty() {
            continue;
        }
        // A line that is only `{` opens a pretty-printed event spanning lines. Anything else
        // is one event per line, so a truncated JSON Lines entry stays one bad item.
        if trimmed == b"{" {
            pending = Some((number, line.clone()));
            continue;
        }
        emit(each, format!("{name}:{number}"), utf8(trimmed.to_vec()))?;
    }
    if let Some((start, _)) = pending {
        emit(
            each,
            format!("{name}:{start}"),
            Err("truncated JSON: the event never closes".to_owned()),
        )?;
    }
    Ok(())
}

/// Why [`read_capped`] read nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadFileError {
    /// The file could not be opened.
    #[error("cannot open {name}: {error}")]
    Open {
        /// The file.
        name: String,
        /// Why.
        error: io::Error,
    },
    /// The file (or stdin) could not be read.
    #[error("cannot read {name}: {error}")]
    Read {
        /// The file, or `stdin`.
        name: String,
        /// Why.
        error: io::Error,
    },
    /// The file is larger than the cap.
    #[error("{name} is over the limit of {cap} bytes")]
    TooLarge {
        /// The file.
        name: String,
        /// The cap, in bytes.
        cap: u64,
    },
}

/// Reads a whole file (or stdin for `-`) of at most `cap` bytes: evidence, trust lists, record
/// templates.
///
/// # Errors
///
/// The file cannot be read or is larger than `cap`.
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, ReadFileError> {
    let mut buf = Vec::new();
    let name = path.display().to_string();
    if path.as_os_str() == "-" {
        io::stdin()
            .take(cap + 1)
            .read_to_end(&mut buf)
            .map_err(|error| ReadFileError::Read {
                name: "stdin".into(),
                error,
            })?;
    } else {
        fs::File::open(path)
            .map_err(|error| ReadFileError::Open {
                name: name.clone(),
                error,
            })?
            .take(cap + 1)
            .read_to_end(&mut buf)
            .map_err(|error| ReadFileError::Read {
                name: name.clone(),
                error,
            })?;
    }
    if buf.len() as u64 > cap {
        return Err(ReadFileError::TooLarge { name, cap });
    }
    Ok(buf)
}

fn emit(
    each: &mut dyn FnMut(Item) -> io::Result<()>,
    origin: String,
    text: Result<String, String>,
) -> Result<(), ReadError> {
    each(Item::new(origin, text)).map_err(ReadError::Output)
}

fn utf8(bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "not valid UTF-8 (first bad byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

fn trim(line: &[u8]) -> &[u8] {
    let start = line
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &line[start..end]
}

fn skip_line(reader: &mut dyn BufRead) -> io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            reader.consume(i + 1);
            return Ok(());
        }
        let len = buf.len();
        reader.consume(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_over_the_cap_are_skipped_whole() {
        let text = b"short\n0123456789abcdef\nlast";
        let mut reader: &[u8] = text;
        let mut line = Vec::new();
        let mut seen = Vec::new();
        loop {
            let read = read_line_capped(&mut reader, 8, &mut line).unwrap();
            if read == Line::End {
                break;
            }
            seen.push((read, String::from_utf8(line.clone()).unwrap()));
        }
        assert_eq!(
            seen,
            [
                (Line::Read, "short\n".to_owned()),
                (Line::TooLong, "012345678".to_owned()),
                (Line::Read, "last".to_owned()),
            ]
        );
    }

    #[test]
    fn a_line_of_exactly_the_cap_is_read() {
        let mut reader: &[u8] = b"12345678\n";
        let mut line = Vec::new();
        assert_eq!(
            read_line_capped(&mut reader, 8, &mut line).unwrap(),
            Line::Read
        );
        assert_eq!(line, b"12345678\n");
        let mut reader: &[u8] = b"12345678";
        assert_eq!(
            read_line_capped(&mut reader, 8, &mut line).unwrap(),
            Line::Read
        );
    }
}
