#!/usr/bin/env bash
# A soak test of `provenance serve`: minutes of sustained mixed load in front of a fast canned
# upstream, then three checks.
#
#   scripts/soak-signer.sh [SECONDS]        (default 300 s of load)
#
# It starts, on loopback ports: nostr-rs-relay (the outbox's target relay; `bash
# .ci/nostr-rs-relay.sh` installs it), the canned upstream `soak upstream` (benches/src/bin/
# soak.rs: whole chat answers, SSE streams, streams that break mid-way; it answers `/props`
# as llama.cpp does), and `provenance serve` with NIP-98 auth (`--auth-allow` the load's key)
# and `--relay` the relay. Then `soak load` runs for SECONDS: clients, each a loop that stops
# at the deadline, asking for whole answers, streamed answers read to the end, broken streams,
# requests without auth (each must get 401), and websocket subscribers on the proxy's own
# relay counting the events it pushes. Meanwhile the proxy's resident memory (VmRSS of
# /proc/PID/status) is sampled every RSS_INTERVAL seconds.
#
# The checks; the script exits 1 when one fails:
# - memory: the median RSS of the last fifth of the samples is within RSS_TOLERANCE percent
#   (default 10) of the median of the second fifth (the first fifth is warm-up: SQLite's page
#   caches, the NIP-98 replay window of one minute, the relay hub's queue fill up); the
#   largest sample is printed too;
# - events: every request id whose answer a client saw end (whole, streamed, or broken) has
#   its event at `GET /provenance/<id>` (200; a broken stream's event says truncated), every
#   subscriber received every event signed meanwhile, and no request failed (`soak load`
#   checks these and prints its counts);
# - the outbox: within DRAIN_SECONDS (default 300) of the load's end it holds no row, and the
#   relay's database holds every event of the proxy's store (both read with sqlite3, read-only).
#
# Environment: WHOLE, STREAM, BROKEN, UNAUTH, SUBSCRIBERS (clients of each kind; defaults 3,
# 3, 1, 1, 2); PAUSE_MS (each client's pause after an answer, default 0: back to back);
# RSS_INTERVAL (seconds, default 2); RSS_TOLERANCE (percent, default 10); DRAIN_SECONDS;
# DURABILITY (the store's, default full); BIN_DIR (a folder that holds release builds of
# `provenance` and `soak`, used instead of building them here); RSS_LOG (a file to keep the
# RSS samples in, one "seconds VmRSS RssAnon RssFile" line each, KiB). Run it at a low
# priority on a shared machine: `nice -n 10 bash scripts/soak-signer.sh`. Everything binds
# 127.0.0.1; every process the script starts is stopped by its PID on exit
# (scripts/lib-processes.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-300}"
whole="${WHOLE:-3}"
stream="${STREAM:-3}"
broken="${BROKEN:-1}"
unauth="${UNAUTH:-1}"
subscribers="${SUBSCRIBERS:-2}"
pause_ms="${PAUSE_MS:-0}"
interval="${RSS_INTERVAL:-2}"
tolerance="${RSS_TOLERANCE:-10}"
drain_seconds="${DRAIN_SECONDS:-300}"
durability="${DURABILITY:-full}"
say() { printf 'soak-signer: %s\n' "$*" >&2; }
for value in "$seconds" "$whole" "$stream" "$broken" "$unauth" "$subscribers" "$pause_ms" \
    "$interval" "$tolerance" "$drain_seconds"; do
    if ! [[ "$value" =~ ^[0-9]+$ ]]; then
        say "SECONDS and the environment settings are whole numbers, not $value"
        exit 2
    fi
done
if [ "$seconds" -lt 10 ] || [ "$interval" -lt 1 ]; then
    say "at least 10 s of load and 1 s between RSS samples"
    exit 2
fi

# $work, $pids (stopped on exit), free_port, require_tools, wait_up.
source scripts/lib-processes.sh
require_tools "apt-get install curl sqlite3 python3" curl sqlite3 python3

relay_bin="${PROVENANCE_NOSTR_RS_RELAY:-${PROVENANCE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/provenance/tools}/bin/nostr-rs-relay}"
if [ ! -x "$relay_bin" ]; then
    say "nostr-rs-relay is not at $relay_bin; install it with: bash .ci/nostr-rs-relay.sh"
    exit 2
fi

