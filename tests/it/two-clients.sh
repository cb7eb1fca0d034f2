# two-clients: two clients streaming at once each get only their own frames
# back: each one's output is byte-identical to what it gets streaming alone
# (the rolling cache is per session), and frame accounting adds up.
. tests/lib.sh
A=$(clip vtest-120-320x240 120 320:240)
B=$FIXTURES/vtest-flip-60.y4m
if [ ! -s "$B" ]; then
    ffmpeg -nostdin -loglevel error -y -i "$VTEST" -frames:v 60 \
        -vf "scale=320:240,hflip,negate" -pix_fmt yuv420p -f yuv4mpegpipe "$B.tmp" &&
        mv "$B.tmp" "$B" || fail "ffmpeg failed"
fi
start_server
"$BUILD/nf-client" "$URL" "$A" --frames 60 --inflight 1 --output "$NF_TMP/a-alone.y4m" >/dev/null || fail "a alone"
"$BUILD/nf-client" "$URL" "$B" --frames 60 --inflight 1 --output "$NF_TMP/b-alone.y4m" >/dev/null || fail "b alone"
"$BUILD/nf-client" "$URL" "$A" --frames 60 --inflight 1 --output "$NF_TMP/a.y4m" --json "$NF_TMP/a.json" >/dev/null &
PA=$!
"$BUILD/nf-client" "$URL" "$B" --frames 60 --inflight 1 --output "$NF_TMP/b.y4m" --json "$NF_TMP/b.json" >/dev/null &
PB=$!
wait $PA || fail "client a failed"
wait $PB || fail "client b failed"
cmp -s "$NF_TMP/a.y4m" "$NF_TMP/a-alone.y4m" || fail "client a's output differs from its solo run"
cmp -s "$NF_TMP/b.y4m" "$NF_TMP/b-alone.y4m" || fail "client b's output differs from its solo run"
cmp -s "$NF_TMP/a.y4m" "$NF_TMP/b.y4m" && fail "a and b got the same frames"
[ "$(json_num "$NF_TMP/a.json" frames_received)" = 60 ] || fail "a lost frames"
[ "$(json_num "$NF_TMP/b.json" frames_received)" = 60 ] || fail "b lost frames"
recv=$(metric nf_frames_received_total)
sent=$(metric nf_frames_sent_total)
[ "$recv" = 240 ] && [ "$sent" = 240 ] || fail "metrics: received $recv sent $sent, expected 240"
stop_server
