#!/usr/bin/python3
"""compare-y4m.py - per-frame difference of two .y4m files of equal size.

For checking the Python baseline against build/nextframe: stream the same
clip through both with build/nf-client --output, then

    bench/baselines/compare-y4m.py c.y4m py.y4m [--json FILE]

prints, per frame and over all frames, the mean absolute difference of the
luma (Y) and of all planes in 8-bit levels, the largest single-sample
difference and the PSNR, with the frame count of each file.
"""

import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    p = argparse.ArgumentParser(
        prog="compare-y4m.py",
        description="Per-frame mean absolute difference, max difference and "
        "PSNR between two .y4m files of the same size.")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--json", metavar="FILE", help="write the numbers as JSON")
    p.add_argument("--quiet", action="store_true",
                   help="only the summary, not every frame")
    a = p.parse_args()
    # read_y4m needs only numpy; nfadapter imports torch, which is slow to
    # load but available wherever the baselines run.
    from nfadapter import read_y4m
    wa, ha, _, fa = read_y4m(a.a)
    wb, hb, _, fb = read_y4m(a.b)
    if (wa, ha) != (wb, hb):
        sys.exit("compare-y4m.py: sizes differ: %dx%d vs %dx%d"
                 % (wa, ha, wb, hb))
    n = min(len(fa), len(fb))
    rows = []
    for i in range(n):
        da = [x.astype(np.int16) for x in fa[i] if x is not None]
        db = [x.astype(np.int16) for x in fb[i] if x is not None]
        d = [np.abs(x - y) for x, y in zip(da, db)]
        mad_y = float(d[0].mean())
        tot = sum(int(x.sum()) for x in d)
        cnt = sum(x.size for x in d)
        sq = sum(float((x.astype(np.float64) ** 2).sum()) for x in d)
        mse = sq / cnt
        rows.append({"frame": i, "mad_y": mad_y, "mad_all": tot / cnt,
                     "max": int(max(x.max() for x in d)),
                     "psnr": 99.0 if mse == 0 else
                     10 * math.log10(255 ** 2 / mse)})
        if not a.quiet:
            r = rows[-1]
            print("frame %3d  mad_y %.3f  mad_all %.3f  max %3d  psnr %.2f dB"
                  % (i, r["mad_y"], r["mad_all"], r["max"], r["psnr"]))
    if not rows:
        sys.exit("compare-y4m.py: no frames to compare")
    summ = {"frames_a": len(fa), "frames_b": len(fb), "compared": n,
            "mad_y_mean": float(np.mean([r["mad_y"] for r in rows])),
            "mad_y_max": max(r["mad_y"] for r in rows),
            "mad_all_mean": float(np.mean([r["mad_all"] for r in rows])),
            "max": max(r["max"] for r in rows),
            "psnr_mean": float(np.mean([r["psnr"] for r in rows])),
            "psnr_min": min(r["psnr"] for r in rows)}
    print("frames %d vs %d, compared %d: mad_y mean %.3f max %.3f, mad_all "
          "mean %.3f, max diff %d, psnr mean %.2f min %.2f dB"
          % (summ["frames_a"], summ["frames_b"], n, summ["mad_y_mean"],
             summ["mad_y_max"], summ["mad_all_mean"], summ["max"],
             summ["psnr_mean"], summ["psnr_min"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"summary": summ, "frames": rows}, f, indent=1)


if __name__ == "__main__":
    main()
