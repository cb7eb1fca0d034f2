#!/usr/bin/python3
"""py-server.py - the server a user would otherwise write, for the benchmark.

A Python WebSocket server that speaks nextframe protocol v1
(protocol/PROTOCOL.md) and runs a nextframe model file (kernels/MODEL.md)
with PyTorch on the CPU, for comparison with build/nextframe. Built only on
Debian 12 packages: python3-websockets (10.4, legacy asyncio API),
python3-torch (1.13), python3-pil (Pillow on libjpeg-turbo), python3-numpy.

Design (the settings and why: bench/baselines/README.md):

- one asyncio event loop receives every session's messages; each FRAME_IN
  is checked (header, JPEG header via Pillow, sizes) on the loop, then put
  in the session's single "pending" slot: a newer frame that arrives while
  one still waits replaces it (newest wins, counted in `dropped`);
- one model worker thread (a ThreadPoolExecutor with max_workers=1) takes
  pending frames, oldest session first, and runs decode (Pillow), the model
  (tools/train/nfmodel.py's graph through bench/baselines/nfadapter.py,
  torch.inference_mode, channels_last, torch.set_num_threads(N), glibc
  malloc told to keep freed memory) and encode (Pillow, quality 85 by
  default); the loop keeps receiving meanwhile;
- each session keeps its own rolling cache of its K past outputs
  (kernels/MODEL.md section 7), reset by NF_FLAG_RESET, a `reset` message,
  a size change or a style change;
- replies go back through a per-session writer: if a newer reply is ready
  before the older one could be written, the older is dropped (slow
  reader), as PROTOCOL.md section 4.3 says;
- no drift correction (FRAME_OUT drift is 0) and no HTTP pages beyond
  /livez and /readyz.
"""

import argparse
import os
import sys


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="py-server.py",
        description="nextframe protocol v1 server in Python (websockets + "
        "PyTorch CPU + Pillow): the baseline for the benchmark. Prints "
        "'listening on http://HOST:PORT' on stdout once ready.")
    p.add_argument("--host", default="127.0.0.1",
                   help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080,
                   help="port; 0 takes any free port (default 8080)")
    p.add_argument("--model", action="append", metavar="FILE",
                   help="a model file; repeat to offer several styles, the "
                   "first is the default (default models/toon.safetensors)")
    p.add_argument("--threads", type=int, default=0, metavar="N",
                   help="torch.set_num_threads(N); 0 = the CPUs this process "
                   "may run on (default 0)")
    p.add_argument("--quality", type=int, default=85, metavar="Q",
                   help="output JPEG quality 1..100 (default 85; a client "
                   "may change its own)")
    p.add_argument("--max-sessions", type=int, default=16, metavar="N",
                   help="concurrent streams; past it a new one is closed "
                   "with 1013 (default 16)")
    p.add_argument("--max-message-bytes", type=int, default=8388608,
                   metavar="N", help="largest frame message (default 8 MiB)")
    p.add_argument("--max-control-bytes", type=int, default=4096,
                   metavar="N", help="largest control message (default 4096)")
    p.add_argument("--max-width", type=int, default=3840, metavar="N")
    p.add_argument("--max-height", type=int, default=2160, metavar="N")
    p.add_argument("--idle-timeout", type=float, default=30, metavar="S",
                   help="close a silent session with 4408 after S seconds; "
                   "0 = never (default 30)")
    p.add_argument("--no-channels-last", action="store_true",
                   help="keep tensors in NCHW (contiguous) format instead of "
                   "channels_last (for the ablation)")
    p.add_argument("--no-malloc-tuning", action="store_true",
                   help="leave glibc malloc at its defaults instead of "
                   "keeping freed activation memory (for the ablation)")
    p.add_argument("--verbose", action="store_true",
                   help="log sessions and errors on stderr")
    a = p.parse_args(argv)
    if not 1 <= a.quality <= 100:
        p.error("--quality must be 1..100")
    if not 0 <= a.port <= 65535:
        p.error("--port must be 0..65535")
    if a.threads < 0:
        p.error("--threads must be >= 0")
    return a


ARGS = parse_args() if __name__ == "__main__" else None

