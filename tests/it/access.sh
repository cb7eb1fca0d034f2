# access: the server's access policy (README.md, "Access and limits").
# Origin allowlist (cross-site pages refused with 403 before the upgrade),
# the stream token (subprotocol nextframe.token.TOKEN, else close 4403),
# the viewer token on /view and /mjpeg, sessions per address (1013), the
# control-message rate (1008), "Upgrade: h2c" refused, /metrics on a
# loopback-only port, bad token files refused at start, tokens never
# logged, and TLS (https and wss) with --cert and --key.
. tests/lib.sh
PY=/usr/bin/python3
TOKEN=stream-token-0123456789abcdef
VIEW=view-token-0123456789abcdef
printf '%s\n' "$TOKEN" >"$NF_TMP/token"
printf '%s\n' "$VIEW" >"$NF_TMP/view"
OFFER="nextframe.v1,nextframe.token.$TOKEN"

# probe EXPECTED ARGS...: nf-probe's one-line outcome must start with EXPECTED.
probe() {
    want=$1
    shift
    out=$("$BUILD/nf-probe" "$URL" --send none --timeout 1 "$@" 2>&1)
    echo "nf-probe $* -> $out"
    case "$out" in "$want"*) ;; *) fail "expected '$want', got '$out'" ;; esac
}
status() { # status URL [curl args]: the HTTP status code
    u=$1
    shift
    curl -s -o /dev/null -w '%{http_code}' "$@" "$u"
}

# 1. Defaults: no Origin (native clients) and this host's own pages pass,
# any other site is refused before the upgrade.
start_server --max-sessions-per-addr 2 --max-control-rate 3
probe "timeout"
probe "timeout" --origin "http://127.0.0.1:$PORT"
probe "timeout" --origin "https://127.0.0.1:$PORT"
probe "close 1006 HS: ws upgrade response not 101" --origin http://evil.example
probe "close 1006 HS: ws upgrade response not 101" --origin "http://127.0.0.1:1"
code=$(status "$BASE/v1/stream" -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
    -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
    -H 'Origin: http://evil.example')
[ "$code" = 403 ] || fail "a foreign Origin got HTTP $code, expected 403"

# Sessions per address: the third concurrent one is refused with 1013.
"$BUILD/nf-probe" "$URL" --send none --timeout 3 >/dev/null 2>&1 &
A=$!
"$BUILD/nf-probe" "$URL" --send none --timeout 3 >/dev/null 2>&1 &
B=$!
i=0
until [ "$(metric 'nf_sessions ')" = 2 ] || [ $i -ge 50 ]; do
    sleep 0.1
    i=$((i + 1))
done
probe "close 1013 server full, try again later: too many sessions from your address"
wait $A $B

# h2c: refused with 400, the server keeps serving.
code=$(status "$BASE/livez" -H 'Connection: Upgrade, HTTP2-Settings' -H 'Upgrade: h2c' \
    -H 'HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA')
[ "$code" = 400 ] || fail "Upgrade: h2c got HTTP $code, expected 400"
[ "$(status "$BASE/livez")" = 200 ] || fail "/livez failed after the h2c request"

# Control messages faster than --max-control-rate: 1008.
if $PY -c 'import websockets' 2>/dev/null; then
    got=$($PY - "$URL" <<'EOF'
import asyncio, json, sys, websockets
async def main():
    async with websockets.connect(sys.argv[1], subprotocols=["nextframe.v1"]) as ws:
        await ws.recv()  # welcome
        try:
            # Paced a little, so that no unread message is left in the
            # server's socket when it closes (that would reset the TCP
            # connection and hide the close frame).
            for _ in range(10):
                await ws.send(json.dumps({"type": "set", "quality": 80}))
                await asyncio.sleep(0.03)
            while True:
                await ws.recv()
        except websockets.ConnectionClosed as e:
            print(e.rcvd.code if e.rcvd else 1006, e.rcvd.reason if e.rcvd else "")
asyncio.run(main())
EOF
)
    echo "control flood -> $got"
    case "$got" in "1008 policy violation: control messages too fast"*) ;;
    *) fail "control flood: expected 1008, got '$got'" ;; esac
else
    echo "control-rate check skipped: $PY has no websockets module"
fi
stop_server

# 1b. Behind a trusted proxy the client address is X-Forwarded-For's last
# entry: two clients behind it get a session each, a second session of the
# first is refused.
if $PY -c 'import websockets' 2>/dev/null; then
    start_server --max-sessions-per-addr 1 --trusted-proxy 127.0.0.1
    got=$($PY - "$URL" <<'EOF'
import asyncio, sys, websockets
async def outcome(xff, hold):
    try:
        async with websockets.connect(sys.argv[1], subprotocols=["nextframe.v1"],
                extra_headers={"X-Forwarded-For": xff}) as ws:
            await ws.recv()  # welcome
            await asyncio.sleep(hold)
            return "open"
    except websockets.ConnectionClosed as e:
        return str(e.rcvd.code if e.rcvd else 1006)
async def main():
    a = asyncio.create_task(outcome("198.51.100.7, 203.0.113.1", 1.5))
    b = asyncio.create_task(outcome("203.0.113.2", 1.5))
    await asyncio.sleep(0.5)
    c = await outcome("203.0.113.1", 0.5)
    print(await a, await b, c)
asyncio.run(main())
EOF
)
    echo "behind a trusted proxy -> $got"
    [ "$got" = "open open 1013" ] || fail "trusted proxy: expected 'open open 1013', got '$got'"
    stop_server
