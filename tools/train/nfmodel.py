"""nfmodel.py - reads, writes and runs nextframe model files in PyTorch.

A second, independent implementation of kernels/MODEL.md for the tools:
evaluate.py and the figures run shipped models with it, make-golden.py
checks it against the training network. It follows the runtime's frame
pipeline (section 6 and 7): edge-pad to the size multiple, cold cache =
copies of the input, output clamped into the cache, crop. It trusts the
file (the C loader is the validator) and implements only what the shipped
and converted models need plus the rest of the op table.
"""

import json
import struct

import numpy as np
import torch
import torch.nn.functional as F


def serialize(tensors, metadata):
    """safetensors bytes: u64 LE header length, JSON header (sorted keys,
    padded with spaces so the data starts 8-aligned), F32 data in name
    order. Deterministic for equal inputs."""
    header = {"__metadata__": metadata}
    blobs = bytearray()
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float32).contiguous()
        raw = t.numpy().astype("<f4").tobytes()
        begin = len(blobs)
        blobs += raw
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [begin, len(blobs)]}
    text = json.dumps(header, separators=(",", ":"), sort_keys=True)
    raw = text.encode("utf-8")
    raw += b" " * (-(8 + len(raw)) % 8)
    return struct.pack("<Q", len(raw)) + raw + bytes(blobs)


def write(path, tensors, metadata):
    """Writes a model file; returns its size in bytes."""
    blob = serialize(tensors, metadata)
    with open(path, "wb") as f:
        f.write(blob)
    return len(blob)


def read(path):
    """(tensors, metadata) of a safetensors file; tensors as torch F32."""
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = blob[8 + n:]
    tensors = {}
    for name, e in header.items():
        assert e["dtype"] == "F32", name
        b, end = e["data_offsets"]
        a = np.frombuffer(data[b:end], dtype="<f4").astype(np.float32)
        tensors[name] = torch.from_numpy(a.copy()).reshape(e["shape"])
    return tensors, meta


class Model:
    """A loaded model: name, k, multiple, graph; call step() per frame."""

    def __init__(self, path):
        self.tensors, self.meta = read(path)
        self.name = self.meta["nf.name"]
        self.k = int(self.meta.get("nf.cache_frames", "0"))
        self.multiple = int(self.meta.get("nf.size_multiple", "1"))
        g = json.loads(self.meta["nf.graph"])
        self.nodes, self.output = g["nodes"], g["output"]
        self.cache = None
        self.size = None

    def params(self):
        return sum(t.numel() for t in self.tensors.values())

    def run_graph(self, frame, cache):
        """Runs the graph on padded (N, 3, H, W) frame and K cache tensors."""
        v = {"frame": frame}
        for i, c in enumerate(cache):
            v["cache.%d" % i] = c
        t = self.tensors
        for n in self.nodes:
            xs = [v[i] for i in n["inputs"]]
            v[n["name"]] = _op(n, xs, t)
        return v[self.output]

    def reset(self):
        self.cache = None

    @torch.no_grad()
    def step(self, frame):
        """One frame (1, 3, H, W) in [0, 1] -> output (1, 3, H, W) in [0, 1],
        updating the cache as the runtime does."""
        h, w = frame.shape[-2:]
        m = self.multiple
        ph, pw = -h % m, -w % m
        x = F.pad(frame, (0, pw, 0, ph), mode="replicate") if ph or pw \
            else frame
        if self.cache is None or self.size != (h, w):
            self.cache = [x.clone() for _ in range(self.k)]
            self.size = (h, w)
        y = self.run_graph(x, self.cache).clamp(0, 1)
        if self.k:
            self.cache = [y] + self.cache[:-1]
        return y[..., :h, :w]


def _conv(n, x, t):
    w = t[n["weight"]]
    b = t[n["bias"]] if "bias" in n else None
    p = n.get("padding", 0)
    s = n.get("stride", 1)
    g = n.get("groups", 1)
    if p and n.get("pad_mode", "zeros") == "reflect":
        return F.conv2d(F.pad(x, (p, p, p, p), mode="reflect"), w, b, s, 0,
                        1, g)
    return F.conv2d(x, w, b, s, p, 1, g)


def _op(n, xs, t):
    op = n["op"]
    x = xs[0]
    if op == "conv2d":
        return _conv(n, x, t)
    if op == "relu":
        return F.relu(x)
    if op == "leaky_relu":
        return F.leaky_relu(x, n.get("alpha", 0.01))
    if op == "sigmoid":
        return torch.sigmoid(x)
    if op == "tanh":
        return torch.tanh(x)
    if op == "clamp":
        return x.clamp(n.get("min"), n.get("max"))
    if op == "add":
        return x + xs[1]
    if op == "mul":
        return x * xs[1]
    if op == "scale_shift":
        c = x.shape[1]
        w = t[n["weight"]] if "weight" in n else torch.ones(c)
        b = t[n["bias"]] if "bias" in n else torch.zeros(c)
        return x * w.view(1, -1, 1, 1) + b.view(1, -1, 1, 1)
    if op == "concat":
        return torch.cat(xs, 1)
    if op == "upsample2x_nearest":
        return F.interpolate(x, scale_factor=2, mode="nearest")
    if op == "upsample2x_bilinear":
        return F.interpolate(x, scale_factor=2, mode="bilinear",
                             align_corners=False)
    if op == "avgpool2x2":
        return F.avg_pool2d(x, 2)
    if op == "instance_norm":
        w = t[n["weight"]] if "weight" in n else None
        b = t[n["bias"]] if "bias" in n else None
        return F.instance_norm(x, weight=w, bias=b, eps=n.get("eps", 1e-5))
    if op == "pixel_shuffle":
        return F.pixel_shuffle(x, n["factor"])
    if op == "pixel_unshuffle":
        return F.pixel_unshuffle(x, n["factor"])
    raise ValueError("unknown op %s" % op)
