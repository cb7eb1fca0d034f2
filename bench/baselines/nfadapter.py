"""nfadapter.py - the small adapter the PyTorch baselines share.

tools/train/nfmodel.py already reads a nextframe model file and runs its
graph in PyTorch (Model.run_graph); this module imports it and adds what a
server and a compute benchmark need on top of it:

- per-stream state: nfmodel.Model keeps ONE cache inside the model object,
  a server needs one per session over one set of weights. StreamState holds
  a session's rolling cache of its own K past outputs, started and rotated
  exactly as kernels/MODEL.md section 7 says (cold = K copies of the padded
  input; the output, clamped to [0, 1] but not rounded, enters as cache.0;
  a change of the unpadded frame size makes the cache cold again);
- the frame conversions of MODEL.md section 6: 8-bit RGB in as v / 255,
  edge-padded to nf.size_multiple; out clamped (NaN -> 0), v * 255 + 0.5
  truncated to 8 bits, cropped back;
- channels_last memory format for the weights and activations (optional);
- FLOPs per frame as kernels/MODEL.md section 9 counts them
  (nf_model_flops()).

Everything here runs under torch.inference_mode(); the caller sets the
thread count (torch.set_num_threads).
"""

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools", "train"))

import nfmodel  # noqa: E402  (tools/train/nfmodel.py, reused, not copied)

DEFAULT_MODEL = os.path.join(REPO, "models", "toon.safetensors")


def tune_malloc(mmap_threshold=32 << 20, trim_threshold=1 << 30,
                arena_max=1):
    """Keeps glibc malloc from handing the big activation buffers back to
    the kernel after every op and faulting them in again (zeroed) on the
    next: at 640x480 each frame allocates and frees tens of MB, and with
    glibc's defaults that was 4-6x slower per frame on this machine. The
    usual advice for PyTorch on the CPU is jemalloc or tcmalloc via
    LD_PRELOAD; mallopt() gets most of it with glibc alone and can be
    called at run time, before the threads that allocate start.

    - M_MMAP_THRESHOLD: buffers up to 32 MiB (glibc's cap on 64-bit) come
      from the heap, not from a fresh mmap each time;
    - M_TRIM_THRESHOLD: freed heap memory stays mapped (up to 1 GiB);
    - M_ARENA_MAX 1: a thread other than the main one (py-server.py's model
      worker) uses the main heap too; in its own arena (64 MiB heaps, which
      glibc unmaps when they empty) a 640x480 frame took 5x as long as on
      the main thread even with the two settings above.

    Returns True when every setting was accepted."""
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8
        ok = libc.mallopt(m_mmap_threshold, int(mmap_threshold))
        ok &= libc.mallopt(m_trim_threshold, int(trim_threshold))
        if arena_max:
            ok &= libc.mallopt(m_arena_max, int(arena_max))
        return bool(ok)
    except (OSError, AttributeError):
        return False


class StreamState:
    """One stream's rolling cache (kernels/MODEL.md section 7)."""

    __slots__ = ("cache", "size")

    def __init__(self):
        self.cache = None  # list of K tensors (1, 3, Hp, Wp), cache.0 first
        self.size = None  # unpadded (h, w) of the previous frame

    def reset(self):
        self.cache = None
        self.size = None


