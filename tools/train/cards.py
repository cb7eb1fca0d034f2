#!/usr/bin/python3
"""cards.py - model cards and the style picture for the shipped models.

Writes models/<look>.md for each model found in the evaluation results
(evaluate.py --json) with its look, data, size, cost and measured fidelity
and flicker, and a picture (--figure) of an evaluation frame: the input
and each model's output (top row, after the model has run over the clip's
earlier frames, so its cache is warm) above each look's per-frame filter
(bottom row).

    /usr/bin/python3 tools/train/cards.py --eval build/train/eval-*.json \\
        --train-dir build/train --figure docs/img/styles.png
"""

import argparse
import json
import os
import re
import sys

import torch
from PIL import Image, ImageDraw

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import evaluate  # noqa: E402
import looks  # noqa: E402
import net as netmod  # noqa: E402
import nfmodel  # noqa: E402

FIGURE_CLIP = evaluate.CLIPS[0]
FIGURE_FRAME = 60


def train_stats(train_dir, look):
    """(steps, minutes, last logged train PSNR) from make-models' files."""
    steps = minutes = psnr = None
    log = os.path.join(train_dir, look + ".log")
    if os.path.exists(log):
        for line in open(log):
            m = re.match(r"step (\d+)/\d+ .*psnr ([\d.]+) dB", line)
            if m:
                steps, psnr = int(m.group(1)), float(m.group(2))
    sec = os.path.join(train_dir, look + ".seconds")
    if os.path.exists(sec):
        minutes = int(open(sec).read().strip()) / 60.0
    return steps, minutes, psnr


def card(path, res, train_dir):
    m = nfmodel.Model(path)
    look = res["look"]
    probe = netmod.StyleNet(k=m.k)
    fl = {r: netmod.flops(probe, *r) / 1e9
          for r in ((320, 240), (640, 480), (1280, 720))}
    steps, minutes, tpsnr = train_stats(train_dir, look)
    rows = []
    for clip, r in sorted(res["clips"].items()):
        rows.append("| %s | %d | %.2f | %.2f | %.3f | %.3f | %.3f | %.2f |"
                    % (clip, r["frames"], r["psnr"], r["psnr_input"],
                       r["flicker_model"], r["flicker_filter"],
                       r["flicker_input"], r["flicker_ratio"]))
    text = """# Model card: %(name)s

`models/%(file)s` - %(desc)s

| | |
|---|---|
| look | `%(look)s`: per-frame target `looks.%(look)s()` in tools/train/looks.py |
| network | StyleNet (tools/train/net.py), K = %(k)d cached frames, size multiple %(mult)d |
| parameters | %(params)d |
| FLOPs per frame | %(f1).2f G at 320x240, %(f2).2f G at 640x480, %(f3).2f G at 1280x720 |
| training data | %(data)s |
| training | `%(cmd)s`: %(steps)s steps, %(minutes)s wall time on one thread (make-models.sh trains the three models side by side on the 2-core machine); last logged training PSNR %(tpsnr)s dB |

Evaluation on opencv-doc's clips (never used for training), the model run
recurrently from a cold cache as the runtime does. PSNR against the look's
per-frame filter on the same frames (and of the unchanged input, for
scale). Flicker: mean absolute frame-to-frame output change in 8-bit
levels over the pixels whose input did not change (every channel within
3/255), for the model, the per-frame filter and the input; ratio = model /
filter.

| clip | frames | PSNR dB | input PSNR dB | flicker model | flicker filter | flicker input | ratio |
|---|---|---|---|---|---|---|---|
%(rows)s

Reproduce: `make models` (tools/train/make-models.sh).
""" % {
        "name": m.name, "file": os.path.basename(path),
        "desc": m.meta.get("nf.description", ""), "look": look, "k": m.k,
        "mult": m.multiple, "params": m.params(), "f1": fl[(320, 240)],
        "f2": fl[(640, 480)], "f3": fl[(1280, 720)],
        "data": m.meta.get("train.data", ""),
        "cmd": m.meta.get("train.command", ""),
        "steps": m.meta.get("train.steps", steps),
        "minutes": "%.1f min" % minutes if minutes else "(time not recorded)",
        "tpsnr": "%.2f" % tpsnr if tpsnr else "?", "rows": "\n".join(rows)}
    out = os.path.splitext(path)[0] + ".md"
    with open(out, "w") as f:
        f.write(text)
    print("cards: wrote %s" % out)


def to_image(x):
    a = (x[0].clamp(0, 1) * 255 + 0.5).byte().permute(1, 2, 0).numpy()
    return Image.fromarray(a)


def figure(paths, out, width=360):
    models = [nfmodel.Model(p) for p in paths]
    seq = list(evaluate.frames(FIGURE_CLIP, FIGURE_FRAME + 1))
    outs = []
    for m in models:
        m.reset()
        for x in seq:
            y = m.step(x)
        outs.append(y)
    x = seq[-1]
    top = [("input", x)] + [("%s (network)" % m.name, y)
                            for m, y in zip(models, outs)]
    bottom = [("", None)] + [
        ("%s (per-frame filter)" % m.meta.get("look", m.name),
         looks.apply(m.meta.get("look", m.name), x)) for m in models]
    h = round(x.shape[-2] * width / x.shape[-1])
    pad = 18
    canvas = Image.new("RGB", (width * len(top), 2 * (h + pad)), "white")
    draw = ImageDraw.Draw(canvas)
    for row, items in enumerate((top, bottom)):
        for col, (label, img) in enumerate(items):
            if img is None:
                continue
            im = to_image(img).resize((width, h), Image.LANCZOS)
            canvas.paste(im, (col * width, row * (h + pad) + pad))
            draw.text((col * width + 4, row * (h + pad) + 3), label,
                      fill="black")
    canvas.save(out, optimize=True)
    print("cards: wrote %s (%s, frame %d)"
          % (out, os.path.basename(FIGURE_CLIP), FIGURE_FRAME))


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--eval", required=True, nargs="+",
                   help="evaluate.py --json outputs")
    p.add_argument("--train-dir", default="build/train")
    p.add_argument("--figure", help="write the style picture here (.png)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    results = {}
    for path in args.eval:
        with open(path) as f:
            results.update(json.load(f))
    for path, res in sorted(results.items()):
        card(path, res, args.train_dir)
    if args.figure:
        figure(sorted(results), args.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