# Like build/nextframe: OpenMP threads sleep when idle unless the
# environment chooses. With the default (active) policy, two torch threads on
# a machine whose two cores are also busy spin against each other and every
# op gets ~10x slower. Must be set before torch (libgomp) is loaded.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import asyncio  # noqa: E402
import collections  # noqa: E402
import concurrent.futures  # noqa: E402
import http  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import secrets  # noqa: E402
import signal  # noqa: E402
import struct  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import websockets  # noqa: E402
from websockets.legacy.server import WebSocketServerProtocol  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nfadapter  # noqa: E402

# ---- protocol constants (protocol/wire.h) --------------------------------

SUBPROTOCOL = "nextframe.v1"
PATH = "/v1/stream"
MAGIC = b"NFRM"
VERSION = 1
T_FRAME_IN, T_FRAME_OUT = 1, 2
IN_LEN, OUT_LEN = 40, 72
FORMAT_JPEG = 1
FLAG_RESET = 1
IN_HDR = struct.Struct("<4sBBHIIQHHB3sI4s")  # 40 bytes
OUT_HDR = struct.Struct("<4sBBHIIQHHB3sI4sIIIIIIIf")  # 72 bytes
assert IN_HDR.size == IN_LEN and OUT_HDR.size == OUT_LEN

CLOSE_NORMAL = 1000
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN = 1013
CLOSE_BAD_MESSAGE = 4400
CLOSE_BAD_VERSION = 4401
CLOSE_BAD_CONTROL = 4402
CLOSE_IDLE = 4408
CLOSE_DIMS = 4413
CLOSE_FORMAT = 4415
CLOSE_BAD_JPEG = 4422

STYLE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")
PARAM_RE = re.compile(r"^[a-z0-9_]+$")
U32 = 0xFFFFFFFF


def log(*a):
    if ARGS is not None and ARGS.verbose:
        print("py-server:", *a, file=sys.stderr, flush=True)