fi

# 2. An allowlist, tokens, /metrics on loopback only.
MPORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start_server --allow-origin https://app.example --token-file "$NF_TMP/token" \
    --view-token-file "$NF_TMP/view" --metrics-port "$MPORT"
probe "close 1006 HS: ws upgrade response not 101" --origin "http://127.0.0.1:$PORT" \
    --subprotocol "$OFFER"
probe "timeout" --origin https://app.example --subprotocol "$OFFER"
probe "close 4403 stream token missing or wrong"
probe "close 4403 stream token missing or wrong" --subprotocol \
    "nextframe.v1,nextframe.token.stream-token-0123456789abcdeX"
probe "timeout" --subprotocol "$OFFER"
probe "timeout" --subprotocol "nextframe.v1, nextframe.token.$TOKEN"
IN=$(clip vtest-120-320x240 120 320:240)
"$BUILD/nf-client" "$URL" "$IN" --frames 10 --inflight 1 --token-file "$NF_TMP/token" \
    --json "$NF_TMP/client.json" >"$NF_TMP/client.out" 2>&1 ||
    { cat "$NF_TMP/client.out"; fail "nf-client with --token-file failed"; }
[ "$(json_num "$NF_TMP/client.json" frames_received)" = 10 ] || fail "nf-client lost frames"
[ "$(status "$BASE/view?session=x")" = 403 ] || fail "/view without the viewer token"
[ "$(status "$BASE/view?session=x&token=$TOKEN")" = 403 ] || fail "/view with the stream token"
[ "$(status "$BASE/view?session=x&token=$VIEW")" = 200 ] || fail "/view with the viewer token"
[ "$(status "$BASE/mjpeg?session=x")" = 403 ] || fail "/mjpeg without the viewer token"
[ "$(status "$BASE/mjpeg?session=x&token=$VIEW")" = 404 ] || fail "/mjpeg with the viewer token"
[ "$(status "$BASE/metrics")" = 404 ] || fail "/metrics still on the main port"
[ "$(status "http://127.0.0.1:$MPORT/metrics")" = 200 ] || fail "/metrics not on the loopback port"
stop_server
if grep -q -e "$TOKEN" -e "$VIEW" "$NF_TMP/server.out" "$NF_TMP/server.err"; then
    fail "a token appears in the server's output"
fi

# 3. Bad token files stop the server at start with the file's name.
printf 'short\n' >"$NF_TMP/short"
printf 'has space in the token 0123\n' >"$NF_TMP/space"
for f in "$NF_TMP/short" "$NF_TMP/space" "$NF_TMP/missing"; do
    if "$BUILD/nextframe" --port 0 --token-file "$f" >/dev/null 2>"$NF_TMP/err"; then
        fail "started with token file $f"
    fi
    echo "token file $(basename "$f") -> $(cat "$NF_TMP/err")"
    grep -q "$f" "$NF_TMP/err" || fail "the message does not name $f"
done
if "$BUILD/nextframe" --port 0 --token-file "$NF_TMP/token" \
    --view-token-file "$NF_TMP/token" >/dev/null 2>"$NF_TMP/err"; then
    fail "started with the same stream and viewer token"
fi

# 4. TLS: https and wss with a self-signed certificate.
if ! command -v openssl >/dev/null; then
    echo "TLS check skipped: no openssl"
    exit 0
fi
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$NF_TMP/key.pem" \
    -out "$NF_TMP/cert.pem" -days 2 -subj /CN=127.0.0.1 2>/dev/null ||
    fail "openssl could not make a certificate"
"$BUILD/nextframe" --host 127.0.0.1 --port 0 --cert "$NF_TMP/cert.pem" \
    --key "$NF_TMP/key.pem" >"$NF_TMP/tls.out" 2>"$NF_TMP/tls.err" &
SERVER_PID=$!
i=0
until grep -q '^listening on https://' "$NF_TMP/tls.out" || [ $i -ge 100 ]; do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$NF_TMP/tls.err"; fail "TLS server died"; }
    sleep 0.1
    i=$((i + 1))
done
TBASE=$(sed -n 's/^listening on \(https:[^ ]*\)$/\1/p' "$NF_TMP/tls.out")
[ -n "$TBASE" ] || fail "no 'listening on https://' line"
[ "$(curl -sk "$TBASE/livez")" = ok ] || fail "https /livez failed"
if $PY -c 'import websockets' 2>/dev/null; then
    got=$($PY - "wss://${TBASE#https://}/v1/stream" <<'EOF'
import asyncio, json, ssl, sys, websockets
async def main():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    async with websockets.connect(sys.argv[1], ssl=ctx, subprotocols=["nextframe.v1"]) as ws:
        print(json.loads(await ws.recv())["type"])
asyncio.run(main())
EOF
)
    [ "$got" = welcome ] || fail "wss: expected a welcome, got '$got'"
    echo "wss -> $got"
fi
stop_server
echo "access: all checks passed"