if [ -n "${BIN_DIR:-}" ]; then
    bin="$BIN_DIR"
    for tool in provenance soak; do
        [ -x "$bin/$tool" ] || { say "no $tool in BIN_DIR $bin"; exit 2; }
    done
else
    say "building the release binaries"
    cargo build --release --locked --quiet -p provenance-cli -p provenance-benches --bin provenance --bin soak
    bin="${CARGO_TARGET_DIR:-target}/release"
fi

# The relay, configured as provenance-relay's tests configure it (crates/relay/src/testing.rs).
rp="$(free_port)"
mkdir -p "$work/relay/data"
cat > "$work/relay/config.toml" <<EOF
[info]
relay_url = "ws://127.0.0.1:$rp/"
name = "provenance soak relay"

[database]
data_directory = "$work/relay/data"

[network]
address = "127.0.0.1"
port = $rp
EOF
(cd "$work/relay" && exec "$relay_bin" --config "$work/relay/config.toml" --db "$work/relay/data") \
    >"$work/relay.log" 2>&1 &
pids+=($!)
wait_up nostr-rs-relay "$!" "$work/relay.log" "http://127.0.0.1:$rp/" 30 any

up="$(free_port)"
"$bin/soak" upstream --listen "127.0.0.1:$up" >"$work/upstream.log" 2>&1 &
pids+=($!)
wait_up "soak upstream" "$!" "$work/upstream.log" "http://127.0.0.1:$up/health" 30

"$bin/provenance" keygen --out "$work/operator.nsec" >/dev/null 2>&1
"$bin/provenance" keygen --out "$work/caller.nsec" >"$work/caller.out" 2>&1
grep -o 'npub1[0-9a-z]*' "$work/caller.out" | head -n 1 >"$work/allow"
if [ ! -s "$work/allow" ]; then
    say "no npub in the output of provenance keygen:"
    cat "$work/caller.out" >&2
    exit 2
fi

px="$(free_port)"
"$bin/provenance" serve --upstream "http://127.0.0.1:$up" --listen "127.0.0.1:$px" \
    --model fixtures/gguf/valid/tiny-llama-f16.gguf --key "$work/operator.nsec" \
    --store "$work/events.sqlite" --durability "$durability" --auth-allow "$work/allow" \
    --relay "ws://127.0.0.1:$rp/" 2>"$work/serve.log" &
serve_pid=$!
pids+=("$serve_pid")
wait_up "provenance serve" "$serve_pid" "$work/serve.log" "http://127.0.0.1:$px/provenance/metrics" 60

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
# VmRSS, RssAnon (heap and stacks) and RssFile (the binary's pages and other mapped files), KiB.
rss_parts() { awk '/^(VmRSS|RssAnon|RssFile):/ { printf "%s ", $2 }' "/proc/$1/status" 2>/dev/null || echo "0 0 0"; }
printf '\nsoak of provenance serve: %s s of load, commit %s, durability %s\n' \
    "$seconds" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$durability"
printf 'clients: %s whole, %s streamed, %s broken, %s unauthenticated, %s subscribers; pause %s ms\n' \
    "$whole" "$stream" "$broken" "$unauth" "$subscribers" "$pause_ms"
printf 'load average at the start: %s; cores: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)"
rss_idle="$(rss "$serve_pid")"

# The sampler: one "seconds VmRSS RssAnon RssFile" line (KiB) every $interval s, for as long as
# the load may run.
(
    start=$SECONDS
    for _ in $(seq 1 $(((seconds + 60) / interval))); do
        [ -e "$work/load.done" ] && break
        printf '%s %s\n' "$((SECONDS - start))" "$(rss_parts "$serve_pid")"
        sleep "$interval"
    done
) >"$work/rss.log" &
pids+=($!)
sampler=$!

load_rc=0
"$bin/soak" load --base "http://127.0.0.1:$px" --seconds "$seconds" --key "$work/caller.nsec" \
    --whole "$whole" --stream "$stream" --broken "$broken" --unauth "$unauth" \
    --subscribers "$subscribers" --pause-ms "$pause_ms" >"$work/load.out" 2>&1 || load_rc=$?
touch "$work/load.done"
query() { sqlite3 -readonly "$work/events.sqlite" "$1"; }
backlog="$(query 'SELECT COUNT(*) FROM outbox' 2>/dev/null || echo '?')"
drain_start=$SECONDS
wait "$sampler" 2>/dev/null || true
cat "$work/load.out"
[ -n "${RSS_LOG:-}" ] && cp "$work/rss.log" "$RSS_LOG"
printf 'load average at the end of the load: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"

