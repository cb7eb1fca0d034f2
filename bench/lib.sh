# lib.sh - what bench/run.sh and bench/soak.sh share (sourced, not run).

# start_srv TRIES LOG CMD...: starts a server that prints "listening on
# http://HOST:PORT" on stdout (stdout to LOG, stderr to LOG.err) and waits
# for that line, checking every 0.2 s at most TRIES times. Sets SRV (its
# pid), BASE (http://HOST:PORT) and URL (the stream endpoint). Returns 1,
# after showing LOG.err, if the line never came or the server died.
start_srv() {
    tries=$1 log=$2
    shift 2
    "$@" >"$log" 2>"$log.err" &
    SRV=$!
    i=0
    until grep -q '^listening on http://' "$log" 2>/dev/null; do
        sleep 0.2
        i=$((i + 1))
        if ! kill -0 "$SRV" 2>/dev/null || [ $i -ge "$tries" ]; then
            cat "$log.err" >&2
            return 1
        fi
    done
    BASE=$(sed -n 's/^listening on \(http:[^ ]*\)$/\1/p' "$log")
    URL=ws://${BASE#http://}/v1/stream
}

# rss_kb PID: the resident memory of a process, KiB ("" once it is gone).
rss_kb() { sed -n 's/^VmRSS:[^0-9]*\([0-9]*\).*/\1/p' "/proc/$1/status" 2>/dev/null; }
