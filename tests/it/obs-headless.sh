# obs-headless: real OBS Studio (Debian's 29.0.2) under Xvfb loads the
# nextframe filter plugin ($BUILD/obs/nextframe-filter.so, `make
# obs-plugin`) on a looping media source, and obs-websocket's
# GetSourceScreenshot shows what the source puts out:
#   1. the plugin is loaded and the filter is on the source;
#   2. with the server running, the output is the server's stylized frame:
#      far from the original, yet the same scene;
#   3. with the server killed, the output is the original again
#      (pass-through) within about a second, and OBS keeps rendering;
#   4. with the server back on the same port, the filter reconnects by
#      itself and the output is stylized again;
#   5. OBS exits cleanly when its main window is closed (tests/it/x11-close.py
#      sends WM_DELETE_WINDOW, as a window manager's close button does; not
#      SIGINT: OBS 29.0.2 can crash handling it, obsproject/obs-studio#8944).
# The server runs with a stream token (--token-file), which the filter's
# Token setting carries.
# Skips (77) when obs, xvfb-run, python3-websockets, ffmpeg or the plugin
# is missing. NF_OBS_SCREENSHOT=FILE.png also saves original | filtered side
# by side; NF_OBS_MODEL picks the server's model (default: the fast
# placeholder). docs/img/obs-filter.png was made with
#   NF_OBS_SCREENSHOT=docs/img/obs-filter.png sh tests/it/obs-headless.sh
. tests/lib.sh
PLUGIN=${NF_OBS_PLUGIN:-$BUILD/obs/nextframe-filter.so}
PY=/usr/bin/python3
command -v obs >/dev/null || skip "SKIP: obs not installed (apt-get install obs-studio)"
command -v xvfb-run >/dev/null || skip "SKIP: xvfb-run not installed (apt-get install xvfb)"
command -v ffmpeg >/dev/null || skip "SKIP: ffmpeg not installed"
$PY -c 'import websockets' 2>/dev/null || skip "SKIP: python3-websockets not installed"
[ -f "$PLUGIN" ] || skip "SKIP: $PLUGIN missing (make obs-plugin)"
[ -f "$VTEST" ] || skip "SKIP: $VTEST missing (install opencv-doc)"

OBS_PID=""
XVFB_PID=""
obs_stop() {
    [ -n "$OBS_PID" ] && kill -INT "$OBS_PID" 2>/dev/null
    i=0
    while [ -n "$XVFB_PID" ] && kill -0 "$XVFB_PID" 2>/dev/null && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    [ -n "$XVFB_PID" ] && kill -0 "$XVFB_PID" 2>/dev/null && kill -TERM "$XVFB_PID"
    OBS_PID=""
}
trap 'obs_stop; cleanup' EXIT

# A looping 640x480 clip; the filter sends it at 320x240 (max_width).
CLIP=$FIXTURES/obs-clip.mp4
if [ ! -s "$CLIP" ]; then
    mkdir -p "$FIXTURES"
    if ! ffmpeg -nostdin -loglevel error -y -i "$VTEST" -t 8 -vf scale=640:480 \
        -c:v libx264 -preset veryfast -pix_fmt yuv420p "$CLIP.tmp.mp4"; then
        fail "ffmpeg could not make $CLIP"
    fi
    mv "$CLIP.tmp.mp4" "$CLIP"
fi

# The server wants a stream token; the filter's Token setting carries it.
TOKEN=obs-headless-token-0123456789
printf '%s\n' "$TOKEN" >"$NF_TMP/token"
start_server --model "${NF_OBS_MODEL:-models/default.safetensors}" --token-file "$NF_TMP/token"
WS_PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# A fresh OBS home: no first-run wizard, obs-websocket on WS_PORT without
# auth, a 640x480 profile, a scene with the clip and the filter on it.
H=$NF_TMP/home
C=$H/.config/obs-studio
mkdir -p "$C/basic/profiles/P" "$C/basic/scenes" "$C/plugins/nextframe-filter/bin/64bit"
cp "$PLUGIN" "$C/plugins/nextframe-filter/bin/64bit/nextframe-filter.so"
cat >"$C/global.ini" <<EOF
[General]
FirstRun=true

[OBSWebSocket]
FirstLoad=false
ServerEnabled=true
ServerPort=$WS_PORT
AuthRequired=false
EOF
cat >"$C/basic/profiles/P/basic.ini" <<EOF
[General]
Name=P

