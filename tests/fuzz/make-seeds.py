#!/usr/bin/env python3
"""make-seeds.py - writes the seed corpora of the libFuzzer harnesses.

    python3 tests/fuzz/make-seeds.py        (from anywhere in the repository)

Writes tests/fuzz/corpus/{wire,control,model,jpeg}/ (and the seeds that
trigger an open finding to tests/fuzz/findings/, see OPEN_FINDINGS). The
output is deterministic: running it again rewrites the same bytes, so `git
status` shows whether the committed seeds are current. It only writes its
own files; a reproducer copied into a corpus folder by hand (a fixed
finding) stays. Python standard library only; the JPEG seeds are made by Debian's
TurboJPEG (libturbojpeg.so.0) through ctypes and then edited byte by byte.

Where the seeds come from:
  wire     frame headers built from the table in protocol/wire.h: valid
           FRAME_IN/FRAME_OUT messages and one of each rejected field.
  control  the examples of protocol/PROTOCOL.md and the cases of
           tests/test-control.c, plus JSON edge cases.
  model    tiny valid models like those of tests/test-model-load.c, the
           shipped models (default whole; toon and oil with their real
           header and graph but channel counts shrunk so the file is a few
           KB; sketch's real header with no data), and the bugs other
           safetensors parsers shipped (/work/shared/FACTS.md): header
           lengths that wrap or exceed the file, shape products that wrap to
           0, offsets that disagree with the shape, negative, float,
           reversed or overlapping offsets, unknown dtypes, duplicate keys,
           invalid UTF-8, non-string metadata.
  jpeg     16 x 16 JPEGs in each subsampling, grey, progressive and CMYK,
           and edits of them: declared sizes of 65500 x 65500 (the 333-byte
           bomb), at and one past the server's 3840 x 2160 limit, 0 high,
           tables only, truncated, 12-bit, lossless and arithmetic SOF
           markers, a restart interval without restart markers, and hand-written
           progressive files with 2 scans and with more scans than
           TJFLAG_LIMITSCANS allows.
"""
import ctypes
import ctypes.util
import json
import math
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
FINDINGS = os.path.join(ROOT, "tests", "fuzz", "findings")

# Seeds that trigger a finding that is not fixed yet (tests/fuzz/README.md):
# they go to tests/fuzz/findings/TARGET/ instead, so that the replay in make
# test (tests/it/fuzz-corpus.sh) stays green. Remove a name here once its
# finding is fixed and run this script again: it then joins the corpus.
OPEN_FINDINGS = {
    # None open. F1 (a failed tjDecompressHeader3() left the decompressor
    # broken; fixed in common/jpeg.c) had declares-16x0.jpg, sof-12-bit.jpg,
    # sof3-lossless.jpg and truncated-half.jpg here.
}


def write(target, name, data):
    d = os.path.join(FINDINGS if (target, name) in OPEN_FINDINGS else CORPUS,
                     target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- JPEG (TurboJPEG 2.1 through ctypes) --------------------------------

TJPF_RGB, TJPF_GRAY, TJPF_CMYK = 0, 6, 11
TJSAMP_444, TJSAMP_422, TJSAMP_420, TJSAMP_GRAY, TJSAMP_440, TJSAMP_411 = range(6)
TJFLAG_PROGRESSIVE = 16384


def turbojpeg():
    name = ctypes.util.find_library("turbojpeg") or "libturbojpeg.so.0"
    tj = ctypes.CDLL(name)
    tj.tjInitCompress.restype = ctypes.c_void_p
    tj.tjCompress2.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int,
        ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p),
        ctypes.POINTER(ctypes.c_ulong), ctypes.c_int, ctypes.c_int,
        ctypes.c_int]
    tj.tjFree.argtypes = [ctypes.c_void_p]
    tj.tjDestroy.argtypes = [ctypes.c_void_p]
    return tj


def pattern(w, h, channels):
    """A deterministic picture: gradients and a diagonal edge."""
    px = bytearray()
    for y in range(h):
        for x in range(w):
            for c in range(channels):
                v = (x * 16 + y * 8 + c * 85) & 0xFF
                if x > y:
                    v ^= 0x80
                px.append(v)
    return bytes(px)


