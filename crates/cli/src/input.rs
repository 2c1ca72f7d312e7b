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
//! Files and stdin are read by [`provenance_verify::source::read_events`].

use std::fs;
use std::path::{Path, PathBuf};

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
