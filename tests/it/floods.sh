# floods: a session that sends frames as fast as the socket takes them
# gets newest-wins drops (each of its frames is answered or counted in
# `dropped`, replies stay in order, the newest is answered); a session
# that floods control messages is closed with 1008 (control-limits.sh
# checks the reason and the burst allowance). Meanwhile another client
# keeps its frame rate and loses nothing, and the server's frame
# accounting adds up: received = sent + dropped, by reason.
. tests/lib.sh
# The close code a control-message flood gets (PROTOCOL.md section 12).
CTRL_FLOOD_CODE=1008
IN=$(clip vtest-120-320x240 120 320:240)
start_server
# The good client alone first: the frame rate this machine gives it now
# (other work may share the cores), the bar for the run under abuse.
"$BUILD/nf-client" "$URL" "$IN" --frames 45 --fps 15 --inflight 1 \
    --json "$NF_TMP/alone.json" >"$NF_TMP/alone.out" 2>&1 ||
    { cat "$NF_TMP/alone.out"; fail "the good client alone failed"; }
"$BUILD/nf-client" "$URL" "$IN" --frames 120 --fps 15 --inflight 1 \
    --json "$NF_TMP/good.json" >"$NF_TMP/good.out" 2>&1 &
GOOD=$!
sleep 1
run() { # run WANT [probe args...]; WANT: "ok" or "close CODE"
    want=$1
    shift
    out=$("$BUILD/nf-probe" "$URL" --timeout 20 "$@" 2>"$NF_TMP/probe.err")
    echo "$* -> $out"
    cat "$NF_TMP/probe.err"
    case "$out" in "$want "*) ;; *) fail "$*: expected '$want', got '$out'" ;; esac
}
run ok --send flood --count 300 --size 640x480
run ok --send flood --count 2000 --size 64x48 --frames-first 2
run "close $CTRL_FLOOD_CODE" --send ctrlflood --count 10000
run ok --send flood --count 300 --size 320x240
wait $GOOD || { cat "$NF_TMP/good.out"; fail "the good client failed"; }
good_client_kept "$NF_TMP/good.json" "$NF_TMP/alone.json" 120
kill -0 "$SERVER_PID" || fail "server died"
frames_accounted
superseded=$(metric 'nf_frames_dropped_total{reason="superseded"}')
[ "$superseded" -gt 0 ] || fail "no frame was superseded: the floods were answered in full?"
stop_server
