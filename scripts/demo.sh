#!/usr/bin/env bash
# The main job end to end, offline: build `provenance`, create a key, sign a sample answer
# (with a salted prompt commitment), verify it with the output and the disclosed prompt as
# evidence, then show that an edited answer fails. Everything happens in a temporary
# directory that is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

say "building provenance (release; the first build downloads crates and takes a few minutes)"
cargo build --release --locked -p provenance-cli
bin="$PWD/target/release/provenance"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

say "creating a signing key (mode 0600)"
"$bin" keygen -o "$work/key.nsec"

printf 'Why is the sky blue?' > "$work/prompt.txt"
printf 'Sunlight scatters off air molecules, and blue light scatters the most.' > "$work/answer.txt"

say "signing the answer"
"$bin" sign --key "$work/key.nsec" --model-name "gemma3:270m" \
    --output-file "$work/answer.txt" --prompt "$work/prompt.txt" --json > "$work/signed.jsonl"
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
msg = json.loads(open(f"{work}/signed.jsonl").readline())
open(f"{work}/event.json", "w").write(json.dumps(msg["data"]["event"]) + "\n")
open(f"{work}/salt.txt", "w").write(msg["data"]["prompt_salt"])
print("nevent:", msg["data"]["nevent"])
PY
"$bin" inspect "$work/event.json"

say "verifying with the answer and the disclosed prompt as evidence"
"$bin" verify "$work/event.json" --output "$work/answer.txt" \
    --prompt "$work/prompt.txt" --salt "$(cat "$work/salt.txt")"

say "an edited answer must fail (exit status 1)"
printf 'Sunlight scatters off air molecules, and red light scatters the most.' > "$work/edited.txt"
set +e
"$bin" verify "$work/event.json" --output "$work/edited.txt"
status=$?
set -e
if [ "$status" -ne 1 ]; then
    echo "demo: expected exit status 1 for the edited answer, got $status" >&2
    exit 1
fi
say "done: the signed answer verified, the edited one was caught"
