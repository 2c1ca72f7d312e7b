#!/usr/bin/env bash
# Batch verification speed, in one run on this machine:
#   (a) the raw libsecp256k1 BIP-340 verify rate (keys parsed, ids given), 1 thread and all cores;
#   (b) `provenance verify` on N generated events (JSON Lines; parsing, id recomputation,
#       signature, record and tag checks, rendering), summary only and with full --json output;
#   (c) nostr-tools verifyEvent (JSON.parse + id + signature), nostr-wasm and pure JS, on the
#       first events of the same file (single-threaded, as in a browser or Node process);
# then prints the ratios. Usage: bash scripts/bench-verify.sh [N] [WASM_EVENTS] [PURE_EVENTS]
# Defaults: 1,000,000 events; nostr-tools on the first 100,000 (wasm) and 10,000 (pure JS).
# Needs `npm ci --prefix tests/differential` (done by .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-1000000}
wasm_n=${2:-100000}
pure_n=${3:-10000}
target=${CARGO_TARGET_DIR:-target}
dir="$target/bench-verify"
mkdir -p "$dir"
events="$dir/events-$n.jsonl"

cargo build --quiet --release -p provenance-cli -p provenance-fixtures -p provenance-benches --bins
bin="$target/release"

if [ ! -s "$events" ]; then
    echo "generating $n events into $events"
    "$bin/gen-events" "$n" > "$events.tmp"
    mv "$events.tmp" "$events"
fi
echo "events: $n, $(stat -c %s "$events") bytes, $(nproc) cores"

raw=$("$bin/verify-rate" 20000 3)
echo "raw libsecp256k1: $raw"

seconds() { python3 -c 'import sys,time; print(time.time())'; }
t0=$(seconds)
"$bin/provenance" verify --json --quiet "$events" > "$dir/summary.json"
t1=$(seconds)
"$bin/provenance" verify --json "$events" > /dev/null
t2=$(seconds)

js=$(node tests/differential/bench-verify.mjs "$events" "$wasm_n" "$pure_n")
echo "nostr-tools: $js"

python3 - "$n" "$t0" "$t1" "$t2" "$raw" "$js" "$dir/summary.json" <<'PY'
import json, sys
n = int(sys.argv[1]); t0, t1, t2 = map(float, sys.argv[2:5])
raw = json.loads(sys.argv[5]); js = json.loads(sys.argv[6])
summary = json.loads(open(sys.argv[7]).read().splitlines()[-1])["data"]
assert summary["verified"] == n, summary
quiet, full = n / (t1 - t0), n / (t2 - t1)
print(f"provenance verify --json --quiet: {quiet:,.0f} events/s ({t1 - t0:.1f} s)")
print(f"provenance verify --json:         {full:,.0f} events/s ({t2 - t1:.1f} s)")
print(f"raw BIP-340, 1 thread:            {raw['per_sec_1']:,.0f}/s")
print(f"raw BIP-340, {raw['threads']} threads:           {raw['per_sec_n']:,.0f}/s")
print(f"nostr-tools + nostr-wasm:         {js['wasm']['per_sec']:,.0f}/s ({js['wasm']['events']} events, {js['wasm']['valid']} valid)")
print(f"nostr-tools pure JS:              {js['pure']['per_sec']:,.0f}/s ({js['pure']['events']} events, {js['pure']['valid']} valid)")
print(f"ratio quiet / raw all cores:      {quiet / raw['per_sec_n']:.3f} (target >= 0.9)")
print(f"ratio full --json / raw:          {full / raw['per_sec_n']:.3f}")
print(f"ratio quiet / nostr-tools wasm:   {quiet / js['wasm']['per_sec']:.1f} (target >= 10)")
print(f"ratio quiet / nostr-tools pure:   {quiet / js['pure']['per_sec']:.1f}")
PY
