#!/usr/bin/env bash
# Added latency and throughput loss of `provenance serve` against the same upstream reached
# directly, at 1, 16 and 64 concurrent clients, whole and streamed answers, for two upstreams:
#
# - nginx on loopback answering every POST at once with a canned answer, so the figures are
#   the signer's own cost, not a model's: an OpenAI-compatible chat completion (about 300
#   bytes of JSON, `chat`) and a llama.cpp `/completion` stream (five SSE messages, `stream`;
#   nginx sends it in one piece, the signer parses and hashes it as a stream); both store
#   durability modes;
# - llama-server (the binary `.ci/llama-server.sh` caches) serving the tiny generated GGUF of
#   the tests (or LLAMA_MODEL), generating 8 tokens: `/v1/chat/completions` whole (`chat`) and
#   `/completion` streamed (`stream`); durability `full` (the default). Skipped with a
#   message when the binary is not there. It runs with 4 slots (`-np 4`, 256 tokens of context
#   each): at 16 and 64 clients most requests wait in its queue (or, signed, in the proxy's),
#   so those rows time the queue as much as the proxy. wrk gives up on an answer after 2 s by
#   default and leaves it out of the figures; `--timeout 60s` counts such answers. wrk ends a
#   run with requests still queued at llama-server, which it would work through during the
#   next run: each run waits until llama-server's slots are idle first.
#
#   scripts/bench-signer.sh [SECONDS]        (default 10 s per run)
#
# Environment: UPSTREAMS ("nginx llama-server", the default, or either alone); LLAMA_MODEL
# (a GGUF; default the tiny test model; `scripts/fetch-gemma.sh` installs Gemma 3 270M);
# TOKENS (tokens per answer, default 8; greedy, fixed seed, end of sequence ignored, so that
# every answer is the same work); LLAMA_SECONDS (seconds per llama-server run, default
# SECONDS); LLAMA_DURABILITIES (store durability modes of its rows, default "full"; "full
# process" for both). llama-server gets one HTTP thread per client and a few more
# (`--threads-http`), so that its direct rows serve all 64 connections at once instead of
# starving most of them.
# It runs at `nice` LLAMA_NICE (default 10), in its direct rows as in its signed ones: on a
# machine without a GPU its compute threads keep every core busy, and the signer's short
# bursts of work (a signature, a commit) would otherwise wait a scheduler slice or two for a
# core, which is what an operator of a CPU-only box avoids the same way (docs/signer.md).
# The nginx rows with `full` durability also time `pass`, a POST the signer passes on
# unsigned (`/v1/embeddings`): the cost of the extra HTTP hop alone, as a control.
# The peer: every `chat` and `stream` run against an upstream is also made through nginx as
# a plain reverse proxy (`proxy_pass`, keep-alive upstream connections, streams unbuffered:
# scripts/lib-nginx.sh), in the same run, right after the direct one; its rows (proxy
# "nginx") are what the field's usual proxy loses on the same machine while signing
# nothing, beside the signer's rows (proxy "provenance").
#
# RATE (answers per second, unset by default): paced clients instead of back-to-back ones.
# After every answer each client then waits a random time (exponential, so that arrivals
# are as irregular as independent users', with a mean of clients * 1000 / RATE ms, at least
# 1 ms; wrk's `delay()`) before its next request, so that 1, 16 and 64 clients offer about
# RATE answers a second together and the rows time the proxy below saturation (wrk's latency
# runs from sending a request to its answer; the pause is not in it). Back to back, 16 or 64
# clients saturate two shared cores against the canned nginx, and the added latency there is
# queueing.
#
# The load generator is wrk (Debian `wrk`), one thread, keep-alive connections, each run
# bounded by SECONDS. Everything binds 127.0.0.1; every process the script starts is stopped by
# PID on exit. Needs `nginx` and `wrk` (apt-get install nginx-light wrk).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-10}"
upstreams="${UPSTREAMS:-nginx llama-server}"
tokens="${TOKENS:-8}"
llama_seconds="${LLAMA_SECONDS:-$seconds}"
llama_nice="${LLAMA_NICE:-10}"
llama_durabilities="${LLAMA_DURABILITIES:-full}"
rate="${RATE:-}"
if [ -n "$rate" ] && ! [[ "$rate" =~ ^[1-9][0-9]*$ ]]; then
    printf 'bench-signer: RATE must be a whole number of answers per second, not %s\n' "$rate" >&2
    exit 2
fi
say() { printf 'bench-signer: %s\n' "$*" >&2; }
# $work, $pids (stopped on exit) and free_port.
source scripts/lib-processes.sh
require_tools "apt-get install nginx-light wrk curl" nginx wrk curl

