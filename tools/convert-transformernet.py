#!/usr/bin/python3
"""convert-transformernet.py - fast-neural-style TransformerNet -> nextframe.

Converts a state_dict of the TransformerNet of pytorch/examples'
fast_neural_style (Johnson et al. 2016 with instance norm and upsampling
convolutions; the published candy, mosaic, rain_princess and udnie .pth
files are such state_dicts) into a nextframe model file
(kernels/MODEL.md), so that those styles run per frame in nextframe. The
result has K = 0: it reads no cache and so is not temporally stabilized.

The network, as the TransformerNet class below (widths 32, 64, 128):

    x * 255 -> ConvLayer(3, 32, 9, 1) -> IN -> relu
            -> ConvLayer(32, 64, 3, 2) -> IN -> relu
            -> ConvLayer(64, 128, 3, 2) -> IN -> relu
            -> 5 x ResidualBlock(128): conv3 IN relu conv3 IN, + input
            -> UpsampleConvLayer(128, 64, 3, 1, upsample=2) -> IN -> relu
            -> UpsampleConvLayer(64, 32, 3, 1, upsample=2) -> IN -> relu
            -> ConvLayer(32, 3, 9, 1) -> / 255

ConvLayer pads by reflection (kernel // 2); UpsampleConvLayer first
upsamples by 2 (nearest). InstanceNorm2d is affine with eps 1e-5. The
network works on 0..255 pixels: the model file scales the input by 255 and
the output by 1/255 (scale_shift). Keys "inN.running_mean/var" of old
PyTorch versions are ignored, as the examples' own loader does. Channel
widths are read from the weights, so narrower variants convert too.

    /usr/bin/python3 tools/convert-transformernet.py candy.pth \\
        --name candy --out models/candy.safetensors
    /usr/bin/python3 tools/convert-transformernet.py --self-test

--self-test converts a randomly initialised TransformerNet and compares
the converted graph (run by tools/train/nfmodel.py) with the network.
"""

import argparse
import os
import re
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "train"))
import nfmodel  # noqa: E402


# The network, written from the architecture of pytorch/examples'
# fast_neural_style/neural_style/transformer_net.py (same module names, so
# the same state_dict keys).
class ConvLayer(nn.Module):
    def __init__(self, cin, cout, kernel_size, stride):
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(cin, cout, kernel_size, stride)

    def forward(self, x):
        return self.conv2d(self.reflection_pad(x))


class ResidualBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3, 1)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, 3, 1)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x):
        y = self.relu(self.in1(self.conv1(x)))
        return self.in2(self.conv2(y)) + x


class UpsampleConvLayer(nn.Module):
    def __init__(self, cin, cout, kernel_size, stride, upsample=None):
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(cin, cout, kernel_size, stride)

    def forward(self, x):
        if self.upsample:
            x = F.interpolate(x, mode="nearest", scale_factor=self.upsample)
        return self.conv2d(self.reflection_pad(x))


