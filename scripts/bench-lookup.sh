#!/usr/bin/env bash
# Lookup benchmark: N signed synthetic outputs (with fingerprints) into a fresh index with
# `provenance lookup ingest` (every event verified; the ingest rate is printed), then the index
# size per event and the latency of exact and partial lookups (p50 / p99). Figures go to
# docs/benchmarks.md.
#
#   bash scripts/bench-lookup.sh N [QUERIES] [MEMORY_MIB]
#
# By default the generator streams straight into ingest (no JSON Lines file on disk; the rate
# printed is then that of generating and ingesting together, on the same cores). With
# LOOKUP_BENCH_FILE=1 the events are written to target/bench-lookup/events-N.jsonl first (1.66
# KB each) and ingest is timed alone. MEMORY_MIB (default 512) is `ingest --memory`: keys kept
# in memory and written sorted; about 16 bytes per fingerprint, 31 per event.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:?usage: bench-lookup.sh N [QUERIES] [MEMORY_MIB]}
queries=${2:-10000}
memory=${3:-512}
dir=target/bench-lookup
mkdir -p "$dir"

cargo build --release -q -p provenance-cli -p provenance-fixtures --bins
cargo build --release -q -p provenance-lookup --example bench-lookup

db="$dir/lookup-$n.sqlite"
rm -f "$db" "$db-wal" "$db-shm"
echo "free disk before: $(df -h --output=avail . | tail -1 | tr -d ' ')"
if [ "${LOOKUP_BENCH_FILE:-0}" = 1 ]; then
    events="$dir/events-$n.jsonl"
    if [ ! -s "$events" ]; then
        echo "generating $n events"
        /usr/bin/time -f "generate: %e s, %M KB max RSS" \
            target/release/lookup-corpus synthetic "$n" "$events.tmp"
        mv "$events.tmp" "$events"
    fi
    ls -l "$events"
    /usr/bin/time -f "ingest: %e s, %U s user, %S s system, %M KB max RSS" \
        target/release/provenance lookup ingest --db "$db" --memory "$memory" "$events"
else
    echo "generating $n events into ingest (streamed)"
    start=$(date +%s.%N)
    target/release/lookup-corpus synthetic "$n" /dev/stdout |
        /usr/bin/time -f "ingest: %e s, %U s user, %S s system, %M KB max RSS" \
            target/release/provenance lookup ingest --db "$db" --memory "$memory" -
    end=$(date +%s.%N)
    awk -v n="$n" -v s="$start" -v e="$end" \
        'BEGIN { printf "generate + ingest: %.1f s, %.0f events/s\n", e - s, n / (e - s) }'
fi
# The latency run opens the index once more (writing back any log), then the size is read.
target/release/examples/bench-lookup "$db" "$n" "$queries"
bytes=$(stat -c %s "$db")
wal=$(stat -c %s "$db-wal" 2>/dev/null || echo 0)
awk -v b="$bytes" -v w="$wal" -v n="$n" \
    'BEGIN { printf "index: %.0f bytes (+%.0f of log) = %.0f bytes per event\n", b, w, (b + w) / n }'
echo "free disk after: $(df -h --output=avail . | tail -1 | tr -d ' ')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
