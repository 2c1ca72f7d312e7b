# Shared by the scripts that start servers on loopback (sourced, not run).
#
# Creates a temporary directory in $work and an array $pids; on exit, every process whose PID
# was added to $pids is stopped (only those: nothing else is touched; SIGTERM, then SIGKILL
# after 5 s) and $work is removed.
# free_port prints a port on 127.0.0.1 that was free a moment ago.
# require_tools "HOW TO INSTALL" TOOL... exits 2 naming the first TOOL not on PATH.

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
