# sigterm: SIGTERM with 8 sessions streaming closes each with 1001
# ("server going away") and the server exits 0 (uv_loop_close() returned
# 0) within one second.
. tests/lib.sh
IN=$(clip vtest-120-320x240 120 320:240)
start_server
for i in 1 2 3 4 5 6 7 8; do
    "$BUILD/nf-client" "$URL" "$IN" --loop --fps 10 --json "$NF_TMP/c$i.json" \
        >"$NF_TMP/c$i.out" 2>&1 &
done
i=0
while [ "$(metric nf_sessions)" != 8 ] && [ $i -lt 50 ]; do
    sleep 0.1
    i=$((i + 1))
done
[ "$(metric nf_sessions)" = 8 ] || fail "expected 8 sessions, /metrics says $(metric nf_sessions)"
sleep 1 # Every session has frames in flight.
[ "$(metric nf_frames_sent_total)" -gt 0 ] || fail "no frame served before SIGTERM"
t0=$(date +%s%N)
kill -TERM "$SERVER_PID"
i=0
while kill -0 "$SERVER_PID" 2>/dev/null && [ $i -lt 300 ]; do
    sleep 0.01
    i=$((i + 1))
done
t1=$(date +%s%N)
kill -0 "$SERVER_PID" 2>/dev/null && fail "server still running 3 s after SIGTERM"
wait "$SERVER_PID"
rc=$?
SERVER_PID=""
ms=$(((t1 - t0) / 1000000))
echo "server exited with $rc ${ms} ms after SIGTERM"
[ $rc -eq 0 ] || { cat "$NF_TMP/server.err"; fail "server exited with $rc after SIGTERM"; }
[ $ms -le 1000 ] || fail "server took $ms ms to exit after SIGTERM (at most 1000)"
wait
# One line per client: "CODE REASON".
python3 -c 'import json, sys
for f in sys.argv[1:]:
    d = json.load(open(f))
    print(d["close_code"], d["close_reason"])' "$NF_TMP"/c?.json >"$NF_TMP/closes"
cat "$NF_TMP/closes"
[ "$(grep -c '^1001 server going away' "$NF_TMP/closes")" = 8 ] ||
    fail "not every client was closed with 1001 (server going away)"
grep -q 'uv_loop_close' "$NF_TMP/server.err" && fail "loop did not close cleanly"
exit 0
