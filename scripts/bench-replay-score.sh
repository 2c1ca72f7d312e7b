#!/usr/bin/env bash
# The teacher-forced check (`provenance replay --score`) against generation and full replay,
# in one run on this machine: for the tiny model and Gemma 3 270M, greedy and seeded, 64 and
# 128 output tokens, an answer is generated on llama-server, replayed in full, and scored by
# llama-score in one batched pass (and once decoding one token at a time, for the tolerance
# figures); then the catch rates over substituted tokens, another seed, another model and
# another quantisation. Prints one line per answer with the ratios, and the tallies.
# Usage: bash scripts/bench-replay-score.sh
# Needs the llama-server and llama-score of .ci/llama-server.sh and scripts/fetch-gemma.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

bash .ci/llama-server.sh >/dev/null
bash scripts/fetch-gemma.sh >/dev/null
echo "commit $(git rev-parse --short HEAD), $(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
cargo run --quiet --release -p provenance-replay --example bench-score
