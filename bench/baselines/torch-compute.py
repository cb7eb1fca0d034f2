#!/usr/bin/python3
"""torch-compute.py - the PyTorch model alone, as a compute-only reference.

Decodes a .y4m (or a folder of images) once, scales the frames to each
requested resolution, converts them to float tensors, then times only the
model's forward passes (tools/train/nfmodel.py's graph through
bench/baselines/nfadapter.py, with the per-stream cache rotating as in
kernels/MODEL.md section 7) after a warm-up. No JPEG, no network, no 8-bit
conversion: the least any PyTorch server has to spend per frame.

    bench/baselines/torch-compute.py CLIP.y4m --sizes 640x480,320x240 \\
        --frames 100 --threads 2 --json out.json

Prints per resolution the ms per frame (p50, p95, mean, min), frames per
second at the median and GFLOP/s (kernels/MODEL.md section 9 FLOPs divided
by the median time). Progress goes to stderr.
"""

import argparse
import os
import sys


def parse_args():
    p = argparse.ArgumentParser(
        prog="torch-compute.py",
        description="Time the nextframe model's forward passes in PyTorch "
        "(CPU) on frames decoded once: a compute-only reference for the "
        "benchmark.")
    p.add_argument("input", help="a .y4m file, or a folder of images "
                   "(.png .jpg .jpeg .ppm .bmp, sorted by name)")
    p.add_argument("--model", default=None, metavar="FILE",
                   help="model file (default models/toon.safetensors)")
    p.add_argument("--sizes", default="640x480,320x240", metavar="WxH,...",
                   help="resolutions to time (default 640x480,320x240)")
    p.add_argument("--frames", type=int, default=100, metavar="N",
                   help="timed forward passes per resolution (default 100)")
    p.add_argument("--warmup", type=int, default=10, metavar="N",
                   help="untimed passes first, per resolution (default 10)")
    p.add_argument("--input-frames", type=int, default=30, metavar="N",
                   help="decode at most N input frames and cycle through "
                   "them (default 30)")
    p.add_argument("--threads", type=int, default=0, metavar="N",
                   help="torch.set_num_threads(N); 0 = the CPUs this process "
                   "may run on (default 0)")
    p.add_argument("--no-channels-last", action="store_true",
                   help="NCHW (contiguous) tensors instead of channels_last")
    p.add_argument("--no-malloc-tuning", action="store_true",
                   help="leave glibc malloc at its defaults (see "
                   "nfadapter.tune_malloc)")
    p.add_argument("--json", metavar="FILE",
                   help="also write the results as JSON to FILE")
    a = p.parse_args()
    sizes = []
    for s in a.sizes.split(","):
        try:
            w, h = (int(x) for x in s.lower().split("x"))
        except ValueError:
            p.error("bad size '%s' (want WxH)" % s)
        if w < 1 or h < 1:
            p.error("bad size '%s'" % s)
        sizes.append((w, h))
    a.sizes = sizes
    if a.frames < 1 or a.warmup < 0 or a.input_frames < 1 or a.threads < 0:
        p.error("--frames and --input-frames must be >= 1, --warmup and "
                "--threads >= 0")
    return a


ARGS = parse_args()

# As in py-server.py and build/nextframe: idle OpenMP threads sleep.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nfadapter  # noqa: E402


def progress(*a):
    print("torch-compute:", *a, file=sys.stderr, flush=True)


def load_frames(path, limit):
    """A list of PIL RGB images."""
    if os.path.isdir(path):
        exts = (".png", ".jpg", ".jpeg", ".ppm", ".bmp")
        names = sorted(n for n in os.listdir(path)
                       if n.lower().endswith(exts))[:limit]
        if not names:
            sys.exit("torch-compute.py: %s: no images" % path)
        return [Image.open(os.path.join(path, n)).convert("RGB")
                for n in names]
    _, _, params, planes = nfadapter.read_y4m(path, limit)
    if not planes:
        sys.exit("torch-compute.py: %s: no frames" % path)
    full = nfadapter.y4m_full_range(params)
    return [Image.fromarray(nfadapter.yuv_to_rgb(p, full), "RGB")
            for p in planes]


def pct(sorted_ms, q):
    i = min(len(sorted_ms) - 1, max(0, int(round(q * (len(sorted_ms) - 1)))))
    return sorted_ms[i]


def main(a):
    malloc_tuned = False if a.no_malloc_tuning else nfadapter.tune_malloc()
    threads = a.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    model = nfadapter.TorchModel(a.model or nfadapter.DEFAULT_MODEL,
                                 channels_last=not a.no_channels_last)
    progress("model %s (K=%d, %d params), %d threads, %s, malloc %s, "
             "torch %s" % (model.name, model.k, model.params(), threads,
                           "NCHW" if a.no_channels_last else "channels_last",
                           "tuned" if malloc_tuned else "default",
                           torch.__version__))
    t = time.perf_counter()
    images = load_frames(a.input, a.input_frames)
    progress("decoded %d frames of %dx%d from %s in %.2f s"
             % (len(images), images[0].width, images[0].height, a.input,
                time.perf_counter() - t))
    results = []
    for (w, h) in a.sizes:
        xs = []
        for im in images:
            if im.size != (w, h):
                im = im.resize((w, h), Image.BILINEAR)
            xs.append(model.from_rgb(np.array(im)))
        state = nfadapter.StreamState()
        flops = model.flops(w, h)
        progress("%dx%d: %.3f GFLOP per frame, %d warm-up + %d timed passes"
                 % (w, h, flops / 1e9, a.warmup, a.frames))
        for i in range(a.warmup):
            model.step(state, xs[i % len(xs)])
        ms = []
        t_all = time.perf_counter()
        last = t_all
        for i in range(a.frames):
            x = xs[(a.warmup + i) % len(xs)]
            t0 = time.perf_counter_ns()
            model.step(state, x)
            ms.append((time.perf_counter_ns() - t0) / 1e6)
            now = time.perf_counter()
            if now - last > 5:
                progress("%dx%d: %d/%d, median so far %.2f ms"
                         % (w, h, i + 1, a.frames, float(np.median(ms))))
                last = now
        s = sorted(ms)
        p50 = pct(s, 0.5)
        r = {"width": w, "height": h, "frames": a.frames,
             "warmup": a.warmup, "ms_p50": p50, "ms_p95": pct(s, 0.95),
             "ms_mean": float(np.mean(s)), "ms_min": s[0], "ms_max": s[-1],
             "fps_p50": 1000.0 / p50, "gflop_per_frame": flops / 1e9,
             "gflops_p50": flops / 1e9 / (p50 / 1000.0),
             "wall_s": time.perf_counter() - t_all}
        results.append(r)
        print("%4dx%-4d  p50 %8.2f ms  p95 %8.2f ms  mean %8.2f ms  min "
              "%8.2f ms  %7.1f fps  %.3f GFLOP/frame  %6.2f GFLOP/s"
              % (w, h, r["ms_p50"], r["ms_p95"], r["ms_mean"], r["ms_min"],
                 r["fps_p50"], r["gflop_per_frame"], r["gflops_p50"]),
              flush=True)
    if a.json:
        out = {"tool": "torch-compute.py", "model": model.path,
               "model_name": model.name, "cache_frames": model.k,
               "params": model.params(), "input": a.input,
               "input_frames": len(images), "threads": threads,
               "channels_last": not a.no_channels_last,
               "malloc_tuned": malloc_tuned,
               "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
               "torch": torch.__version__, "mode": "torch.inference_mode",
               "results": results}
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
        progress("wrote %s" % a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