[Video]
BaseCX=640
BaseCY=480
OutputCX=640
OutputCY=480
FPSType=0
FPSCommon=30
EOF
cat >"$C/basic/scenes/C.json" <<EOF
{"name": "C", "current_scene": "Scene", "current_program_scene": "Scene",
 "scene_order": [{"name": "Scene"}],
 "sources": [
  {"id": "ffmpeg_source", "versioned_id": "ffmpeg_source", "name": "Clip",
   "settings": {"is_local_file": true, "local_file": "$PWD/$CLIP",
                "looping": true, "restart_on_activate": true},
   "filters": [{"id": "nextframe_filter", "versioned_id": "nextframe_filter",
                "name": "nextframe", "enabled": true,
                "settings": {"url": "$URL", "max_width": 320,
                             "strength": 1.0, "token": "$TOKEN"}}]},
  {"id": "scene", "versioned_id": "scene", "name": "Scene",
   "settings": {"id_counter": 1, "items": [
     {"name": "Clip", "id": 1, "visible": true, "locked": false,
      "pos": {"x": 0, "y": 0}, "scale": {"x": 1, "y": 1}, "rot": 0,
      "align": 5, "bounds_type": 0, "bounds": {"x": 0, "y": 0}}]}}]}
EOF

# The obs-websocket client: CHECK is filter | stylized | original.
cat >"$NF_TMP/obsws.py" <<'EOF'
import asyncio, base64, json, sys, time
import websockets

PORT, CHECK, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
W, H = 160, 120

async def connect(deadline):
    while True:
        try:
            ws = await websockets.connect("ws://127.0.0.1:%s" % PORT, max_size=None)
            await ws.recv()  # Hello
            await ws.send(json.dumps({"op": 1, "d": {"rpcVersion": 1, "eventSubscriptions": 0}}))
            await ws.recv()  # Identified
            return ws
        except (OSError, websockets.exceptions.WebSocketException):
            if time.time() > deadline:
                raise
            await asyncio.sleep(0.5)

async def call(ws, rtype, **data):
    await ws.send(json.dumps({"op": 6, "d": {"requestType": rtype, "requestId": rtype, "requestData": data}}))
    while True:
        m = json.loads(await ws.recv())
        if m["op"] == 7:
            st = m["d"]["requestStatus"]
            if not st["result"]:
                raise SystemExit("%s failed: %s" % (rtype, st))
            return m["d"].get("responseData") or {}

async def shot(ws, fmt="ppm", w=W, h=H):
    r = await call(ws, "GetSourceScreenshot", sourceName="Clip", imageFormat=fmt, imageWidth=w, imageHeight=h)
    return base64.b64decode(r["imageData"].split(",", 1)[1])

def pixels(ppm):
    # "P6\n160 120\n255\n" then RGB bytes.
    parts = ppm.split(b"\n", 3)
    return parts[3]

