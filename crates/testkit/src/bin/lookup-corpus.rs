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
        ["demo", dir] => kit::write_lookup_demo(&PathBuf::from(dir))?,
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
