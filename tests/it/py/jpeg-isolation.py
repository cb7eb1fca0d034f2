"""jpeg-isolation.py - one session's bad JPEG must not affect another's.

    /usr/bin/python3 tests/it/py/jpeg-isolation.py ws://127.0.0.1:PORT/v1/stream

(Debian's python3-websockets; run from the repository root;
tests/it/jpeg-isolation.sh runs it.) Session B sends a valid 16 x 16 frame
and gets a reply; session A sends one frame whose JPEG declares a height of
0; then three new sessions B must each get a reply. Before the fix of
fuzzing finding F1 (tests/fuzz/README.md) every later B was closed with
4422: TurboJPEG's header reader stayed broken on the server's shared
handle. Prints one line per session; exits 1 unless every B got a reply.
"""
import asyncio
import struct
import sys

import websockets


def frame(jpg, w=16, h=16, seq=1):
    return (b"NFRM" + bytes([1, 1]) + struct.pack("<HIIQHHB", 40, 0, seq, 0, w, h, 1)
            + b"\0\0\0" + struct.pack("<I", len(jpg)) + b"\0\0\0\0" + jpg)


async def session(url, jpg, label):
    async with websockets.connect(url, subprotocols=["nextframe.v1"]) as ws:
        await ws.send('{"type":"hello","version":1}')
        await ws.send(frame(jpg))
        try:
            while True:
                m = await asyncio.wait_for(ws.recv(), 5)
                if isinstance(m, bytes):
                    print(label, "reply frame", len(m), "bytes")
                    return True
        except websockets.ConnectionClosed as e:
            print(label, "closed", e.code, e.reason)
        except asyncio.TimeoutError:
            print(label, "timeout")
    return False


async def main(url):
    with open("tests/fuzz/corpus/jpeg/baseline-420-16x16.jpg", "rb") as f:
        good = f.read()
    with open("tests/fuzz/corpus/jpeg/declares-16x0.jpg", "rb") as f:
        bad = f.read()
    ok = await session(url, good, "B before:")
    await session(url, bad, "A (hostile):")
    for i in range(3):
        ok = await session(url, good, "B after #%d:" % i) and ok
    return ok


sys.exit(0 if asyncio.run(main(sys.argv[1])) else 1)