def luma(p):
    return [(299 * p[i] + 587 * p[i + 1] + 114 * p[i + 2]) // 1000 for i in range(0, len(p), 3)]

def mad(a, b):
    return sum(abs(x - y) for x, y in zip(a, b)) / len(a)

def corr(a, b):
    n = len(a)
    ma, mb = sum(a) / n, sum(b) / n
    va = sum((x - ma) ** 2 for x in a)
    vb = sum((y - mb) ** 2 for y in b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    return cov / ((va * vb) ** 0.5 or 1), (va / n) ** 0.5

async def original(ws):
    await call(ws, "SetSourceFilterEnabled", sourceName="Clip", filterName="nextframe", filterEnabled=False)
    await asyncio.sleep(0.1)
    img = pixels(await shot(ws))
    await call(ws, "SetSourceFilterEnabled", sourceName="Clip", filterName="nextframe", filterEnabled=True)
    return img

async def main():
    ws = await connect(time.time() + 40)
    if CHECK == "filter":
        r = await call(ws, "GetSourceFilterList", sourceName="Clip")
        kinds = [f["filterKind"] for f in r["filters"]]
        print("filters on Clip:", kinds)
        sys.exit(0 if "nextframe_filter" in kinds else 1)
    deadline = time.time() + 30
    while True:
        # Filtered now, original a moment later, original again: the
        # clip moves a little between shots, which sets the noise floor.
        out = pixels(await shot(ws))
        o1 = await original(ws)
        o2 = await original(ws)
        floor = mad(o1, o2)
        d = mad(out, o1)
        c, sd = corr(luma(out), luma(o1))
        print("%s: |filtered - original| %.1f, |original - original| %.1f, luma corr %.2f, sd %.1f"
              % (CHECK, d, floor, c, sd), flush=True)
        if CHECK == "stylized" and d > max(8.0, 3 * floor) and c > 0.3 and sd > 10:
            break
        if CHECK == "original" and d < max(4.0, 2 * floor + 1):
            break
        if time.time() > deadline:
            sys.exit(1)
        await asyncio.sleep(1)
    if OUT != "-":
        # Original | filtered at the canvas size, for the README.
        await call(ws, "SetSourceFilterEnabled", sourceName="Clip", filterName="nextframe", filterEnabled=False)
        await asyncio.sleep(0.1)
        open(OUT + ".a.png", "wb").write(await shot(ws, "png", 640, 480))
        await call(ws, "SetSourceFilterEnabled", sourceName="Clip", filterName="nextframe", filterEnabled=True)
        await asyncio.sleep(2)
        open(OUT + ".b.png", "wb").write(await shot(ws, "png", 640, 480))
    await ws.close()

asyncio.run(main())
EOF
obsws() {
    timeout 90 $PY "$NF_TMP/obsws.py" "$WS_PORT" "$@"
}

HOME=$H LIBGL_ALWAYS_SOFTWARE=1 xvfb-run -a -s '-screen 0 1280x720x24' \
    obs --multi --collection C --profile P --scene Scene \
    --disable-missing-files-check >"$NF_TMP/obs.out" 2>&1 &
XVFB_PID=$!
i=0
while [ -z "$OBS_PID" ] && [ $i -lt 100 ]; do
    OBS_PID=$(pgrep -P "$XVFB_PID" -x obs)
    sleep 0.1
    i=$((i + 1))
done
[ -n "$OBS_PID" ] || { cat "$NF_TMP/obs.out"; fail "OBS did not start"; }

obsws filter - || { tail -n 30 "$NF_TMP/obs.out"; fail "the nextframe filter is not on the source"; }
SHOT=-
[ -n "${NF_OBS_SCREENSHOT:-}" ] && SHOT=$NF_TMP/shot
obsws stylized "$SHOT" || { tail -n 30 "$NF_TMP/obs.out"; fail "the source's output is not stylized"; }

# The server dies: the filter passes the source through and OBS goes on.
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null
SERVER_PID=""
sleep 2
obsws original - || { tail -n 30 "$NF_TMP/obs.out"; fail "no pass-through while the server is down"; }

# Back on the same port: the filter reconnects by itself.
start_server --model "${NF_OBS_MODEL:-models/default.safetensors}" --port "$PORT" \
    --token-file "$NF_TMP/token"
obsws stylized - || { tail -n 30 "$NF_TMP/obs.out"; fail "no stylized output after the server came back"; }

$PY tests/it/x11-close.py "$OBS_PID" || fail "cannot close OBS's main window"
i=0
while kill -0 "$XVFB_PID" 2>/dev/null && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
kill -0 "$XVFB_PID" 2>/dev/null && { tail -n 12 "$C"/logs/*.txt; fail "OBS still runs 10 s after its main window was closed"; }
wait "$XVFB_PID"
rc=$?
OBS_PID=""
echo "--- the plugin's lines in OBS's log:"
grep -h '\[nextframe\]' "$C"/logs/*.txt
if [ $rc -ne 0 ]; then
    # Keep OBS's crash report (its backtrace names the module).
    mkdir -p "$BUILD/test-logs"
    cat "$C"/crashes/* >"$BUILD/test-logs/obs-crash.txt" 2>/dev/null &&
        echo "OBS's crash report: $BUILD/test-logs/obs-crash.txt" &&
        grep -m 12 -E '^ *[0-9a-f]{8,}|Thread|nextframe' "$BUILD/test-logs/obs-crash.txt"
    # Where in OBS's own shutdown it stopped (modules unloaded or not).
    echo "--- the end of OBS's log:"
    tail -n 12 "$C"/logs/*.txt
    fail "OBS exited with status $rc after its main window was closed"
fi
grep -q "connected to $URL" "$C"/logs/*.txt || {
    echo "URL=[$URL] PORT=[$PORT] BASE=[$BASE]"; ls -la "$C"/logs/; cat "$NF_TMP/server.out"
    grep -c "connected to" "$C"/logs/*.txt
    fail "no 'connected to $URL' line in OBS's log"
}
if [ "$SHOT" != - ]; then
    ffmpeg -nostdin -loglevel error -y -i "$SHOT.a.png" -i "$SHOT.b.png" \
        -filter_complex 'hstack,scale=960:-2' -compression_level 100 -pred mixed \
        "$NF_OBS_SCREENSHOT" || fail "cannot write $NF_OBS_SCREENSHOT"
    echo "wrote $NF_OBS_SCREENSHOT"
fi
stop_server
