#!/usr/bin/python3
"""export.py - writes a trained style network as a nextframe model file.

The file is safetensors with the graph in __metadata__ (kernels/MODEL.md):
BatchNorm folded into the convolutions, only MODEL.md ops, F32 tensors.
Besides the nf.* keys the loader interprets, it records what a user needs
to know about the model under plain keys (kept, not interpreted, by the
loader): look, params, flops_640x480, input (the size rule), train.data,
train.command, train.seed, train.steps.

    /usr/bin/python3 tools/train/export.py --ckpt CKPT.pt --out MODEL.safetensors

train.py --export does the same at the end of training. The output is
byte-for-byte deterministic for a given checkpoint.
"""

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import looks  # noqa: E402
import net as netmod  # noqa: E402
import nfmodel  # noqa: E402


def metadata(model, name, description, info):
    """The nf.* keys plus the informative plain keys."""
    nodes, _ = netmod.graph(model)
    meta = {
        "nf.format": "1",
        "nf.name": name,
        "nf.description": description,
        "nf.cache_frames": str(model.k),
        "nf.size_multiple": str(netmod.SIZE_MULTIPLE),
        "nf.graph": json.dumps({"nodes": nodes, "output": "output"},
                               separators=(",", ":")),
        "params": str(netmod.params(model)),
        "flops_640x480": str(netmod.flops(model, 640, 480)),
        "input": "RGB in [0, 1], any size; padded internally to a multiple "
                 "of %d" % netmod.SIZE_MULTIPLE,
        "architecture": "nextframe StyleNet k=%d c1=%d c2=%d (tools/train/"
                        "net.py)" % (model.k, model.c1, model.c2),
    }
    for k, v in info.items():
        meta[k] = str(v)
    return meta


def export(model, path, name, description, info):
    model = model.eval()
    _, tensors = netmod.graph(model)
    return nfmodel.write(path, tensors,
                         metadata(model, name, description, info))


def from_checkpoint(ckpt_path):
    """(model, info) from a train.py checkpoint."""
    ck = torch.load(ckpt_path, map_location="cpu")
    a = ck["args"]
    model = netmod.StyleNet(k=a["k"], c1=a["c1"], c2=a["c2"])
    model.load_state_dict(ck["model"])
    model.eval()
    return model, ck


def describe(ck):
    """(name, description, info) for a checkpoint's model."""
    a = ck["args"]
    if a.get("pairs"):
        look = "pairs"
        desc = ("Distilled from the (input, target) pairs in %s."
                % a["pairs"])
        source = "pairs from %s" % a["pairs"]
    else:
        look = a["look"]
        desc = looks.DESCRIPTIONS[look]
        source = "; ".join(data.SOURCES)
    name = a.get("name") or look
    info = {
        "look": look,
        "train.data": source + "; synthetic camera motion, lighting drift "
                      "and sensor noise (tools/train/data.py)",
        "train.command": ck.get("command", ""),
        "train.seed": a["seed"],
        "train.steps": ck["step"],
    }
    return name, desc + " Temporal (K=%d) real-time network." % a["k"], info


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ckpt", required=True, help="train.py checkpoint (.pt)")
    p.add_argument("--out", required=True, help="model file to write")
    p.add_argument("--name", help="nf.name (default: the checkpoint's)")
    args = p.parse_args(argv)
    model, ck = from_checkpoint(args.ckpt)
    name, desc, info = describe(ck)
    n = export(model, args.out, args.name or name, desc, info)
    print("export: wrote %s (%d bytes, %d params)"
          % (args.out, n, netmod.params(model)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
