//! Lookup latency on an index of synthetic outputs (`lookup-corpus synthetic N FILE`, then
//! `provenance lookup ingest`): p50 / p99 / max of exact-hash lookups and of partial lookups
//! (a 30-word excerpt of an indexed output with 2 words changed), each including the
//! re-verification of the returned event. Run by `scripts/bench-lookup.sh`.
//!
//! cargo run --release -p provenance-lookup --example bench-lookup -- DB N QUERIES

use std::time::{Duration, Instant};

use provenance::digest::sha256;
use provenance_fixtures::synthetic_output;
use provenance_lookup::{Index, MatchKind, Options, Query, TrustList, lookup};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db, n, queries] = args.as_slice() else {
        return Err("usage: bench-lookup DB N QUERIES".into());
    };
    let n: u64 = n.parse()?;
    let queries: u64 = queries.parse()?;
    let index = Index::open(std::path::Path::new(db))?;
    let trust = TrustList::default();
    let opts = Options::default();
    // Spread the queried outputs over the whole index, in an order unrelated to insertion.
    let pick = |q: u64| (q.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) % n;

    let mut exact = Vec::new();
    let mut exact_found = 0;
    for q in 0..queries {
        let text = synthetic_output(pick(q));
        let query = Query::from_hashes(Some(sha256(text.as_bytes())), None, Vec::new());
        let t = Instant::now();
        let answer = lookup(&index, &trust, &query, &opts)?;
        exact.push(t.elapsed());
        exact_found += usize::from(
            answer
                .matches
                .first()
                .is_some_and(|m| m.kind == MatchKind::Exact),
        );
    }

    let mut partial = Vec::new();
    let mut partial_found = 0;
    let mut coverage = 0.0;
    for q in 0..queries {
        let text = synthetic_output(pick(q + queries));
        let words: Vec<&str> = text.split(' ').collect();
        let start = (q as usize * 7) % (words.len() - 30);
        let mut excerpt: Vec<String> = words[start..start + 30]
            .iter()
            .map(|w| (*w).to_owned())
            .collect();
        excerpt[10] = "changed".into();
        excerpt[20] = "edited".into();
        let query = Query::from_text(&excerpt.join(" "));
        let t = Instant::now();
        let answer = lookup(&index, &trust, &query, &opts)?;
        partial.push(t.elapsed());
        if let Some(m) = answer.matches.first() {
            partial_found += 1;
            coverage += m.coverage.fraction;
        }
    }

    let report = |name: &str, mut v: Vec<Duration>, found: usize| {
        v.sort_unstable();
        let at = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
        println!(
            "{name}: {} queries, {found} found, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            v.len(),
            at(0.50).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            v[v.len() - 1].as_secs_f64() * 1e3
        );
    };
    report("exact", exact, exact_found);
    report("partial", partial, partial_found);
    println!(
        "partial: mean coverage of the best match {:.3}",
        coverage / partial_found.max(1) as f64
    );
    Ok(())
}