def compress(tj, w, h, pf, samp, quality=75, flags=0):
    channels = {TJPF_RGB: 3, TJPF_GRAY: 1, TJPF_CMYK: 4}[pf]
    handle = tj.tjInitCompress()
    buf = ctypes.c_void_p()
    size = ctypes.c_ulong(0)
    src = pattern(w, h, channels)
    rc = tj.tjCompress2(handle, src, w, w * channels, h, pf,
                        ctypes.byref(buf), ctypes.byref(size), samp, quality,
                        flags)
    if rc != 0:
        raise RuntimeError("tjCompress2 failed")
    out = ctypes.string_at(buf, size.value)
    tj.tjFree(buf)
    tj.tjDestroy(handle)
    return out


def segments(jpg):
    """(offset, marker) of each marker segment before the first SOS."""
    out, i = [], 2
    while i + 4 <= len(jpg) and jpg[i] == 0xFF:
        marker = jpg[i + 1]
        out.append((i, marker))
        if marker == 0xDA:
            break
        i += 2 + struct.unpack(">H", jpg[i + 2:i + 4])[0]
    return out


def find(jpg, markers):
    for off, m in segments(jpg):
        if m in markers:
            return off
    raise ValueError("marker not found")


SOFS = (0xC0, 0xC1, 0xC2)


def set_size(jpg, w, h):
    """The same JPEG declaring another size in its SOF."""
    off = find(jpg, SOFS)
    return jpg[:off + 5] + struct.pack(">HH", h, w) + jpg[off + 9:]


def set_sof(jpg, marker, precision=8):
    off = find(jpg, SOFS)
    b = bytearray(jpg)
    b[off + 1] = marker
    b[off + 4] = precision
    return bytes(b)


def tables_only(jpg):
    """SOI, the quantization and Huffman tables, EOI: no frame at all."""
    out = bytearray(b"\xff\xd8")
    segs = segments(jpg)
    for k, (off, m) in enumerate(segs):
        if m in (0xDB, 0xC4):
            end = segs[k + 1][0] if k + 1 < len(segs) else off
            out += jpg[off:end]
    return bytes(out + b"\xff\xd9")


def handmade_progressive(ac_coefs, ac_split):
    """
    An 8 x 8 grey progressive JPEG written by hand: one Huffman code "0"
    (symbol 0) per table, so every scan's data is the single byte 0x7f and
    the picture is flat grey. The DC scans come first (Al 13, then
    refinements down to 0); then for each coefficient 1..ac_coefs a first
    AC scan and, when ac_split, its 13 refinements. Every scan follows the
    rules of a valid progression, so a decoder cannot refuse it early: with
    36 coefficients split that is 518 scans, past TJFLAG_LIMITSCANS (500).
    """
    def seg(marker, body):
        return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body

    def scan(ss, se, ah, al):
        return seg(0xDA, bytes([1, 1, 0x00, ss, se, ah << 4 | al])) + b"\x7f"

    out = b"\xff\xd8" + seg(0xDB, b"\x00" + b"\x01" * 64)
    out += seg(0xC2, bytes([8, 0, 8, 0, 8, 1, 1, 0x11, 0]))
    one_code = b"\x01" + b"\x00" * 15 + b"\x00"
    out += seg(0xC4, b"\x00" + one_code + b"\x10" + one_code)
    top = 13 if ac_split else 0
    out += scan(0, 0, 0, top)
    for al in range(top - 1, -1, -1):
        out += scan(0, 0, al + 1, al)
    if not ac_split:
        return out + scan(1, ac_coefs, 0, 0) + b"\xff\xd9"
    for k in range(1, ac_coefs + 1):
        out += scan(k, k, 0, top)
        for al in range(top - 1, -1, -1):
            out += scan(k, k, al + 1, al)
    return out + b"\xff\xd9"


