#!/usr/bin/python3
"""make-golden.py - writes the golden fixtures of tests/test-golden.c.

For each shipped style model (models/{toon,sketch,oil}.safetensors) it
plays a short clip (a 48x32 window sliding over a photo of opencv-doc) into
the model from a cold cache, and records the last frame, the cache the model
had filled by then, and PyTorch's output for them. The output comes from
the training network (net.StyleNet with its BatchNorm unfolded) when its
checkpoint is given, else from the model file run by nfmodel.py; with a
checkpoint, the two are also checked against each other.

It also converts a randomly initialised fast-neural-style TransformerNet
(channel widths 8/16/32 instead of 32/64/128 so the committed file stays
small; the layer structure is the published one) with
tools/convert-transformernet.py and records its PyTorch output.

    /usr/bin/python3 tools/train/make-golden.py [--ckpt-dir DIR]

Files: tests/golden/<name>.f32 (little-endian float32 planes (3, 32, 48):
frame, cache.0 .. cache.{K-1}, expected output) and
tests/golden/transformernet-random.safetensors.
"""

import argparse
import importlib.util
import os
import sys

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import export  # noqa: E402
import nfmodel  # noqa: E402

W, H = 48, 32
PHOTO = "/usr/share/doc/opencv-doc/examples/data/fruits.jpg"
STEPS = 4


def clip():
    """STEPS + 1 frames (1, 3, H, W): a window sliding right over a photo."""
    im = Image.open(PHOTO).convert("RGB")
    im = im.resize((im.width // 4, im.height // 4), Image.LANCZOS)
    a = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float()
    a = a[None] / 255.0
    return [a[..., 40:40 + H, 30 + 2 * t:30 + 2 * t + W].contiguous()
            for t in range(STEPS + 1)]


def write_f32(path, planes):
    arr = torch.cat([p.reshape(-1) for p in planes]).numpy()
    arr.astype("<f4").tofile(path)
    return arr.size * 4


def style_case(look, ckpt_dir, out_dir):
    path = os.path.join(ROOT, "models", look + ".safetensors")
    model = nfmodel.Model(path)
    net = None
    ck = os.path.join(ckpt_dir, look + ".pt") if ckpt_dir else None
    if ck and os.path.exists(ck):
        net, _ = export.from_checkpoint(ck)
    frames = clip()
    cache = [frames[0]] * model.k
    with torch.no_grad():
        for t in range(STEPS):
            y = model.run_graph(frames[t], cache).clamp(0, 1)
            cache = [y] + cache[:-1]
        x = frames[STEPS]
        graph_out = model.run_graph(x, cache)
        if net is not None:
            ref = net(x, cache)
            e = float((graph_out - ref).norm() / ref.norm())
            print("make-golden: %s: graph vs StyleNet %.3g" % (look, e))
            if e > 1e-5:
                raise SystemExit("make-golden: %s: the model file does not "
                                 "match its checkpoint" % look)
            src = "StyleNet"
        else:
            ref, src = graph_out, "model file"
    n = write_f32(os.path.join(out_dir, look + ".f32"), [x] + cache + [ref])
    print("make-golden: %s.f32 (%d bytes, output from %s)" % (look, n, src))


def transformernet_case(out_dir):
    spec = importlib.util.spec_from_file_location(
        "convert", os.path.join(ROOT, "tools", "convert-transformernet.py"))
    conv = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conv)
    net = conv.random_net(0, widths=(8, 16, 32))
    tensors, meta = conv.convert(
        net.state_dict(), "transformernet-random",
        "A randomly initialised fast-neural-style TransformerNet (widths "
        "8/16/32), converted for the golden test.", "random (seed 0)")
    path = os.path.join(out_dir, "transformernet-random.safetensors")
    n = nfmodel.write(path, tensors, meta)
    x = clip()[0]
    with torch.no_grad():
        ref = net(x * 255.0) / 255.0
        e = float((nfmodel.Model(path).run_graph(x, []) - ref).norm() /
                  ref.norm())
    print("make-golden: transformernet-random.safetensors (%d bytes, %s "
          "params), graph vs TransformerNet %.3g" % (n, meta["params"], e))
    n = write_f32(os.path.join(out_dir, "transformernet-random.f32"),
                  [x, ref])
    print("make-golden: transformernet-random.f32 (%d bytes)" % n)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ckpt-dir", help="train.py checkpoints <look>.pt")
    p.add_argument("--out", default=os.path.join(ROOT, "tests", "golden"))
    p.add_argument("--looks", nargs="*", default=["toon", "sketch", "oil"])
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    for look in args.looks:
        style_case(look, args.ckpt_dir, args.out)
    transformernet_case(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
