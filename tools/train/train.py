#!/usr/bin/python3
"""train.py - trains a temporal style network on the CPU.

The network (net.py) sees the current frame and its own last K outputs and
learns to match a target look per frame while staying still where the
input does not change. Targets are a built-in procedural look (--look, see
looks.py) applied to the noise-free frames of synthetic camera clips
(data.py), or a folder of (input, target) pairs (--pairs) to distill a slow
per-frame model into a real-time temporal one.

Each step unrolls the network over T frames of a batch of clips exactly as
the runtime does (kernels/MODEL.md section 7): the cache starts as copies of
the first input, then holds the network's own clamped outputs, plus noise,
so the network learns to correct its own errors rather than compound them.
The loss per frame is

    L1(out, target) + 0.5 L1(grad out, grad target)
    + temporal * mean |out_t - warp(out_{t-1})| over pixels whose noise-free
      input did not change (known synthetic motion, so warp is exact)

Deterministic for a fixed --seed, --steps, --threads and machine. --minutes
caps the wall time and makes the learning-rate schedule follow the clock
(then the step count, and so the result, depends on the machine's speed and
load). Use Debian's PyTorch: /usr/bin/python3.

    /usr/bin/python3 tools/train/train.py --look toon --steps 4000 \\
        --threads 2 --out /tmp/toon.pt --export models/toon.safetensors
"""

import argparse
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import export  # noqa: E402
import looks  # noqa: E402
import net as netmod  # noqa: E402

# glibc returns freed blocks to the kernel by default, and touching fresh
# pages is slow in these VMs: keep the heap (see shared/FACTS.md).
TUNABLES = ("glibc.malloc.mmap_threshold=33554432:"
            "glibc.malloc.trim_threshold=4294967296")


def parse(argv):
    p = argparse.ArgumentParser(
        description="Train a temporal style network (nextframe).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--look", choices=looks.LOOKS,
                     help="built-in procedural target look")
    src.add_argument("--pairs", metavar="DIR",
                     help="folder of (input, target) pairs: DIR/input/X and "
                     "DIR/target/X, or X_in.png and X_out.png")
    p.add_argument("--name", help="nf.name of the exported model "
                   "(default: the look, or 'pairs')")
    p.add_argument("--seed", type=int, default=1, help="random seed (1)")
    p.add_argument("--steps", type=int, default=4000,
                   help="training steps (4000)")
    p.add_argument("--minutes", type=float, default=0,
                   help="also stop after this wall time, with the learning "
                   "rate schedule following the time (0 = no limit; makes "
                   "the result depend on the machine's speed and load)")
    p.add_argument("--threads", type=int, default=1,
                   help="PyTorch threads (1)")
    p.add_argument("--out", required=True,
                   help="checkpoint to write (.pt), also every 500 steps")
    p.add_argument("--resume", action="store_true",
                   help="continue from --out if it exists (same settings)")
    p.add_argument("--export", metavar="MODEL",
                   help="write the model file here when done")
    p.add_argument("--k", type=int, default=2,
                   help="cache frames K (2)")
    p.add_argument("--c1", type=int, default=16,
                   help="channels at 1/2 resolution (16)")
    p.add_argument("--c2", type=int, default=32,
                   help="channels at 1/4 resolution (32)")
    p.add_argument("--batch", type=int, default=8, help="clips per step (8)")
    p.add_argument("--frames", type=int, default=4,
                   help="frames per clip, the unroll length (4)")
    p.add_argument("--crop", type=int, default=128,
                   help="frame size in pixels (128)")
    p.add_argument("--lr", type=float, default=3e-3,
                   help="peak learning rate (3e-3), cosine decay")
    p.add_argument("--temporal", type=float, default=4.0,
                   help="weight of the temporal term (4.0)")
    p.add_argument("--cache-noise", type=float, default=0.03,
                   help="largest std of the noise on cached frames (0.03)")
    p.add_argument("--log-every", type=int, default=50,
                   help="progress line every N steps (50)")
    return p.parse_args(argv)


def grad_l1(a, b):
    dxa, dxb = a[..., :, 1:] - a[..., :, :-1], b[..., :, 1:] - b[..., :, :-1]
    dya, dyb = a[..., 1:, :] - a[..., :-1, :], b[..., 1:, :] - b[..., :-1, :]
    return (dxa - dxb).abs().mean() + (dya - dyb).abs().mean()


def psnr(a, b):
    mse = F.mse_loss(a.clamp(0, 1), b).item()
    return 10 * math.log10(1.0 / max(mse, 1e-10))


