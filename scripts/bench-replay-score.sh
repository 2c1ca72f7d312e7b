#!/usr/bin/env bash
# The teacher-forced check (`provenance replay --score`) against generation and full replay,
# in one run on this machine: for the tiny model and Gemma 3 270M, greedy and seeded, 64 and
# 128 output tokens, an answer is generated on llama-server, replayed in full, and scored by
# llama-score: in a fresh process, and on a running `llama-score --serve` with the model
# loaded (the batched pass with the one-token fallback, and the fallback forced everywhere,
# for the gap figures); then the catch rates over substituted tokens, another seed, another
# model and another quantisation, and whether a full replay catches the other quantisation.
# Prints one line per answer with the times and ratios, the load average before and after
# (the machine is shared: a busy machine slows one-token decoding most), and the tallies.
# Usage: bash scripts/bench-replay-score.sh
# Needs the llama-server and llama-score of .ci/llama-server.sh and scripts/fetch-gemma.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

bash .ci/llama-server.sh >/dev/null
bash scripts/fetch-gemma.sh >/dev/null
echo "commit $(git rev-parse --short HEAD), $(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
cargo run --quiet --release -p provenance-replay --example bench-score
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
