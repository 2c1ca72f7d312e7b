#!/usr/bin/env bash
# Instructions per signed answer of `provenance serve`, counted by callgrind, so independent
# of the machine's load: each BINARY in turn runs under `valgrind --tool=callgrind` with
# `--durability process` in front of an nginx that answers the canned chat completion (the
# one of ab-signer.sh), and one keep-alive `curl -K` process sends it N chat requests; the
# signer is stopped with SIGINT. Per answer = (total at N = 600 - total at N = 200) / 400,
# from callgrind_annotate's flat profile: the whole program, then SQLite, libc and the rest
# (the rest is the signer's own code, its crates and libsecp256k1; SQLite's share follows how
# many log frames each checkpoint merges, which under valgrind, running one thread at a time,
# follows the schedule more than the code).
#
#   scripts/callgrind-signer.sh BINARY...
#
# Build a binary with `cargo build --release -p provenance-cli` (an older one in a git
# worktree). Everything binds 127.0.0.1; every process started is stopped by PID on exit.
# Needs valgrind, nginx and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: scripts/callgrind-signer.sh BINARY..." >&2; exit 2; }

# $work, $pids (stopped on exit) and free_port.
source scripts/lib-processes.sh
require_tools "apt-get install valgrind nginx-light curl" valgrind callgrind_annotate nginx curl
# wait_http and start_canned_nginx ($up).
source scripts/lib-nginx.sh
start_canned_nginx
"$1" keygen --out "$work/key.nsec" >/dev/null
printf '%s' '{"model":"tiny","messages":[{"role":"user","content":"Why is the sky blue?"}],"max_tokens":8}' \
    > "$work/chat.json"

# "TOTAL SQLITE LIBC REST" instructions of one callgrind output file.
split() {
    callgrind_annotate --threshold=100 --auto=no "$1" | awk '
        /file:function/ { on = 1; next }
        on && $1 ~ /^[0-9,]+$/ {
            n = $1; gsub(",", "", n); n += 0; total += n
            if ($0 ~ /sqlite3\.c/) sqlite += n
            else if ($0 ~ /libc\.so|ld-linux/) libc += n
            else rest += n
        }
        END { printf "%.0f %.0f %.0f %.0f\n", total, sqlite, libc, rest }'
}

for bin in "$@"; do
    declare -A parts=()
    for n in 200 600; do
        port="$(free_port)"
        rm -f "$work"/events.sqlite*
        valgrind --tool=callgrind --callgrind-out-file="$work/cg.$n" "$bin" serve \
            --upstream "http://127.0.0.1:$up" --listen "127.0.0.1:$port" \
            --model fixtures/gguf/valid/tiny-llama-f16.gguf --key "$work/key.nsec" \
            --store "$work/events.sqlite" --durability process 2>"$work/serve.log" &
        pid=$!
        pids+=("$pid")
        # Start-up under valgrind takes seconds (the model is hashed).
        wait_up "provenance serve (under valgrind)" "$pid" "$work/serve.log" \
            "http://127.0.0.1:$port/provenance/metrics" 60 any
        : > "$work/urls"
        for i in $(seq 1 "$n"); do
            [ "$i" -gt 1 ] && echo next >> "$work/urls"
            printf 'url = "http://127.0.0.1:%s/v1/chat/completions"\nheader = "Content-Type: application/json"\ndata = "@%s"\noutput = "/dev/null"\n' \
                "$port" "$work/chat.json" >> "$work/urls"
        done
        curl -sf -K "$work/urls"
        signed=$(curl -s "http://127.0.0.1:$port/provenance/metrics" |
            awk '$1 == "provenance_events_signed_total" { print $2 }')
        [ "$signed" = "$n" ] || { echo "$bin: $signed of $n answers signed" >&2; exit 1; }
        kill -INT "$pid"
        wait "$pid" 2>/dev/null || true
        parts[$n]="$(split "$work/cg.$n")"
    done
    read -r t2 s2 l2 r2 <<<"${parts[200]}"
    read -r t6 s6 l6 r6 <<<"${parts[600]}"
    printf '%s: per answer %d instructions (SQLite %d, libc %d, rest %d); at N = 600: %d (rest %d)\n' \
        "$bin" $(((t6 - t2) / 400)) $(((s6 - s2) / 400)) $(((l6 - l2) / 400)) $(((r6 - r2) / 400)) "$t6" "$r6"
done