def rollout_loss(model, noisy, clean, target, back, args, g):
    """Unrolls over the T frames; returns (loss, psnr, temporal term)."""
    b, t_count = noisy.shape[:2]
    cache = [noisy[:, 0]] * model.k  # cold start: copies of the input
    loss = 0.0
    prev = None
    p_sum, temp_sum = 0.0, 0.0
    for t in range(t_count):
        out = model(noisy[:, t], cache)
        tgt = target[:, t]
        rec = (out - tgt).abs().mean() + 0.5 * grad_l1(out, tgt)
        temp = torch.zeros(())
        if prev is not None:
            warped, valid = data.warp(prev, back[:, t - 1])
            cw, _ = data.warp(clean[:, t - 1], back[:, t - 1])
            still = ((clean[:, t] - cw).abs().amax(1, keepdim=True) < 0.03)
            m = valid * still.float()
            temp = ((out - warped).abs() * m).sum() / (3 * m.sum() + 1.0)
        loss = loss + rec + args.temporal * temp
        p_sum += psnr(out.detach(), tgt)
        temp_sum += temp.item()
        prev = out
        if model.k:
            sigma = torch.rand(b, 1, 1, 1, generator=g) * args.cache_noise
            noise = torch.randn(out.shape, generator=g) * sigma
            cache = [out.clamp(0, 1) + noise] + cache[:-1]
    return loss / t_count, p_sum / t_count, temp_sum / max(1, t_count - 1)


def lr_at(step, progress, total, peak):
    """Linear warm-up over the first steps, then cosine decay to 3% of the
    peak as progress (the larger of the step and the time fraction) goes
    from 0 to 1."""
    warm = min(200, total // 10 + 1)
    if step < warm:
        return peak * (step + 1) / warm
    p = min(1.0, max(progress, (step - warm) / max(1, total - warm)))
    return peak * (0.03 + 0.97 * 0.5 * (1 + math.cos(math.pi * p)))


def save(path, model, opt, sampler, g, step, args, command):
    tmp = path + ".tmp"
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                "sampler_rng": sampler.g.get_state(),
                "rng": g.get_state(), "step": step, "args": vars(args),
                "command": command}, tmp)
    os.replace(tmp, path)


def main(argv):
    args = parse(argv)
    command = "tools/train/train.py " + " ".join(argv)
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)

    if args.pairs:
        images = data.load_pairs(args.pairs)
    else:
        images = data.load_images()
    sampler = data.ClipSampler(images, seed=args.seed, size=args.crop,
                               frames=args.frames, pairs=bool(args.pairs))
    g = torch.Generator().manual_seed(args.seed + 1000)
    model = netmod.StyleNet(k=args.k, c1=args.c1, c2=args.c2)
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    step = 0
    if args.resume and os.path.exists(args.out):
        ck = torch.load(args.out, map_location="cpu")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sampler.g.set_state(ck["sampler_rng"])
        g.set_state(ck["rng"])
        step = ck["step"]
        print("train: resumed from %s at step %d" % (args.out, step))
    print("train: %s, %d params, %.2f GFLOP at 640x480, %d threads"
          % (args.look or "pairs " + args.pairs, netmod.params(model),
             netmod.flops(model, 640, 480) / 1e9, args.threads), flush=True)

    start = time.time()
    first = step
    acc = [0.0, 0.0, 0.0, 0]
    model.train()
    while step < args.steps:
        # With --minutes the schedule follows the time budget too, so that a
        # run cut short by the clock still ends with a small learning rate.
        progress = step / args.steps
        if args.minutes:
            progress = max(progress, (time.time() - start) /
                           (args.minutes * 60))
        for grp in opt.param_groups:
            grp["lr"] = lr_at(step, progress, args.steps, args.lr)
        noisy, clean, back = sampler.batch(args.batch)
        b, t, c, h, w = noisy.shape
        if args.pairs:
            target = clean
        else:
            target = looks.apply(args.look, clean.reshape(b * t, c, h, w))
            target = target.reshape(b, t, c, h, w)
        loss, p, temp = rollout_loss(model, noisy, clean, target, back,
                                     args, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        acc[0] += loss.item()
        acc[1] += p
        acc[2] += temp
        acc[3] += 1
        elapsed = time.time() - start
        if step % args.log_every == 0 or step == args.steps:
            rate = (step - first) / max(elapsed, 1e-9)
            left = (args.steps - step) / max(rate, 1e-9)
            if args.minutes:
                left = min(left, args.minutes * 60 - elapsed)
            print("step %d/%d loss %.4f psnr %.2f dB temporal %.4f lr %.2e "
                  "%.2f s/step elapsed %.1f min eta %.1f min"
                  % (step, args.steps, acc[0] / acc[3], acc[1] / acc[3],
                     acc[2] / acc[3], opt.param_groups[0]["lr"],
                     elapsed / (step - first), elapsed / 60, left / 60),
                  flush=True)
            acc = [0.0, 0.0, 0.0, 0]
        if step % 500 == 0:
            save(args.out, model, opt, sampler, g, step, args, command)
        if args.minutes and elapsed > args.minutes * 60:
            print("train: time limit reached at step %d" % step)
            break
    save(args.out, model, opt, sampler, g, step, args, command)
    print("train: wrote %s after %d steps in %.1f min"
          % (args.out, step, (time.time() - start) / 60), flush=True)
    if args.export:
        model.eval()
        ck = {"args": vars(args), "step": step, "command": command}
        name, desc, info = export.describe(ck)
        n = export.export(model, args.export, name, desc, info)
        print("train: exported %s (%d bytes)" % (args.export, n))
    return 0


if __name__ == "__main__":
    if "GLIBC_TUNABLES" not in os.environ:
        os.environ["GLIBC_TUNABLES"] = TUNABLES
        os.execv(sys.executable, [sys.executable] + sys.argv)
    sys.exit(main(sys.argv[1:]))