def us(ns):
    """Nanoseconds -> microseconds, clamped to u32."""
    return max(0, min(U32, ns // 1000))


class Reject(Exception):
    """A rule broken by the client: close the session with code, reason."""

    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code
        self.reason = reason[:123]


# ---- the WebSocket protocol, with arrival times --------------------------

class Protocol(WebSocketServerProtocol):
    """websockets' server protocol plus the arrival time of each message's
    first and last byte (for recv_us, and "received" = the start of every
    server timing). Messages and their times are queued in the same order,
    so recv() pairs with arrivals.popleft()."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.arrivals = collections.deque()
        self._chunk_ns = 0
        self._first_ns = None
        self._want_first = False

    def data_received(self, data):
        now = time.perf_counter_ns()
        self._chunk_ns = now
        if self._want_first:
            self._first_ns = now
            self._want_first = False
        super().data_received(data)

    def fail_connection(self, code=1006, reason=""):
        # websockets closes an over-long message with 1009 and no reason
        if code == CLOSE_TOO_BIG and not reason:
            reason = "message too big"
        super().fail_connection(code, reason)

    async def read_message(self):
        # The next message begins in data already buffered (it came with
        # the previous one's end: take that chunk's time) or in the next
        # chunk to arrive.
        if len(self.reader._buffer):
            self._first_ns, self._want_first = self._chunk_ns, False
        else:
            self._first_ns, self._want_first = None, True
        msg = await super().read_message()
        if msg is not None:
            now = time.perf_counter_ns()
            first = self._first_ns if self._first_ns is not None else now
            self.arrivals.append((first, now))
        return msg


# ---- frames --------------------------------------------------------------

class DecodeError(Exception):
    """The JPEG's header was fine but its data is not (truncated, corrupt
    entropy data): build/nextframe closes with 4422, so does this."""


class Job:
    """One accepted input frame, waiting for or in the model worker."""

    __slots__ = ("seq", "capture_us", "img", "t_first", "t_recv", "reset",
                 "style", "quality")


class Reply:
    __slots__ = ("seq", "capture_us", "jpeg", "width", "height", "t_recv",
                 "recv_us", "queue_us", "decode_us", "predict_us",
                 "encode_us")


def check_frame(msg, limits):
    """PROTOCOL.md section 3.4 on a whole binary message: returns
    (header fields, opened Pillow image) or raises Reject."""
    n = len(msg)
    if msg[:min(n, 4)] != MAGIC[:min(n, 4)]:
        raise Reject(CLOSE_BAD_MESSAGE, "malformed message: bad magic")
    if n >= 5 and msg[4] != VERSION:
        raise Reject(CLOSE_BAD_VERSION,
                     "unsupported protocol version: %d" % msg[4])
    if n < IN_LEN:
        raise Reject(CLOSE_BAD_MESSAGE,
                     "malformed message: shorter than its header")
    (_, _, mtype, hlen, flags, seq, cap, w, h, fmt, res1, plen,
     res2) = IN_HDR.unpack_from(msg)
    if mtype not in (T_FRAME_IN, T_FRAME_OUT):
        raise Reject(CLOSE_BAD_MESSAGE, "malformed message: unknown type")
    if hlen != (IN_LEN if mtype == T_FRAME_IN else OUT_LEN):
        raise Reject(CLOSE_BAD_MESSAGE, "malformed message: bad header_len")
    if fmt != FORMAT_JPEG:
        raise Reject(CLOSE_FORMAT, "unsupported payload format: %d" % fmt)
    if flags & ~FLAG_RESET or any(res1) or any(res2):
        raise Reject(CLOSE_BAD_MESSAGE,
                     "malformed message: reserved bits or bytes set")
    if w == 0 or h == 0:
        raise Reject(CLOSE_BAD_MESSAGE, "malformed message: zero dimension")
    if mtype != T_FRAME_IN:
        raise Reject(CLOSE_BAD_MESSAGE,
                     "malformed message: FRAME_OUT from a client")
    if hlen + plen > limits["max_message_bytes"]:
        raise Reject(CLOSE_TOO_BIG, "message too big")
    if w > limits["max_width"] or h > limits["max_height"]:
        raise Reject(CLOSE_DIMS, "frame dimensions exceed the server's "
                     "limits: %dx%d" % (w, h))
    if n != hlen + plen:
        raise Reject(CLOSE_BAD_MESSAGE, "malformed message: length %d is "
                     "not header_len + payload_len = %d" % (n, hlen + plen))
    try:
        # Reads the markers up to the first scan; no pixel memory yet.
        img = Image.open(io.BytesIO(memoryview(msg)[IN_LEN:]),
                         formats=["JPEG"])
        mode = img.mode
    except Image.UnidentifiedImageError:
        raise Reject(CLOSE_BAD_JPEG, "corrupt or unsupported JPEG: not a "
                     "JPEG") from None
    except Exception as e:  # noqa: BLE001 - Pillow raises many kinds
        raise Reject(CLOSE_BAD_JPEG, "corrupt or unsupported JPEG: %s"
                     % (str(e) or type(e).__name__)) from None
    if mode not in ("RGB", "L"):
        raise Reject(CLOSE_BAD_JPEG, "corrupt or unsupported JPEG: colour "
                     "mode %s" % mode)
    jw, jh = img.size
    if jw > limits["max_width"] or jh > limits["max_height"]:
        raise Reject(CLOSE_DIMS, "frame dimensions exceed the server's "
                     "limits: JPEG %dx%d" % (jw, jh))
    if (jw, jh) != (w, h):
        raise Reject(CLOSE_BAD_MESSAGE, "malformed message: header says "
                     "%dx%d, JPEG is %dx%d" % (w, h, jw, jh))
    return seq, cap, flags, img


# ---- control messages (PROTOCOL.md section 6) ----------------------------

class BadJson(Exception):
    pass


def _no_dupes(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise BadJson("duplicate key '%s'" % k[:40])
        d[k] = v
    return d


def _bad_constant(name):
    raise BadJson("%s is not JSON" % name)


def _check_nul(v):
    if isinstance(v, str):
        if "\x00" in v:
            raise BadJson("\\u0000 in a string")
    elif isinstance(v, dict):
        for k, x in v.items():
            _check_nul(k)
            _check_nul(x)
    elif isinstance(v, list):
        for x in v:
            _check_nul(x)


def parse_control(text):
    """The JSON object of a control message, or raises BadJson."""
    try:
        obj = json.loads(text, object_pairs_hook=_no_dupes,
                         parse_constant=_bad_constant)
    except BadJson:
        raise
    except ValueError as e:
        raise BadJson(str(e)[:80]) from None
    if not isinstance(obj, dict):
        raise BadJson("not an object")
    _check_nul(obj)
    return obj


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


# ---- sessions ------------------------------------------------------------

class Session:
    def __init__(self, server, ws, sid):
        self.server = server
        self.ws = ws
        self.id = sid
        self.style = server.default_style
        self.quality = server.args.quality
        self.state = nfadapter.StreamState()  # touched by the worker only
        self.state_style = None  # the style the cache was made with
        self.dropped = 0
        self.pending = None  # the Job waiting for the model (newest wins)
        self.reset_next = False  # a `reset` message awaits the next frame
        self.out = None  # the Reply waiting for the socket (newest wins)
        self.out_ready = asyncio.Event()
        self.closed = False
        self.closing = None  # a close the scheduler started

    def welcome(self):
        a = self.server.args
        return {"type": "welcome", "version": VERSION, "session": self.id,
                "backend": "torch-cpu", "style": self.style,
                "styles": list(self.server.models),
                "cache_frames": self.server.models[self.style].k,
                "quality": self.quality,
                "limits": {"max_message_bytes": a.max_message_bytes,
                           "max_width": a.max_width,
                           "max_height": a.max_height,
                           "idle_timeout_s": int(a.idle_timeout)}}

    def state_msg(self):
        # No drift correction here: drift 0 and no parameters.
        return {"type": "state", "style": self.style,
                "quality": self.quality, "drift": 0, "correction": {}}

    async def send_json(self, obj):
        await self.ws.send(json.dumps(obj, separators=(",", ":")))

    async def error(self, code, message):
        await self.send_json({"type": "error", "code": code,
                              "message": message[:255]})

    # -- control ---------------------------------------------------------

    async def on_text(self, text):
        if len(text.encode("utf-8")) > self.server.args.max_control_bytes:
            raise Reject(CLOSE_TOO_BIG, "message too big: control message")
        try:
            obj = parse_control(text)
        except BadJson as e:
            raise Reject(CLOSE_BAD_CONTROL, "malformed control message: %s"
                         % e) from None
        t = obj.get("type")
        if t not in ("hello", "set", "reset"):
            await self.error("unknown_type", "unknown or server-only type")
            return
        if t == "reset":
            self.reset_next = True
            await self.send_json(self.state_msg())
            return
        if t == "hello":
            v = obj.get("version")
            if not is_int(v):
                await self.error("bad_field", "hello.version must be an "
                                 "integer")
                return
            if v != VERSION:
                raise Reject(CLOSE_BAD_VERSION, "unsupported protocol "
                             "version: hello version %d" % v)
        # Every listed field is checked before anything is applied.
        style = obj.get("style")
        quality = obj.get("quality")
        opts = obj.get("options") if t == "hello" else None
        if opts is not None and not isinstance(opts, dict):
            await self.error("bad_field", "options must be an object")
            return
        if quality is None and opts is not None and "quality" in opts:
            quality = opts["quality"]
        if style is not None and not (isinstance(style, str)
                                      and STYLE_RE.match(style)):
            await self.error("bad_field", "style must be 1..63 of "
                             "[A-Za-z0-9_.-]")
            return
        if quality is not None and not (is_int(quality)
                                        and 1 <= quality <= 100):
            await self.error("bad_field", "quality must be an integer "
                             "1..100")
            return
        corr = obj.get("correction")
        if corr is not None:
            if not isinstance(corr, dict) or len(corr) > 16 or any(
                    not PARAM_RE.match(k) or not is_int(v) and not (
                        isinstance(v, float) and math.isfinite(v))
                    for k, v in corr.items()):
                await self.error("bad_field", "correction must be an object "
                                 "of at most 16 finite numbers")
                return
        if quality is not None:
            self.quality = quality
        if style is not None:
            if style in self.server.models:
                self.style = style  # the cache resets with the next frame
            else:
                await self.error("unknown_style", "no style named '%s'"
                                 % style)
        for k in (corr or {}):
            await self.error("bad_field", "correction.%s: this server has "
                             "no drift correction" % k)
        await self.send_json(self.state_msg())

    # -- frames ----------------------------------------------------------

    def on_frame(self, msg, t_first, t_recv):
        seq, cap, flags, img = check_frame(msg, self.server.limits)
        j = Job()
        j.seq, j.capture_us, j.img = seq, cap, img
        j.t_first, j.t_recv = t_first, t_recv
        j.reset = bool(flags & FLAG_RESET) or self.reset_next
        self.reset_next = False
        j.style, j.quality = self.style, self.quality
        self.server.submit(self, j)

    def deliver(self, r):
        if self.closed:
            return
        if self.out is not None:
            self.dropped += 1  # slow reader: a newer reply replaces it
        self.out = r
        self.out_ready.set()

    async def writer(self):
        """Hands the newest finished reply to the socket, one at a time."""
        while True:
            await self.out_ready.wait()
            self.out_ready.clear()
            r, self.out = self.out, None
            if r is None:
                continue
            server_us = us(time.perf_counter_ns() - r.t_recv)
            hdr = OUT_HDR.pack(
                MAGIC, VERSION, T_FRAME_OUT, OUT_LEN, 0, r.seq, r.capture_us,
                r.width, r.height, FORMAT_JPEG, b"\0\0\0", len(r.jpeg),
                b"\0\0\0\0", r.recv_us, r.queue_us, r.decode_us,
                r.predict_us, r.encode_us, server_us,
                min(self.dropped, U32), 0.0)
            await self.ws.send(hdr + r.jpeg)


# ---- the server ----------------------------------------------------------

class Server:
    def __init__(self, args):
        self.args = args
        self.limits = {"max_message_bytes": args.max_message_bytes,
                       "max_width": args.max_width,
                       "max_height": args.max_height}
        self.malloc_tuned = (not args.no_malloc_tuning
                             and nfadapter.tune_malloc())
        self.models = {}
        for path in args.model or [nfadapter.DEFAULT_MODEL]:
            m = nfadapter.TorchModel(path,
                                     channels_last=not args.no_channels_last)
            if m.name in self.models:
                raise SystemExit("py-server.py: %s: style '%s' is already "
                                 "offered" % (path, m.name))
            self.models[m.name] = m
        self.default_style = next(iter(self.models))
        self.threads = args.threads or len(os.sched_getaffinity(0))
        torch.set_num_threads(self.threads)
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="model",
            initializer=torch.set_num_threads, initargs=(self.threads,))
        self.sessions = set()
        self.n_sessions = 0
        self.ready = collections.OrderedDict()  # sessions with a pending job
        self.wakeup = asyncio.Event()
        self.shutting_down = False

    # -- scheduling: newest wins per session, sessions in arrival order ---

    def submit(self, sess, job):
        old = sess.pending
        if old is not None:
            sess.dropped += 1  # superseded before the model took it
            job.reset = job.reset or old.reset
        sess.pending = job
        if sess not in self.ready:
            self.ready[sess] = None
        self.wakeup.set()

    async def scheduler(self):
        loop = asyncio.get_running_loop()
        while True:
            while not self.ready:
                self.wakeup.clear()
                await self.wakeup.wait()
            sess, _ = self.ready.popitem(last=False)
            job, sess.pending = sess.pending, None
            if job is None or sess.closed:
                continue
            try:
                r = await loop.run_in_executor(self.executor, self.process,
                                               sess, job)
            except DecodeError as e:
                sess.dropped += 1
                log("session %s frame %d: %s" % (sess.id, job.seq, e))
                if not sess.closed:
                    # don't wait here for the closing handshake
                    sess.closing = asyncio.create_task(sess.ws.close(
                        CLOSE_BAD_JPEG, "corrupt or unsupported JPEG: "
                        "decoding failed"))
                continue
            except Exception as e:  # noqa: BLE001 - reported to the client
                sess.dropped += 1
                log("session %s frame %d failed: %s" % (sess.id, job.seq, e))
                if not sess.closed:
                    try:
                        await sess.error("frame_failed", "frame %d failed: %s"
                                         % (job.seq, e))
                    except websockets.ConnectionClosed:
                        pass
                continue
            sess.deliver(r)

    def process(self, sess, job):
        """The worker thread: decode, predict, encode one frame."""
        t0 = time.perf_counter_ns()
        try:
            rgb = np.array(job.img.convert("RGB"))  # libjpeg-turbo decode
        except Exception as e:  # noqa: BLE001 - Pillow raises many kinds
            raise DecodeError(str(e) or type(e).__name__) from None
        finally:
            job.img = None
        t1 = time.perf_counter_ns()
        model = self.models[job.style]
        st = sess.state
        if job.reset or sess.state_style != job.style:
            st.reset()
            sess.state_style = job.style
        with torch.inference_mode():
            y = model.step(st, model.from_rgb(rgb))
            out = model.to_rgb(y)
        t2 = time.perf_counter_ns()
        buf = io.BytesIO()
        Image.fromarray(out, "RGB").save(buf, "JPEG", quality=job.quality)
        t3 = time.perf_counter_ns()
        r = Reply()
        r.seq, r.capture_us, r.jpeg = job.seq, job.capture_us, buf.getvalue()
        r.height, r.width = out.shape[:2]
        r.t_recv = job.t_recv
        r.recv_us = us(job.t_recv - job.t_first)
        r.queue_us = us(t0 - job.t_recv)
        r.decode_us = us(t1 - t0)
        r.predict_us = us(t2 - t1)
        r.encode_us = us(t3 - t2)
        return r

    # -- connections -----------------------------------------------------

    def process_request(self, path, headers):
        path = path.split("?", 1)[0]
        if path == "/livez":
            return http.HTTPStatus.OK, [], b"ok\n"
        if path == "/readyz":
            if self.shutting_down:
                return (http.HTTPStatus.SERVICE_UNAVAILABLE, [],
                        b"shutting down\n")
            if len(self.sessions) >= self.args.max_sessions:
                return http.HTTPStatus.SERVICE_UNAVAILABLE, [], b"full\n"
            return http.HTTPStatus.OK, [], b"ready\n"
        if path != PATH:
            return http.HTTPStatus.NOT_FOUND, [], b"not found\n"
        return None  # go on with the WebSocket upgrade

    async def handler(self, ws):
        if len(self.sessions) >= self.args.max_sessions or \
                self.shutting_down:
            await ws.close(CLOSE_TRY_AGAIN, "server full, try again later")
            return
        self.n_sessions += 1
        sess = Session(self, ws, "%d-%s" % (self.n_sessions,
                                            secrets.token_hex(2)))
        self.sessions.add(sess)
        log("session %s opened" % sess.id)
        writer = asyncio.create_task(sess.writer())
        idle = self.args.idle_timeout or None
        try:
            await sess.send_json(sess.welcome())
            while True:
                try:
                    msg = await asyncio.wait_for(ws.recv(), idle)
                except asyncio.TimeoutError:
                    raise Reject(CLOSE_IDLE, "idle timeout") from None
                t_first, t_recv = ws.arrivals.popleft()
                if isinstance(msg, str):
                    await sess.on_text(msg)
                else:
                    sess.on_frame(msg, t_first, t_recv)
                if writer.done():  # the socket failed while writing
                    writer.result()
        except Reject as e:
            log("session %s: close %d %s" % (sess.id, e.code, e.reason))
            await ws.close(e.code, e.reason)
        except websockets.ConnectionClosed as e:
            log("session %s: connection closed (%s)" % (sess.id, e))
        finally:
            sess.closed = True
            sess.pending = None
            self.ready.pop(sess, None)
            self.sessions.discard(sess)
            writer.cancel()
            try:
                await writer
            except (asyncio.CancelledError, websockets.ConnectionClosed):
                pass
            log("session %s ended, %d dropped" % (sess.id, sess.dropped))


async def main(args):
    server = Server(args)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for s in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(s, lambda: stop.done() or stop.set_result(0))
    sched = asyncio.create_task(server.scheduler())
    ws_server = await websockets.serve(
        server.handler, args.host, args.port,
        create_protocol=Protocol,
        subprotocols=[SUBPROTOCOL],
        process_request=server.process_request,
        max_size=args.max_message_bytes,
        compression=None,  # JPEG does not deflate; nf-client offers none
    )
    print("py-server.py: styles %s, torch %s, %d threads, %s, malloc %s, "
          "OMP_WAIT_POLICY=%s, JPEG quality %d" % (
              ",".join("%s (K=%d)" % (n, m.k)
                       for n, m in server.models.items()),
              torch.__version__, server.threads,
              "NCHW" if args.no_channels_last else "channels_last",
              "tuned" if server.malloc_tuned else "default",
              os.environ.get("OMP_WAIT_POLICY"), args.quality),
          file=sys.stderr, flush=True)
    port = ws_server.sockets[0].getsockname()[1]
    host = args.host if ":" not in args.host else "[%s]" % args.host
    print("listening on http://%s:%d" % (host, port), flush=True)
    await stop
    server.shutting_down = True
    # websockets' own close() would say 1001 with no reason; say why first
    await asyncio.gather(*(s.ws.close(1001, "server going away")
                           for s in list(server.sessions)),
                         return_exceptions=True)
    ws_server.close()
    await ws_server.wait_closed()
    sched.cancel()
    server.executor.shutdown(wait=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main(ARGS)))
    except OSError as e:
        print("py-server.py: %s" % e, file=sys.stderr)
        sys.exit(1)
