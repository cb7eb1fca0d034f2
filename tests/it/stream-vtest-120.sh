# stream-vtest-120: nf-client streams 120 frames of vtest.avi through a real
# server and gets all 120 predicted frames back, stylized and in order.
. tests/lib.sh
IN=$(clip vtest-120-320x240 120 320:240)
start_server --model models/default.safetensors
"$BUILD/nf-client" "$URL" "$IN" --frames 120 --inflight 1 \
    --output "$NF_TMP/out.y4m" --json "$NF_TMP/stats.json" ||
    fail "nf-client failed"
[ "$(json_num "$NF_TMP/stats.json" frames_sent)" = 120 ] || fail "sent != 120"
[ "$(json_num "$NF_TMP/stats.json" frames_received)" = 120 ] || fail "received != 120"
[ "$(json_num "$NF_TMP/stats.json" frames_dropped)" = 0 ] || fail "dropped != 0"
# Drift correction is on by default: replies carry the session's drift,
# finite and positive once the first anchor frame ran.
python3 -c 'import json,math,sys; d=json.load(open(sys.argv[1]))["drift"]; print("drift", d); assert 0 < d["last"] < 255 and math.isfinite(d["max"])' "$NF_TMP/stats.json" ||
    fail "replies carry no drift value"
# The output is a 120-frame 320x240 .y4m whose frames differ from the input
# but follow it (the model stylizes, it does not invent).
python3 - "$IN" "$NF_TMP/out.y4m" <<'PY' || fail "output check failed"
import sys
def frames(path):
    data = open(path, 'rb').read()
    head, rest = data.split(b'\n', 1)
    w = int([t for t in head.split() if t.startswith(b'W')][0][1:])
    h = int([t for t in head.split() if t.startswith(b'H')][0][1:])
    size = w * h * 3 // 2
    out = []
    while rest:
        line, rest = rest.split(b'\n', 1)
        assert line.startswith(b'FRAME'), line[:20]
        out.append(rest[:w * h]); rest = rest[size:]
    return w, h, out
wi, hi, a = frames(sys.argv[1]); wo, ho, b = frames(sys.argv[2])
assert (wi, hi) == (wo, ho), ((wi, hi), (wo, ho))
assert len(b) == 120, len(b)
def mad(x, y): return sum(abs(p - q) for p, q in zip(x[::7], y[::7])) / len(x[::7])
for i in (0, 60, 119):
    d = mad(a[i], b[i])
    other = mad(a[(i + 60) % 120], b[i])
    print(f"frame {i}: |out-in| {d:.2f}, vs another input {other:.2f}")
    assert 1.0 < d < 40.0, "output should differ from the input, but follow it"
PY
stop_server
