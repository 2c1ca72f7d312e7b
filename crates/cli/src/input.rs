//! Turning command-line inputs into events to check.
//!
//! An input is one of:
//!
//! - `nevent1...`, `note1...`, `nostr:nevent1...`, or a 64-hex event id: fetched from the
//!   nevent's relay hints and every `--relay`; only an event whose recomputed id equals the
//!   requested id is accepted;
//! - `-`: standard input;
//! - a directory: every `*.json` and `*.jsonl` file in it, in name order;
//! - a file: one JSON event (pretty-printed or not), or JSON Lines (one event per line).
//!
//! Files and stdin are read line by line, so one bad line is reported as an error for that
//! item and the rest of the batch goes on; memory stays flat in the batch size.

use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use provenance::event::Limits;
use provenance::nip19::{self, Nip19};
use provenance::{EventId, PublicKey};

/// What an input names.
pub(crate) enum Source {
    /// An event to fetch from relays.
    Remote {
        id: EventId,
        author: Option<PublicKey>,
        relays: Vec<String>,
    },
    /// Files (or stdin) holding events.
    Files(Vec<PathBuf>),
}

/// How an input is named in messages: secret keys are never echoed.
pub(crate) fn redact(input: &str) -> &str {
    let bare = input.trim().strip_prefix("nostr:").unwrap_or(input.trim());
    if bare.starts_with("nsec1") || bare.starts_with("ncryptsec1") {
        "<secret key>"
    } else {
        input
    }
}

/// Classifies one command-line input. Errors do not repeat the input; callers prefix it
/// (through [`redact`]).
pub(crate) fn classify(input: &str) -> Result<Source, String> {
    if redact(input) != input {
        return Err("a secret key is not an event; it is not shown or used".to_owned());
    }
    let lower = input.trim();
    let bare = lower.strip_prefix("nostr:").unwrap_or(lower);
    if bare.len() > 5
        && (bare.starts_with("nevent1") || bare.starts_with("note1") || lower.starts_with("nostr:"))
    {
        return match nip19::decode_uri(lower) {
            Ok(Nip19::Nevent(n)) => Ok(Source::Remote {
                id: n.id,
                author: n.author,
                relays: n.relays,
            }),
            Ok(Nip19::Note(id)) => Ok(Source::Remote {
                id,
                author: None,
                relays: Vec::new(),
            }),
            Ok(_) => Err("names no event (expected nevent1 or note1)".to_owned()),
            Err(e) => Err(e.to_string()),
        };
    }
    if bare.len() == 64 && bare.bytes().all(|b| b.is_ascii_hexdigit()) && !Path::new(input).exists()
    {
        if let Ok(id) = provenance::event::parse_event_id(bare) {
            return Ok(Source::Remote {
                id,
                author: None,
                relays: Vec::new(),
            });
        }
    }
    if input == "-" {
        return Ok(Source::Files(vec![PathBuf::from("-")]));
    }
    let path = PathBuf::from(input);
    let meta = fs::metadata(&path).map_err(|e| e.to_string())?;
    if meta.is_dir() {
        let mut files: Vec<PathBuf> = fs::read_dir(&path)
            .map_err(|e| e.to_string())?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("json" | "jsonl")
                    )
            })
            .collect();
        files.sort();
        return Ok(Source::Files(files));
    }
    Ok(Source::Files(vec![path]))
}

/// One item read from a file: raw event text, or why it could not be read.
pub(crate) struct Item {
    /// `file:line` (or `file` for a whole-file event).
    pub(crate) origin: String,
    pub(crate) text: Result<String, String>,
}

/// Why reading stopped early.
pub(crate) enum ReadError {
    /// The input itself could not be read (named).
    Input(String),
    /// Writing results failed (a closed pipe, for instance).
    Output(io::Error),
}

/// Reads events from a file or stdin, calling `each` per item. Stops only on an I/O error
/// of the file itself or of the output.
pub(crate) fn read_events(
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
    // A line may be one byte over the limit so that "too large" is detected, not truncated.
    let cap = limits.max_event_bytes as u64 + 1;
    let mut line = Vec::new();
    let mut number = 0usize;
    // Lines of a pretty-printed (multi-line) event are gathered here.
    let mut pending: Option<(usize, Vec<u8>)> = None;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(cap)
            .read_until(b'\n', &mut line)
            .map_err(|e| ReadError::Input(format!("{name}: {e}")))?;
        if n == 0 {
            break;
        }
        number += 1;
        let too_long = line.len() as u64 >= cap && line.last() != Some(&b'\n');
        if too_long {
            // Skip the rest of the over-long line.
            skip_line(&mut reader).map_err(|e| ReadError::Input(format!("{name}: {e}")))?;
            let origin = format!("{name}:{number}");
            emit(
                each,
                origin,
                Err(format!(
                    "line is over the limit of {} bytes",
                    limits.max_event_bytes
                )),
            )?;
            continue;
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

fn emit(
    each: &mut dyn FnMut(Item) -> io::Result<()>,
    origin: String,
    text: Result<String, String>,
) -> Result<(), ReadError> {
    each(Item { origin, text }).map_err(ReadError::Output)
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

fn skip_line(reader: &mut impl BufRead) -> io::Result<()> {
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
