#!/usr/bin/env bash
# Direct messages (NIP-17 in NIP-59 gift wraps, docs/dm.md), in one run on this machine:
#
# 1. Gift-wrap throughput. `gen-wraps` (benches/src/bin/gen-wraps.rs) makes N kind 1059 wraps
#    of 100-byte messages from SENDERS senders to one recipient, one JSON event a line. Then,
#    on the same file: (a) `unwrap-rate`: `provenance_dm::gift::unwrap` (JSON parsed, wrap id
#    and signature, two NIP-44 decryptions, seal id and signature, rumor author and id), whole
#    passes for about 3 s on 1 thread and on all cores; (b) nostr-tools 2.25.2 doing the same
#    (tests/differential/bench-dm.mjs: verifyEvent on the wrap, nip17.unwrapEvent, which checks
#    the seal and the author, and the rumor id), single-threaded, with nostr-wasm's verifyEvent
#    and in pure JS, one pass over every wrap. Both sides must open every wrap. Prints the
#    rates and the ratios ours / nostr-tools.
# 2. Round trip. nostr-rs-relay, llama-server with the tiny test model (fixtures/gguf/valid/
#    tiny-llama-f16.gguf; greedy, fixed seed, one thread) and `provenance serve --dm-relay --dm-allow
#    --dm-max-tokens 4` on loopback; then `dm-roundtrip` (benches/src/bin/dm-roundtrip.rs)
#    sends WARMUP + MESSAGES direct messages, one at a time, each by a sender of its own on the
#    allow list, always the same short question, and times each from publication to the reply
#    coming out of its live subscription. It prints median, p90 and largest of the client's
#    round trip, the agent's time from the wrap's arrival to a relay's OK for the reply (from
#    serve's per-answer log line), its model part, the agent's own (the difference) and the
#    relay legs (round trip minus the agent's).
#
# Usage: bash scripts/bench-dm.sh [N] [MESSAGES]      (defaults: 2,000 wraps, 50 messages)
# Environment: SENDERS (default 16), WARMUP (default 3), WASM_COUNT and PURE_COUNT (wraps
# nostr-tools opens per back end, default N), PARTS ("throughput roundtrip", the default, or
# one of them). Needs `npm ci --prefix tests/differential`, `bash .ci/llama-server.sh` and
# `bash .ci/nostr-rs-relay.sh` (done by .ci/run). Everything binds 127.0.0.1; every process
# the script starts is stopped by its PID on exit (scripts/lib-processes.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-2000}
messages=${2:-50}
senders=${SENDERS:-16}
warmup=${WARMUP:-3}
wasm_n=${WASM_COUNT:-$n}
pure_n=${PURE_COUNT:-$n}
parts=${PARTS:-throughput roundtrip}
target=${CARGO_TARGET_DIR:-target}
say() { printf 'bench-dm: %s\n' "$*" >&2; }
for value in "$n" "$messages" "$senders" "$warmup" "$wasm_n" "$pure_n"; do
    [[ "$value" =~ ^[0-9]+$ ]] || { say "counts are whole numbers, not $value"; exit 2; }
done

# $work, $pids (stopped on exit), free_port, require_tools, wait_up.
source scripts/lib-processes.sh
require_tools "apt-get install curl python3 nodejs" curl python3 node

cargo build --quiet --release -p provenance-cli -p provenance-benches --bins
bin="$target/release"

printf 'bench-dm: commit %s, %s, %s cores, load average at the start %s\n' \
    "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$(date -u '+%Y-%m-%d %H:%M UTC')" \
    "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"

if [[ " $parts " == *" throughput "* ]]; then
    [ -d tests/differential/node_modules/nostr-tools ] ||
        { say "nostr-tools is missing: npm ci --prefix tests/differential"; exit 2; }
    "$bin/gen-wraps" "$n" "$senders" "$work/wraps.jsonl" "$work/key.hex"
    printf '\ngift-wrap throughput: %s wraps (kind 1059, 100-byte messages, %s senders, one recipient), %s bytes\n' \
        "$n" "$senders" "$(stat -c %s "$work/wraps.jsonl")"
    ours=$("$bin/unwrap-rate" "$work/wraps.jsonl" "$work/key.hex" 3)
    echo "provenance-dm: $ours"
    js=$(node tests/differential/bench-dm.mjs "$work/wraps.jsonl" "$work/key.hex" "$wasm_n" "$pure_n")
    echo "nostr-tools: $js"
    python3 - "$ours" "$js" <<'PY'
import json, sys
ours, js = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert ours["opened_1"] == ours["checked_1"] > 0 and ours["opened_n"] == ours["checked_n"] > 0, ours
for side in ("wasm", "pure"):
    assert js[side]["opened"] == js[side]["wraps"] > 0, js
print(f"provenance-dm unwrap, 1 thread:    {ours['per_sec_1']:,.0f} wraps/s "
      f"({ours['opened_1']:,} opened of {ours['checked_1']:,})")
print(f"provenance-dm unwrap, {ours['threads']} threads:   {ours['per_sec_n']:,.0f} wraps/s "
      f"({ours['opened_n']:,} opened of {ours['checked_n']:,})")
