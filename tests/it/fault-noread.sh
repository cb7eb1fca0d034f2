# fault-noread: a client that sends 320x240 frames as fast as the socket
# takes them for 8 s and never reads a byte. Its frames are dropped
# (newest wins, slow reader) and counted, the server keeps reading it (its
# writes never block), the server's resident memory stays bounded (no
# more than 64 MiB over the start, no more than 8 MiB of growth over the
# last 5 s of the flood), and another client keeps its frame rate. Then,
# with a short --stall-timeout, such a client is cut off.
. tests/lib.sh
IN=$(clip vtest-120-320x240 120 320:240)
start_server
# The good client alone first: the frame rate this machine gives it now
# (other work may share the cores), the bar for the run under abuse.
"$BUILD/nf-client" "$URL" "$IN" --frames 45 --fps 15 --inflight 1 \
    --json "$NF_TMP/alone.json" >"$NF_TMP/alone.out" 2>&1 ||
    { cat "$NF_TMP/alone.out"; fail "the good client alone failed"; }
"$BUILD/nf-client" "$URL" "$IN" --frames 165 --loop --fps 15 --inflight 1 \
    --json "$NF_TMP/good.json" >"$NF_TMP/good.out" 2>&1 &
GOOD=$!
sleep 1
rss0=$(server_rss_kib)
"$BUILD/nf-probe" "$URL" --send noread --size 320x240 --seconds 8 --timeout 5 \
    >"$NF_TMP/probe.out" 2>"$NF_TMP/probe.err" &
PROBE=$!
samples=""
for _ in 1 2 3 4 5 6 7 8; do
    sleep 1
    samples="$samples $(server_rss_kib)"
done
wait $PROBE
cat "$NF_TMP/probe.out" "$NF_TMP/probe.err"
grep -q '^ok sent' "$NF_TMP/probe.out" || fail "noread: $(cat "$NF_TMP/probe.out")"
echo "rss before $rss0 KiB; during the flood, each second:$samples"
set -- $samples
at3=$3 max=0 last=0
for v in "$@"; do
    [ "$v" -gt "$max" ] && max=$v
    last=$v
done
if rss_meaningful; then
    [ $((max - rss0)) -le 65536 ] || fail "resident memory rose by $((max - rss0)) KiB"
    [ $((last - at3)) -le 8192 ] || fail "resident memory kept growing: $at3 -> $last KiB in 5 s"
else
    echo "RSS bounds not checked: AddressSanitizer build"
fi
wait $GOOD || { cat "$NF_TMP/good.out"; fail "the good client failed"; }
good_client_kept "$NF_TMP/good.json" "$NF_TMP/alone.json" 165
sleep 0.5
frames_accounted
[ "$DROPPED" -gt 0 ] || fail "nothing dropped"
kill -0 "$SERVER_PID" || fail "server died"
stop_server

# Past --stall-timeout (10 s by default, 2 s here) a client whose replies
# wait unwritten is cut off (no close frame could reach it): the probe sees
# the connection dropped after about 2 s of its 6 s, the server counts one
# session ended in error, and every frame is still accounted for.
start_server --stall-timeout 2
t0=$(date +%s)
out=$("$BUILD/nf-probe" "$URL" --send noread --size 320x240 --seconds 6 --timeout 5 2>"$NF_TMP/cut.err")
echo "noread with --stall-timeout 2 -> $out ($(cat "$NF_TMP/cut.err"))"
case "$out" in "close 1006"*) ;; *) fail "a client that never reads was not cut off: $out" ;; esac
sleep 0.5
errors=$(curl -s "$BASE/metrics" | awk '/^nf_sessions_closed_total\{kind="error"\}/ { print $2 }')
[ "$errors" = 1 ] || fail "sessions ended in error: $errors, expected 1"
frames_accounted
stop_server