class TorchModel:
    """A model file, loaded once, run for any number of streams."""

    def __init__(self, path, channels_last=True):
        self.path = path
        self.model = nfmodel.Model(path)
        self.name = self.model.name
        self.k = self.model.k
        self.multiple = self.model.multiple
        self.channels_last = channels_last
        self.memory_format = (torch.channels_last if channels_last
                              else torch.contiguous_format)
        if channels_last:
            # 4-D tensors are conv weights; oneDNN takes them as NHWC-ish
            # blocks either way, but matching formats avoids reorders.
            self.model.tensors = {
                n: (t.contiguous(memory_format=torch.channels_last)
                    if t.dim() == 4 else t)
                for n, t in self.model.tensors.items()}

    def params(self):
        return self.model.params()

    def description(self):
        return self.model.meta.get("nf.description", "")

    # ---- frames in and out (MODEL.md section 6) --------------------------

    def from_rgb(self, rgb):
        """HWC uint8 numpy array (or torch tensor) -> (1, 3, H, W) float in
        [0, 1] in this model's memory format."""
        t = torch.from_numpy(rgb) if isinstance(rgb, np.ndarray) else rgb
        # permute(2, 0, 1) of an HWC buffer is already channels_last-strided
        x = t.permute(2, 0, 1).unsqueeze(0).to(torch.float32).div_(255.0)
        return x.contiguous(memory_format=self.memory_format)

    @staticmethod
    def to_rgb(y):
        """(1, 3, h, w) float in [0, 1] (already clamped) -> HWC uint8 numpy,
        rounded half up as the C runtime does ((uint8_t)(v * 255 + 0.5))."""
        q = y.mul(255.0).add_(0.5).to(torch.uint8)
        return q[0].permute(1, 2, 0).contiguous().numpy()

    # ---- one frame of one stream (MODEL.md section 7) --------------------

    def _pad(self, frame):
        h, w = frame.shape[-2:]
        m = self.multiple
        ph, pw = -h % m, -w % m
        if not (ph or pw):
            return frame
        x = F.pad(frame, (0, pw, 0, ph), mode="replicate")
        return x.contiguous(memory_format=self.memory_format)

    def forward(self, x, cache):
        """The graph alone on a padded frame and K cache tensors (no cache
        update, no clamp): what torch-compute.py times."""
        return self.model.run_graph(x, cache)

    def step(self, state, frame):
        """frame (1, 3, h, w) in [0, 1] -> output (1, 3, h, w) in [0, 1]
        (clamped, not rounded), updating state's cache."""
        with torch.inference_mode():
            h, w = frame.shape[-2:]
            x = self._pad(frame)
            if state.cache is None or state.size != (h, w):
                # cold: every entry is the padded input (tensors are never
                # written in place, so sharing one is a copy in effect)
                state.cache = [x] * self.k
                state.size = (h, w)
            y = self.model.run_graph(x, state.cache)
            y = torch.nan_to_num(y, nan=0.0).clamp_(0.0, 1.0)
            if self.k:
                state.cache = [y] + state.cache[:-1]
            return y[..., :h, :w]

    # ---- FLOPs (MODEL.md section 9) --------------------------------------

    def flops(self, width, height):
        """nf_model_flops(): sums over nodes at the padded size."""
        m = self.multiple
        h, w = height + (-height % m), width + (-width % m)
        shapes = {"frame": (3, h, w)}
        for i in range(self.k):
            shapes["cache.%d" % i] = (3, h, w)
        t = self.model.tensors
        total = 0
        per_elem = {"relu": 1, "leaky_relu": 1, "sigmoid": 1, "tanh": 1,
                    "clamp": 1, "add": 1, "mul": 1, "scale_shift": 2,
                    "avgpool2x2": 4, "instance_norm": 4,
                    "upsample2x_bilinear": 8}
        for n in self.model.nodes:
            op = n["op"]
            c, hh, ww = shapes[n["inputs"][0]]
            if op == "conv2d":
                wt = t[n["weight"]]
                s = n.get("stride", 1)
                co, ci, kh, kw = wt.shape
                hh, ww = hh // s, ww // s
                total += 2 * co * ci * kh * kw * hh * ww
                if "bias" in n:
                    total += co * hh * ww
                c = co
            elif op == "concat":
                c = sum(shapes[i][0] for i in n["inputs"])
            elif op in ("upsample2x_nearest", "upsample2x_bilinear"):
                hh, ww = hh * 2, ww * 2
            elif op == "avgpool2x2":
                hh, ww = hh // 2, ww // 2
            elif op == "pixel_shuffle":
                r = n["factor"]
                c, hh, ww = c // (r * r), hh * r, ww * r
            elif op == "pixel_unshuffle":
                r = n["factor"]
                c, hh, ww = c * r * r, hh // r, ww // r
            total += per_elem.get(op, 0) * c * hh * ww
            shapes[n["name"]] = (c, hh, ww)
        return total


# ---- YUV4MPEG2 (.y4m) -----------------------------------------------------

def read_y4m(path, limit=None):
    """(width, height, header params, list of (Y, U, V) uint8 planes) of an
    8-bit 4:2:0 (any siting), 4:4:4 or mono .y4m; at most `limit` frames."""
    with open(path, "rb") as f:
        line = f.readline()
        if not line.startswith(b"YUV4MPEG2 "):
            raise ValueError("%s: not a YUV4MPEG2 file" % path)
        params = {}
        for tok in line.split()[1:]:
            tok = tok.decode("ascii")
            params[tok[0]] = params.get(tok[0], []) + [tok[1:]]
        w, h = int(params["W"][0]), int(params["H"][0])
        c = params.get("C", ["420jpeg"])[0]
        if c.startswith("420"):
            cw, ch = (w + 1) // 2, (h + 1) // 2
        elif c == "444":
            cw, ch = w, h
        elif c == "mono":
            cw = ch = 0
        else:
            raise ValueError("%s: colour space C%s not supported" % (path, c))
        frames = []
        while limit is None or len(frames) < limit:
            fl = f.readline()
            if not fl:
                break
            if not fl.startswith(b"FRAME"):
                raise ValueError("%s: bad frame marker" % path)
            raw = f.read(w * h + 2 * cw * ch)
            if len(raw) < w * h + 2 * cw * ch:
                break
            y = np.frombuffer(raw, np.uint8, w * h).reshape(h, w)
            if cw:
                u = np.frombuffer(raw, np.uint8, cw * ch, w * h)
                v = np.frombuffer(raw, np.uint8, cw * ch, w * h + cw * ch)
                u, v = u.reshape(ch, cw), v.reshape(ch, cw)
            else:
                u = v = None
            frames.append((y, u, v))
    return w, h, params, frames


def y4m_full_range(params):
    return "XCOLORRANGE=FULL" in ["X" + x for x in params.get("X", [])]


def yuv_to_rgb(planes, full_range=False):
    """BT.601 YCbCr planes (chroma upsampled by repetition) -> HWC uint8."""
    y, u, v = planes
    h, w = y.shape
    yf = y.astype(np.float32)
    if u is None:
        u = v = np.full((1, 1), 128, np.uint8)
    fy, fx = -(-h // u.shape[0]), -(-w // u.shape[1])
    uf = np.repeat(np.repeat(u, fy, 0), fx, 1)[:h, :w].astype(np.float32)
    vf = np.repeat(np.repeat(v, fy, 0), fx, 1)[:h, :w].astype(np.float32)
    uf -= 128
    vf -= 128
    if full_range:
        r = yf + 1.402 * vf
        g = yf - 0.344136 * uf - 0.714136 * vf
        b = yf + 1.772 * uf
    else:
        yf = (yf - 16) * (255 / 219)
        uf *= 255 / 224
        vf *= 255 / 224
        r = yf + 1.402 * vf
        g = yf - 0.344136 * uf - 0.714136 * vf
        b = yf + 1.772 * uf
    rgb = np.stack([r, g, b], -1)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
