#!/usr/bin/env bash
# The added latency of a paid request (docs/pay.md) against an unpaid one, in one run on this
# machine. `pay-latency` (benches/src/bin/pay-latency.rs) does all of it:
#
# 1. Starts a real Cashu mint (Nutshell with its FakeWallet Lightning backend, as the tests do:
#    provenance_harness::CashuMint), mints one large token with Nutshell's wallet CLI and cuts
#    it into the tokens the timed part spends (provenance_pay::Wallet::send). Not timed.
# 2. Times the mint's swap directly: provenance_pay::Wallet::receive of a fresh token (keysets
#    and keys fetched, POST /v1/swap, proofs stored), as `provenance serve` receives a payment.
# 3. In front of a canned loopback upstream (every chat completion answered at once with the
#    same JSON and a usage, so that no model time hides the payment's) and, with LLAMA=1 (the
#    default), of llama-server with the tiny test model (fixtures/gguf/valid/tiny-llama-f16.gguf,
#    greedy, one thread), starts two `provenance serve`: unpaid, and with
#    --price "request = 1 sat" --price "output_1k = 1000 sat" --cashu-mint URL. Then WARMUP +
#    REQUESTS rounds, one request at a time, each round one request of every path in a rotating
#    order: unpaid; X-Cashu (a fresh token: a swap before forwarding, a second for the change
#    token in the response); Authorization: Bearer with a fresh token (the first request of a
#    balance: one swap); Bearer on a balance already open (no swap). Every answer is checked
#    (200, the cost stated, the change token worth what was paid less the cost), and the paid
#    instance's ledger must balance afterwards.
# Prints median, p90 and largest per path, the added latency against the unpaid path, and one
# JSON object with the figures.
#
# Usage: bash scripts/bench-pay.sh [REQUESTS]     (default 20 measured rounds)
# Environment: WARMUP (default 2), TOKEN_SAT (default 64), LLAMA (1 or 0, default 1).
# Needs `bash .ci/cashu-mint.sh` (Nutshell) and, with LLAMA=1, `bash .ci/llama-server.sh`.
# Everything binds 127.0.0.1; every process is stopped by its PID when pay-latency ends.
set -euo pipefail
cd "$(dirname "$0")/.."

requests=${1:-20}
warmup=${WARMUP:-2}
token_sat=${TOKEN_SAT:-64}
llama=${LLAMA:-1}
target=${CARGO_TARGET_DIR:-target}
say() { printf 'bench-pay: %s\n' "$*" >&2; }
for value in "$requests" "$warmup" "$token_sat"; do
    [[ "$value" =~ ^[0-9]+$ ]] || { say "counts are whole numbers, not $value"; exit 2; }
done
case "$llama" in
    1) llama_flag=(--llama) ;;
    0) llama_flag=() ;;
    *) say "LLAMA is 1 or 0, not $llama"; exit 2 ;;
esac

tools="${PROVENANCE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/provenance/tools}"
venv="${PROVENANCE_CASHU_VENV:-$tools/cashu-0.19.2}"
[ -x "$venv/bin/mint" ] || { say "Nutshell is not at $venv; install it with: bash .ci/cashu-mint.sh"; exit 2; }
if [ "$llama" = 1 ]; then
    llama_bin="${PROVENANCE_LLAMA_SERVER:-$tools/bin/llama-server}"
    [ -x "$llama_bin" ] || { say "llama-server is not at $llama_bin; build it with: bash .ci/llama-server.sh"; exit 2; }
fi

cargo build --quiet --release -p provenance-cli -p provenance-benches --bin provenance --bin pay-latency
bin="$target/release"

printf 'bench-pay: commit %s, %s, %s cores, load average at the start %s\n' \
    "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$(date -u '+%Y-%m-%d %H:%M UTC')" \
    "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
"$bin/pay-latency" --provenance "$bin/provenance" --model fixtures/gguf/valid/tiny-llama-f16.gguf \
    --requests "$requests" --warmup "$warmup" --token-sat "$token_sat" "${llama_flag[@]}"
printf '\nload average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
