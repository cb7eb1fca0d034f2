"""looks.py - the procedural per-frame looks the style networks learn.

Each look maps a batch of RGB frames (N, 3, H, W) in [0, 1] to a stylized
batch of the same shape, with plain torch ops so that targets for a training
batch cost a few milliseconds. They are deliberately per-frame filters: hard
decisions (colour quantisation, line thresholds, the Kuwahara sector choice)
make them flicker on live video, which the temporal network must not copy.

    toon    edge-preserving (guided filter) smoothing, soft luminance quantisation with a
            colour boost, dark ink from XDoG and Sobel edges.
    sketch  graphite pencil on warm paper: colour-dodge shading of the
            luminance times XDoG pencil lines.
    oil     generalized (soft-weighted, 4-sector) Kuwahara filter applied
            twice, plus a saturation and contrast boost.

Every filter works in pixels: its look depends on the frame's resolution,
and the training data are sized like camera frames (data.py).
"""

import torch
import torch.nn.functional as F

LOOKS = ("toon", "sketch", "oil")

DESCRIPTIONS = {
    "toon": "Toon/cel shading: smoothed, quantised colours with a boost and "
            "dark ink lines (XDoG + Sobel edges).",
    "sketch": "Pencil sketch: graphite shading (colour dodge) with XDoG "
              "pencil lines on warm paper.",
    "oil": "Oil paint: generalized Kuwahara filter (two passes) with a "
           "saturation and contrast boost.",
}

LUMA = (0.299, 0.587, 0.114)


def luma(x):
    """(N, 3, H, W) -> (N, 1, H, W) Rec. 601 luminance."""
    w = x.new_tensor(LUMA).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def _sep(x, k):
    """Separable filter with the odd 1-D kernel k (a list), replicate
    borders. Written as weighted shifted slices: small convolutions with
    few channels are slow in PyTorch's CPU conv, shifted adds are not."""
    r = len(k) // 2
    h, w = x.shape[-2:]
    xp = F.pad(x, (r, r, 0, 0), mode="replicate")
    y = sum(k[i] * xp[..., :, i:i + w] for i in range(len(k)))
    yp = F.pad(y, (0, 0, r, r), mode="replicate")
    return sum(k[i] * yp[..., i:i + h, :] for i in range(len(k)))


def gaussian_blur(x, sigma):
    """Separable Gaussian blur, replicate borders, radius ceil(3 sigma)."""
    r = max(1, int(3.0 * sigma + 0.999))
    k = [torch.exp(torch.tensor(-0.5 * (t / sigma) ** 2)).item()
         for t in range(-r, r + 1)]
    s = sum(k)
    return _sep(x, [v / s for v in k])


def window_sum(x, k):
    """Sums over every k x k window that fits in x ("valid"), by cumulative
    sums: O(1) per pixel whatever k."""
    c = F.pad(x, (1, 0, 1, 0)).cumsum(-1).cumsum(-2)
    return c[..., k:, k:] - c[..., :-k, k:] - c[..., k:, :-k] + \
        c[..., :-k, :-k]


def box(x, r):
    """Mean over the (2r + 1)^2 window, replicate borders."""
    k = 2 * r + 1
    return window_sum(F.pad(x, (r, r, r, r), mode="replicate"), k) / (k * k)


def guided_smooth(x, radius=4, eps=0.004, iters=2):
    """Edge-preserving smoothing: the self-guided filter (He et al. 2010)
    per channel, iterated. Flattens regions whose variance is below eps
    and keeps stronger edges; a fast stand-in for a bilateral filter."""
    for _ in range(iters):
        m = box(x, radius)
        var = (box(x * x, radius) - m * m).clamp(min=0)
        a = var / (var + eps)
        b = m - a * m
        x = box(a, radius) * x + box(b, radius)
    return x


def xdog(y, sigma=0.9, k=1.6, eps=0.015, phi=60.0):
    """XDoG lines of a luminance plane: 1 on paper, towards 0 on lines.

    D = G_sigma - G_{k sigma} is negative on the dark side of an edge; the
    soft threshold E = 1 where D >= -eps, else 1 + tanh(phi (D + eps))
    (Winnemoeller et al. 2012, edge-only form), clamped to [0, 1].
    """
    d = gaussian_blur(y, sigma) - gaussian_blur(y, sigma * k)
    e = torch.where(d >= -eps, torch.ones_like(d),
                    1.0 + torch.tanh(phi * (d + eps)))
    return e.clamp(0.0, 1.0)


