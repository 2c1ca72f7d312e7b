#!/usr/bin/env bash
# Does `provenance serve` cost llama-server throughput? Counts the work llama-server itself
# did (its `--metrics`: answers, tokens predicted, decode steps, busy slots per decode step)
# during one wrk run of CLIENTS clients, direct, through the signer (`signed`) or through
# nginx as a plain reverse proxy (`nginx`, the peer of scripts/lib-nginx.sh, which signs
# nothing), with a fresh llama-server for every run so that each run's counters are its own.
# Runs in the order given (default "direct signed signed direct", so that a machine getting
# slower or faster during the runs affects both alike); a longer ORDER, such as "direct
# signed nginx" three times over, gives each mode several runs to set against the spread.
#
#   scripts/bench-upstream-slots.sh [SECONDS] [CLIENTS] [UPSTREAM_CONCURRENCY] [ORDER]
#
# Defaults: 45 s, 16 clients, the signer's default concurrency (llama.cpp's slots + 1; give
# a number to compare), ORDER "direct signed signed direct". The model is LLAMA_MODEL
# (default Gemma 3 270M from scripts/fetch-gemma.sh), TOKENS tokens per answer (default 32;
# a range such as 16-48 draws each answer's length from it, evenly, in the same sequence in
# every run), greedy, fixed seed, end of sequence ignored; llama-server with 4 slots, an HTTP
# thread per client, at nice 10 (as in scripts/bench-signer.sh). STORE_DIR: where the signer
# keeps its store (default the script's temporary directory; a tmpfs such as /dev/shm takes
# the disk out of the comparison). Everything binds 127.0.0.1; every process started
# is stopped by PID on exit. Needs wrk and curl, and the llama-server `.ci/llama-server.sh`
# builds.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-45}"
clients="${2:-16}"
concurrency="${3:-}"
order="${4:-direct signed signed direct}"
say() { printf 'bench-upstream-slots: %s\n' "$*" >&2; }
llama_bin="${PROVENANCE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/provenance/tools}/bin/llama-server"
model="${LLAMA_MODEL:-${XDG_CACHE_HOME:-$HOME/.cache}/provenance/models/gemma-3-270m-q4_k_m.gguf}"
[ -x "$llama_bin" ] || { say "no llama-server at $llama_bin (bash .ci/llama-server.sh builds it)"; exit 2; }
[ -f "$model" ] || { say "no model at $model (bash scripts/fetch-gemma.sh)"; exit 2; }
# $work, $pids (stopped on exit) and free_port.
source scripts/lib-processes.sh
require_tools "apt-get install wrk curl" wrk curl

say "building the release binary"
cargo build --release --quiet -p provenance-cli
bin="${CARGO_TARGET_DIR:-target}/release/provenance"

store_dir="$(mktemp -d -p "${STORE_DIR:-$work}")"
trap 'cleanup; rm -rf "$store_dir"' EXIT
# wait_http, wait_ok and start_proxy_nginx.
source scripts/lib-nginx.sh
# wrk_figures.
source scripts/lib-metrics.sh
for mode in $order; do
    case "$mode" in
        direct | signed) ;;
        nginx) require_tools "apt-get install nginx-light" nginx ;;
        *) say "ORDER names direct, signed or nginx runs, not $mode"; exit 2 ;;
    esac
done

"$bin" keygen --out "$work/key.nsec" >/dev/null
tokens="${TOKENS:-32}"
if [[ "$tokens" =~ ^([1-9][0-9]*)-([1-9][0-9]*)$ ]] && [ "${BASH_REMATCH[1]}" -le "${BASH_REMATCH[2]}" ]; then
    low="${BASH_REMATCH[1]}" high="${BASH_REMATCH[2]}"
elif [[ "$tokens" =~ ^[1-9][0-9]*$ ]]; then
    low="$tokens" high="$tokens"
else
    say "TOKENS must be a number of tokens or a range such as 16-48, not $tokens"
    exit 2
fi
# Answers all of one length start and end in step on every slot; real ones do not, and
# that changes what a queue in front of llama-server costs (docs/benchmarks.md).
cat > "$work/chat.lua" <<EOF
math.randomseed(7)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
    local n = math.random($low, $high)
    return wrk.format(nil, nil, nil, '{"model":"m","messages":[{"role":"user","content":"Why is the sky blue?"}],"max_tokens":' .. n .. ',"temperature":0,"seed":42,"ignore_eos":true}')
end
EOF

printf 'load average at the start: %s; %s clients, %s s per run, %s tokens per answer\n' \
    "$(cut -d' ' -f1-3 /proc/loadavg)" "$clients" "$seconds" "$tokens"
printf '\n| run | answers | tokens predicted | decode steps | busy slots per decode step |\n|---|---|---|---|---|\n'
for mode in $order; do
    lp="$(free_port)"
    nice -n 10 "$llama_bin" --model "$model" --host 127.0.0.1 --port "$lp" -c 1024 -np 4 \
        --threads-http $((clients + 8)) --metrics >"$work/llama.log" 2>&1 &
    llama_pid=$!
    pids+=("$llama_pid")
    wait_ok llama-server "$llama_pid" "$work/llama.log" "http://127.0.0.1:$lp/health" 60
    target="$lp"
    proxy_pid=""
    if [ "$mode" = signed ]; then
        target="$(free_port)"
        extra=()
        [ -n "$concurrency" ] && extra=(--upstream-concurrency "$concurrency")
        "$bin" serve --upstream "http://127.0.0.1:$lp" --listen "127.0.0.1:$target" \
            --model "$model" --key "$work/key.nsec" --store "$store_dir/events.sqlite" \
            "${extra[@]}" 2>"$work/serve.log" &
        proxy_pid=$!
        pids+=("$proxy_pid")
        wait_http "provenance serve" "$proxy_pid" "$work/serve.log" "http://127.0.0.1:$target/provenance/metrics"
    elif [ "$mode" = nginx ]; then
        # A new upstream connection per request, as in bench-signer.sh's llama-server rows.
        start_proxy_nginx "$lp" close
        target="$peer"
        proxy_pid="${pids[-1]}"
    fi
    wrk -t1 -c"$clients" -d"${seconds}s" --timeout 60s -s "$work/chat.lua" \
        "http://127.0.0.1:$target/v1/chat/completions" > "$work/wrk.out"
    read -r _ _ _ _ answers <<<"$(wrk_figures "$work/wrk.out")"
    curl -sf "http://127.0.0.1:$lp/metrics" | awk -v m="$mode" -v a="$answers" '
        /^llamacpp:tokens_predicted_total / { t = $2 }
        /^llamacpp:n_decode_total / { d = $2 }
        /^llamacpp:n_busy_slots_per_decode / { b = $2 }
        END { printf "| %s | %s | %s | %s | %.4f |\n", m, a, t, d, b }'
    [ -n "$proxy_pid" ] && { kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true; }
    kill "$llama_pid"
    wait "$llama_pid" 2>/dev/null || true
done
printf '\nload average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