def jpeg_seeds():
    tj = turbojpeg()
    base = compress(tj, 16, 16, TJPF_RGB, TJSAMP_420)
    write("jpeg", "baseline-420-16x16.jpg", base)
    write("jpeg", "baseline-444-16x16.jpg", compress(tj, 16, 16, TJPF_RGB, TJSAMP_444))
    write("jpeg", "baseline-422-16x16.jpg", compress(tj, 16, 16, TJPF_RGB, TJSAMP_422))
    write("jpeg", "baseline-440-16x16.jpg", compress(tj, 16, 16, TJPF_RGB, TJSAMP_440))
    write("jpeg", "baseline-411-32x8.jpg", compress(tj, 32, 8, TJPF_RGB, TJSAMP_411))
    write("jpeg", "grey-16x16.jpg", compress(tj, 16, 16, TJPF_GRAY, TJSAMP_GRAY))
    write("jpeg", "odd-17x9-q100.jpg", compress(tj, 17, 9, TJPF_RGB, TJSAMP_420, 100))
    write("jpeg", "one-pixel-q1.jpg", compress(tj, 1, 1, TJPF_RGB, TJSAMP_420, 1))
    prog = compress(tj, 16, 16, TJPF_RGB, TJSAMP_420, flags=TJFLAG_PROGRESSIVE)
    write("jpeg", "progressive-420-16x16.jpg", prog)
    write("jpeg", "cmyk-16x16.jpg", compress(tj, 16, 16, TJPF_CMYK, TJSAMP_444))
    # Declared sizes: the bomb, the limit, one past it, zero rows.
    write("jpeg", "declares-65500x65500.jpg", set_size(base, 65500, 65500))
    write("jpeg", "declares-3840x2160.jpg", set_size(base, 3840, 2160))
    write("jpeg", "declares-3841x2160.jpg", set_size(base, 3841, 2160))
    write("jpeg", "declares-16x2161.jpg", set_size(base, 16, 2161))
    write("jpeg", "declares-16x0.jpg", set_size(base, 16, 0))
    write("jpeg", "progressive-declares-3840x2160.jpg", set_size(prog, 3840, 2160))
    write("jpeg", "tables-only.jpg", tables_only(base))
    write("jpeg", "truncated-half.jpg", base[:len(base) // 2])
    write("jpeg", "no-eoi.jpg", base[:-2])
    write("jpeg", "sof-12-bit.jpg", set_sof(base, 0xC0, 12))
    write("jpeg", "sof3-lossless.jpg", set_sof(base, 0xC3))
    write("jpeg", "sof9-arithmetic.jpg", set_sof(base, 0xC9))
    sos = find(base, (0xDA,))
    dri = b"\xff\xdd\x00\x04\x00\x01"
    write("jpeg", "restart-interval-without-rst.jpg", base[:sos] + dri + base[sos:])
    write("jpeg", "handmade-progressive-2-scans.jpg", handmade_progressive(63, False))
    write("jpeg", "handmade-progressive-518-scans.jpg", handmade_progressive(36, True))
    write("jpeg", "not-a-jpeg.txt", "GIF89a not a jpeg at all")
    write("jpeg", "soi-only.jpg", b"\xff\xd8")


# ---- Wire (protocol/wire.h) ----------------------------------------------

def frame(typ=1, hlen=None, flags=0, seq=1, capture_us=1234567, w=16, h=16,
          fmt=1, plen=0, magic=b"NFRM", version=1, res0=b"\0\0\0",
          res1=b"\0\0\0\0", timings=None):
    if hlen is None:
        hlen = 40 if typ == 1 else 72
    out = magic + bytes([version, typ])
    out += struct.pack("<HIIQHHB", hlen, flags, seq, capture_us, w, h, fmt)
    out += res0 + struct.pack("<I", plen) + res1
    if timings is not None:
        out += struct.pack("<7If", *timings)
    return out


def wire_seeds():
    tj = turbojpeg()
    jpg = compress(tj, 16, 16, TJPF_RGB, TJSAMP_420, 50)
    write("wire", "in-jpeg-16x16", frame(plen=len(jpg)) + jpg)
    write("wire", "in-empty-payload", frame(plen=0))
    write("wire", "in-reset-flag", frame(flags=1, plen=4) + b"\xff\xd8\xff\xd9")
    write("wire", "in-max-fields", frame(seq=0xFFFFFFFF, capture_us=2**64 - 1,
                                         w=65535, h=65535, plen=3) + b"abc")
    write("wire", "out-timings", frame(typ=2, plen=0, timings=(1, 2, 3, 4, 5, 6, 7, 1.25)))
    write("wire", "out-nan-drift", frame(typ=2, plen=2,
                                         timings=(0, 0, 0, 0, 0, 0, 0, float("nan"))) + b"\xff\xd8")
    write("wire", "bad-magic", frame(magic=b"NFRN"))
    write("wire", "magic-prefix-only", b"NF")
    write("wire", "header-39-bytes", frame()[:39])
    write("wire", "bad-version", frame(version=2))
    write("wire", "bad-type", frame(typ=3, hlen=40))
    write("wire", "in-with-out-header-len", frame(typ=1, hlen=72))
    write("wire", "out-with-in-header-len", frame(typ=2, hlen=40) + bytes(32))
    write("wire", "bad-format", frame(fmt=2))
    write("wire", "unknown-flag", frame(flags=2))
    write("wire", "reserved0-set", frame(res0=b"\0\1\0"))
    write("wire", "reserved1-set", frame(res1=b"\0\0\0\x80"))
    write("wire", "width-zero", frame(w=0))
    write("wire", "payload-len-max", frame(plen=0xFFFFFFFF) + b"\xff\xd8")
    write("wire", "payload-shorter-than-declared", frame(plen=100) + jpg[:50])
    write("wire", "payload-longer-than-declared", frame(plen=10) + jpg)


# ---- Control (protocol/control.h) ---------------------------------------

CONTROL = {
    "hello": '{"type":"hello","version":1,"style":"candy","quality":80}',
    "hello-options": '{"type":"hello","version":1,"options":{"quality":42}}',
    "hello-correction": '{"type":"hello","version":1,"style":"toon",'
                        '"correction":{"correct":1,"decay":0.25,"band_2":-3e-2}}',
    "hello-version-2": '{"type":"hello","version":2}',
    "hello-version-huge": '{"type":"hello","version":4294967297}',
    "hello-version-float": '{"type":"hello","version":1.0}',
    "set": '{"type":"set","style":"mosaic","quality":70}',
    "set-empty": '{"type":"set"}',
    "set-correction-17": '{"type":"set","correction":{' + ",".join(
        '"p%d":%d' % (i, i) for i in range(17)) + "}}",
    "set-quality-101": '{"type":"set","quality":101}',
    "set-quality-huge": '{"type":"set","quality":99999999999999999999999}',
    "set-style-63": '{"type":"set","style":"' + "a" * 63 + '"}',
    "set-style-64": '{"type":"set","style":"' + "b" * 64 + '"}',
    "set-style-bad-utf8": b'{"type":"set","style":"\xff"}',
    "reset": '{"type":"reset"}',
    "reset-unknown-fields": '{"x":[1,{"a":null}],"type":"reset","quality":0,"style":7}',
    "welcome": '{"type":"welcome","version":1,"session":"17-a3f0","backend":"dnnl",'
               '"style":"toon","styles":["toon","sketch","oil"],"cache_frames":2,'
               '"quality":80,"limits":{"max_message_bytes":8388608,'
               '"max_width":3840,"max_height":2160,"idle_timeout_s":30}}',
    "state": '{"type":"state","style":"mosaic","quality":70,"drift":1.25,'
             '"correction":{"correct":1}}',
    "error": '{"type":"error","code":"unknown_style","message":"no style named \'x\'"}',
    "error-long-utf8": '{"type":"error","code":"c","message":"' + "a" * 254 + '\u00e9\u20ac"}',
    "error-escapes": '{"type":"error","code":"\\u0001\\t","message":"\\ud83d\\ude00 \\" \\\\ \\u001f"}',
    "error-nul-escape": '{"type":"error","code":"x","message":"a\\u0000b"}',
    "error-lone-surrogate": '{"type":"error","code":"x","message":"\\ud800"}',
    "duplicate-key": '{"type":"set","quality":5,"quality":6}',
    "trailing-garbage": '{"type":"reset"} x',
    "not-object": '[{"type":"reset"}]',
    "type-not-string": '{"type":["set"]}',
    "deep-nesting": '{"type":"reset","x":' + "[" * 3000 + "]" * 3000 + "}",
    "numbers": '{"type":"set","correction":{"a":1e308,"b":-0,"c":1e-320,"d":123456789012345678901234567890}}',
    "empty": "",
}


def control_seeds():
    for name, text in CONTROL.items():
        write("control", name + ".json", text)


# ---- Model (kernels/MODEL.md) -------------------------------------------

def f32(values):
    return struct.pack("<%df" % len(values), *values)


def model_file(header, data=b"", header_len=None):
    if isinstance(header, str):
        header = header.encode()
    n = len(header) if header_len is None else header_len
    return struct.pack("<Q", n) + header + data


def expand(tmpl):
    """Template as in tests/test-model-load.c: ' is ", ` is \\"."""
    return tmpl.replace("`", '\\"').replace("'", '"')


def tmpl_file(tmpl, data_len, header_len=None):
    data = f32([0.1] * (data_len // 4)) + bytes(data_len % 4)
    return model_file(expand(tmpl), data, header_len)


TINY_TENSORS = ("'w':{'dtype':'F32','shape':[3,3,1,1],'data_offsets':[0,36]},"
                "'b':{'dtype':'F32','shape':[3],'data_offsets':[36,48]}")
TINY_GRAPH = ("{`nodes`:[{`name`:`c`,`op`:`conv2d`,`inputs`:[`frame`],"
              "`weight`:`w`,`bias`:`b`}],`output`:`c`}")
TINY_META = "'__metadata__':{'nf.format':'1','nf.name':'tiny','nf.graph':'" + TINY_GRAPH + "'}"
TINY = "{" + TINY_TENSORS + "," + TINY_META + "}"


def tiny_with(tensor):
    """TINY plus one more tensor entry (a template)."""
    return "{" + TINY_TENSORS + "," + tensor + "," + TINY_META + "}"


def model_from(tensors, meta, graph):
    """A valid file from {name: shape} (in order), metadata and a graph."""
    header, data, off = {}, b"", 0
    for name, shape in tensors.items():
        n = math.prod(shape)
        values = [((i * 7 + len(name)) % 13 - 6) / 16.0 for i in range(n)]
        data += f32(values)
        header[name] = {"dtype": "F32", "shape": shape,
                        "data_offsets": [off, off + 4 * n]}
        off += 4 * n
    meta = dict(meta)
    meta["nf.graph"] = json.dumps(graph, separators=(",", ":"))
    header["__metadata__"] = meta
    return model_file(json.dumps(header, separators=(",", ":")), data)


def node(name, op, inputs, **attrs):
    d = {"name": name, "op": op, "inputs": inputs}
    d.update(attrs)
    return d


def shrink(path, channels, keep_data=True):
    """
    A shipped model with its real header and graph, every channel count in
    channels mapped to a smaller one (the same map keeps the graph valid)
    and the first elements of each real tensor as its data.
    """
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    data, out, off = b[8 + n:], {}, 0
    new_data = b""
    for name, t in sorted(((k, v) for k, v in header.items() if k != "__metadata__"),
                          key=lambda kv: kv[1]["data_offsets"]):
        shape = [channels.get(d, d) if i < 2 else d for i, d in enumerate(t["shape"])]
        count = math.prod(shape)
        begin = t["data_offsets"][0]
        new_data += data[begin:begin + 4 * count]
        out[name] = {"dtype": "F32", "shape": shape,
                     "data_offsets": [off, off + 4 * count]}
        off += 4 * count
    meta = dict(header["__metadata__"])
    meta["fuzz.seed"] = ("shrunk from %s: channels %s" %
                         (os.path.relpath(path, ROOT), json.dumps(channels)))
    result = {"__metadata__": meta}
    result.update(dict(sorted(out.items())))
    text = json.dumps(result, separators=(",", ":"))
    text += " " * (-(len(text) + 8) % 8)  # writers pad the data to 8 bytes
    return model_file(text, new_data if keep_data else b"")


def model_valid_seeds():
    write("model", "tiny.safetensors", tmpl_file(TINY, 48))
    ident = {"__metadata__": {"nf.format": "1", "nf.name": "identity",
                              "nf.graph": '{"nodes":[],"output":"frame"}'}}
    write("model", "identity-no-tensors.safetensors", model_file(json.dumps(ident)))
    # tests/test-model-load.c model_load_accepts_graph_of_every_kind.
    every = {"w3": [3, 3, 1, 1], "b3": [3], "w33": [3, 3, 3, 3], "w6": [3, 6, 1, 1]}
    write("model", "every-kind.safetensors", model_from(
        every, {"nf.format": "1", "nf.name": "g", "nf.cache_frames": "2",
                "nf.size_multiple": "4"},
        {"nodes": [
            node("p", "avgpool2x2", ["frame"]),
            node("u", "upsample2x_nearest", ["p"]),
            node("c", "conv2d", ["u"], weight="w33", padding=1, pad_mode="reflect", stride=2),
            node("b", "upsample2x_bilinear", ["c"]),
            node("s", "pixel_unshuffle", ["b"], factor=2),
            node("t", "pixel_shuffle", ["s"], factor=2),
            node("n", "instance_norm", ["t"], bias="b3"),
            node("a", "add", ["n", "cache.1"]),
            node("k", "concat", ["a", "cache.0"]),
            node("o", "conv2d", ["k"], weight="w6", bias="b3"),
            node("y", "leaky_relu", ["o"], alpha=0.2)], "output": "y"}))
    more = {"sw": [3], "b3": [3], "wg": [3, 1, 3, 3], "w33": [3, 3, 3, 3],
            "w9": [3, 9, 1, 1], "scalar": []}
    write("model", "more-ops.safetensors", model_from(
        more, {"nf.format": "1", "nf.name": "more-ops.v1", "nf.cache_frames": "1",
               "nf.size_multiple": "2", "nf.description": "every other op",
               "other.key": "kept, not interpreted"},
        {"nodes": [
            node("a", "sigmoid", ["frame"]),
            node("b", "tanh", ["frame"]),
            node("m", "mul", ["a", "b"]),
            node("s", "scale_shift", ["m"], weight="sw", bias="b3"),
            node("cl", "clamp", ["s"], min=0, max=1.0),
            node("r", "relu", ["cl"]),
            node("g", "conv2d", ["r"], weight="wg", padding=1, groups=3),
            node("d", "conv2d", ["g"], weight="w33", stride=2, padding=1),
            node("u", "upsample2x_bilinear", ["d"]),
            node("n", "instance_norm", ["u"], weight="sw", bias="b3", eps=1e-3),
            node("k", "concat", ["n", "frame", "cache.0"]),
            node("o", "conv2d", ["k"], weight="w9")], "output": "o"}))
    with open(os.path.join(ROOT, "models", "default.safetensors"), "rb") as f:
        write("model", "shipped-default.safetensors", f.read())
    small = {16: 2, 32: 4, 64: 8}
    write("model", "shipped-toon-shrunk.safetensors",
          shrink(os.path.join(ROOT, "models", "toon.safetensors"), small))
    write("model", "shipped-oil-shrunk.safetensors",
          shrink(os.path.join(ROOT, "models", "oil.safetensors"), small))
    # sketch's real header, unshrunk, with the data section cut off.
    with open(os.path.join(ROOT, "models", "sketch.safetensors"), "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    write("model", "shipped-sketch-header-no-data.safetensors", b[:8 + n])


def model_bug_seeds():
    hdr = expand(TINY)
    # Header length N: wraps 8 + N, above the cap, past the file, 0, short.
    write("model", "bug-header-len-wraps.safetensors", tmpl_file(TINY, 48, 2**64 - 8))
    write("model", "bug-header-len-over-cap.safetensors", tmpl_file(TINY, 48, 100000001))
    write("model", "bug-header-len-past-file.safetensors", tmpl_file(TINY, 48, len(hdr) + 49))
    write("model", "bug-header-len-zero.safetensors", tmpl_file(TINY, 48, 0))
    write("model", "bug-file-shorter-than-length.safetensors", b"\x10\0\0\0\0")
    # Shape products that wrap (to 0 elements, to 0 bytes, to 2) and bad dims.
    write("model", "bug-shape-wraps-to-zero.safetensors", tmpl_file(tiny_with(
        "'z':{'dtype':'F32','shape':[4294967296,4294967296],'data_offsets':[48,48]}"), 48))
    write("model", "bug-shape-bytes-wrap.safetensors", tmpl_file(tiny_with(
        "'z':{'dtype':'F32','shape':[4611686018427387904],'data_offsets':[48,48]}"), 48))
    write("model", "bug-shape-wraps-to-two.safetensors", tmpl_file(tiny_with(
        "'z':{'dtype':'F32','shape':[3,6148914691236517206],'data_offsets':[48,56]}"), 56))
    write("model", "bug-shape-zero-times-huge.safetensors", tmpl_file(tiny_with(
        "'z':{'dtype':'F32','shape':[0,9223372036854775807,9223372036854775807],"
        "'data_offsets':[48,48]}"), 48))
    write("model", "bug-shape-negative.safetensors", tmpl_file(TINY.replace("[3],", "[-3],"), 48))
    write("model", "scalar-shape.safetensors", tmpl_file(tiny_with(
        "'z':{'dtype':'F32','shape':[],'data_offsets':[48,52]}"), 52))
    # Offsets: not checked against the shape, negative, float, reversed,
    # out of the data, 64-bit extremes, not a pair, gap, overlap, tail.
    write("model", "bug-offsets-disagree-with-shape.safetensors",
          tmpl_file(TINY.replace("[3],'data_offsets':[36,48]", "[4],'data_offsets':[36,48]"), 48))
    write("model", "bug-offsets-negative.safetensors",
          tmpl_file(TINY.replace("[36,48]", "[-12,0]"), 48))
    write("model", "bug-offsets-float.safetensors", tmpl_file(TINY.replace("[36,48]", "[36.0,48]"), 48))
    write("model", "bug-offsets-reversed.safetensors", tmpl_file(TINY.replace("[36,48]", "[48,36]"), 48))
    write("model", "bug-offsets-u64-max.safetensors",
          tmpl_file(TINY.replace("[36,48]", "[36,18446744073709551615]"), 48))
    write("model", "bug-offsets-i64-max.safetensors",
          tmpl_file(TINY.replace("[36,48]", "[9223372036854775795,9223372036854775807]"), 48))
    write("model", "bug-offsets-gap.safetensors", tmpl_file(TINY.replace("[36,48]", "[40,52]"), 52))
    write("model", "bug-offsets-overlap.safetensors", tmpl_file(TINY.replace("[36,48]", "[32,44]"), 44))
    write("model", "bug-offsets-same-range.safetensors", tmpl_file(
        TINY.replace("'b':{'dtype':'F32','shape':[3],'data_offsets':[36,48]}",
                     "'b':{'dtype':'F32','shape':[3,3,1,1],'data_offsets':[0,36]}"), 36))
    write("model", "empty-tensors-same-offset.safetensors", tmpl_file(tiny_with(
        "'e1':{'dtype':'F32','shape':[0],'data_offsets':[36,36]},"
        "'e2':{'dtype':'F32','shape':[0,5],'data_offsets':[36,36]}"), 48))
    write("model", "bug-trailing-bytes.safetensors", tmpl_file(TINY, 52))
    # dtypes: unknown, known but unsupported, not a string.
    write("model", "bug-dtype-unknown.safetensors", tmpl_file(TINY.replace("'F32','shape':[3]", "'F33','shape':[3]"), 48))
    write("model", "bug-dtype-f16.safetensors", tmpl_file(
        TINY.replace("'F32','shape':[3],'data_offsets':[36,48]", "'F16','shape':[3],'data_offsets':[36,42]"), 42))
    # Duplicate keys: a tensor, a metadata key, a tensor field, a node field.
    write("model", "bug-duplicate-tensor.safetensors", tmpl_file(tiny_with(
        "'w':{'dtype':'F32','shape':[3],'data_offsets':[48,60]}"), 60))
    write("model", "bug-duplicate-metadata.safetensors",
          tmpl_file(TINY.replace("'nf.name':'tiny'", "'nf.name':'tiny','nf.name':'evil'"), 48))
    write("model", "bug-duplicate-tensor-field.safetensors",
          tmpl_file(TINY.replace("'data_offsets':[36,48]", "'data_offsets':[36,48],'data_offsets':[0,12]"), 48))
    write("model", "bug-duplicate-node-field.safetensors",
          tmpl_file(TINY.replace("`name`:`c`", "`name`:`c`,`name`:`d`"), 48))
    # Not UTF-8 or not representable: a raw 0xff in a name, an overlong
    # encoding in a value, an escaped NUL in a key, a lone surrogate.
    raw = hdr.replace('"b":', '"b\xff":')
    write("model", "bug-name-not-utf8.safetensors",
          model_file(raw.encode("latin-1"), f32([0.1] * 12)))
    raw = hdr.replace('"nf.name":"tiny"', '"nf.name":"tiny","x":"\xc0\xaf"')
    write("model", "bug-value-overlong-utf8.safetensors",
          model_file(raw.encode("latin-1"), f32([0.1] * 12)))
    write("model", "bug-key-escaped-nul.safetensors",
          tmpl_file(TINY.replace("'b':", "'b\\u0000x':"), 48))
    write("model", "bug-lone-surrogate.safetensors",
          tmpl_file(TINY.replace("'nf.name':'tiny'", "'nf.name':'tiny','x':'\\ud800'"), 48))
    # Metadata: not strings, missing, not an object.
    write("model", "bug-metadata-number.safetensors",
          tmpl_file(TINY.replace("'nf.name':'tiny'", "'nf.name':'tiny','nf.cache_frames':1"), 48))
    write("model", "bug-metadata-missing.safetensors", tmpl_file("{" + TINY_TENSORS + "}", 48))
    write("model", "bug-header-leading-space.safetensors", tmpl_file(" " + TINY, 48))
    write("model", "bug-header-trailing-garbage.safetensors", tmpl_file(TINY + "{}", 48))
    nan = tmpl_file(TINY, 48)
    write("model", "bug-weight-nan.safetensors", nan[:-8] + b"\x00\x00\xc0\x7f" + nan[-4:])


def model_graph_seeds():
    def graph(g, extra_meta=""):
        return tmpl_file("{" + TINY_TENSORS + ",'__metadata__':{'nf.format':'1',"
                         "'nf.name':'g'," + extra_meta + "'nf.graph':'" + g + "'}}", 48)
    write("model", "graph-used-before-defined.safetensors",
          graph("{`nodes`:[{`name`:`a`,`op`:`relu`,`inputs`:[`b`]},"
                "{`name`:`b`,`op`:`relu`,`inputs`:[`frame`]}],`output`:`a`}"))
    write("model", "graph-cache-out-of-range.safetensors",
          graph("{`nodes`:[{`name`:`a`,`op`:`relu`,`inputs`:[`cache.8`]}],`output`:`a`}",
                "'nf.cache_frames':'8',"))
    write("model", "graph-dead-node.safetensors",
          graph("{`nodes`:[{`name`:`a`,`op`:`relu`,`inputs`:[`frame`]},"
                "{`name`:`b`,`op`:`tanh`,`inputs`:[`frame`]}],`output`:`b`}"))
    write("model", "graph-shift-too-deep.safetensors",
          graph("{`nodes`:[" + ",".join(
              "{`name`:`p%d`,`op`:`avgpool2x2`,`inputs`:[`%s`]}" % (i, "p%d" % (i - 1) if i else "frame")
              for i in range(5)) + "," + ",".join(
              "{`name`:`u%d`,`op`:`upsample2x_nearest`,`inputs`:[`%s`]}" % (i, "u%d" % (i - 1) if i else "p4")
              for i in range(5)) + "],`output`:`u4`}", "'nf.size_multiple':'16',"))
    write("model", "graph-channels-too-many.safetensors",
          graph("{`nodes`:[{`name`:`a`,`op`:`pixel_unshuffle`,`inputs`:[`frame`],`factor`:16},"
                "{`name`:`b`,`op`:`pixel_unshuffle`,`inputs`:[`a`],`factor`:16},"
                "{`name`:`c`,`op`:`pixel_shuffle`,`inputs`:[`b`],`factor`:16},"
                "{`name`:`d`,`op`:`pixel_shuffle`,`inputs`:[`c`],`factor`:16}],`output`:`d`}",
                "'nf.size_multiple':'16',"))
    write("model", "graph-concat-17.safetensors",
          graph("{`nodes`:[{`name`:`k`,`op`:`concat`,`inputs`:[" +
                ",".join(["`frame`"] * 17) + "]}],`output`:`k`}"))
    write("model", "graph-bad-attributes.safetensors",
          graph("{`nodes`:[{`name`:`c`,`op`:`conv2d`,`inputs`:[`frame`],`weight`:`w`,"
                "`stride`:`2`,`padding`:-1,`groups`:0}],`output`:`c`}"))
    write("model", "graph-float-attr-overflows-f32.safetensors",
          graph("{`nodes`:[{`name`:`l`,`op`:`leaky_relu`,`inputs`:[`frame`],`alpha`:1e39},"
                "{`name`:`n`,`op`:`instance_norm`,`inputs`:[`l`],`eps`:1e-50}],`output`:`n`}"))
    write("model", "graph-deep-nesting.safetensors",
          graph("{`nodes`:" + "[" * 3000 + "]" * 3000 + ",`output`:`frame`}"))
    write("model", "meta-numbers.safetensors",
          graph(TINY_GRAPH, "'nf.cache_frames':'08','nf.size_multiple':'16',"))


def main():
    jpeg_seeds()
    wire_seeds()
    control_seeds()
    model_valid_seeds()
    model_bug_seeds()
    model_graph_seeds()
    for target in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, target))
        size = sum(os.path.getsize(os.path.join(CORPUS, target, f)) for f in files)
        print("%s: %d seeds, %d bytes" % (target, len(files), size))


if __name__ == "__main__":
    main()
