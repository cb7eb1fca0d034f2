# model-scale: "scale" in hello and set runs the model at k/8 of each
# frame's size, decoded by TurboJPEG's scaled decoding, and replies at that
# size (tests/it/py/model-scale.py has the checks); --scale sets the default
# for new sessions (a client's own scale wins), and a bad --scale exits 2
# with what is accepted.
. tests/lib.sh
/usr/bin/python3 -c 'import websockets, PIL' 2>/dev/null ||
    skip "SKIP: /usr/bin/python3 lacks websockets or PIL (apt-get install python3-websockets python3-pil)"
"$BUILD/nextframe" --scale 0.3 2>"$NF_TMP/err" >/dev/null
[ $? -eq 2 ] || fail "--scale 0.3 did not exit 2"
grep -q '1/8, 1/4' "$NF_TMP/err" || fail "bad --scale message: $(cat "$NF_TMP/err")"
start_server --model models/default.safetensors
/usr/bin/python3 tests/it/py/model-scale.py "$URL" || fail "model scale (above)"
frames_accounted
[ "$DROPPED" = 0 ] || fail "frames were dropped"
kill -0 "$SERVER_PID" || fail "server died"
stop_server
# The server-wide default: a session that asks nothing runs at 3/4.
IN=$(clip vtest-120-320x240 120 320:240)
start_server --model models/default.safetensors --scale 3/4
"$BUILD/nf-bench" --url "$URL" --input "$IN" --streams 1 --seconds 1 \
    --warmup 0.2 --quiet >"$NF_TMP/bench.out" || fail "nf-bench failed"
grep -q 'replies 240x180' "$NF_TMP/bench.out" ||
    fail "--scale 3/4 did not reply 240x180: $(grep replies "$NF_TMP/bench.out")"
# A client's own scale wins over the default: nf-client writes what it got.
"$BUILD/nf-client" "$URL" "$IN" --frames 5 --scale 0.5 --output "$NF_TMP/half.y4m" \
    >"$NF_TMP/client.out" 2>&1 || { cat "$NF_TMP/client.out"; fail "nf-client --scale failed"; }
head -c 40 "$NF_TMP/half.y4m" | grep -q 'W160 H120' ||
    fail "nf-client --scale 0.5 did not write 160x120: $(head -c 40 "$NF_TMP/half.y4m")"
stop_server
