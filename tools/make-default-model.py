#!/usr/bin/env python3
"""make-default-model.py - writes nextframe's default model.

The default model is a small hand-designed (not trained) temporal
stylization network named "default": smoothed, slightly posterized colours
with dark ink on strong edges, blended with the model's own previous output
so that the cache matters. The trained toon model replaced it as the
server's default; it stays as the small model of the tests. The network and
the file format are described in kernels/MODEL.md.

Python 3 standard library only; the output is byte-for-byte deterministic.

    python3 tools/make-default-model.py [--out models/default.safetensors]
"""

import argparse
import json
import struct
import sys

# Luminance weights (Rec. 601), used by the edge detector and the saturation.
LUMA = (0.299, 0.587, 0.114)
# Soft posterization: LEVELS sigmoid steps per channel of sharpness STEEP.
LEVELS = 4
STEEP = 24.0
# Colour boost on the low-frequency path.
SATURATION = 1.35
CONTRAST = 1.10
# Share of the posterized colour in the base (the rest is the blurred frame).
POSTER_MIX = 0.75
# Ink: gain on the luminance gradient magnitude, threshold, and the most the
# ink may darken a pixel (1 = black).
INK_GAIN = 12.0
INK_THRESHOLD = 0.25
INK_STRENGTH = 0.85
# Temporal blend: weight of the current frame against the previous output.
CURRENT = 0.75


class Model:
    """Collects tensors (name -> (shape, flat list of floats)) and nodes."""

    def __init__(self):
        self.tensors = {}
        self.nodes = []

    def tensor(self, name, shape, values):
        count = 1
        for d in shape:
            count *= d
        assert len(values) == count, (name, shape, len(values))
        assert name not in self.tensors, name
        self.tensors[name] = (list(shape), [float(v) for v in values])
        return name

    def node(self, name, op, inputs, **attrs):
        node = {"name": name, "op": op, "inputs": list(inputs)}
        node.update(attrs)
        self.nodes.append(node)
        return name


def conv_weight(cout, cin, k, fn):
    """Flat (cout, cin, k, k) weights with w[o][i][y][x] = fn(o, i, y, x)."""
    return [fn(o, i, y, x) for o in range(cout) for i in range(cin)
            for y in range(k) for x in range(k)]


