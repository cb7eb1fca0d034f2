#!/usr/bin/python3
"""evaluate.py - fidelity and flicker of style models on the evaluation clips.

Runs each model over opencv-doc's Megamind.avi and tree.avi (never used for
training or tuning) frame by frame, recurrently with its cache exactly as
the runtime does, and compares it with its look's per-frame filter
(looks.py) applied to the same frames:

    psnr     PSNR of the model's output against the filter's output, dB,
             averaged over frames (also given for the input itself).
    flicker  mean absolute frame-to-frame change of the output, over the
             pixels whose input did not change (every channel within
             THRESHOLD of the previous frame), in 8-bit levels; given for
             the model, the per-frame filter and the input, and as the
             ratio model / filter.

    /usr/bin/python3 tools/train/evaluate.py --look toon models/toon.safetensors
    /usr/bin/python3 tools/train/evaluate.py --json out.json --look toon M ...

With several models, --look applies to all, unless a model's metadata names
its look (key "look"), which wins.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import looks  # noqa: E402
import nfmodel  # noqa: E402

CLIPS = ("/usr/share/doc/opencv-doc/examples/data/Megamind.avi",
         "/usr/share/doc/opencv-doc/examples/data/tree.avi")
# An input pixel "did not change" if every channel moved at most this much
# (in [0, 1]; 3/255, about the compression noise of the clips).
THRESHOLD = 3.0 / 255.0


def frames(path, limit=0):
    """Yields the clip's frames as (1, 3, H, W) float tensors in [0, 1]."""
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height", "-of", "csv=p=0", path],
        check=True, capture_output=True, text=True).stdout
    w, h = (int(v) for v in probe.strip().split(",")[:2])
    proc = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt",
         "rgb24", "-"], stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL)
    n = 0
    try:
        while not limit or n < limit:
            raw = proc.stdout.read(w * h * 3)
            if len(raw) < w * h * 3:
                break
            a = np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3)
            yield torch.from_numpy(a.copy()).permute(2, 0, 1)[None].float() \
                / 255.0
            n += 1
    finally:
        proc.stdout.close()
        proc.kill()
        proc.wait()


class Flicker:
    """Accumulates mean |x_t - x_{t-1}| over still-input pixels."""

    def __init__(self):
        self.sum, self.count, self.prev = 0.0, 0, None

    def add(self, x, still):
        if self.prev is not None and still is not None:
            d = (x - self.prev).abs().mean(1, keepdim=True)
            self.sum += float((d * still).sum())
            self.count += int(still.sum())
        self.prev = x

    def value(self):
        return 255.0 * self.sum / max(1, self.count)


def evaluate_clip(model, look, path, limit=0):
    model.reset()
    fl = {"model": Flicker(), "filter": Flicker(), "input": Flicker()}
    psnr, psnr_in, n = 0.0, 0.0, 0
    prev_in = None
    for x in frames(path, limit):
        y = model.step(x)
        tgt = looks.apply(look, x)
        mse = float(((y - tgt) ** 2).mean())
        psnr += 10 * math.log10(1.0 / max(mse, 1e-12))
        mse_in = float(((x - tgt) ** 2).mean())
        psnr_in += 10 * math.log10(1.0 / max(mse_in, 1e-12))
        still = None
        if prev_in is not None:
            still = ((x - prev_in).abs().amax(1, keepdim=True)
                     <= THRESHOLD).float()
        fl["model"].add(y, still)
        fl["filter"].add(tgt, still)
        fl["input"].add(x, still)
        prev_in = x
        n += 1
    res = {"frames": n, "psnr": psnr / n, "psnr_input": psnr_in / n}
    for k, f in fl.items():
        res["flicker_" + k] = f.value()
    res["still_fraction"] = fl["input"].count / max(1, (n - 1) *
                                                    x.shape[-1] * x.shape[-2])
    res["flicker_ratio"] = res["flicker_model"] / max(res["flicker_filter"],
                                                      1e-9)
    return res


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="+", help="model files (.safetensors)")
    p.add_argument("--look", choices=looks.LOOKS,
                   help="the look to compare with (default: the model's "
                   "'look' metadata)")
    p.add_argument("--clips", nargs="+", default=list(CLIPS),
                   help="evaluation clips (default: Megamind.avi tree.avi)")
    p.add_argument("--max-frames", type=int, default=0,
                   help="frames per clip (0 = all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = {}
    for path in args.models:
        model = nfmodel.Model(path)
        look = model.meta.get("look", args.look)
        if look not in looks.LOOKS:
            look = args.look
        if look is None:
            raise SystemExit("evaluate: %s names no look; pass --look" % path)
        results[path] = {"name": model.name, "look": look,
                         "params": model.params(), "clips": {}}
        for clip in args.clips:
            t0 = time.time()
            r = evaluate_clip(model, look, clip, args.max_frames)
            r["seconds"] = round(time.time() - t0, 1)
            results[path]["clips"][os.path.basename(clip)] = r
            print("%s %s (%s): psnr %.2f dB (input %.2f dB), flicker "
                  "model %.3f filter %.3f input %.3f ratio %.2f, still "
                  "%.0f%%, %d frames, %.0f s"
                  % (model.name, os.path.basename(clip), look, r["psnr"],
                     r["psnr_input"], r["flicker_model"], r["flicker_filter"],
                     r["flicker_input"], r["flicker_ratio"],
                     100 * r["still_fraction"], r["frames"], r["seconds"]),
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
