# lib.sh - helpers shared by the integration tests (sourced, not run).
#
# Each test starts its own server on a free loopback port, talks to it
# with the real clients, and cleans up on exit.

BUILD=${BUILD:-build}
NF_TMP=$(mktemp -d "${TMPDIR:-/tmp}/nf-it.XXXXXX")
SERVER_PID=""
FIXTURES=$BUILD/fixtures
VTEST=/usr/share/doc/opencv-doc/examples/data/vtest.avi

cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -9 "$SERVER_PID" 2>/dev/null
    fi
    rm -rf "$NF_TMP"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    exit 1
}

skip() {
    echo "$*"
    exit 77
}

# start_server [extra nextframe args...]: sets SERVER_PID, PORT, URL, BASE.
# The previous server's output goes first: the new server's shell may
# truncate the file only after this loop has read it (the old line found,
# then an empty file parsed: an empty port; the likely cause of two
# obs-headless failures under load, where the server is started twice).
start_server() {
    rm -f "$NF_TMP/server.out"
    "$BUILD/nextframe" --host 127.0.0.1 --port 0 "$@" \
        >"$NF_TMP/server.out" 2>"$NF_TMP/server.err" &
    SERVER_PID=$!
    i=0
    while [ $i -lt 100 ]; do
        BASE=$(sed -n 's/^listening on \(http:[^ ]*\)$/\1/p' "$NF_TMP/server.out" 2>/dev/null)
        if [ -n "$BASE" ]; then
            PORT=${BASE##*:}
            URL="ws://127.0.0.1:$PORT/v1/stream"
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    cat "$NF_TMP/server.err"
    fail "server did not start"
}

# stop_server: SIGTERM, expects exit status 0 within 3 s.
stop_server() {
    kill -TERM "$SERVER_PID"
    i=0
    while kill -0 "$SERVER_PID" 2>/dev/null && [ $i -lt 30 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -0 "$SERVER_PID" 2>/dev/null && fail "server still running 3 s after SIGTERM"
    wait "$SERVER_PID"
    rc=$?
    SERVER_PID=""
    [ $rc -eq 0 ] || { cat "$NF_TMP/server.err"; fail "server exited with $rc after SIGTERM"; }
}

# clip NAME FRAMES WxH: a .y4m of vtest.avi in $FIXTURES, made once.
clip() {
    out="$FIXTURES/$1.y4m"
    if [ ! -s "$out" ]; then
        [ -f "$VTEST" ] || skip "SKIP: $VTEST missing (install opencv-doc)"
        mkdir -p "$FIXTURES"
        ffmpeg -nostdin -loglevel error -y -i "$VTEST" -frames:v "$2" \
            -vf "scale=$3" -pix_fmt yuv420p -f yuv4mpegpipe "$out.tmp" ||
            fail "ffmpeg could not convert $VTEST"
        mv "$out.tmp" "$out"
    fi
    echo "$out"
}

# json_num FILE KEY: a top-level number from nf-client's --json output.
json_num() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d[sys.argv[2]])' "$1" "$2"
}

# metric NAME: a value from /metrics (first sample whose line starts NAME).
metric() {
    curl -s "$BASE/metrics" | awk -v n="$1" 'index($0, n) == 1 { print $2; exit }'
}

# rss_meaningful: true unless $BUILD/nextframe runs under AddressSanitizer,
# whose quarantine keeps freed memory resident (RSS bounds do not apply;
# LeakSanitizer checks leaks at exit instead).
rss_meaningful() {
    ! ldd "$BUILD/nextframe" 2>/dev/null | grep -q libasan
}

# server_rss_kib / server_fds: the running server's resident memory (KiB)
# and open file descriptors.
server_rss_kib() { sed -n 's/^VmRSS:[^0-9]*\([0-9]*\).*/\1/p' "/proc/$SERVER_PID/status"; }
server_fds() { ls "/proc/$SERVER_PID/fd" | wc -l; }

# resources_mark / resources_kept KIB: once no session is open, the
# server's RSS and open descriptors; later, once none is open again, the
# descriptors may not have grown and RSS by at most KIB KiB (not checked
# under AddressSanitizer, see rss_meaningful).
resources_mark() {
    no_sessions
    RSS0=$(server_rss_kib) FD0=$(server_fds)
}
resources_kept() {
    no_sessions
    rss1=$(server_rss_kib) fd1=$(server_fds)
    echo "rss ${RSS0} -> ${rss1} KiB, fds $FD0 -> $fd1"
    [ "$fd1" -le "$FD0" ] || fail "open file descriptors grew from $FD0 to $fd1"
    if rss_meaningful; then
        [ $((rss1 - RSS0)) -le "$1" ] || fail "resident memory grew by $((rss1 - RSS0)) KiB"
    else
        echo "RSS bound not checked: AddressSanitizer build"
    fi
}

# no_sessions: waits up to 5 s for /metrics to show no open session.
no_sessions() {
    i=0
    while [ "$(metric nf_sessions)" != 0 ] && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    [ "$(metric nf_sessions)" = 0 ] || fail "$(metric nf_sessions) sessions still open"
}

# frames_accounted: the server's counters add up, received = sent +
# dropped (all reasons); sets RECV, SENT, DROPPED.
frames_accounted() {
    m=$(curl -s "$BASE/metrics")
    RECV=$(echo "$m" | awk '$1 == "nf_frames_received_total" { print $2 }')
    SENT=$(echo "$m" | awk '$1 == "nf_frames_sent_total" { print $2 }')
    DROPPED=$(echo "$m" | awk '/^nf_frames_dropped_total/ { n += $2 } END { print n + 0 }')
    echo "frames: received $RECV, sent $SENT, dropped $DROPPED"
    [ "$RECV" = $((SENT + DROPPED)) ] || fail "received $RECV != sent $SENT + dropped $DROPPED"
}

# good_client_kept JSON ALONE_JSON FRAMES: the well-behaved client beside
# the abuse got all FRAMES replies at 90% of the 15 fps it asked for, or of
# what it got alone when the machine could not give it that much.
good_client_kept() {
    set -- $(python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(d["frames_received"], d["fps"], json.load(open(sys.argv[2]))["fps"])' "$1" "$2") "$3"
    echo "good client: $1 of $4 frames, $2 fps ($3 fps alone)"
    [ "$1" = "$4" ] || fail "the good client lost frames ($1 of $4)"
    awk -v f="$2" -v a="$3" 'BEGIN { exit !(f >= 13.5 || f >= 0.9 * a) }' ||
        fail "the good client's frame rate fell to $2 fps (15 asked, $3 alone)"
}
