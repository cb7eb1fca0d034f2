"""net.py - the temporal style network (PyTorch side).

A small U-Net that works at 1/2 and 1/4 of the frame's resolution and
restores full-resolution detail through a residual on the input:

    x  = concat(frame, cache.0 .. cache.{K-1})            (3 + 3K, H, W)
    e1 = relu(bn(conv3x3(relu(bn(conv1x1(unshuffle2(x)))))))   (C1, H/2)
    r  = relu(bn(conv1x1(unshuffle2(e1))))                     (C2, H/4)
    e2 = relu(bn(conv3x3(relu(bn(conv3x3(r))))) + r)           (C2, H/4)
    u  = shuffle2(bn(conv1x1(e2)))                             (C1, H/2)
    d  = relu(bn(conv3x3(relu(u + e1))))                       (C1, H/2)
    p  = frame + shuffle2(conv3x3(d))         proposal         (3, H, W)
    c  = p - cache.0                          change           (3, H, W)
    g  = sigmoid(shuffle2(conv1x1(d)) + conv1x1(|c|))  gate    (3, H, W)
    out = cache.0 + g * c                                      (3, H, W)

pixel_unshuffle by 2 turns each 2x2 block into channels, so the first 1x1
convolution is a 2x2 stride-2 convolution that sees every input pixel; the
last convolutions predict a 2x2 block of output pixels per half-resolution
position. The gate decides per pixel how much of the new proposal replaces
the previous output, from the context (d) and from the size of the change
itself (a learned dead band): where the input did not change the network
can keep its previous output exactly (no flicker), where it did it takes
the new proposal in one step (no lag). With K = 0 the output is the proposal.
Every hidden convolution is followed by BatchNorm during
training, folded into it at export (export.py); the last layer starts at
zero, and the gate starts mostly open (bias 2), so an untrained network is
nearly the identity. Convolutions pad by
reflection. Size multiple 4.

`Spec` describes the network as our graph (export.py) and counts its FLOPs
with MODEL.md's rules.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvBN(nn.Module):
    """conv (no bias) + BatchNorm; relu applied by the caller."""

    def __init__(self, cin, cout, k):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=False,
                              padding_mode="reflect" if k > 1 else "zeros")
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(x))

    def folded(self):
        """(weight, bias) of the conv with the BatchNorm folded in."""
        bn = self.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        w = self.conv.weight * scale.view(-1, 1, 1, 1)
        b = bn.bias - bn.running_mean * scale
        return w.detach(), b.detach()


class StyleNet(nn.Module):
    def __init__(self, k=2, c1=16, c2=32):
        super().__init__()
        self.k, self.c1, self.c2 = k, c1, c2
        cin = 3 * (1 + k)
        self.enc1a = ConvBN(4 * cin, c1, 1)
        self.enc1b = ConvBN(c1, c1, 3)
        self.enc2a = ConvBN(4 * c1, c2, 1)
        self.enc2b = ConvBN(c2, c2, 3)
        self.enc2c = ConvBN(c2, c2, 3)
        self.up = ConvBN(c2, 4 * c1, 1)
        self.dec1 = ConvBN(c1, c1, 3)
        self.out = nn.Conv2d(c1, 12, 3, padding=1, padding_mode="reflect")
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        if k:
            self.gate = nn.Conv2d(c1, 12, 1)
            nn.init.normal_(self.gate.weight, std=0.01)
            nn.init.constant_(self.gate.bias, -1.0)
            # Dead band: a summed change of 0.03 opens the gate halfway.
            self.band = nn.Conv2d(3, 3, 1)
            nn.init.constant_(self.band.weight, 40.0)
            nn.init.constant_(self.band.bias, 0.0)

    def forward(self, frame, cache):
        """frame (N, 3, H, W); cache: list of K (N, 3, H, W), newest first."""
        x = torch.cat([frame] + list(cache), 1) if self.k else frame
        x = F.pixel_unshuffle(x, 2)
        e1 = F.relu(self.enc1b(F.relu(self.enc1a(x))))
        r = F.relu(self.enc2a(F.pixel_unshuffle(e1, 2)))
        e2 = F.relu(self.enc2c(F.relu(self.enc2b(r))) + r)
        u = F.pixel_shuffle(self.up(e2), 2)
        d = F.relu(self.dec1(F.relu(u + e1)))
        p = frame + F.pixel_shuffle(self.out(d), 2)
        if not self.k:
            return p
        c = p - cache[0]
        g = torch.sigmoid(F.pixel_shuffle(self.gate(d), 2) +
                          self.band(c.abs()))
        return cache[0] + g * c


def graph(net):
    """(nodes, tensors): the network as MODEL.md graph nodes and folded
    weights, named like the modules. BatchNorm is folded into the convs."""
    nodes, tensors = [], {}

    def conv(name, inp, mod):
        if isinstance(mod, ConvBN):
            w, b = mod.folded()
            k = mod.conv.kernel_size[0]
        else:
            w, b = mod.weight.detach(), mod.bias.detach()
            k = mod.kernel_size[0]
        tensors[name + ".weight"] = w
        tensors[name + ".bias"] = b
        node = {"name": name, "op": "conv2d", "inputs": [inp],
                "weight": name + ".weight", "bias": name + ".bias"}
        if k > 1:
            node.update(padding=k // 2, pad_mode="reflect")
        nodes.append(node)
        return name

    def op(name, kind, inputs, **attrs):
        node = {"name": name, "op": kind, "inputs": list(inputs)}
        node.update(attrs)
        nodes.append(node)
        return name

    x = "frame"
    if net.k:
        x = op("x", "concat", ["frame"] + ["cache.%d" % i
                                           for i in range(net.k)])
    x = op("x_half", "pixel_unshuffle", [x], factor=2)
    e = op("enc1a_relu", "relu", [conv("enc1a", x, net.enc1a)])
    e1 = op("enc1b_relu", "relu", [conv("enc1b", e, net.enc1b)])
    q = op("e1_quarter", "pixel_unshuffle", [e1], factor=2)
    r = op("enc2a_relu", "relu", [conv("enc2a", q, net.enc2a)])
    t = op("enc2b_relu", "relu", [conv("enc2b", r, net.enc2b)])
    t = op("enc2_res", "add", [conv("enc2c", t, net.enc2c), r])
    e2 = op("enc2_relu", "relu", [t])
    u = op("up_half", "pixel_shuffle", [conv("up", e2, net.up)], factor=2)
    s = op("skip_relu", "relu", [op("skip", "add", [u, e1])])
    d = op("dec1_relu", "relu", [conv("dec1", s, net.dec1)])
    y = op("delta", "pixel_shuffle", [conv("out", d, net.out)], factor=2)
    if not net.k:
        op("output", "add", ["frame", y])
        return nodes, tensors
    p = op("proposal", "add", ["frame", y])
    gl = op("gate_full", "pixel_shuffle", [conv("gate", d, net.gate)],
            factor=2)
    tensors["negate.weight"] = torch.full((3,), -1.0)
    nc = op("neg_cache", "scale_shift", ["cache.0"], weight="negate.weight")
    diff = op("change", "add", [p, nc])
    # |change| = relu(change) + relu(-change).
    nd = op("neg_change", "scale_shift", [diff], weight="negate.weight")
    ad = op("abs_change", "add", [op("change_pos", "relu", [diff]),
                                  op("change_neg", "relu", [nd])])
    gl = op("gate_logit", "add", [gl, conv("band", ad, net.band)])
    gt = op("gate_sigmoid", "sigmoid", [gl])
    op("output", "add", ["cache.0", op("gated", "mul", [gt, diff])])
    return nodes, tensors


SIZE_MULTIPLE = 4


def params(net):
    """Parameters of the exported (folded) network."""
    _, tensors = graph(net)
    return sum(t.numel() for t in tensors.values())


def flops(net, width, height):
    """FLOPs of one frame by MODEL.md section 9's rules."""
    nodes, tensors = graph(net)
    m = SIZE_MULTIPLE
    h, w = -(-height // m) * m, -(-width // m) * m
    shape = {"frame": (3, h, w)}
    for i in range(net.k):
        shape["cache.%d" % i] = (3, h, w)
    total = 0
    for n in nodes:
        c, hh, ww = shape[n["inputs"][0]]
        kind = n["op"]
        if kind == "conv2d":
            wt = tensors[n["weight"]]
            co = wt.shape[0]
            out = (co, hh, ww)
            total += 2 * co * wt.shape[1] * wt.shape[2] * wt.shape[3] * hh * ww
            total += co * hh * ww
        elif kind == "concat":
            out = (sum(shape[i][0] for i in n["inputs"]), hh, ww)
        elif kind == "pixel_unshuffle":
            f = n["factor"]
            out = (c * f * f, hh // f, ww // f)
        elif kind == "pixel_shuffle":
            f = n["factor"]
            out = (c // (f * f), hh * f, ww * f)
        elif kind == "scale_shift":
            out = (c, hh, ww)
            total += 2 * c * hh * ww
        else:  # relu, sigmoid, add, mul
            out = (c, hh, ww)
            total += c * hh * ww
        shape[n["name"]] = out
    return total
