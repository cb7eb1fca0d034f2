#!/usr/bin/env python3
"""plot-bench.py - draws nf-bench results as one self-contained SVG.

Reads one or more JSON files written by `nf-bench --json` and draws:

  (a) the latency distribution (CDF) of each run, on a log time axis;
  (b) throughput (replies/s, all streams) and (c) p99 latency against the
      number of streams, when the runs differ in --streams. Runs with the
      same --label form one line there, so label a series of runs alike
      (say "ours" and "baseline") and vary --streams.

Python 3 standard library only; the SVG is written by hand.

  python3 bench/plot-bench.py a.json b.json ... -o bench.svg
"""
import argparse
import json
import math
import sys
from xml.sax.saxutils import escape

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
PANEL_W, PANEL_H = 520, 340
MARGIN = dict(left=64, right=16, top=36, bottom=48)


def load(path):
    with open(path) as f:
        run = json.load(f)
    if run.get("tool") != "nf-bench" or "latency_us_sorted" not in run:
        sys.exit(f"plot-bench: {path}: not an nf-bench --json file")
    run["_label"] = run.get("label") or path.rsplit("/", 1)[-1]
    return run


def nice_ticks(lo, hi, n=5):
    """About n round tick values covering [lo, hi] on a linear axis."""
    if hi <= lo:
        hi = lo + 1
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= n:
            step *= m
            break
    first = math.floor(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 2)
            if first + i * step <= hi + step * 1e-9]


def log_ticks(lo, hi):
    """1-2-5 tick values between lo and hi (both > 0)."""
    ticks = []
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10 ** e
            if lo <= v <= hi:
                ticks.append(v)
    return ticks


def fmt(v):
    return f"{v:g}" if v < 1e5 else f"{v:.3g}"


class Panel:
    """One plot area at (x0, y0) with scales from data to pixels."""

    def __init__(self, x0, y0, title, xlabel, ylabel, xr, yr, xlog=False):
        self.x0, self.y0, self.xr, self.yr, self.xlog = x0, y0, xr, yr, xlog
        self.w = PANEL_W - MARGIN["left"] - MARGIN["right"]
        self.h = PANEL_H - MARGIN["top"] - MARGIN["bottom"]
        self.left = x0 + MARGIN["left"]
        self.top = y0 + MARGIN["top"]
        self.out = [
            f'<text x="{x0 + PANEL_W / 2}" y="{y0 + 20}" '
            f'text-anchor="middle" font-weight="bold">{escape(title)}</text>',
            f'<text x="{self.left + self.w / 2}" y="{y0 + PANEL_H - 8}" '
            f'text-anchor="middle">{escape(xlabel)}</text>',
            f'<text transform="translate({x0 + 16},{self.top + self.h / 2}) '
            f'rotate(-90)" text-anchor="middle">{escape(ylabel)}</text>',
        ]

    def px(self, x):
        lo, hi = self.xr
        if self.xlog:
            x, lo, hi = math.log10(x), math.log10(lo), math.log10(hi)
        return self.left + (x - lo) / (hi - lo) * self.w

    def py(self, y):
        lo, hi = self.yr
        return self.top + self.h - (y - lo) / (hi - lo) * self.h

    def axes(self, xticks, yticks):
        o = self.out
        for x in xticks:
            p = self.px(x)
            o.append(f'<line x1="{p:.1f}" y1="{self.top}" x2="{p:.1f}" '
                     f'y2="{self.top + self.h}" stroke="#ddd"/>')
            o.append(f'<text x="{p:.1f}" y="{self.top + self.h + 16}" '
                     f'text-anchor="middle">{fmt(x)}</text>')
        for y in yticks:
            p = self.py(y)
            o.append(f'<line x1="{self.left}" y1="{p:.1f}" '
                     f'x2="{self.left + self.w}" y2="{p:.1f}" stroke="#ddd"/>')
            o.append(f'<text x="{self.left - 6}" y="{p + 4:.1f}" '
                     f'text-anchor="end">{fmt(y)}</text>')
        o.append(f'<rect x="{self.left}" y="{self.top}" width="{self.w}" '
                 f'height="{self.h}" fill="none" stroke="#333"/>')

    def line(self, pts, color, markers=False):
        xy = " ".join(f"{self.px(x):.1f},{self.py(y):.1f}" for x, y in pts)
        self.out.append(f'<polyline points="{xy}" fill="none" '
                        f'stroke="{color}" stroke-width="1.8"/>')
        if markers:
            for x, y in pts:
                self.out.append(f'<circle cx="{self.px(x):.1f}" '
                                f'cy="{self.py(y):.1f}" r="3" fill="{color}"/>')

    def legend(self, items, bottom_right=False):
        """A legend box in the top-left (or bottom-right) corner."""
        bw = 40 + 7 * max((len(name) for name, _ in items), default=0)
        bh = 16 * len(items) + 6
        x = self.left + self.w - bw - 6 if bottom_right else self.left + 6
        y0 = self.top + self.h - bh - 6 if bottom_right else self.top + 6
        self.out.append(f'<rect x="{x}" y="{y0}" width="{bw}" height="{bh}" '
                        f'fill="white" fill-opacity="0.85" stroke="#bbb"/>')
        for i, (name, color) in enumerate(items):
            y = y0 + 16 + 16 * i
            self.out.append(f'<line x1="{x + 6}" y1="{y - 4}" '
                            f'x2="{x + 26}" y2="{y - 4}" '
                            f'stroke="{color}" stroke-width="3"/>')
            self.out.append(f'<text x="{x + 32}" y="{y}">'
                            f'{escape(name)}</text>')


