#!/usr/bin/env python3
"""plot-rss.py - a process's resident memory over time, as one SVG.

Reads samples of (seconds, RSS in KiB), either a CSV with columns t_s and
rss_kib (bench/soak.sh's soak.csv) or whitespace-separated "seconds
rss_kib" lines with one header line (bench/run.sh's memory-long.txt), and
draws RSS in MiB against minutes; with --warmup-s the warm-up is shaded,
with --limit-pct a dashed line marks that much growth over the RSS right
after the warm-up.

Python 3 standard library only; the SVG is written by hand.

  python3 bench/plot-rss.py SAMPLES -o rss.svg [--title T] [--warmup-s S]
                            [--limit-pct P]
"""
import argparse
import csv
import math
from xml.sax.saxutils import escape

W, H, L, R, T, B = 760, 380, 70, 20, 40, 50


def load(path):
    """[(seconds, kib)] from either format."""
    with open(path) as f:
        head = f.readline()
        f.seek(0)
        if "," in head:
            rows = csv.DictReader(f)
            return [(float(r["t_s"]), float(r["rss_kib"])) for r in rows
                    if r.get("rss_kib")]
        next(f)
        return [tuple(float(v) for v in line.split()[:2]) for line in f
                if len(line.split()) >= 2]


def ticks(lo, hi, n=6):
    step = 10 ** math.floor(math.log10(max(hi - lo, 1e-9) / n))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= n:
            step *= m
            break
    return [i * step for i in range(int(lo / step), int(hi / step) + 1)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("samples")
    ap.add_argument("-o", "--output", default="rss.svg")
    ap.add_argument("--title", default="server resident memory")
    ap.add_argument("--warmup-s", type=float, default=0)
    ap.add_argument("--limit-pct", type=float, default=0)
    a = ap.parse_args()
    pts = [(s / 60.0, kib / 1024.0) for s, kib in load(a.samples) if kib > 0]
    if not pts:
        raise SystemExit(f"plot-rss: {a.samples}: no samples")
    warm = a.warmup_s / 60.0
    after = [y for x, y in pts if x >= warm]
    base = after[0] if after else pts[0][1]
    lim = base * (1 + a.limit_pct / 100.0) if a.limit_pct else 0
    x_hi = pts[-1][0] or 1
    y_lo, y_hi = 0.0, max([y for _, y in pts] + [lim]) * 1.15

    def px(x):
        return L + x / x_hi * (W - L - R)

    def py(y):
        return T + (H - T - B) * (1 - (y - y_lo) / (y_hi - y_lo))

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         'font-family="sans-serif" font-size="12">',
         '<rect width="100%" height="100%" fill="white"/>',
         f'<text x="{W / 2}" y="22" text-anchor="middle" '
         f'font-weight="bold">{escape(a.title)}</text>',
         f'<text x="{(L + W - R) / 2}" y="{H - 10}" text-anchor="middle">'
         'minutes</text>',
         f'<text transform="translate(18,{(T + H - B) / 2}) rotate(-90)" '
         'text-anchor="middle">resident memory (MiB)</text>']
    if warm > 0:
        o.append(f'<rect x="{px(0):.1f}" y="{T}" '
                 f'width="{px(warm) - px(0):.1f}" height="{H - T - B}" '
                 'fill="#eee"/>')
        o.append(f'<text x="{px(0) + 4:.1f}" y="{T + 14}" fill="#777">'
                 'warm-up</text>')
    for x in ticks(0, x_hi):
        o.append(f'<line x1="{px(x):.1f}" y1="{T}" x2="{px(x):.1f}" '
                 f'y2="{H - B}" stroke="#ddd"/>')
        o.append(f'<text x="{px(x):.1f}" y="{H - B + 16}" '
                 f'text-anchor="middle">{x:g}</text>')
    for y in ticks(y_lo, y_hi):
        o.append(f'<line x1="{L}" y1="{py(y):.1f}" x2="{W - R}" '
                 f'y2="{py(y):.1f}" stroke="#ddd"/>')
        o.append(f'<text x="{L - 6}" y="{py(y) + 4:.1f}" '
                 f'text-anchor="end">{y:g}</text>')
    if lim:
        o.append(f'<line x1="{px(warm):.1f}" y1="{py(lim):.1f}" '
                 f'x2="{W - R}" y2="{py(lim):.1f}" stroke="#d62728" '
                 'stroke-dasharray="6,4"/>')
        o.append(f'<text x="{W - R - 4}" y="{py(lim) - 5:.1f}" '
                 'text-anchor="end" fill="#d62728">'
                 f'+{a.limit_pct:g}% over the RSS after the warm-up</text>')
    o.append('<polyline fill="none" stroke="#1f77b4" stroke-width="1.8" '
             'points="' + " ".join(f"{px(x):.1f},{py(y):.1f}"
                                   for x, y in pts) + '"/>')
    o.append(f'<rect x="{L}" y="{T}" width="{W - L - R}" '
             f'height="{H - T - B}" fill="none" stroke="#333"/>')
    o.append("</svg>")
    with open(a.output, "w") as f:
        f.write("\n".join(o) + "\n")


if __name__ == "__main__":
    main()
