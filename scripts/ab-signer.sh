#!/usr/bin/env bash
# Compares two builds of `provenance serve` on the same work: each in turn in front of one
# nginx answering a canned chat completion, driven by wrk, ROUNDS times alternating (A, B,
# A, B, ...) so that a machine that gets busier or quieter during the run affects both
# alike. Prints, per run, the answers per second, wrk's end-to-end p50 and p99, and the
# quantiles of the signer's own time per answer from its `/provenance/metrics` histogram
# (each the upper bound of its bucket).
#
#   scripts/ab-signer.sh A_BINARY B_BINARY [CLIENTS] [SECONDS] [DURABILITY] [ROUNDS]
#
# Defaults: 16 clients, 6 s per run, durability full, 2 rounds. Both binaries need
# `/provenance/metrics` (commit d7454aa and later). Build one with, for example,
# `git worktree add /somewhere/old OLD && cargo build --release --manifest-path
# /somewhere/old/Cargo.toml -p provenance-cli`. Everything binds 127.0.0.1; every process
# started is stopped by PID on exit. Needs nginx, wrk and curl.
set -euo pipefail
cd "$(dirname "$0")/.."

a="${1:?A binary}"
b="${2:?B binary}"
clients="${3:-16}"
seconds="${4:-6}"
durability="${5:-full}"
rounds="${6:-2}"
say() { printf 'ab-signer: %s\n' "$*" >&2; }
# $work, $pids (stopped on exit) and free_port.
source scripts/lib-processes.sh
require_tools "apt-get install nginx-light wrk curl" nginx wrk curl


# wait_http and start_canned_nginx ($up).
source scripts/lib-nginx.sh
# wrk_figures and own_time.
source scripts/lib-metrics.sh
start_canned_nginx
cat > "$work/chat.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"model":"tiny","messages":[{"role":"user","content":"Why is the sky blue?"}],"max_tokens":8}'
wrk.headers["Content-Type"] = "application/json"
EOF
"$a" keygen --out "$work/key.nsec" >/dev/null

printf 'load average at the start: %s; %s clients, %s s per run, durability %s\n' \
    "$(cut -d' ' -f1-3 /proc/loadavg)" "$clients" "$seconds" "$durability"
for round in $(seq 1 "$rounds"); do
    for which in A B; do
        bin="$a"
        [ "$which" = B ] && bin="$b"
        port="$(free_port)"
        rm -f "$work"/events.sqlite*
        "$bin" serve --upstream "http://127.0.0.1:$up" --listen "127.0.0.1:$port" \
            --model fixtures/gguf/valid/tiny-llama-f16.gguf --key "$work/key.nsec" \
            --store "$work/events.sqlite" --durability "$durability" 2>"$work/serve.log" &
        pid=$!
        pids+=("$pid")
        wait_http "provenance serve ($which)" "$pid" "$work/serve.log" "http://127.0.0.1:$port/provenance/metrics"
        wrk -t1 -c"$clients" -d"${seconds}s" --latency -s "$work/chat.lua" \
            "http://127.0.0.1:$port/v1/chat/completions" > "$work/wrk.out"
        curl -sf "http://127.0.0.1:$port/provenance/metrics" > "$work/metrics"
        # Answers per second, and wrk's end-to-end p50 and p99 (ms).
        read -r rps e50 e99 _ _ <<<"$(wrk_figures "$work/wrk.out")"
        read -r signed o50 o99 o999 <<<"$(own_time /dev/null "$work/metrics" 0.5 0.99 0.999)"
        printf 'round %s %s: %s answers/s, %s signed, end to end p50 %s p99 %s ms; own time p50 <= %s p99 <= %s p99.9 <= %s ms\n' \
            "$round" "$which" "$rps" "$signed" "$e50" "$e99" "$o50" "$o99" "$o999"
        kill "$pid"
        wait "$pid" 2>/dev/null || true
    done
done
printf 'load average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
