//! What the signer counts and times, for operators: answers signed, failed and left
//! unsigned, and how much time the signer itself adds to each signed answer.
//!
//! [`Metrics::render`] writes them in the Prometheus text exposition format (version 0.0.4);
//! `provenance serve` answers it at `GET /provenance/metrics`. Everything is a relaxed atomic
//! counter: recording never takes a lock and never allocates.
//!
//! The signer's own time for one signed answer is the sum of two spans, both measured in the
//! signer with a monotonic clock:
//!
//! 1. from the moment the signer is handed the request to the moment it hands the request on
//!    (reading, hashing and parsing the body);
//! 2. from the upstream's last byte (the end of its body) to the moment the event is stored
//!    and the end of the answer may be released (building, signing, committing).
//!
//! Time the answer spends at the upstream, including a queue in front of it, is not the
//! signer's; nor is the kernel's work of the extra loopback hop, which only an end-to-end
//! comparison shows (`scripts/bench-signer.sh` prints both).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the histogram buckets, in microseconds (the last bucket is `+Inf`).
pub const BUCKETS_US: [u64; 28] = [
    10, 25, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 7_500,
    10_000, 15_000, 20_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    10_000_000,
];

/// A cumulative-on-render latency histogram over [`BUCKETS_US`].
#[derive(Debug)]
pub struct Histogram {
    /// One count per bucket plus the `+Inf` one; not cumulative.
    counts: [AtomicU64; BUCKETS_US.len() + 1],
    sum_ns: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Counts one observation.
    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        // The first bucket whose upper bound holds it (`le`: less than or equal).
        let i = BUCKETS_US.partition_point(|&bound| bound < us);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// The count in each bucket (not cumulative), `+Inf` last.
    pub fn buckets(&self) -> Vec<u64> {
        self.counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0u64;
        for (i, count) in self.buckets().into_iter().enumerate() {
            cumulative += count;
            match BUCKETS_US.get(i) {
                Some(&us) => {
                    let le = us as f64 / 1e6;
                    let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
                }
            }
        }
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

/// The signer's counters and timings; one per [`crate::Signer`], read with
/// [`crate::Signer::metrics`].
#[derive(Debug, Default)]
pub struct Metrics {
    /// The routes an unsigned generation went through, each logged once.
    unsigned_routes: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// Events signed and stored.
    pub signed: AtomicU64,
    /// Of those, events that say the answer was cut short (`output.truncated`).
    pub truncated: AtomicU64,
    /// Generation answers that could not be signed or stored (the client got an error).
    pub failed: AtomicU64,
    /// Generation requests answered but not signed: the upstream said no (non-2xx) or the
    /// request was not one the adapter can describe.
    pub unsigned: AtomicU64,
    /// Streamed answers whose client went away before the end (nothing signed).
    pub abandoned: AtomicU64,
    /// The signer's own time per signed answer (see the module docs).
    pub added: Histogram,
    /// From handing an event to the store to its commit.
    pub store_commit: Histogram,
}

impl Metrics {
    /// Everything, in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let counters: [(&str, &str, &AtomicU64); 5] = [
            (
                "provenance_events_signed_total",
                "Events signed and stored.",
                &self.signed,
            ),
            (
                "provenance_events_truncated_total",
                "Signed events saying the answer was cut short.",
                &self.truncated,
            ),
            (
                "provenance_events_failed_total",
                "Generation answers that could not be signed or stored.",
                &self.failed,
            ),
            (
                "provenance_answers_unsigned_total",
                "Generation requests answered unsigned (an upstream error, a request the adapter cannot describe, an API the signer does not read such as /infill, or a stream longer than the response cap).",
                &self.unsigned,
            ),
            (
                "provenance_answers_abandoned_total",
                "Streamed answers whose client went away before the end.",
                &self.abandoned,
            ),
        ];
        for (name, help, counter) in counters {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", counter.load(Ordering::Relaxed));
        }
        self.added.render(
            &mut out,
            "provenance_signer_added_seconds",
            "Time the signer itself adds to a signed answer: reading and hashing the request before forwarding it, and signing and storing the event after the upstream's last byte.",
        );
        self.store_commit.render(
            &mut out,
            "provenance_store_commit_seconds",
            "Time from handing an event to the store to its commit.",
        );
        out
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// A generation through a route the signer does not read passes unsigned: counted in
    /// `unsigned`, and logged once per route on standard error.
    pub fn unsigned_route(&self, path: &str) {
        Self::bump(&self.unsigned);
        let first = self
            .unsigned_routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_owned());
        if first {
            use std::io::Write;
            // Not eprintln!: a closed stderr must not fail the request.
            let _ = writeln!(
                std::io::stderr(),
                "provenance: POST {path} generates, but the signer does not read this API: its answers pass unsigned (counted in provenance_answers_unsigned_total)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(10)); // le 10 us
        h.observe(Duration::from_micros(11)); // le 25 us
        h.observe(Duration::from_nanos(999_999)); // 999 us: le 1 ms
        h.observe(Duration::from_millis(1)); // le 1 ms
        h.observe(Duration::from_secs(60)); // +Inf
        let b = h.buckets();
        assert_eq!(b[0], 1);
        assert_eq!(b[1], 1);
        assert_eq!(b[BUCKETS_US.iter().position(|&x| x == 1_000).unwrap()], 2);
        assert_eq!(b[BUCKETS_US.len()], 1);
        assert_eq!(h.count(), 5);
    }

    #[test]
    fn renders_cumulative_buckets_sum_and_count() {
        let m = Metrics::default();
        m.added.observe(Duration::from_micros(120));
        m.added.observe(Duration::from_micros(2_500));
        Metrics::bump(&m.signed);
        Metrics::bump(&m.signed);
        let text = m.render();
        assert!(
            text.contains("\nprovenance_events_signed_total 2\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE provenance_signer_added_seconds histogram\n"));
        assert!(text.contains("provenance_signer_added_seconds_bucket{le=\"0.0001\"} 0\n"));
        assert!(text.contains("provenance_signer_added_seconds_bucket{le=\"0.00015\"} 1\n"));
        assert!(text.contains("provenance_signer_added_seconds_bucket{le=\"0.002\"} 1\n"));
        assert!(text.contains("provenance_signer_added_seconds_bucket{le=\"0.003\"} 2\n"));
        assert!(text.contains("provenance_signer_added_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(
            text.contains("provenance_signer_added_seconds_sum 0.00262\n"),
            "{text}"
        );
        assert!(text.contains("provenance_signer_added_seconds_count 2\n"));
        assert!(text.contains("provenance_store_commit_seconds_count 0\n"));
        // Every line is a comment or `name[{labels}] value`.
        for line in text.lines() {
            assert!(
                line.starts_with("# ") || line.split(' ').count() == 2,
                "{line}"
            );
        }
    }
}
