# bad-clients: each kind of bad input closes that session with its
# documented code, while another client keeps streaming without losing a
# frame.
. tests/lib.sh
IN=$(clip vtest-120-320x240 120 320:240)
start_server --max-message-bytes 1048576
"$BUILD/nf-client" "$URL" "$IN" --frames 120 --fps 20 --inflight 1 \
    --json "$NF_TMP/good.json" >"$NF_TMP/good.out" 2>&1 &
GOOD=$!
sleep 0.5
expect() { # expect MODE CODE [probe args...]
    mode=$1 code=$2
    shift 2
    out=$("$BUILD/nf-probe" "$URL" --send "$mode" --timeout 10 "$@") || fail "$mode: no close ($out)"
    echo "$mode -> $out"
    case "$out" in "close $code "*) ;; *) fail "$mode: expected close $code, got '$out'" ;; esac
}
expect garbage 4400
expect magic 4400
expect version 4401
expect headerlen 4400
expect short 4400
expect long 4400
expect format 4415
expect text 4402
expect badjson 4402
expect oversize 1009 --bytes 4194304
expect bomb 4413
expect truncated 4422
expect dims-mismatch 4400
expect garbage 4400 --frames-first 5
wait $GOOD || { cat "$NF_TMP/good.out"; fail "the good client failed"; }
[ "$(json_num "$NF_TMP/good.json" frames_received)" = 120 ] || fail "good client lost frames"
kill -0 "$SERVER_PID" || fail "server died"
stop_server