def cdf_panel(runs, x0, y0, varying):
    lat = [[v / 1000 for v in r["latency_us_sorted"]] for r in runs]
    vals = [v for lst in lat for v in lst if v > 0]
    lo = 10 ** math.floor(math.log10(min(vals))) if vals else 1
    hi = max(vals) * 1.05 if vals else 10
    p = Panel(x0, y0, "Latency distribution", "latency (ms, log scale)",
              "fraction of replies", (lo, hi), (0, 1), xlog=True)
    p.axes(log_ticks(lo, hi), [0, 0.25, 0.5, 0.75, 0.9, 1])
    items = []
    for i, (r, lst) in enumerate(zip(runs, lat)):
        color = COLORS[i % len(COLORS)]
        # At most ~400 points: the CDF's shape, not every sample.
        n = len(lst)
        idx = sorted(set(list(range(0, n, max(1, n // 400))) + [n - 1]))
        pts = [(max(lst[j], lo), (j + 1) / n) for j in idx] if n else []
        if pts:
            p.line([(pts[0][0], 0)] + pts, color)
        n_str = r["streams"]
        name = r["_label"] + (f" ({n_str} stream{'s' * (n_str != 1)})"
                              if varying else "")
        items.append((name, color))
    p.legend(items, bottom_right=True)
    return p.out


def scaling_panel(series, x0, y0, title, ylabel, key):
    xs = [s for pts in series.values() for s, _ in pts]
    ys = [key(r) for pts in series.values() for _, r in pts]
    # Headroom above the highest point for the legend in the top-left.
    top = max(ys) * 1.35 or 1
    p = Panel(x0, y0, title, "streams", ylabel, (0, max(xs) * 1.05), (0, top))
    p.axes([t for t in nice_ticks(0, max(xs)) if t == int(t)],
           nice_ticks(0, top))
    items = []
    for i, (label, pts) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        p.line([(s, key(r)) for s, r in sorted(pts, key=lambda t: t[0])],
               color, markers=True)
        items.append((label, color))
    p.legend(items)
    return p.out


def main():
    ap = argparse.ArgumentParser(
        description="Draw nf-bench --json results as an SVG: the latency "
        "CDF of each run and, when runs differ in --streams, throughput and "
        "p99 latency per stream count (runs with the same --label form one "
        "line).")
    ap.add_argument("runs", nargs="+", metavar="RUN.json")
    ap.add_argument("-o", "--output", default="bench.svg",
                    help="SVG to write (default bench.svg)")
    args = ap.parse_args()
    runs = [load(p) for p in args.runs]
    varying = len({r["streams"] for r in runs}) > 1
    body = cdf_panel(runs, 0, 0, varying)
    width, height = PANEL_W, PANEL_H
    if varying:
        series = {}
        for r in runs:
            series.setdefault(r["_label"], []).append((r["streams"], r))
        body += scaling_panel(series, PANEL_W, 0, "Throughput",
                              "replies/s (all streams)",
                              lambda r: r["total"]["throughput_fps"])
        body += scaling_panel(series, 2 * PANEL_W, 0, "Tail latency",
                              "p99 latency (ms)",
                              lambda r: r["total"]["latency_ms"]["p99"])
        width = 3 * PANEL_W
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" font-family="sans-serif" font-size="12">\n'
           f'<rect width="100%" height="100%" fill="white"/>\n'
           + "\n".join(body) + "\n</svg>\n")
    with open(args.output, "w") as f:
        f.write(svg)
    print(f"plot-bench: wrote {args.output} ({len(runs)} runs)")


if __name__ == "__main__":
    main()
