//! Gift-wrap throughput of `provenance_dm::gift::unwrap` on the wraps of `gen-wraps`
//! (scripts/bench-dm.sh): for each line, the JSON parsed into an event, then opened and checked
//! (the wrap's id and signature, both NIP-44 decryptions, the seal's id and signature, the
//! rumor's author and id).
//!
//! `unwrap-rate WRAPS.jsonl KEY.hex [SECONDS]` holds the lines in memory, then passes over all
//! of them, again and again until SECONDS (default 3) have gone by, on 1 thread and then on
//! every core (rayon), and prints one JSON object:
//! `{"wraps": N, "threads": T, "per_sec_1": r1, "checked_1": c1, "opened_1": o1, "per_sec_n": rN,
//! "checked_n": cN, "opened_n": oN}` (`checked_*`: wraps handled in the passes, a multiple of N;
//! `opened_*`: how many of them opened). Exits 1 when a wrap does not open.

use std::time::{Duration, Instant};

use provenance::{Event, Keys, SecretKey, Timestamp};
use provenance_dm::gift;
use rayon::prelude::*;

fn open(recipient: &Keys, line: &str, now: Timestamp) -> bool {
    match Event::from_json(line) {
        Ok(event) => gift::unwrap(recipient, &event, now).is_ok(),
        Err(_) => false,
    }
}

/// Whole passes over `lines` until `seconds` have gone by: (wraps per second, wraps checked,
/// wraps opened).
fn rate(lines: &[String], recipient: &Keys, seconds: f64, parallel: bool) -> (f64, u64, u64) {
    let budget = Duration::from_secs_f64(seconds);
    let now = Timestamp::now();
    let (mut done, mut opened) = (0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < budget {
        let ok = if parallel {
            lines
                .par_iter()
                .filter(|line| open(recipient, line, now))
                .count()
        } else {
            lines
                .iter()
                .filter(|line| open(recipient, line, now))
                .count()
        };
        done += lines.len() as u64;
        opened += ok as u64;
    }
    (done as f64 / start.elapsed().as_secs_f64(), done, opened)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (wraps_path, key_path) = match args.as_slice() {
        [w, k] | [w, k, _] => (w, k),
        _ => {
            eprintln!("usage: unwrap-rate WRAPS.jsonl KEY.hex [SECONDS]");
            std::process::exit(2);
        }
    };
    let seconds: f64 = args.get(2).map_or(3.0, |s| s.parse().expect("SECONDS"));
    let text = std::fs::read_to_string(wraps_path).expect("WRAPS.jsonl");
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let secret = std::fs::read_to_string(key_path).expect("KEY.hex");
    let recipient = Keys::new(SecretKey::from_hex(secret.trim()).expect("a hex secret key"));
    let threads = rayon::current_num_threads();
    let (per_sec_1, checked_1, opened_1) = rate(&lines, &recipient, seconds, false);
    let (per_sec_n, checked_n, opened_n) = rate(&lines, &recipient, seconds, true);
    println!(
        r#"{{"wraps": {}, "threads": {threads}, "per_sec_1": {per_sec_1:.0}, "checked_1": {checked_1}, "opened_1": {opened_1}, "per_sec_n": {per_sec_n:.0}, "checked_n": {checked_n}, "opened_n": {opened_n}}}"#,
        lines.len()
    );
    if lines.is_empty() || opened_1 != checked_1 || opened_n != checked_n {
        eprintln!("unwrap-rate: not every wrap opened");
        std::process::exit(1);
    }
}
