#!/usr/bin/env bash
# Lookup benchmark: generate N signed synthetic outputs (with fingerprints), ingest them into
# a fresh index with `provenance lookup ingest` (the ingest rate is printed), then time exact
# and partial lookups (p50 / p99). Figures go to docs/benchmarks.md.
#
#   bash scripts/bench-lookup.sh 1000000 [QUERIES]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:?usage: bench-lookup.sh N [QUERIES]}
queries=${2:-10000}
dir=target/bench-lookup
mkdir -p "$dir"

cargo build --release -q -p provenance-cli -p provenance-testkit --bins
cargo build --release -q -p provenance-lookup --example bench-lookup

events="$dir/events-$n.jsonl"
if [ ! -s "$events" ]; then
    echo "generating $n events"
    /usr/bin/time -f "generate: %e s, %M KB max RSS" target/release/lookup-corpus synthetic "$n" "$events.tmp"
    mv "$events.tmp" "$events"
fi
ls -l "$events"

db="$dir/lookup-$n.sqlite"
rm -f "$db" "$db-wal" "$db-shm"
/usr/bin/time -f "ingest: %e s, %M KB max RSS" target/release/provenance lookup ingest --db "$db" "$events"
ls -l "$db"
target/release/examples/bench-lookup "$db" "$n" "$queries"