w, p = js["wasm"], js["pure"]
print(f"nostr-tools + nostr-wasm verify:   {w['per_sec']:,.0f} wraps/s ({w['opened']:,} opened of {w['wraps']:,}, {w['seconds']:.1f} s)")
print(f"nostr-tools pure JS:               {p['per_sec']:,.0f} wraps/s ({p['opened']:,} opened of {p['wraps']:,}, {p['seconds']:.1f} s)")
print(f"ratio ours 1 thread / nostr-tools + wasm: {ours['per_sec_1'] / w['per_sec']:.1f}; / pure JS: {ours['per_sec_1'] / p['per_sec']:.1f}")
print(f"ratio ours all cores / nostr-tools + wasm: {ours['per_sec_n'] / w['per_sec']:.1f}; / pure JS: {ours['per_sec_n'] / p['per_sec']:.1f}")
PY
fi

if [[ " $parts " == *" roundtrip "* ]]; then
    relay_bin="${PROVENANCE_NOSTR_RS_RELAY:-${PROVENANCE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/provenance/tools}/bin/nostr-rs-relay}"
    llama_bin="${PROVENANCE_LLAMA_SERVER:-${PROVENANCE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/provenance/tools}/bin/llama-server}"
    [ -x "$relay_bin" ] || { say "nostr-rs-relay is not at $relay_bin; install it with: bash .ci/nostr-rs-relay.sh"; exit 2; }
    [ -x "$llama_bin" ] || { say "llama-server is not at $llama_bin; build it with: bash .ci/llama-server.sh"; exit 2; }

    # The relay, configured as provenance-relay's tests configure it (crates/relay/src/testing.rs).
    rp="$(free_port)"
    mkdir -p "$work/relay/data"
    cat > "$work/relay/config.toml" <<EOF
[info]
relay_url = "ws://127.0.0.1:$rp/"
name = "provenance bench relay"

[database]
data_directory = "$work/relay/data"

[network]
address = "127.0.0.1"
port = $rp
EOF
    (cd "$work/relay" && exec "$relay_bin" --config "$work/relay/config.toml" --db "$work/relay/data") \
        >"$work/relay.log" 2>&1 &
    pids+=($!)
    wait_up nostr-rs-relay "$!" "$work/relay.log" "http://127.0.0.1:$rp/" 30 any
    relay="ws://127.0.0.1:$rp/"

    # The tiny model, greedy with a fixed seed: the same question gets the same answer. One
    # thread: its compute is a few milliseconds, and two threads that wait on each other lose
    # hundreds of milliseconds on a machine whose two cores are shared.
    lp="$(free_port)"
    cp fixtures/gguf/valid/tiny-llama-f16.gguf "$work/"
    (cd "$work" && exec "$llama_bin" --model tiny-llama-f16.gguf --host 127.0.0.1 --port "$lp" \
        -c 1024 --temp 0 --seed 1 --threads 1 --threads-batch 1) >"$work/llama.log" 2>&1 &
    pids+=($!)
    wait_up llama-server "$!" "$work/llama.log" "http://127.0.0.1:$lp/health" 120 ok

    "$bin/provenance" keygen --out "$work/model.nsec" >"$work/model.out" 2>&1
    model_npub="$(grep -o 'npub1[0-9a-z]*' "$work/model.out" | head -n 1)"
    [ -n "$model_npub" ] || { say "no npub in the output of provenance keygen"; cat "$work/model.out" >&2; exit 2; }
    "$bin/dm-roundtrip" allow --count "$((warmup + messages))" >"$work/allow.txt"

    sp="$(free_port)"
    "$bin/provenance" serve --upstream "http://127.0.0.1:$lp" --listen "127.0.0.1:$sp" \
        --model "$work/tiny-llama-f16.gguf" --key "$work/model.nsec" --store "$work/events.sqlite" \
        --relay "$relay" --dm-relay "$relay" --dm-allow "$work/allow.txt" --dm-max-tokens 4 \
        2>"$work/serve.log" &
    serve_pid=$!
    pids+=("$serve_pid")
    wait_up "provenance serve" "$serve_pid" "$work/serve.log" "http://127.0.0.1:$sp/provenance/metrics" 60
    for _ in $(seq 1 300); do
        grep -q 'answering direct messages' "$work/serve.log" && break
        kill -0 "$serve_pid" 2>/dev/null || { say "provenance serve exited"; cat "$work/serve.log" >&2; exit 2; }
        sleep 0.1
    done
    grep -q 'answering direct messages' "$work/serve.log" ||
        { say "provenance serve does not answer direct messages"; cat "$work/serve.log" >&2; exit 2; }

    printf '\nDM round trip: %s messages after %s not counted, one at a time, each by its own sender;\n' \
        "$messages" "$warmup"
    printf 'provenance serve --dm-max-tokens 4 before llama-server (tiny model, --temp 0 --seed 1, 1 thread), nostr-rs-relay\n'
    rc=0
    "$bin/dm-roundtrip" run --relay "$relay" --to "$model_npub" --warmup "$warmup" \
        --messages "$messages" --serve-log "$work/serve.log" || rc=$?
    if [ "$rc" != 0 ]; then
        say "dm-roundtrip failed (status $rc); the end of serve's log:"
        tail -n 20 "$work/serve.log" >&2
        exit "$rc"
    fi
fi
printf '\nload average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