def build():
    m = Model()
    eye = lambda o, i: 1.0 if o == i else 0.0

    # 1. Smooth: depthwise 3x3 Gaussian [1 2 1]^T [1 2 1] / 16.
    g = (1.0, 2.0, 1.0)
    m.tensor("blur.weight", (3, 1, 3, 3),
             conv_weight(3, 1, 3, lambda o, i, y, x: g[y] * g[x] / 16.0))
    m.node("blur", "conv2d", ["frame"], weight="blur.weight", padding=1,
           pad_mode="reflect", groups=3)

    # 2. Edges, at half resolution and smoothed once more (lines follow
    # object boundaries rather than fine texture): the Sobel gradient of the
    # luminance, +gx, -gx, +gy, -gy into four channels, so that relu gives
    # |gx| and |gy| (L1 magnitude) after the 1x1 conv below sums them.
    m.node("low", "avgpool2x2", ["blur"])
    m.node("low_blur", "conv2d", ["low"], weight="blur.weight", padding=1,
           pad_mode="reflect", groups=3)
    sobel_x = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
    sign = (1.0, -1.0, 1.0, -1.0)
    m.tensor("edges.weight", (4, 3, 3, 3),
             conv_weight(4, 3, 3, lambda o, i, y, x: sign[o] * LUMA[i] / 8.0 *
                         (sobel_x[y][x] if o < 2 else sobel_x[x][y])))
    m.node("edges", "conv2d", ["low_blur"], weight="edges.weight",
           padding=1, pad_mode="reflect")
    m.node("edges_abs", "relu", ["edges"])

    # 3. Ink = clamp(gain * (|gx| + |gy|) - threshold, 0, strength), the
    # same in all three channels, upsampled; keep = 1 - ink scales colour.
    m.tensor("ink.weight", (3, 4, 1, 1), [INK_GAIN] * 12)
    m.tensor("ink.bias", (3,), [-INK_THRESHOLD] * 3)
    m.node("ink", "conv2d", ["edges_abs"], weight="ink.weight",
           bias="ink.bias")
    m.node("ink_clamped", "clamp", ["ink"], min=0.0, max=INK_STRENGTH)
    m.node("ink_up", "upsample2x_bilinear", ["ink_clamped"])
    m.tensor("keep.weight", (3,), [-1.0] * 3)
    m.tensor("keep.bias", (3,), [1.0] * 3)
    m.node("keep", "scale_shift", ["ink_up"], weight="keep.weight",
           bias="keep.bias")

    # 4. Low-frequency colour, also at half resolution: saturation and
    # contrast (a 1x1 conv), soft posterization (LEVELS sigmoid steps per channel,
    # averaged), then bilinear upsampling back to full size.
    sat = [CONTRAST * ((1.0 - SATURATION) * LUMA[i] + SATURATION * eye(o, i))
           for o in range(3) for i in range(3)]
    m.tensor("color.weight", (3, 3, 1, 1), sat)
    m.tensor("color.bias", (3,), [0.5 * (1.0 - CONTRAST)] * 3)
    m.node("color", "conv2d", ["low"], weight="color.weight",
           bias="color.bias")
    thresholds = [(k + 0.5) / LEVELS for k in range(LEVELS)]
    m.tensor("steps.weight", (3 * LEVELS, 1, 1, 1), [STEEP] * (3 * LEVELS))
    m.tensor("steps.bias", (3 * LEVELS,),
             [-STEEP * thresholds[k] for c in range(3) for k in range(LEVELS)])
    m.node("steps", "conv2d", ["color"], weight="steps.weight",
           bias="steps.bias", groups=3)
    m.node("steps_soft", "sigmoid", ["steps"])
    m.tensor("poster.weight", (3, LEVELS, 1, 1), [1.0 / LEVELS] * (3 * LEVELS))
    m.node("poster", "conv2d", ["steps_soft"], weight="poster.weight",
           groups=3)
    m.node("poster_up", "upsample2x_bilinear", ["poster"])

    # 5. Base colour = POSTER_MIX * posterized + the rest * blurred; inked.
    m.node("mix", "concat", ["poster_up", "blur"])
    m.tensor("base.weight", (3, 6, 1, 1),
             [(POSTER_MIX if i < 3 else 1.0 - POSTER_MIX) * eye(o, i % 3)
              for o in range(3) for i in range(6)])
    m.node("base", "conv2d", ["mix"], weight="base.weight")
    m.node("inked", "mul", ["base", "keep"])

    # 6. Temporal blend with the previous output (cache.0).
    m.node("history", "concat", ["inked", "cache.0"])
    m.tensor("out.weight", (3, 6, 1, 1),
             [(CURRENT if i < 3 else 1.0 - CURRENT) * eye(o, i % 3)
              for o in range(3) for i in range(6)])
    m.node("out", "conv2d", ["history"], weight="out.weight")
    return m


def serialize(m):
    """safetensors bytes: u64 LE header length, JSON header, data."""
    graph = {"nodes": m.nodes, "output": "out"}
    header = {
        "__metadata__": {
            "nf.format": "1",
            "nf.name": "default",
            "nf.description": (
                "Hand-designed placeholder stylization (smoothed, slightly "
                "posterized colour with ink on edges, blended with the "
                "previous output); not trained. A trained model replaces "
                "it."),
            "nf.cache_frames": "1",
            "nf.size_multiple": "2",
            "nf.graph": json.dumps(graph, separators=(",", ":")),
        }
    }
    data = bytearray()
    for name in sorted(m.tensors):
        shape, values = m.tensors[name]
        begin = len(data)
        data += struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape,
                        "data_offsets": [begin, len(data)]}
    text = json.dumps(header, separators=(",", ":"), sort_keys=True)
    raw = text.encode("utf-8")
    # Pad the header with spaces so that the data section starts 8-aligned.
    raw += b" " * (-(8 + len(raw)) % 8)
    return struct.pack("<Q", len(raw)) + raw + bytes(data)


def main(argv):
    parser = argparse.ArgumentParser(
        description="Write nextframe's default model (a hand-designed "
        "temporal stylization network) as a safetensors file.")
    parser.add_argument("--out", default="models/default.safetensors",
                        help="output path (default: %(default)s)")
    args = parser.parse_args(argv)
    blob = serialize(build())
    with open(args.out, "wb") as f:
        f.write(blob)
    print("make-default-model: wrote %s (%d bytes)" % (args.out, len(blob)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
