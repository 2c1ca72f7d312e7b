//! Writes the first N events of the deterministic sequence as JSON Lines on stdout.
//!
//! `cargo run --release -p provenance-testkit --bin gen-events -- 1000000 > events.jsonl`.
//! Signing runs on all cores; the output is the same bytes whatever the number of cores.

use std::io::{self, BufWriter, Write};

use provenance_testkit::generate::EventGenerator;
use rayon::prelude::*;

fn main() -> io::Result<()> {
    let Some(n) = std::env::args().nth(1).and_then(|a| a.parse::<u64>().ok()) else {
        eprintln!("usage: gen-events N > events.jsonl");
        std::process::exit(2);
    };
    let generator = EventGenerator::new();
    let mut out = BufWriter::new(io::stdout().lock());
    let step = 8192;
    for start in (0..n).step_by(step) {
        let end = (start + step as u64).min(n);
        let lines: Vec<String> = (start..end)
            .into_par_iter()
            .map(|i| generator.event(i).as_json())
            .collect();
        for line in lines {
            out.write_all(line.as_bytes())?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()
}