class TransformerNet(nn.Module):
    """widths=(32, 64, 128) is the published network."""

    def __init__(self, widths=(32, 64, 128)):
        super().__init__()
        a, b, c = widths
        self.conv1 = ConvLayer(3, a, 9, 1)
        self.in1 = nn.InstanceNorm2d(a, affine=True)
        self.conv2 = ConvLayer(a, b, 3, 2)
        self.in2 = nn.InstanceNorm2d(b, affine=True)
        self.conv3 = ConvLayer(b, c, 3, 2)
        self.in3 = nn.InstanceNorm2d(c, affine=True)
        self.res1 = ResidualBlock(c)
        self.res2 = ResidualBlock(c)
        self.res3 = ResidualBlock(c)
        self.res4 = ResidualBlock(c)
        self.res5 = ResidualBlock(c)
        self.deconv1 = UpsampleConvLayer(c, b, 3, 1, upsample=2)
        self.in4 = nn.InstanceNorm2d(b, affine=True)
        self.deconv2 = UpsampleConvLayer(b, a, 3, 1, upsample=2)
        self.in5 = nn.InstanceNorm2d(a, affine=True)
        self.deconv3 = ConvLayer(a, 3, 9, 1)
        self.relu = nn.ReLU()

    def forward(self, x):
        y = self.relu(self.in1(self.conv1(x)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        y = self.res5(self.res4(self.res3(self.res2(self.res1(y)))))
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)


class Graph:
    """Builds MODEL.md nodes and tensors from a state_dict."""

    def __init__(self, sd):
        self.sd, self.nodes, self.tensors = sd, [], {}

    def tensor(self, key, name=None):
        if key not in self.sd:
            raise SystemExit("convert: state_dict has no '%s'" % key)
        self.tensors[name or key] = self.sd[key].detach().float().clone()
        return name or key

    def node(self, name, op, inputs, **attrs):
        n = {"name": name, "op": op, "inputs": list(inputs)}
        n.update(attrs)
        self.nodes.append(n)
        return name

    def conv(self, prefix, x, stride=1):
        w = self.tensor(prefix + ".conv2d.weight")
        b = self.tensor(prefix + ".conv2d.bias")
        k = self.tensors[w].shape[2]
        return self.node(prefix, "conv2d", [x], weight=w, bias=b,
                         stride=stride, padding=k // 2, pad_mode="reflect")

    def inorm(self, prefix, x):
        w = self.tensor(prefix + ".weight")
        b = self.tensor(prefix + ".bias")
        return self.node(prefix, "instance_norm", [x], weight=w, bias=b,
                         eps=1e-5)

    def block(self, conv, norm, x, stride=1, relu=True):
        y = self.inorm(norm, self.conv(conv, x, stride))
        return self.node(norm + "_relu", "relu", [y]) if relu else y


def build(sd):
    """(nodes, tensors) of the converted network."""
    sd = {k: v for k, v in sd.items()
          if not re.search(r"in\d+\.running_(mean|var)$", k)}
    g = Graph(sd)
    g.tensors["scale_in"] = torch.full((3,), 255.0)
    g.tensors["scale_out"] = torch.full((3,), 1.0 / 255.0)
    x = g.node("input255", "scale_shift", ["frame"], weight="scale_in")
    x = g.block("conv1", "in1", x)
    x = g.block("conv2", "in2", x, stride=2)
    x = g.block("conv3", "in3", x, stride=2)
    for i in range(1, 6):
        r = "res%d" % i
        y = g.block(r + ".conv1", r + ".in1", x)
        y = g.block(r + ".conv2", r + ".in2", y, relu=False)
        x = g.node(r, "add", [y, x])
    for i, n in ((1, 4), (2, 5)):
        up = g.node("up%d" % i, "upsample2x_nearest", [x])
        x = g.block("deconv%d" % i, "in%d" % n, up)
    x = g.conv("deconv3", x)
    g.node("output", "scale_shift", [x], weight="scale_out")
    unused = sorted(set(sd) - set(g.tensors))
    if unused:
        raise SystemExit("convert: unexpected keys (not a TransformerNet?): "
                         + ", ".join(unused[:8]))
    return g.nodes, g.tensors


def convert(sd, name, description, source):
    import json
    nodes, tensors = build(sd)
    params = sum(t.numel() for t in tensors.values())
    meta = {
        "nf.format": "1",
        "nf.name": name,
        "nf.description": description,
        "nf.cache_frames": "0",
        "nf.size_multiple": "4",
        "nf.graph": json.dumps({"nodes": nodes, "output": "output"},
                               separators=(",", ":")),
        "architecture": "fast-neural-style TransformerNet (pytorch/examples)"
                        ", per frame, cache unused",
        "converted_from": source,
        "params": str(params),
        "input": "RGB in [0, 1], any size; padded internally to a multiple "
                 "of 4",
    }
    return tensors, meta


def load_state_dict(path):
    sd = torch.load(path, map_location="cpu")
    if isinstance(sd, nn.Module):
        sd = sd.state_dict()
    if isinstance(sd, dict) and "state_dict" in sd and \
            isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    return sd


def random_net(seed, widths=(32, 64, 128)):
    """A randomly initialised TransformerNet, instance-norm affines drawn
    away from 1/0 so that the test exercises them."""
    torch.manual_seed(seed)
    net = TransformerNet(widths)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.InstanceNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval()


def self_test():
    net = random_net(0)
    tensors, meta = convert(net.state_dict(), "random", "test", "random")
    path = "/tmp/nf-convert-self-test.safetensors"
    nfmodel.write(path, tensors, meta)
    m = nfmodel.Model(path)
    torch.manual_seed(1)
    x = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        ref = net(x * 255.0) / 255.0
        out = m.run_graph(x, [])
    err = float((out - ref).norm() / ref.norm())
    os.remove(path)
    print("convert: self-test ||a-b||/||b|| = %.3g (%d params)"
          % (err, m.params()))
    return 0 if err < 1e-5 else 1


def main(argv):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("pth", nargs="?", help="TransformerNet state_dict (.pth)")
    p.add_argument("--out", help="model file to write (.safetensors)")
    p.add_argument("--name", help="nf.name (default: the file's stem)")
    p.add_argument("--description", help="nf.description")
    p.add_argument("--self-test", action="store_true",
                   help="convert a random TransformerNet and compare")
    args = p.parse_args(argv)
    if args.self_test:
        return self_test()
    if not args.pth or not args.out:
        p.error("need a .pth file and --out")
    stem = os.path.splitext(os.path.basename(args.pth))[0]
    name = args.name or re.sub(r"[^A-Za-z0-9_.-]", "_", stem)[:63]
    desc = args.description or ("fast-neural-style TransformerNet '%s', "
                                "per frame (not temporally stabilized)"
                                % stem)
    tensors, meta = convert(load_state_dict(args.pth), name, desc,
                            os.path.basename(args.pth))
    n = nfmodel.write(args.out, tensors, meta)
    print("convert: wrote %s (%d bytes, %s params)"
          % (args.out, n, meta["params"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
