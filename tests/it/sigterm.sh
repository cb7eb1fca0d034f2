# sigterm: SIGTERM with sessions open closes each with 1001 (going away)
# and the server exits 0 (uv_loop_close() returned 0) within 3 seconds.
. tests/lib.sh
IN=$(clip vtest-120-320x240 120 320:240)
start_server
for i in 1 2 3; do
    "$BUILD/nf-client" "$URL" "$IN" --loop --fps 15 --json "$NF_TMP/c$i.json" \
        >"$NF_TMP/c$i.out" 2>&1 &
done
"$BUILD/nf-probe" "$URL" --send none --timeout 20 >"$NF_TMP/probe.out" &
PROBE=$!
sleep 2
[ "$(metric nf_sessions)" = 4 ] || fail "expected 4 sessions, /metrics says $(metric nf_sessions)"
stop_server
wait $PROBE
grep -q '^close 1001 ' "$NF_TMP/probe.out" || fail "probe saw: $(cat "$NF_TMP/probe.out")"
wait
for i in 1 2 3; do
    [ "$(json_num "$NF_TMP/c$i.json" close_code)" = 1001 ] || fail "client $i: close $(json_num "$NF_TMP/c$i.json" close_code)"
done
grep -q 'uv_loop_close' "$NF_TMP/server.err" && fail "loop did not close cleanly"
exit 0
