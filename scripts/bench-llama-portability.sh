#!/usr/bin/env bash
# What the portable llama-server costs: tokens/s of Gemma 3 270M with the portable build
# (.ci/llama-server.sh: x86-64-v3, GGML_NATIVE off) against a build tuned to this CPU
# (LLAMA_BUILD_NATIVE=1 .ci/llama-server.sh: -march=native), in one run, rounds interleaved.
#
#   bash scripts/bench-llama-portability.sh [ROUNDS] [TOKENS]
#
# ROUNDS (default 3) rounds of: start one build, one warm-up answer, then 3 answers of TOKENS
# (default 128) tokens each (greedy, ignore_eos, prompt cache off), stop it; then the other
# build. Prints, per build, prompt and generation tokens/s as llama-server's own `timings`
# report them (median over the answers), the CPU time the server process used per generated
# token over the 3 answers (utime + stime from /proc; on a machine shared with other work this
# is the steadier figure, since waiting for a core costs wall time but no CPU time), and the
# ratios portable/native. Both builds run with the same arguments (THREADS threads, default 2;
# one slot; context 1024) on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds="${1:-3}"
tokens="${2:-128}"
threads="${THREADS:-2}"
tools="${PROVENANCE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/provenance/tools}"
model="${PROVENANCE_GEMMA_GGUF:-${XDG_CACHE_HOME:-$HOME/.cache}/provenance/models/gemma-3-270m-q4_k_m.gguf}"
portable="$(bash .ci/llama-server.sh | tail -n 1)"
native="$(LLAMA_BUILD_NATIVE=1 bash .ci/llama-server.sh | tail -n 1)"
bash scripts/fetch-gemma.sh "$(dirname "$model")"

# $work, $pids, free_port, wait_up.
source scripts/lib-processes.sh

run() {
    local name="$1" bin="$2" port pid
    port="$(free_port)"
    "$bin" -m "$model" --host 127.0.0.1 --port "$port" -c 1024 -np 1 -t "$threads" \
        >"$work/$name.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    wait_up "llama-server ($name)" "$pid" "$work/$name.log" "http://127.0.0.1:$port/health" 120 ok
    local cpu_before=0
    for i in 0 1 2 3; do
        # CPU ticks of the server after the warm-up answer.
        [ "$i" = 1 ] && cpu_before="$(cpu_ticks "$pid")"
        curl -sf -H 'content-type: application/json' \
            -d "{\"prompt\":\"The history of the printing press\",\"n_predict\":$tokens,\"temperature\":0,\"ignore_eos\":true,\"cache_prompt\":false}" \
            "http://127.0.0.1:$port/completion" >"$work/answer.json"
        # The first answer warms the caches up and is not counted.
        [ "$i" = 0 ] && continue
        python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["timings"]; print(sys.argv[2], t["prompt_per_second"], t["predicted_per_second"])' \
            "$work/answer.json" "$name" >>"$work/figures"
    done
    echo "$name cpu $(( $(cpu_ticks "$pid") - cpu_before )) $(( 3 * tokens ))" >>"$work/figures"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

printf 'load average at the start: %s; %s rounds, %s tokens per answer, %s threads\n' \
    "$(cut -d' ' -f1-3 /proc/loadavg)" "$rounds" "$tokens" "$threads"
for round in $(seq 1 "$rounds"); do
    run portable "$portable"
    run native "$native"
    echo "round $round done" >&2
done
printf 'load average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$work/figures" "$(getconf CLK_TCK)" <<'EOF'
import statistics, sys
rows, cpu = {}, {}
for line in open(sys.argv[1]):
    name, a, b = line.split()[:3]
    if a == "cpu":
        ticks, toks = int(b), int(line.split()[3])
        cpu.setdefault(name, []).append(1000.0 * ticks / int(sys.argv[2]) / toks)
        continue
    rows.setdefault(name, []).append((float(a), float(b)))
med = {n: (statistics.median(p for p, _ in r), statistics.median(g for _, g in r)) for n, r in rows.items()}
for n in ("portable", "native"):
    gens = ", ".join(f"{g:.1f}" for _, g in rows[n])
    print(f"{n:9} prompt {med[n][0]:8.1f} tok/s   generation {med[n][1]:6.1f} tok/s (median of {len(rows[n])}: {gens})")
for n in ("portable", "native"):
    per = ", ".join(f"{c:.2f}" for c in cpu[n])
    print(f"{n:9} CPU per generated token: median {statistics.median(cpu[n]):.2f} ms ({per})")
print(f"portable/native: prompt {med['portable'][0] / med['native'][0]:.3f}, generation {med['portable'][1] / med['native'][1]:.3f} (tokens/s); "
      f"CPU per token {statistics.median(cpu['portable']) / statistics.median(cpu['native']):.3f}")
EOF
