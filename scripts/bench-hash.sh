#!/usr/bin/env bash
# Times `provenance hash` against sha256sum, b3sum and openssl on a generated GGUF that sits in
# the page cache, and prints the ratios (docs/benchmarks.md records a run).
#
#   scripts/bench-hash.sh [SIZE_MIB]        # default 4096 (a 4 GiB file)
#
# Environment: RUNS (default 3; each tool runs RUNS times, interleaved, best time kept),
# PROVENANCE_BENCH_DIR (where the generated files go; default ${TMPDIR:-/tmp}/provenance-bench).
# Needs b3sum (`apt-get install b3sum` or `cargo install b3sum`), openssl, bc, GNU time
# (/usr/bin/time), and free memory for the file to stay cached.
set -euo pipefail
cd "$(dirname "$0")/.."

size_mib="${1:-4096}"
runs="${RUNS:-3}"
dir="${PROVENANCE_BENCH_DIR:-${TMPDIR:-/tmp}/provenance-bench}"
file="$dir/synthetic-${size_mib}m.gguf"
small="$dir/synthetic-256m.gguf"

say() { printf 'bench-hash: %s\n' "$*" >&2; }
for tool in b3sum openssl sha256sum /usr/bin/time; do
    command -v "$tool" >/dev/null || { say "missing $tool"; exit 2; }
done

say "building release binaries"
cargo build --quiet --release -p provenance-cli
cargo build --quiet --release -p provenance-gguf --example gguf-gen
prov=target/release/provenance
gen=target/release/examples/gguf-gen

mkdir -p "$dir"
for f in "$file:$size_mib" "$small:256"; do
    path="${f%%:*}"
    if [[ ! -f "$path" ]]; then
        say "generating $path"
        "$gen" synthetic "${f##*:}" "$path"
    fi
done
bytes=$(stat -c %s "$file")
say "warming the page cache with $file ($bytes bytes)"
cat "$file" >/dev/null
cat "$file" >/dev/null

now() { date +%s.%N; }
# best_of NAME COMMAND...: runs once (the caller loops), keeps the minimum in best[NAME].
declare -A best
best_of() {
    local name="$1"; shift
    local t0 t1 dt
    t0=$(now)
    "$@" >/dev/null
    t1=$(now)
    dt=$(echo "$t1 - $t0" | bc -l)
    if [[ -z "${best[$name]:-}" ]] || (( $(echo "$dt < ${best[$name]}" | bc -l) )); then
        best[$name]=$dt
    fi
}

# Other processes skew a two-thread pipeline more than one-thread tools: say how busy it was.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
tools=("provenance hash" "openssl dgst -sha256" "b3sum" "sha256sum")
for ((r = 1; r <= runs; r++)); do
    say "run $r of $runs"
    best_of "provenance hash" "$prov" hash --no-cache --json "$file"
    best_of "openssl dgst -sha256" openssl dgst -sha256 "$file"
    best_of "b3sum" b3sum "$file"
    best_of "sha256sum" sha256sum "$file"
done

# openssl's own single-stream SHA-256 rate, 16 KiB blocks (its largest default size), in
# 1000s of bytes per second.
speed_k=$(openssl speed -evp sha256 -seconds 3 2>/dev/null | awk '/^sha256/ { v = $NF } END { sub(/k$/, "", v); print v }')
speed=$(echo "$speed_k * 1000" | bc -l)

# Cached re-check: the first call stores the entry (the file is more than 2 s old by now).
cache_dir="$dir/cache"
rm -rf "$cache_dir"
XDG_CACHE_HOME="$cache_dir" "$prov" hash --json "$file" >/dev/null
for ((r = 1; r <= 5; r++)); do
    best_of "cached" env XDG_CACHE_HOME="$cache_dir" "$prov" hash --json "$file"
done

# Peak memory of an uncached pass, small and large file.
rss() { /usr/bin/time -f %M "$prov" hash --no-cache --json "$1" 2>&1 >/dev/null | tail -1; }
rss_small=$(rss "$small")
rss_large=$(rss "$file")

load_after=$(cut -d' ' -f1-3 /proc/loadavg)

rate() { echo "$bytes / $1 / 1000000000" | bc -l; }
echo
echo "file: $file ($bytes bytes, in page cache); best of $runs runs each"
echo "machine: $(nproc) CPUs, load average $load_before before, $load_after after"
echo "openssl speed -evp sha256 (16 KiB blocks): $(printf '%.3f' "$(echo "$speed / 1000000000" | bc -l)") GB/s"
printf '%-22s %9s %9s %18s\n' "command" "seconds" "GB/s" "x openssl speed"
for name in "${tools[@]}"; do
    secs=${best[$name]}
    gbs=$(rate "$secs")
    ratio=$(echo "$bytes / $secs / $speed" | bc -l)
    printf '%-22s %9.3f %9.3f %18.3f\n' "$name" "$secs" "$gbs" "$ratio"
done
printf 'cached re-check (provenance hash, unchanged file): %.1f ms\n' "$(echo "${best[cached]} * 1000" | bc -l)"
echo "peak RSS of provenance hash --no-cache: ${rss_small} KiB on 256 MiB, ${rss_large} KiB on ${size_mib} MiB"
