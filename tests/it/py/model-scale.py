"""model-scale.py - a session's "scale" runs the model on a smaller frame.

    /usr/bin/python3 tests/it/py/model-scale.py ws://127.0.0.1:PORT/v1/stream

(Debian's python3-websockets and python3-pil; run from the repository
root; tests/it/model-scale.sh runs it.) Checks, against PROTOCOL.md 5 and
6: welcome announces the default scale; hello's scale shows in state; replies come at the scaled size (sides
rounded up) and decode; a bad scale is a bad_field error that changes
nothing and the session goes on; a change of scale mid-stream starts a cold
cache (the reply equals a fresh session's, byte for byte). Prints what it
checks; exits 1 on the first failure.
"""
import asyncio
import io
import json
import struct
import sys

import websockets
from PIL import Image


def picture(w, h, k):
    """A smooth test picture, different for each k."""
    img = Image.new("RGB", (w, h))
    img.putdata([((x * 255 // max(w - 1, 1) + 40 * k) % 256,
                  (y * 255 // max(h - 1, 1)) % 256,
                  ((x + y + 17 * k) * 3) % 256) for y in range(h) for x in range(w)])
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


def frame(jpg, w, h, seq):
    return (b"NFRM" + bytes([1, 1]) + struct.pack("<HIIQHHB", 40, 0, seq, 0, w, h, 1)
            + b"\0\0\0" + struct.pack("<I", len(jpg)) + b"\0\0\0\0" + jpg)


class Fail(Exception):
    pass


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        raise Fail(what)


async def recv_json(ws, kind):
    while True:
        m = await asyncio.wait_for(ws.recv(), 20)
        if isinstance(m, str):
            d = json.loads(m)
            if d["type"] == kind:
                return d
            if d["type"] == "error" and kind != "error":
                raise Fail("unexpected error " + m)


async def reply(ws, jpg, w, h, seq):
    """Sends one frame; returns (width, height, jpeg bytes) of its reply."""
    await ws.send(frame(jpg, w, h, seq))
    while True:
        m = await asyncio.wait_for(ws.recv(), 20)
        if isinstance(m, bytes):
            rw, rh = struct.unpack_from("<HH", m, 24)
            seq_out = struct.unpack_from("<I", m, 12)[0]
            check(seq_out == seq, "reply %d answers frame %d" % (seq_out, seq))
            return rw, rh, m[72:]


async def open_session(url, hello):
    ws = await websockets.connect(url, subprotocols=["nextframe.v1"], max_size=None)
    welcome = await recv_json(ws, "welcome")
    check(welcome.get("scale") == 1, "welcome announces the server's scale 1")
    await ws.send(json.dumps(hello))
    return ws, await recv_json(ws, "state")


async def main(url):
    p640 = picture(640, 480, 0)
    odd = picture(161, 121, 1)

    ws, st = await open_session(url, {"type": "hello", "version": 1, "scale": 0.5})
    check(st.get("scale") == 0.5, "hello scale 0.5 shows in state: %r" % st.get("scale"))
    rw, rh, jpg = await reply(ws, p640, 640, 480, 1)
    check((rw, rh) == (320, 240), "640x480 at 1/2 replies 320x240: %dx%d" % (rw, rh))
    check(Image.open(io.BytesIO(jpg)).size == (320, 240), "the reply JPEG is 320x240")

    await ws.send('{"type":"set","scale":0.3}')
    err = await recv_json(ws, "error")
    check(err["code"] == "bad_field", "scale 0.3 is bad_field: %s" % err["code"])
    rw, rh, _ = await reply(ws, p640, 640, 480, 2)
    check((rw, rh) == (320, 240), "after the bad set the scale is still 1/2")

    await ws.send('{"type":"set","scale":0.375}')
    st = await recv_json(ws, "state")
    check(st["scale"] == 0.375, "set scale 0.375 shows in state")
    rw, rh, jpg = await reply(ws, odd, 161, 121, 3)
    check((rw, rh) == (61, 46), "161x121 at 3/8 replies 61x46 (rounded up): %dx%d" % (rw, rh))
    check(Image.open(io.BytesIO(jpg)).size == (61, 46), "the reply JPEG is 61x46")

    await ws.send('{"type":"set","scale":1}')
    await recv_json(ws, "state")
    rw, rh, changed = await reply(ws, p640, 640, 480, 4)
    check((rw, rh) == (640, 480), "back at scale 1 replies 640x480")
    await ws.close()

    fresh, st = await open_session(url, {"type": "hello", "version": 1})
    check(st.get("scale") == 1, "a session that asks nothing has the server's scale 1")
    _, _, cold = await reply(fresh, p640, 640, 480, 1)
    await fresh.close()
    check(changed == cold, "the first reply after a change of scale is a cold start "
          "(same bytes as a fresh session's)")
    return True


try:
    sys.exit(0 if asyncio.run(main(sys.argv[1])) else 1)
except Fail:
    sys.exit(1)
