#!/usr/bin/env python3
"""plot-gpu.py - draws nf-cuda-bench results as one self-contained SVG.

Reads the output of bench/nf-cuda-bench (lines `name: value unit`, names
`MODE.MODEL.WxH.streamsN.fps`) and draws, per frame size, the frames per
second against the number of streams (log scale) for every CUDA mode, with
the CPU backend's one-stream rate on the same machine as a dashed line.

Python 3 standard library only; the panels are plot-bench.py's.

  python3 bench/plot-gpu.py cudabench.log -o gpu.svg
"""
import argparse
import importlib.util
import os
import re
import sys

_spec = importlib.util.spec_from_file_location(
    "plot_bench", os.path.join(os.path.dirname(__file__), "plot-bench.py"))
pb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pb)

LINE = re.compile(r"^(cpu|cuda-[a-z0-9]+|cuda)\.([^.]+)\.(\d+x\d+)\.streams(\d+)"
                  r"\.fps: ([\d.]+)")


def load(path):
    """{size: {mode: [(streams, fps)]}} from one nf-cuda-bench log."""
    out = {}
    with open(path) as f:
        for text in f:
            m = LINE.match(text)
            if m:
                mode, _, size, streams, fps = m.groups()
                out.setdefault(size, {}).setdefault(mode, []).append(
                    (int(streams), float(fps)))
    if not out:
        sys.exit(f"plot-gpu: {path}: no nf-cuda-bench figures in it")
    return out


def panel(size, modes, x0, title):
    cuda = {k: sorted(v) for k, v in modes.items() if k != "cpu"}
    xs = [s for pts in cuda.values() for s, _ in pts] or [1]
    ys = [f for pts in modes.values() for _, f in pts] or [1]
    p = pb.Panel(x0, 0, f"{title} {size}", "streams (log scale)",
                 "frames/s (all streams)", (min(xs), max(xs) * 1.1),
                 (0, max(ys) * 1.15), xlog=True)
    p.axes([t for t in pb.log_ticks(min(xs), max(xs))],
           pb.nice_ticks(0, max(ys) * 1.15))
    items = []
    for i, (mode, pts) in enumerate(sorted(cuda.items())):
        color = pb.COLORS[i % len(pb.COLORS)]
        p.line(pts, color, markers=True)
        items.append((mode, color))
    if "cpu" in modes:
        fps = modes["cpu"][0][1]
        y = p.py(fps)
        p.out.append(f'<line x1="{p.left}" y1="{y:.1f}" x2="{p.left + p.w}" '
                     f'y2="{y:.1f}" stroke="#555" stroke-dasharray="6,4"/>')
        items.append((f"cpu backend, 1 stream ({fps:.0f}/s)", "#555"))
    p.legend(items, bottom_right=True)
    return p.out


def main():
    ap = argparse.ArgumentParser(
        description="Draw nf-cuda-bench output as an SVG: frames/s per "
        "stream count for each CUDA mode and frame size, the CPU backend's "
        "one-stream rate dashed.")
    ap.add_argument("log", help="nf-cuda-bench's output")
    ap.add_argument("-o", "--output", default="gpu.svg",
                    help="SVG to write (default gpu.svg)")
    ap.add_argument("--title", default="toon on the GPU,",
                    help="title before the size (default 'toon on the GPU,')")
    args = ap.parse_args()
    data = load(args.log)
    body = []
    for i, size in enumerate(sorted(data, key=lambda s: int(s.split("x")[0]))):
        body += panel(size, data[size], i * pb.PANEL_W, args.title)
    width, height = pb.PANEL_W * len(data), pb.PANEL_H
    with open(args.output, "w") as f:
        f.write(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
                f'height="{height}" font-family="sans-serif" font-size="12">'
                f'<rect width="100%" height="100%" fill="white"/>'
                + "".join(body) + "</svg>\n")
    print(f"plot-gpu: wrote {args.output}")


if __name__ == "__main__":
    main()