def sobel_mag(y):
    """|gx| + |gy| of the Sobel gradient (divided by 8) of (N, 1, H, W)."""
    h, w = y.shape[-2:]
    p = F.pad(y, (1, 1, 1, 1), mode="replicate")
    sy = p[..., 0:h, :] + 2 * p[..., 1:h + 1, :] + p[..., 2:h + 2, :]
    sx = p[..., :, 0:w] + 2 * p[..., :, 1:w + 1] + p[..., :, 2:w + 2]
    gx = (sy[..., :, 2:] - sy[..., :, :-2]) / 8.0
    gy = (sx[..., 2:, :] - sx[..., :-2, :]) / 8.0
    return gx.abs() + gy.abs()


def saturate(x, s, contrast=1.0):
    y = luma(x)
    x = y + s * (x - y)
    return (x - 0.5) * contrast + 0.5


def toon(x):
    s = guided_smooth(x)
    y = luma(s)
    # Soft quantisation of the luminance into 5 bands (each maps to its
    # centre), keeping a little of the smooth shading; the chroma of the
    # smoothed frame boosted.
    levels = 5
    q = sum(torch.sigmoid(12.0 * (y * levels - k)) for k in range(1, levels))
    yq = 0.75 * (q + 0.5) / levels + 0.25 * y
    col = yq + 1.5 * (s - y)
    # Ink: XDoG lines of the smoothed luminance, plus strong Sobel edges.
    lines = 1.0 - xdog(y, sigma=1.2, eps=0.02, phi=50.0)
    edges = ((sobel_mag(gaussian_blur(y, 1.0)) - 0.05) / 0.05).clamp(0, 1)
    ink = torch.maximum(lines, edges)
    return (col * (1.0 - 0.9 * ink)).clamp(0.0, 1.0)


def sketch(x):
    y = luma(x)
    # Colour dodge of the luminance by its blurred inverse: a light graphite
    # rendering of the shading, darkened with a gamma for more tone.
    blur_inv = gaussian_blur(1.0 - y, 5.0)
    dodge = (y / (1.0 - blur_inv + 1e-2).clamp(min=1e-2)).clamp(0.0, 1.0)
    tone = dodge ** 2.2
    lines = xdog(gaussian_blur(y, 0.7), sigma=0.9, eps=0.01, phi=50.0)
    g = (tone * lines).clamp(0.0, 1.0)
    paper = x.new_tensor([0.98, 0.96, 0.90]).view(1, 3, 1, 1)
    graphite = x.new_tensor([0.16, 0.16, 0.20]).view(1, 3, 1, 1)
    return graphite + (paper - graphite) * g


def kuwahara(x, radius=4, q=8.0):
    """Generalized Kuwahara: the 4 square sectors' means, weighted by
    their (luminance) standard deviation to the power -q."""
    n, c, h, w = x.shape
    r = radius
    xp = F.pad(x, (r, r, r, r), mode="replicate")
    yp = luma(xp)
    n = float((r + 1) ** 2)
    m = window_sum(xp, r + 1) / n
    m2 = window_sum(yp * yp, r + 1) / n
    my = window_sum(yp, r + 1) / n
    num = torch.zeros_like(x)
    den = torch.zeros_like(x[:, :1])
    for oy in (0, r):
        for ox in (0, r):
            mean = m[:, :, oy:oy + h, ox:ox + w]
            var = (m2[:, :, oy:oy + h, ox:ox + w] -
                   my[:, :, oy:oy + h, ox:ox + w] ** 2).clamp(min=0)
            # (var * 255^2 + 1)^(-q/2): a dark-noise floor avoids 1/0.
            wgt = (var * 65025.0 + 1.0) ** (-q / 2)
            num = num + wgt * mean
            den = den + wgt
    return num / den


def oil(x):
    k = kuwahara(kuwahara(x, radius=4), radius=3)
    return saturate(k, 1.35, contrast=1.1).clamp(0.0, 1.0)


_FILTERS = {"toon": toon, "sketch": sketch, "oil": oil}


@torch.no_grad()
def apply(look, x):
    """The look `look` of frames x (N, 3, H, W) in [0, 1]."""
    return _FILTERS[look](x)
