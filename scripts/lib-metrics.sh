# Shared by the signer benchmarks (sourced, not run): what they read from wrk's output and
# from the signer's `/provenance/metrics`.
#
# wrk_figures FILE
#     From the output of `wrk --latency` in FILE: "RPS P50_MS P99_MS NON_2XX REQUESTS"
#     (latencies converted to milliseconds; NON_2XX 0 when wrk printed none).
# own_time BEFORE AFTER QUANTILE...
#     The signer's own time per answer between two scrapes of /provenance/metrics (BEFORE
#     may be /dev/null: since start), from its `provenance_signer_added_seconds` histogram:
#     "COUNT" and then, for each QUANTILE (0.5, 0.99, ...), the upper bound in ms of the
#     bucket it falls in (so "at most"; "inf" past the last bound). "0" and a "-" per
#     quantile when no answer was timed.

wrk_figures() {
    awk '
        function ms(v) {
            if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
            if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
            if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
            return v
        }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        $1 == "Requests/sec:" { rps = $2 }
        /Non-2xx/ { bad = $NF }
        / requests in / { n = $1 }
        END { printf "%s %.3f %.3f %s %s\n", rps, p50, p99, (bad == "" ? 0 : bad), n }
    ' "$1"
}

own_time() {
    local before="$1" after="$2"
    shift 2
    awk -v quantiles="$*" '
        /^provenance_signer_added_seconds_bucket/ {
            match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5)
            if (FILENAME == ARGV[1]) { before[le] = $2 } else { n++; les[n] = le; after[le] = $2 }
        }
        END {
            total = after["+Inf"] - before["+Inf"]
            nq = split(quantiles, q, " ")
            out = (total > 0 ? total : 0)
            for (k = 1; k <= nq; k++) {
                if (total <= 0) { out = out " -"; continue }
                for (i = 1; i <= n; i++) {
                    if (after[les[i]] - before[les[i]] >= q[k] * total) {
                        out = out " " (les[i] == "+Inf" ? "inf" : sprintf("%.3g", les[i] * 1000)); break
                    }
                }
            }
            print out
        }
    ' "$before" "$after"
}
