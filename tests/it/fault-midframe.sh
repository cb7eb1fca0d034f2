# fault-midframe: clients that vanish in the middle of a frame cost
# nothing. 600 of them connect, get the welcome, send half of a frame
# message and go, in three ways in turn: half of one WebSocket frame then
# FIN; the first of two fragments (half the message) then FIN; half of one
# frame then RST. Every session ends, no half frame counts as received,
# the server's resident memory and open file descriptors come back to
# where they were, and another client streams without losing a frame.
. tests/lib.sh
IN=$(clip vtest-120-320x240 120 320:240)
start_server
probe() {
    out=$("$BUILD/nf-probe" "$URL" --send midframe --timeout 10 "$@" 2>&1)
    echo "midframe $* -> $out"
    case "$out" in *"ok "*) ;; *) fail "midframe $*: $out" ;; esac
}
# Warm-up, the same as what is measured but shorter: the model's buffers
# and the buffer pool grow to their working size.
# (A server's memory steps up the first times it serves a stream, then
# stays flat: two warm-up streams.)
for i in 1 2; do
    "$BUILD/nf-client" "$URL" "$IN" --frames 20 --fps 30 >/dev/null 2>&1 &
    WARM=$!
    probe --count 30 --size 640x480
    probe --count 30 --size 64x48
    wait $WARM || fail "warm-up stream failed"
done
resources_mark
"$BUILD/nf-client" "$URL" "$IN" --frames 60 --fps 15 --inflight 1 \
    --json "$NF_TMP/good.json" >"$NF_TMP/good.out" 2>&1 &
GOOD=$!
probe --count 300 --size 640x480
probe --count 300 --size 64x48
wait $GOOD || { cat "$NF_TMP/good.out"; fail "the good client failed"; }
got=$(json_num "$NF_TMP/good.json" frames_received)
[ "$got" = 60 ] || { cat "$NF_TMP/good.out"; fail "the good client lost frames ($got of 60)"; }
resources_kept 4096
recv=$(metric nf_frames_received_total)
[ "$recv" = 100 ] || fail "frames received $recv: half frames were counted"
[ "$(metric nf_sessions_opened_total)" = 723 ] || fail "sessions opened: $(metric nf_sessions_opened_total), expected 723"
kill -0 "$SERVER_PID" || fail "server died"
stop_server
