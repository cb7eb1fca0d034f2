# fault-cycles: 1,000 WebSocket sessions opened and closed back to back
# (each upgrade completes and gets the welcome; half close with a close
# frame, half drop the TCP connection) leave no trace: every session
# ends, the server's open file descriptors are as before and its resident
# memory is within 2 MiB of where it was after a 100-cycle warm-up; the
# server then still streams.
. tests/lib.sh
IN=$(clip vtest-120-320x240 120 320:240)
start_server
cycles() {
    out=$("$BUILD/nf-probe" "$URL" --send cycles --count "$1" --timeout 10 2>&1)
    echo "cycles $1 -> $out"
    case "$out" in *"ok $1 cycles"*) ;; *) fail "cycles: $out" ;; esac
}
cycles 100
resources_mark
start=$(date +%s)
cycles 1000
echo "1000 cycles in $(($(date +%s) - start)) s"
resources_kept 2048
opened=$(metric nf_sessions_opened_total)
[ "$opened" = 1100 ] || fail "sessions opened: $opened, expected 1100"
"$BUILD/nf-client" "$URL" "$IN" --frames 10 --inflight 1 --json "$NF_TMP/after.json" \
    >"$NF_TMP/after.out" 2>&1 || { cat "$NF_TMP/after.out"; fail "no stream after the cycles"; }
[ "$(json_num "$NF_TMP/after.json" frames_received)" = 10 ] || fail "stream after the cycles lost frames"
stop_server
