#!/usr/bin/env bash
# Install the official Python client packages `openai` and `ollama` (pinned) into a virtual
# environment outside the repository, for tests/clients/*.py: unmodified clients talking to
# the signing proxy. Idempotent: does nothing when the pinned versions are already there.
#
#   PROVENANCE_TOOLS   install root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/provenance/tools)
#
# The environment is "$PROVENANCE_TOOLS/venv"; the script prints its python last (the tests
# look for it there unless PROVENANCE_CLIENTS_PYTHON names another interpreter).
set -euo pipefail

OPENAI=3.54.0
OLLAMA=0.6.3
ROOT="${PROVENANCE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/provenance/tools}"
VENV="$ROOT/venv"
PY="$VENV/bin/python"

say() { echo "python-clients.sh: $*" >&2; }

installed() {
    [ -x "$PY" ] && "$PY" - "$OPENAI" "$OLLAMA" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if (version("openai"), version("ollama")) == (sys.argv[1], sys.argv[2]) else 1)
PY
}

if installed; then
    say "openai $OPENAI and ollama $OLLAMA already installed"
    echo "$PY"
    exit 0
fi

if [ ! -x "$PY" ]; then
    say "creating $VENV"
    mkdir -p "$ROOT"
    python3 -m venv "$VENV"
fi
say "installing openai $OPENAI and ollama $OLLAMA"
"$PY" -m pip install --disable-pip-version-check --no-input --quiet \
    "openai==$OPENAI" "ollama==$OLLAMA"
installed
echo "$PY"
