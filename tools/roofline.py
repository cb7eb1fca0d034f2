#!/usr/bin/env python3
"""roofline.py - a roofline on paper for the shipped models on an H100 SXM.

For each model (models/*.safetensors) and frame size it counts, from the
graph in the file's nf.graph metadata:

  - FLOPs, exactly as nf_model_flops() does (kernels/MODEL.md section 9);
  - bytes moved layer by layer: every node reads its inputs and weights
    and writes its output once (FP32: 4 bytes per element, FP16: 2), plus
    the frame's own traffic (the float frame written, the output read back
    for the 8-bit conversion, the cache entry written);
  - kernel launches per frame of the CUDA backend as implemented in
    kernels/cuda/ (a conv folds the activation right after it; reflect
    padding, the fused-bias memset and the epilogue are launches of their
    own; a concat is one copy per input; plus the upload, conversions,
    download and cache update);
  - PCIe bytes: the 8-bit frame up and down.

and turns them into the time each bound predicts (peaks below). Python
standard library only; prints Markdown:

    python3 tools/roofline.py [--sizes 640x480,1280x720] [models...]

Peaks (NVIDIA H100 SXM5 datasheet, dense, no sparsity): 67 TFLOP/s FP32 on
CUDA cores, 495 TFLOP/s TF32 and 990 TFLOP/s FP16 on tensor cores, 3.35 TB/s
HBM3. Launch overhead: 4 us per kernel launched one by one from the host
(3-5 us is the usual range for a launch plus the gap between dependent
small kernels); about 1 us per node when replayed from a CUDA graph
(assumed; graphs remove the host-side cost, not the GPU's per-kernel
ramp). PCIe Gen5 x16: about 50 GB/s effective each way from pinned memory.
"""
import glob
import json
import math
import os
import struct
import sys

PEAK_FP32 = 67e12
PEAK_TF32 = 495e12
PEAK_FP16 = 990e12
HBM = 3.35e12
LAUNCH = 4e-6
LAUNCH_GRAPH = 1e-6
PCIE = 50e9

ACTIVATIONS = {"relu", "leaky_relu", "sigmoid", "tanh", "clamp"}
FLOPS_PER_ELEMENT = {
    "relu": 1, "leaky_relu": 1, "sigmoid": 1, "tanh": 1, "clamp": 1,
    "add": 1, "mul": 1, "scale_shift": 2, "avgpool2x2": 4,
    "instance_norm": 4, "upsample2x_bilinear": 8,
}


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header["__metadata__"]
    graph = json.loads(meta["nf.graph"])
    shapes = {k: v["shape"] for k, v in header.items() if k != "__metadata__"}
    return meta, graph, shapes


def values(meta, graph, shapes):
    """Channels and shift of every value, in node order."""
    k = int(meta.get("nf.cache_frames", "0"))
    val = {"frame": (3, 0)}
    for j in range(k):
        val["cache.%d" % j] = (3, 0)
    for nd in graph["nodes"]:
        op, xs = nd["op"], nd["inputs"]
        c, s = val[xs[0]]
        if op == "conv2d":
            stride = nd.get("stride", 1)
            c, s = shapes[nd["weight"]][0], s + int(math.log2(stride))
        elif op == "concat":
            c = sum(val[x][0] for x in xs)
        elif op in ("upsample2x_nearest", "upsample2x_bilinear"):
            s -= 1
        elif op == "avgpool2x2":
            s += 1
        elif op == "pixel_shuffle":
            r = nd["factor"]
            c, s = c // (r * r), s - int(math.log2(r))
        elif op == "pixel_unshuffle":
            r = nd["factor"]
            c, s = c * r * r, s + int(math.log2(r))
        val[nd["name"]] = (c, s)
    return val, k


def size(h, w, shift):
    return (h >> shift, w >> shift) if shift >= 0 else (h << -shift, w << -shift)


