#!/usr/bin/env bash
# Runs every fuzz target for a set time, one after the other, and prints a table of what each
# did: executions, seconds, corpus size, and whether it found a crash.
#
#   bash fuzz/run-all.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 600, the bar for a release); TARGETs default to every [[bin]]
# of fuzz/Cargo.toml. Needs a nightly toolchain and cargo-fuzz (installed here if missing:
# `rustup toolchain install nightly`, `cargo install cargo-fuzz`). New inputs go into
# fuzz/corpus/TARGET (ignored by git); the checked-in seeds are read, never written. A crash
# is written to fuzz/artifacts/TARGET/ and makes the script exit 1 after the other targets
# ran; replay one with `cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/FILE`.
#
#   FUZZ_JOBS   libFuzzer workers per target (default 1: the machine is shared)
#   FUZZ_NICE   nice level of the fuzzing (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-600}"
shift || true
jobs="${FUZZ_JOBS:-1}"
niceness="${FUZZ_NICE:-10}"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "run-all: installing the nightly toolchain" >&2
    rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "run-all: installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi

targets=("$@")
if [ ${#targets[@]} = 0 ]; then
    mapfile -t targets < <(grep -A1 '^\[\[bin\]\]' fuzz/Cargo.toml | sed -n 's/^name = "\(.*\)"/\1/p')
fi

# Seeds of a target: its own directory, and for the GGUF parser the GGUF fixtures.
seeds_of() {
    case "$1" in
        gguf_parse) echo "fixtures/gguf/valid fixtures/gguf/invalid" ;;
        *) [ -d "fuzz/seeds/$1" ] && echo "fuzz/seeds/$1" ;;
    esac
}

echo "run-all: building the targets (nightly, sanitizer build)" >&2
(cd fuzz && cargo +nightly fuzz build >/dev/null)

# One worker writes to the script's log directly; more go through -jobs and their own logs.
parallel=()
[ "$jobs" -gt 1 ] && parallel=(-jobs="$jobs" -workers="$jobs")

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
failed=0
rows=()
for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    echo "run-all: $target for $seconds s" >&2
    status=0
    # shellcheck disable=SC2046 # the seed directories are plain paths without spaces
    (cd fuzz && nice -n "$niceness" cargo +nightly fuzz run "$target" "../$corpus" \
        $(for s in $(seeds_of "$target"); do printf '../%s ' "$s"; done) \
        -- -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 "${parallel[@]}") \
        >"$logs/$target.log" 2>&1 || status=$?
    # With -jobs, libFuzzer writes each worker's log to fuzz-N.log in its working directory
    # (the repository root under cargo fuzz).
    for log in fuzz-*.log fuzz/fuzz-*.log; do
        [ -f "$log" ] && cat "$log" >>"$logs/$target.log" && rm -f "$log"
    done
    execs="$(grep -h -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$target.log" | awk '{s += $2} END {print s + 0}')"
    took="$(grep -h -o 'Done [0-9]* runs in [0-9]* second' "$logs/$target.log" | awk '{t = ($5 > t) ? $5 : t} END {print t + 0}')"
    files="$(find "$corpus" -type f | wc -l)"
    crash="no"
    if [ "$status" != 0 ] || grep -q -E 'ERROR: libFuzzer|panicked at|SUMMARY: .*Sanitizer' "$logs/$target.log"; then
        crash="YES (exit $status): see fuzz/artifacts/$target/"
        failed=1
        tail -n 30 "$logs/$target.log" >&2
    fi
    rows+=("| \`$target\` | $execs | $took | $files | $crash |")
done

echo
echo "fuzzing on $(date -u +%Y-%m-%d) at commit $(git rev-parse --short HEAD), $seconds s per target, $jobs job(s):"
echo
echo "| target | executions | seconds | corpus files | crash |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
exit "$failed"
