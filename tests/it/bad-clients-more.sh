# bad-clients-more: the rows of PROTOCOL.md section 12 ("Malformed input
# and what it gets") that bad-clients.sh does not cover, one session each,
# while another client streams without losing a frame. A progressive JPEG
# is served like a baseline one (small and VGA, first frame or later);
# CMYK and YCCK JPEGs and a PNG in a JPEG frame close with 4422; a JPEG that declares 60000x60000
# behind an honest-looking 16x16 header closes with 4413; a FRAME_OUT
# from the client, a reserved flag bit and a zero width close with 4400.
. tests/lib.sh
IN=$(clip vtest-120-320x240 120 320:240)
start_server
"$BUILD/nf-client" "$URL" "$IN" --frames 60 --fps 20 --inflight 1 \
    --json "$NF_TMP/good.json" >"$NF_TMP/good.out" 2>&1 &
GOOD=$!
sleep 0.5
expect() { # expect MODE RESULT [probe args...]; RESULT: "ok" or "close CODE"
    mode=$1 want=$2
    shift 2
    out=$("$BUILD/nf-probe" "$URL" --send "$mode" --timeout 10 "$@" 2>"$NF_TMP/probe.err")
    echo "$mode $* -> $out"
    case "$out" in "$want "*) ;; *) cat "$NF_TMP/probe.err"; fail "$mode: expected '$want', got '$out'" ;; esac
}
expect progressive ok
expect progressive ok --size 640x480
expect progressive ok --frames-first 3
expect cmyk "close 4422"
expect ycck "close 4422"
expect cmyk "close 4422" --frames-first 3
expect not-jpeg "close 4422"
expect jpeg-bomb "close 4413"
expect type "close 4400"
expect reserved "close 4400"
expect zero-dims "close 4400"
wait $GOOD || { cat "$NF_TMP/good.out"; fail "the good client failed"; }
[ "$(json_num "$NF_TMP/good.json" frames_received)" = 60 ] || fail "good client lost frames"
kill -0 "$SERVER_PID" || fail "server died"
stop_server
