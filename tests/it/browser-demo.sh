# browser-demo: Debian's headless Chromium opens the demo page with a fake
# camera playing vtest.avi (as a 30 fps .y4m), streams 300 frames through
# the server running the toon model, switches drift correction off and on,
# resets the cache, and checks the page's own statistics (window.nfStats)
# and that the output differs from the input (tests/browser/demo-test.mjs);
# then restarts the server and checks that the page reconnects on its own.
# Last, against a server with a stream token, the page streams when opened
# with #token=TOKEN and says that it needs one when opened without
# (tests/browser/token-test.mjs).
# Also checks the Content-Security-Policy header the page runs under. The
# screenshot is kept in $BUILD/test-logs/browser-demo.png.
. tests/lib.sh
[ -x /usr/bin/chromium ] || skip "SKIP: /usr/bin/chromium missing (tools/install-deps.sh installs it)"
command -v node >/dev/null || skip "SKIP: node missing (tools/install-deps.sh installs nodejs)"
if [ ! -d tests/browser/node_modules/playwright-core ]; then
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) ||
        skip "SKIP: npm could not install playwright-core (tests/browser/package.json): no registry?"
fi
[ -f "$VTEST" ] || skip "SKIP: $VTEST missing (install opencv-doc)"
CAM=$FIXTURES/vtest-camera-30fps-320x240.y4m
if [ ! -s "$CAM" ]; then
    mkdir -p "$FIXTURES"
    ffmpeg -nostdin -loglevel error -y -r 30 -i "$VTEST" -frames:v 400 \
        -vf scale=320:240 -pix_fmt yuv420p -f yuv4mpegpipe "$CAM.tmp" ||
        fail "ffmpeg could not convert $VTEST"
    mv "$CAM.tmp" "$CAM"
fi
start_server --model models/toon.safetensors --model models/sketch.safetensors
curl -sI "$BASE/" | grep -qi "^content-security-policy: .*script-src 'self'" ||
    fail "the demo page is served without a strict Content-Security-Policy"
mkdir -p "$BUILD/test-logs"
# The driver creates $MARK when the checks are done; the server is then
# restarted on the same port and the page must reconnect on its own.
MARK=$NF_TMP/restart
node tests/browser/demo-test.mjs "$BASE/?autostart=1&width=320" "$CAM" \
    "$BUILD/test-logs/browser-demo.png" 300 "$MARK" &
NODE=$!
i=0
while [ ! -f "$MARK" ] && kill -0 $NODE 2>/dev/null && [ $i -lt 2400 ]; do
    sleep 0.1
    i=$((i + 1))
done
if [ -f "$MARK" ]; then
    OLD_PORT=$PORT
    stop_server
    sleep 1 # The page sees 1001 and waits 1 s before its first retry.
    start_server --model models/toon.safetensors --port "$OLD_PORT"
fi
wait $NODE || fail "demo-test failed (above)"
stop_server

# A server with a stream token: the page takes it from #token=.
TOKEN=demo-token-0123456789abcdef
printf '%s\n' "$TOKEN" >"$NF_TMP/token"
start_server --model models/toon.safetensors --token-file "$NF_TMP/token"
node tests/browser/token-test.mjs "$BASE/?autostart=1&width=320" "$CAM" "$TOKEN" ||
    fail "token-test failed (above)"
stop_server
