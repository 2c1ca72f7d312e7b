#!/usr/bin/env bash
# Install Nutshell, the Cashu mint and wallet of PyPI package `cashu` 0.19.2, into its own
# virtual environment outside the repository: the real mint that the pay-per-prompt tests run
# on loopback (provenance-harness `CashuMint`, crates/harness/src/cashu.rs). Idempotent: does
# nothing when this install is already there.
#
#   PROVENANCE_TOOLS   install root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/provenance/tools)
#
# The environment is "$PROVENANCE_TOOLS/cashu-0.19.2" with the entry points `bin/mint` (the
# mint server) and `bin/cashu` (the wallet CLI); the tests look for it there unless
# PROVENANCE_CASHU_VENV names another environment. Next to it, cashu-0.19.2.freeze holds
# `pip freeze` of the environment (every package and version installed); the script prints
# that list and, last, the environment's path.
#
# Why 0.19.2: it is the newest release that installs. 0.20.x and 0.21.0 require
# breez-sdk-spark 0.15.x / 0.17.x, which the package index no longer offers.
# Why the two extra pins: cashu 0.19.2 lets pip take marshmallow 4, on which environs 9.5
# fails at import (no `marshmallow.__version_info__`), and limits 5, with which slowapi stops
# the mint at start-up ("Invalid rate limiting strategy fixed-window-elastic-expiry").
# Only these are pinned; the other dependencies are what pip resolves at install time, and
# the .freeze file says which they were.
# The tests run the mint with the FakeWallet Lightning backend: it marks every invoice paid
# without a Lightning node, so they exercise the real mint and real ecash, but no Lightning.
set -euo pipefail

VERSION=0.19.2
PINS=("cashu==$VERSION" "marshmallow<4" "limits<5")
ROOT="${PROVENANCE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/provenance/tools}"
VENV="$ROOT/cashu-$VERSION"
STAMP="$VENV/.version"
FREEZE="$ROOT/cashu-$VERSION.freeze"
PYTHON="${PYTHON:-python3}"

say() { echo "cashu-mint.sh: $*" >&2; }

# What a finished install writes last; a different line means "install again".
want="${PINS[*]} $("$PYTHON" -c 'import sys; print("python%d.%d" % sys.version_info[:2])')"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
    && [ -x "$VENV/bin/mint" ] && [ -x "$VENV/bin/cashu" ] && [ -f "$FREEZE" ]; then
    say "Nutshell $VERSION already installed ($(grep -ciE '^[a-z0-9]' "$FREEZE") packages:" \
        "$(grep -iE '^(cashu|marshmallow|limits|fastapi|uvicorn)==' "$FREEZE" | paste -sd ' ')" \
        "... in $FREEZE)"
    echo "$VENV"
    exit 0
fi

start=$(date +%s)
# A half-finished or older environment is removed whole: pip would keep what it finds.
rm -rf "$VENV" "$FREEZE"
mkdir -p "$ROOT"
say "creating $VENV ($("$PYTHON" --version 2>&1))"
"$PYTHON" -m venv "$VENV"
say "installing ${PINS[*]}"
"$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --quiet "${PINS[@]}"

say "checking the entry points"
"$VENV/bin/mint" --version >/dev/null
"$VENV/bin/cashu" --help >/dev/null 2>&1

"$VENV/bin/python" -m pip freeze --disable-pip-version-check >"$FREEZE"
echo "$want" >"$STAMP"
say "installed in $(( $(date +%s) - start ))s; versions:"
sed 's/^/    /' "$FREEZE" >&2
echo "$VENV"