say "building the release binary"
cargo build --release --quiet -p provenance-cli
bin="${CARGO_TARGET_DIR:-target}/release/provenance"

# wait_http, wait_ok, start_canned_nginx ($up) and start_proxy_nginx ($peer).
source scripts/lib-nginx.sh
# wrk_figures and own_time.
source scripts/lib-metrics.sh
start_canned_nginx

"$bin" keygen --out "$work/key.nsec" >/dev/null

cat > "$work/chat.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"model":"tiny","messages":[{"role":"user","content":"Why is the sky blue?"}],"max_tokens":TOKENS,"temperature":0,"seed":42,"ignore_eos":true}'
wrk.headers["Content-Type"] = "application/json"
EOF
cat > "$work/stream.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"prompt":"Why is the sky blue?","n_predict":TOKENS,"temperature":0,"seed":42,"ignore_eos":true,"stream":true}'
wrk.headers["Content-Type"] = "application/json"
EOF

sed -i "s/TOKENS/$tokens/" "$work/chat.lua" "$work/stream.lua"

# Waits until no slot of the llama-server at $1 is working (at most 60 s).
drain() {
    for _ in $(seq 1 600); do
        curl -sf "$1/slots" | grep -q '"is_processing":true' || return 0
        sleep 0.1
    done
    say "llama-server at $1 still busy after 60 s"
}

# With RATE: how long each of $1 clients waits after an answer, in whole ms (at least 1).
think_ms() {
    local ms=$((($1 * 1000 + rate / 2) / rate))
    echo $((ms < 1 ? 1 : ms))
}

# Prints "requests/s p50_ms p99_ms non_2xx answers" for one wrk run.
run_wrk() {
    local url="$1" conns="$2" case="$3" script="$work/$3.lua"
    [ -n "${drain_url:-}" ] && drain "$drain_url"
    if [ -n "$rate" ]; then
        script="$work/$case-paced.lua"
        cp "$work/$case.lua" "$script"
        # Exponential pauses (rounded to wrk's whole ms) keep the clients from falling into
        # step: with a fixed pause all of them, started together, send together every time.
        printf 'function delay()\n    return math.floor(-%d * math.log(1 - math.random()) + 0.5)\nend\n' \
            "$(think_ms "$conns")" >> "$script"
    fi
    wrk -t1 -c"$conns" -d"${run_seconds}s" --timeout 60s --latency -s "$script" "$url" > "$work/wrk.out"
    wrk_figures "$work/wrk.out"
}


# Prints one table row from a direct run and a run through a proxy.
row() {
    awk -v u="$1" -v p="$2" -v d="$3" -v k="$4" -v c="$5" -v dr="$6" -v sr="$7" \
        -v d50="$8" -v d99="$9" -v s50="${10}" -v s99="${11}" -v dn="${12}" -v sn="${13}" -v o50="${14}" -v o99="${15}" 'BEGIN {
        printf "| %s | %s | %s | %s | %d | %d / %d | %.1f | %.1f | %.1f %% | %.3f / %.3f | %.3f / %.3f | %.3f / %.3f | %s / %s |\n",
            u, p, d, k, c, dn, sn, dr, sr, 100 * (1 - sr / dr), d50, d99, s50, s99, s50 - d50, s99 - d99, o50, o99 }'
}

