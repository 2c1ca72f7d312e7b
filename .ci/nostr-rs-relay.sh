#!/usr/bin/env bash
# Build the independent relay `nostr-rs-relay` 0.8.12 used by provenance-relay's end-to-end
# test (crates/relay/tests/nostr_rs_relay.rs). Idempotent: does nothing when the binary is
# already installed. Everything happens outside the repository, under the tools directory:
#
#   PROVENANCE_TOOLS   install root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/provenance/tools)
#
# The binary lands in "$PROVENANCE_TOOLS/bin/nostr-rs-relay", where the test looks for it
# unless PROVENANCE_NOSTR_RS_RELAY names another path. The script prints that path last.
#
# Why not a plain `cargo install --locked --version 0.8.12 nostr-rs-relay`: the lockfile
# published with 0.8.12 pins `time` 0.3.25, which no longer compiles on Rust >= 1.80 (E0282 in
# time's format_description parser, fixed in time 0.3.35). So the script takes the published
# source, moves exactly that one dependency to time 0.3.36 (which brings time-core/-macros,
# num-conv, powerfmt and serde 1.0.193 along), and installs it with --locked. Every other
# dependency stays as upstream locked it. About 12 CPU-minutes: 6-7 minutes on 2 idle cores.
set -euo pipefail

VERSION=0.8.12
ROOT="${PROVENANCE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/provenance/tools}"
BIN="$ROOT/bin/nostr-rs-relay"
WORK="$ROOT/build/nostr-rs-relay-$VERSION"

say() { echo "nostr-rs-relay.sh: $*" >&2; }

if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q " $VERSION\$"; then
    say "$VERSION already installed"
    echo "$BIN"
    exit 0
fi

# nostr-rs-relay compiles protobuf definitions (tonic/prost) at build time.
if ! command -v protoc >/dev/null 2>&1; then
    say "protoc missing, installing Debian protobuf-compiler"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends protobuf-compiler
fi

start=$(date +%s)
rm -rf "$WORK"
mkdir -p "$WORK/fetch/src"

say "fetching the published source of nostr-rs-relay $VERSION"
cat > "$WORK/fetch/Cargo.toml" <<TOML
[package]
name = "fetch-nostr-rs-relay"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
nostr-rs-relay = "=$VERSION"

[workspace]
TOML
touch "$WORK/fetch/src/lib.rs"
manifest=$(cargo metadata --format-version 1 --manifest-path "$WORK/fetch/Cargo.toml" \
    | grep -o "\"manifest_path\":\"[^\"]*/nostr-rs-relay-$VERSION/Cargo.toml\"" \
    | head -n 1 | sed 's/^"manifest_path":"//; s/"$//')
if [ -z "$manifest" ]; then
    say "could not locate the nostr-rs-relay $VERSION source after cargo metadata"
    exit 1
fi
cp -R "$(dirname "$manifest")" "$WORK/src"
chmod -R u+w "$WORK/src"

say "moving time 0.3.25 -> 0.3.36 in its Cargo.lock (0.3.25 does not build on current Rust)"
cargo update --manifest-path "$WORK/src/Cargo.toml" -p time@0.3.25 --precise 0.3.36

say "building nostr-rs-relay $VERSION into $ROOT (takes a while)"
cargo install --locked --path "$WORK/src" --root "$ROOT" --bin nostr-rs-relay
rm -rf "$WORK"
rmdir "$ROOT/build" 2>/dev/null || true
say "built in $(( $(date +%s) - start ))s"
echo "$BIN"
