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
# The load generator is wrk (Debian `wrk`), one thread, keep-alive connections, each run
# bounded by SECONDS. Everything binds 127.0.0.1; every process the script starts is stopped by
# PID on exit. Needs `nginx` and `wrk` (apt-get install nginx-light wrk).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-10}"
say() { printf 'bench-signer: %s\n' "$*" >&2; }
for tool in nginx wrk curl; do
    command -v "$tool" >/dev/null 2>&1 || { say "$tool is missing (apt-get install nginx-light wrk curl)"; exit 2; }
done

say "building the release binary"
cargo build --release --quiet -p provenance-cli
bin="${CARGO_TARGET_DIR:-target}/release/provenance"

# $work, $pids (stopped on exit) and free_port.
source scripts/lib-processes.sh
wait_http() {
    for _ in $(seq 1 200); do
        curl -s -o /dev/null "$1" && return 0
        sleep 0.05
    done
    say "$1 did not answer"; exit 2
}

up="$(free_port)"
json='{"id":"chatcmpl-1","object":"chat.completion","created":1793491198,"model":"tiny","choices":[{"index":0,"message":{"role":"assistant","content":"The sky is blue because of Rayleigh scattering."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":10,"total_tokens":19}}'
sse='data: {"content":"The sky","stop":false}

data: {"content":" is blue","stop":false}

data: {"content":" because of","stop":false}

data: {"content":" Rayleigh scattering.","stop":false}

data: {"content":"","stop":true,"stop_type":"eos","tokens_predicted":4,"tokens_evaluated":6}

'
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$up;
        location /completion {
            default_type text/event-stream;
            return 200 '$sse';
        }
        location / {
            default_type application/json;
            return 200 '$json';
        }
    }
}
EOF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" 2>/dev/null &
pids+=($!)
wait_http "http://127.0.0.1:$up/"

"$bin" keygen --out "$work/key.nsec" >/dev/null

cat > "$work/chat.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"model":"tiny","messages":[{"role":"user","content":"Why is the sky blue?"}],"max_tokens":8}'
wrk.headers["Content-Type"] = "application/json"
EOF
cat > "$work/stream.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"prompt":"Why is the sky blue?","n_predict":8,"stream":true}'
wrk.headers["Content-Type"] = "application/json"
EOF

# Waits until no slot of the llama-server at $1 is working (at most 60 s).
drain() {
    for _ in $(seq 1 600); do
        curl -sf "$1/slots" | grep -q '"is_processing":true' || return 0
        sleep 0.1
    done
    say "llama-server at $1 still busy after 60 s"
}

# Prints "requests/s p50_ms p99_ms non_2xx" for one wrk run.
run_wrk() {
    local url="$1" conns="$2" case="$3"
    [ -n "${drain_url:-}" ] && drain "$drain_url"
    wrk -t1 -c"$conns" -d"${seconds}s" --timeout 60s --latency -s "$work/$case.lua" "$url" > "$work/wrk.out"
    awk '
        function ms(v) {
            if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
            if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
            if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
            return v
        }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        $1 == "Requests/sec:" { rps = $2 }
        /Non-2xx/ { bad = $NF }
        END { printf "%s %.3f %.3f %s\n", rps, p50, p99, (bad == "" ? 0 : bad) }
    ' "$work/wrk.out"
}

# One table row per (durability, answer, clients) against the upstream on port $2, named $1.
matrix() {
    local name="$1" up="$2" durabilities="$3"
    for durability in $durabilities; do
        px="$(free_port)"
        "$bin" serve --upstream "http://127.0.0.1:$up" --listen "127.0.0.1:$px" \
            --model fixtures/gguf/valid/tiny-llama-f16.gguf --key "$work/key.nsec" \
            --store "$work/events-$name-$durability.sqlite" --durability "$durability" 2>"$work/serve.log" &
        serve_pid=$!
        pids+=("$serve_pid")
        wait_http "http://127.0.0.1:$px/provenance/0"
        for case in chat stream; do
            route=/v1/chat/completions
            [ "$case" = stream ] && route=/completion
            for conns in 1 16 64; do
                read -r d_rps d_p50 d_p99 d_bad <<<"$(run_wrk "http://127.0.0.1:$up$route" "$conns" "$case")"
                read -r s_rps s_p50 s_p99 s_bad <<<"$(run_wrk "http://127.0.0.1:$px$route" "$conns" "$case")"
                # Non-2xx answers are counted in the row, not hidden: the rates include them.
                if [ "$d_bad" != 0 ] || [ "$s_bad" != 0 ]; then
                    say "$name $durability $case $conns: non-2xx answers: direct $d_bad, signed $s_bad (see $work/serve.log)"
                fi
                awk -v u="$name" -v d="$durability" -v k="$case" -v c="$conns" -v dr="$d_rps" -v sr="$s_rps" \
                    -v d50="$d_p50" -v d99="$d_p99" -v s50="$s_p50" -v s99="$s_p99" 'BEGIN {
                    printf "| %s | %s | %s | %d | %.0f | %.0f | %.1f %% | %.3f / %.3f | %.3f / %.3f | %.3f / %.3f |\n",
                        u, d, k, c, dr, sr, 100 * (1 - sr / dr), d50, d99, s50, s99, s50 - d50, s99 - d99 }'
            done
        done
        signed="$(sqlite3 "$work/events-$name-$durability.sqlite" 'SELECT COUNT(*) FROM events' 2>/dev/null || echo '?')"
        say "$name, durability $durability: $signed events stored"
        kill "$serve_pid"
        wait "$serve_pid" 2>/dev/null || true
    done
}

printf '\nload average at the start: %s; cores: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)"
printf '\n| upstream | durability | answer | clients | direct req/s | signed req/s | throughput loss | direct p50 / p99 ms | signed p50 / p99 ms | added p50 / p99 ms |\n'
printf '|---|---|---|---|---|---|---|---|---|---|\n'
matrix nginx "$up" "full process"

llama_bin="${PROVENANCE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/provenance/tools}/bin/llama-server"
llama_model="${LLAMA_MODEL:-fixtures/gguf/valid/tiny-llama-f16.gguf}"
if [ -x "$llama_bin" ]; then
    lp="$(free_port)"
    "$llama_bin" --model "$llama_model" --host 127.0.0.1 --port "$lp" -c 1024 -np 4 >"$work/llama.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 600); do
        curl -sf -o /dev/null "http://127.0.0.1:$lp/health" && break
        sleep 0.1
    done
    curl -sf -o /dev/null "http://127.0.0.1:$lp/health" || { say "llama-server did not start (see $work/llama.log)"; exit 2; }
    # Warm-up, so that the first timed run does not take it.
    for _ in 1 2 3 4; do
        curl -sf -o /dev/null -d '{"prompt":"Why is the sky blue?","n_predict":8}' "http://127.0.0.1:$lp/completion"
    done
    drain_url="http://127.0.0.1:$lp"
    matrix llama-server "$lp" "full"
else
    say "no llama-server at $llama_bin (bash .ci/llama-server.sh builds it): llama-server rows skipped"
fi
printf '\nload average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