# Table rows per (durability, answer, clients) against the upstream on port $2, named $1:
# the signer's, and (for the first durability) the peer proxy's.
matrix() {
    local name="$1" up="$2" durabilities="$3" first=1
    # llama-server closes a connection after a streamed answer: nginx gets a new one per
    # request there (scripts/lib-nginx.sh).
    start_proxy_nginx "$up" "$([ "$name" = llama-server ] && echo close)"
    for durability in $durabilities; do
        px="$(free_port)"
        "$bin" serve --upstream "http://127.0.0.1:$up" --listen "127.0.0.1:$px" \
            --model fixtures/gguf/valid/tiny-llama-f16.gguf --key "$work/key.nsec" \
            --store "$work/events-$name-$durability.sqlite" --durability "$durability" 2>"$work/serve.log" &
        serve_pid=$!
        pids+=("$serve_pid")
        wait_http "provenance serve" "$serve_pid" "$work/serve.log" "http://127.0.0.1:$px/provenance/0"
        local cases="chat stream"
        [ "$name" = nginx ] && [ "$durability" = full ] && cases="chat stream pass"
        for case in $cases; do
            route=/v1/chat/completions
            [ "$case" = stream ] && route=/completion
            # The control: a route the signer passes on unsigned, so the row is the cost of
            # the extra HTTP hop alone.
            [ "$case" = pass ] && route=/v1/embeddings
            for conns in 1 16 64; do
                read -r d_rps d_p50 d_p99 d_bad d_n <<<"$(run_wrk "http://127.0.0.1:$up$route" "$conns" "$case")"
                if [ "$first" = 1 ] && [ "$case" != pass ]; then
                    read -r p_rps p_p50 p_p99 p_bad p_n <<<"$(run_wrk "http://127.0.0.1:$peer$route" "$conns" "$case")"
                    [ "$p_bad" != 0 ] && say "$name $case $conns: non-2xx answers through nginx: $p_bad"
                    row "$name" nginx - "$case" "$conns" "$d_rps" "$p_rps" "$d_p50" "$d_p99" "$p_p50" "$p_p99" "$d_n" "$p_n" - -
                fi
                curl -sf "http://127.0.0.1:$px/provenance/metrics" > "$work/metrics.before"
                read -r s_rps s_p50 s_p99 s_bad s_n <<<"$(run_wrk "http://127.0.0.1:$px$route" "$conns" "$case")"
                curl -sf "http://127.0.0.1:$px/provenance/metrics" > "$work/metrics.after"
                read -r _ o_p50 o_p99 <<<"$(own_time "$work/metrics.before" "$work/metrics.after" 0.5 0.99)"
                # Non-2xx answers are counted in the row, not hidden: the rates include them.
                if [ "$d_bad" != 0 ] || [ "$s_bad" != 0 ]; then
                    say "$name $durability $case $conns: non-2xx answers: direct $d_bad, signed $s_bad (see $work/serve.log)"
                fi
                row "$name" provenance "$durability" "$case" "$conns" "$d_rps" "$s_rps" "$d_p50" "$d_p99" "$s_p50" "$s_p99" "$d_n" "$s_n" "$o_p50" "$o_p99"
            done
        done
        signed="$(sqlite3 "$work/events-$name-$durability.sqlite" 'SELECT COUNT(*) FROM events' 2>/dev/null || echo '?')"
        say "$name, durability $durability: $signed events stored"
        kill "$serve_pid"
        wait "$serve_pid" 2>/dev/null || true
        first=0
    done
}

printf '\nload average at the start: %s; cores: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)"
if [ -n "$rate" ]; then
    printf '\npaced clients, about %s answers/s in all: after each answer a client waits on average %s ms (1 client), %s ms (16), %s ms (64)\n' \
        "$rate" "$(think_ms 1)" "$(think_ms 16)" "$(think_ms 64)"
fi
printf "\n| upstream | proxy | durability | answer | clients | answers direct / proxied | direct req/s | proxied req/s | throughput loss | direct p50 / p99 ms | proxied p50 / p99 ms | added p50 / p99 ms | signer's own time p50 / p99 ms (bucket bound) |\n"
printf '|---|---|---|---|---|---|---|---|---|---|---|---|---|\n'
if [[ " $upstreams " == *" nginx "* ]]; then
    run_seconds="$seconds"
    cp "$work/chat.lua" "$work/pass.lua"
    matrix nginx "$up" "full process"
fi

llama_bin="${PROVENANCE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/provenance/tools}/bin/llama-server"
llama_model="${LLAMA_MODEL:-fixtures/gguf/valid/tiny-llama-f16.gguf}"
if [[ " $upstreams " != *" llama-server "* ]]; then
    :
elif [ -x "$llama_bin" ]; then
    lp="$(free_port)"
    nice -n "$llama_nice" "$llama_bin" --model "$llama_model" --host 127.0.0.1 --port "$lp" \
        -c 1024 -np 4 --threads-http 72 >"$work/llama.log" 2>&1 &
    pids+=($!)
    wait_ok llama-server "$!" "$work/llama.log" "http://127.0.0.1:$lp/health" 60
    # Warm-up, so that the first timed run does not take it.
    for _ in 1 2 3 4; do
        curl -sf -o /dev/null -d '{"prompt":"Why is the sky blue?","n_predict":8}' "http://127.0.0.1:$lp/completion"
    done
    printf '\nllama-server: %s, %s tokens per answer, %s s per run, nice %s\n' "$(basename "$llama_model")" "$tokens" "$llama_seconds" "$llama_nice"
    drain_url="http://127.0.0.1:$lp"
    run_seconds="$llama_seconds"
    matrix llama-server "$lp" "$llama_durabilities"
else
    say "no llama-server at $llama_bin (bash .ci/llama-server.sh builds it): llama-server rows skipped"
fi
printf '\nload average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
