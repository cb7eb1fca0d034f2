# mjpeg: ffmpeg reads 100 frames of a session's output from the MJPEG
# endpoint, as OBS's Media Source would; the stream is paced to 25 fps (so
# 100 frames cannot arrive in under 3.9 s); unknown sessions get 404; the
# viewer page is served at /view.
. tests/lib.sh
IN=$(clip vtest-120-320x240 120 320:240)
start_server
"$BUILD/nf-client" "$URL" "$IN" --loop --fps 30 -v >"$NF_TMP/client.out" 2>&1 &
CLIENT=$!
i=0
while ! grep -q '"session":"' "$NF_TMP/client.out" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
SID=$(grep -o '"session":"[^"]*"' "$NF_TMP/client.out" | head -n 1 | cut -d'"' -f4)
[ -n "$SID" ] || fail "no session id in the client's log"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/mjpeg?session=nope")" = 404 ] || fail "unknown session not 404"
[ "$(curl -s -o "$NF_TMP/view" -w '%{http_code}' "$BASE/view?session=$SID")" = 200 ] || fail "/view"
grep -q 'view.js' "$NF_TMP/view" || fail "/view is not the viewer page"
start=$(date +%s.%N)
timeout 30 ffmpeg -nostdin -loglevel error -i "$BASE/mjpeg?session=$SID" \
    -frames:v 100 -f rawvideo -pix_fmt rgb24 -y "$NF_TMP/out.rgb" || fail "ffmpeg could not read the stream"
secs=$(echo "$(date +%s.%N) - $start" | bc)
bytes=$(stat -c %s "$NF_TMP/out.rgb")
echo "ffmpeg read $bytes bytes in $secs s"
[ "$bytes" -eq $((100 * 320 * 240 * 3)) ] || fail "expected 100 frames of 320x240, got $bytes bytes"
[ "$(echo "$secs >= 3.9" | bc)" = 1 ] || fail "100 frames in $secs s: the stream is not paced to 25 fps"
kill $CLIENT
wait $CLIENT 2>/dev/null
stop_server