def count(path, width, height):
    meta, graph, shapes = load(path)
    mult = int(meta.get("nf.size_multiple", "1"))
    h = (height + mult - 1) // mult * mult
    w = (width + mult - 1) // mult * mult
    val, k = values(meta, graph, shapes)
    nodes = graph["nodes"]
    numel = {}
    for name, (c, s) in val.items():
        vh, vw = size(h, w, s)
        numel[name] = c * vh * vw
    readers = {}
    for nd in nodes:
        for x in set(nd["inputs"]):
            readers[x] = readers.get(x, 0) + 1
    flops = 0.0
    elems = 0  # activation elements read + written, layer by layer
    weights = 0  # weight elements read
    launches = 0
    skip = False
    for i, nd in enumerate(nodes):
        op, y = nd["op"], nd["name"]
        out = numel[y]
        elems += out + sum(numel[x] for x in nd["inputs"])
        if op == "conv2d":
            co, ci, kh, kw = shapes[nd["weight"]]
            flops += 2.0 * out * ci * kh * kw + (out if "bias" in nd else 0)
            weights += co * ci * kh * kw + (co if "bias" in nd else 0)
        else:
            flops += out * FLOPS_PER_ELEMENT.get(op, 0)
            for t in ("weight", "bias"):
                if t in nd:
                    weights += shapes[nd[t]][0]
        # Launches of kernels/cuda/ (plan.cu's folding rule).
        if skip:
            skip = False
            continue
        if op == "conv2d":
            nxt = nodes[i + 1] if i + 1 < len(nodes) else None
            act = (nxt is not None and nxt["op"] in ACTIVATIONS
                   and nxt["inputs"][0] == y and readers.get(y) == 1
                   and y != graph["output"])
            reflect = nd.get("pad_mode") == "reflect" and nd.get("padding", 0)
            launches += 1 + (1 if reflect else 0)
            if act and nxt["op"] == "relu" and "bias" in nd:
                launches += 1  # memset before cudnnConvolutionBiasActivation
            elif act or "bias" in nd:
                launches += 1  # epilogue kernel
            skip = act
        elif op == "concat":
            launches += len(nd["inputs"])
        else:
            launches += 1
    plane = 3 * h * w
    # Frame traffic: float frame written, output read for 8 bits and for
    # the cache, cache entry written (the graph's reads are counted above).
    elems += plane + 2 * plane + (plane if k else 0)
    launches += 5 + (1 if k else 0)  # H2D, from_rgb, to_rgb, D2H, (clamp)
    pcie = 2 * 3 * width * height
    return {
        "flops": flops,
        "bytes32": 4 * (elems + weights),
        "bytes16": 2 * (elems + weights),
        "launches": launches,
        "pcie": pcie,
        "padded": (w, h),
    }


def us(seconds):
    return "%.1f" % (seconds * 1e6)


def table(paths, sizes):
    rows = []
    head = ("| model | size | GFLOP | MB FP32 | MB FP16 | FP32 CUDA-core us "
            "| TF32 us | FP16 us | HBM FP32 us | HBM FP16 us | launches "
            "| launch us | PCIe us | bound (FP32, one frame) |")
    rows.append(head)
    rows.append("|" + "---|" * (head.count("|") - 1))
    for path in paths:
        name = os.path.basename(path).replace(".safetensors", "")
        for (width, height) in sizes:
            c = count(path, width, height)
            t = {
                "compute": c["flops"] / PEAK_FP32,
                "memory": c["bytes32"] / HBM,
                "launch": c["launches"] * LAUNCH,
            }
            bound = max(t, key=t.get)
            rows.append(
                "| %s | %dx%d | %.3f | %.1f | %.1f | %s | %s | %s | %s | %s "
                "| %d | %s | %s | %s (%s us) |" % (
                    name, width, height, c["flops"] / 1e9,
                    c["bytes32"] / 1e6, c["bytes16"] / 1e6,
                    us(c["flops"] / PEAK_FP32), us(c["flops"] / PEAK_TF32),
                    us(c["flops"] / PEAK_FP16), us(c["bytes32"] / HBM),
                    us(c["bytes16"] / HBM), c["launches"],
                    us(c["launches"] * LAUNCH), us(c["pcie"] / PCIE), bound,
                    us(t[bound])))
    return "\n".join(rows)


def batching(paths, sizes, batches=(1, 8, 64)):
    """Per-frame time when B frames share one pass (launches amortized).

    Launched one by one, the host enqueues while the GPU runs, so the
    frame costs max(GPU work, host launch time / B). From a CUDA graph the
    host cost is one graph launch per pass, but each node still leaves a
    gap on the GPU: work + nodes * LAUNCH_GRAPH / B. GPU work is the larger
    of the compute and HBM bounds (FP32 on CUDA cores, or FP16 on tensor
    cores with FP16 activations). PCIe copies are left out: on a copy
    engine of their own they overlap with compute and are shorter than it.
    """
    rows = ["| model | size | B | FP32, one by one us | FP32, CUDA graph us "
            "| FP16, CUDA graph us | frames/s (FP32 graph) "
            "| frames/s (FP16 graph) |",
            "|---|---|---|---|---|---|---|---|"]
    for path in paths:
        name = os.path.basename(path).replace(".safetensors", "")
        for (width, height) in sizes:
            c = count(path, width, height)
            w32 = max(c["flops"] / PEAK_FP32, c["bytes32"] / HBM)
            w16 = max(c["flops"] / PEAK_FP16, c["bytes16"] / HBM)
            for b in batches:
                plain = max(w32, c["launches"] * LAUNCH / b)
                g32 = w32 + c["launches"] * LAUNCH_GRAPH / b
                g16 = w16 + c["launches"] * LAUNCH_GRAPH / b
                rows.append("| %s | %dx%d | %d | %s | %s | %s | %.0f | %.0f |"
                            % (name, width, height, b, us(plain), us(g32),
                               us(g16), 1 / g32, 1 / g16))
    return "\n".join(rows)


def main(argv):
    sizes = [(640, 480), (1280, 720)]
    paths = []
    i = 0
    while i < len(argv):
        if argv[i] == "--sizes" and i + 1 < len(argv):
            sizes = [tuple(int(v) for v in s.split("x"))
                     for s in argv[i + 1].split(",")]
            i += 2
            continue
        paths.append(argv[i])
        i += 1
    if not paths:
        paths = sorted(glob.glob("models/*.safetensors"))
    print(table(paths, sizes))
    print()
    print(batching(paths, sizes))


if __name__ == "__main__":
    main(sys.argv[1:])
