//! Writes event corpora for the lookup service's end-to-end tests and benchmarks.
//!
//! - `lookup-corpus demo DIR`: `DIR/events.jsonl` (the demo events and one forged event) and
//!   `DIR/texts.json` (the texts the tests look up, and the golden key's npub for a trust list).
//! - `lookup-corpus synthetic N FILE`: N signed synthetic events, one JSON object per line.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use provenance_testkit as kit;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["demo", dir] => {
            let dir = PathBuf::from(dir);
            std::fs::create_dir_all(&dir)?;
            let mut events = String::new();
            for ev in kit::lookup_events() {
                events.push_str(&ev.as_json());
                events.push('\n');
            }
            events.push_str(&kit::lookup_forged_json());
            events.push('\n');
            std::fs::write(dir.join("events.jsonl"), events)?;
            let texts = serde_json::json!({
                "answer": kit::LOOKUP_ANSWER,
                "paragraph": kit::LOOKUP_PARAGRAPH,
                "edited": kit::LOOKUP_EDITED,
                "other": kit::LOOKUP_OTHER,
                "unrelated": kit::LOOKUP_UNRELATED,
                "forged": kit::LOOKUP_FORGED,
                "trusted_npub": provenance::nip19::encode_npub(&kit::golden_keys().public_key()),
            });
            std::fs::write(
                dir.join("texts.json"),
                serde_json::to_string_pretty(&texts)?,
            )?;
        }
        ["synthetic", n, file] => {
            let n: u64 = n.parse()?;
            let keys = kit::golden_keys();
            let mut out = BufWriter::new(std::fs::File::create(file)?);
            for i in 0..n {
                let ev = kit::synthetic_event(&keys, i);
                writeln!(out, "{}", ev.as_json())?;
            }
            out.flush()?;
        }
        _ => return Err("usage: lookup-corpus demo DIR | lookup-corpus synthetic N FILE".into()),
    }
    Ok(())
}