failed=0
if [ "$load_rc" != 0 ]; then
    printf 'events: FAILED (soak load exited with status %s)\n' "$load_rc"
    failed=1
else
    printf 'events: every answer seen to the end has its event\n'
fi

# Memory: medians of the second and the last fifth of the samples.
read -r verdict summary < <(python3 - "$work/rss.log" "$tolerance" "$rss_idle" <<'EOF'
import statistics, sys
rows = [[int(x) for x in line.split()] for line in open(sys.argv[1]) if len(line.split()) == 4]
samples = [row[1] for row in rows]
anon = [row[2] for row in rows]
tolerance, idle = float(sys.argv[2]), int(sys.argv[3])
if len(samples) < 10:
    print(f"FAILED only {len(samples)} RSS samples")
    sys.exit()
fifth = len(samples) // 5
second = statistics.median(samples[fifth:2 * fifth])
last = statistics.median(samples[-fifth:])
growth = 100 * (last - second) / second
verdict = "flat" if growth <= tolerance else "FAILED"
anon_second, anon_last = statistics.median(anon[fifth:2 * fifth]), statistics.median(anon[-fifth:])
print(f"{verdict} {len(samples)} samples; idle {idle / 1024:.1f} MiB; median of the second fifth "
      f"{second / 1024:.1f} MiB, of the last fifth {last / 1024:.1f} MiB ({growth:+.1f} %, "
      f"tolerance {tolerance:g} %); largest {max(samples) / 1024:.1f} MiB; first {samples[0] / 1024:.1f} MiB; "
      f"RssAnon medians {anon_second / 1024:.1f} and {anon_last / 1024:.1f} MiB")
EOF
)
printf 'memory: %s (%s)\n' "$verdict" "$summary"
[ "$verdict" = flat ] || failed=1
series="$(awk -v step="$(( (seconds / interval + 9) / 10 ))" '(NR - 1) % step == 0 { printf "%s s %.1f MiB; ", $1, $2 / 1024 }' "$work/rss.log")"
printf 'RSS along the run: %s\n' "${series%; }"

# The outbox: empty, and the relay holds every stored event.
relay_db="$work/relay/data/nostr.db"
rows=-1
missing=-1
while [ $((SECONDS - drain_start)) -le "$drain_seconds" ]; do
    rows="$(query 'SELECT COUNT(*) FROM outbox' 2>/dev/null || echo -1)"
    if [ "$rows" = 0 ]; then
        missing="$(query "ATTACH 'file:$relay_db?mode=ro' AS relay; SELECT COUNT(*) FROM events WHERE event_id NOT IN (SELECT lower(hex(event_hash)) FROM relay.event)" 2>/dev/null || echo -1)"
        [ "$missing" = 0 ] && break
    fi
    sleep 1
done
stored="$(query 'SELECT COUNT(*) FROM events')"
relayed="$(sqlite3 -readonly "$relay_db" 'SELECT COUNT(*) FROM event' 2>/dev/null || echo '?')"
if [ "$rows" = 0 ] && [ "$missing" = 0 ]; then
    printf 'outbox: %s rows queued at the end of the load, drained %s s later; the relay holds all %s stored events (%s in all)\n' \
        "$backlog" "$((SECONDS - drain_start))" "$stored" "$relayed"
else
    printf 'outbox: FAILED after %s s: %s rows queued, %s stored events not on the relay (%s stored, %s on the relay)\n' \
        "$((SECONDS - drain_start))" "$rows" "$missing" "$stored" "$relayed"
    query 'SELECT attempts, last_error FROM outbox ORDER BY attempts DESC LIMIT 3' 2>/dev/null | sed 's/^/    /' || true
    failed=1
fi
printf 'store: %s events, %s MiB with its log; RSS after the drain %.1f MiB\n' "$stored" \
    "$(du -cm "$work"/events.sqlite* | tail -n 1 | cut -f1)" "$(awk -v k="$(rss "$serve_pid")" 'BEGIN { print k / 1024 }')"
printf 'load average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
if ! kill -0 "$serve_pid" 2>/dev/null; then
    say "provenance serve exited during the soak ($(child_status "$serve_pid"))"
    log_tail "$work/serve.log"
    failed=1
fi
if [ "$failed" = 0 ]; then
    printf 'soak: PASSED\n'
else
    printf 'soak: FAILED\n'
    exit 1
fi
