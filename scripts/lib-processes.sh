# Shared by the scripts that start servers on loopback (sourced, not run).
#
# Creates a temporary directory in $work and an array $pids; on exit, every process whose PID
# was added to $pids is stopped (only those: nothing else is touched; SIGTERM, then SIGKILL
# after 5 s) and $work is removed.
# free_port prints a port on 127.0.0.1 that was free a moment ago.
# require_tools "HOW TO INSTALL" TOOL... exits 2 naming the first TOOL not on PATH.
# wait_up NAME PID LOG URL SECONDS [ok|any] [dots]
#                      waits until URL answers (with `ok`, the default: a 2xx; llama-server
#                      answers 503 while it loads its model; with `any`: any HTTP answer) while
#                      watching the child PID, whose output goes to LOG. When the child exits
#                      first, stops at once (exit 2): "NAME exited with SIGSEGV during start-up"
#                      (or "with status N") and the last lines of LOG. When URL does not answer
#                      within SECONDS: says so, with the same log tail, and exits 2. With
#                      `dots`, prints a dot every second while it waits.
# child_status PID     after PID has exited: "status N", or "SIGNAME" for a signal.

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    # A server that does not stop within 5 s of SIGTERM (llama-server can hang in its
    # shutdown when a client went away mid-answer) is killed, so that the script ends.
    for _ in $(seq 1 50); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

require_tools() {
    local hint="$1"
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || { printf '%s is missing (%s)\n' "$tool" "$hint" >&2; exit 2; }
    done
}

child_status() {
    local status=0
    wait "$1" 2>/dev/null || status=$?
    if [ "$status" -gt 128 ] && [ "$status" -lt 160 ]; then
        local name
        name="$(kill -l "$((status - 128))" 2>/dev/null || true)"
        if [ -n "$name" ]; then
            printf 'SIG%s (status %s)' "${name#SIG}" "$status"
            return
        fi
    fi
    printf 'status %s' "$status"
}

log_tail() {
    if [ -s "$1" ]; then
        printf 'last lines of its log (%s):\n' "$1" >&2
        tail -n 15 "$1" | sed 's/^/    /' >&2
    else
        printf 'its log (%s) is empty\n' "$1" >&2
    fi
}

wait_up() {
    local name="$1" pid="$2" log="$3" url="$4" seconds="$5" want="${6:-ok}" dots="${7:-}"
    local deadline=$((SECONDS + seconds)) tick=0 code
    while [ "$SECONDS" -lt "$deadline" ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            [ -n "$dots" ] && echo >&2
            printf '%s exited with %s during start-up; ' "$name" "$(child_status "$pid")" >&2
            log_tail "$log"
            exit 2
        fi
        code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" 2>/dev/null || true)"
        case "$want:$code" in
            ok:2??) [ -n "$dots" ] && echo " ready" >&2; return 0 ;;
            any:[1-5]??) [ -n "$dots" ] && echo " ready" >&2; return 0 ;;
        esac
        tick=$((tick + 1))
        [ -n "$dots" ] && [ $((tick % 10)) = 0 ] && printf '.' >&2
        sleep 0.1
    done
    [ -n "$dots" ] && echo >&2
    printf '%s (PID %s) did not answer %s within %s s; ' "$name" "$pid" "$url" "$seconds" >&2
    log_tail "$log"
    exit 2
}
