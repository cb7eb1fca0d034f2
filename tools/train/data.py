"""data.py - training images and synthetic camera clips.

Still images come from Debian packages (see SOURCES; tools/train/
make-models.sh installs them): opencv-doc's example photos and frames of its
vtest.avi, gnome-backgrounds and plasma-workspace-wallpapers. Megamind.avi
and tree.avi (opencv-doc) are the evaluation clips: nothing here reads them,
and EXCLUDE keeps their frames and their near-duplicates out.

A training clip is T frames of a virtual camera looking at one still image
along a smooth random trajectory (shift, zoom, rotation), with slowly
changing lighting (gain, offset, white balance) and fresh sensor noise on
every frame. Half the clips hold the camera still, most of them with an
object moving over the still background, and some repeat time steps (held
frames), so that much of each clip keeps its input while the rest
changes. Each frame also comes with its noise-free version and, for frames
after the first, the affine map back into the previous frame, so that the
temporal loss can compare the output with the previous output warped by the
known motion. Everything is drawn from one torch.Generator: a fixed seed
gives the same clips in the same order.

Pairs (--pairs DIR) are (input, target) images; a clip then is the input
and the target seen through the same synthetic camera.
"""

import glob
import os
import subprocess
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

OPENCV_DATA = "/usr/share/doc/opencv-doc/examples/data"
SOURCES = (
    "opencv-doc: %s/*.jpg, *.png (photos) and every 16th frame of vtest.avi"
    % OPENCV_DATA,
    "gnome-backgrounds: /usr/share/backgrounds/gnome/*.webp",
    "plasma-workspace-wallpapers: /usr/share/wallpapers/*/contents/images/ "
    "(one picture per wallpaper)",
)
# Evaluation clips and images that are not photographs (calibration
# targets, logos, text, masks, tiny or synthetic test images).
EXCLUDE = (
    "Megamind", "tree", "chessboard", "left0", "left1", "right0", "right1",
    "LinuxLogo", "WindowsLogo", "opencv-logo", "digits", "mask", "notes",
    "imageText", "text_", "detect_blob", "gradient", "ml.png", "pic1",
    "pic2", "pic3", "pic4", "pic5", "pic6", "sudoku", "templ", "tmpl",
    "ellipses", "cards", "box.png", "aloeGT", "licenseplate", "ela_",
    "pca_test", "stuff.jpg", "blox",
)
# Longest side an image is kept at (the camera frames are 400-900 wide).
MAX_SIDE = 960
MIN_SIDE = 200


def _excluded(path):
    base = os.path.basename(path)
    return any(e in base for e in EXCLUDE)


def _plasma_pick(folder):
    """The 1920-wide picture of a wallpaper, else its largest one."""
    files = sorted(glob.glob(os.path.join(folder, "contents/images/*")))
    files = [f for f in files if f.lower().endswith((".jpg", ".png"))]
    if not files:
        return None
    for f in files:
        if os.path.basename(f).startswith("1920x"):
            return f

    def area(f):
        try:
            a, b = os.path.basename(f).split(".")[0].split("x")
            return int(a) * int(b)
        except ValueError:
            return 0
    return max(files, key=area)


def image_paths():
    """Every training image path, sorted (the order is part of the seed)."""
    paths = []
    for ext in ("jpg", "png"):
        paths += glob.glob(os.path.join(OPENCV_DATA, "*." + ext))
    paths += glob.glob("/usr/share/backgrounds/gnome/*.webp")
    for d in sorted(glob.glob("/usr/share/wallpapers/*")):
        p = _plasma_pick(d)
        if p:
            paths.append(p)
    return sorted(p for p in paths if not _excluded(p))


def _to_tensor(im):
    a = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    return torch.from_numpy(a).permute(2, 0, 1).contiguous()


def _load(path):
    im = Image.open(path)
    im.draft("RGB", (MAX_SIDE, MAX_SIDE))
    im = im.convert("RGB")
    w, h = im.size
    if min(w, h) < MIN_SIDE:
        return None
    s = MAX_SIDE / max(w, h)
    if s < 1:
        im = im.resize((max(1, round(w * s)), max(1, round(h * s))),
                       Image.LANCZOS)
    return _to_tensor(im)


def vtest_frames(step=16):
    """Every step-th frame of opencv-doc's vtest.avi, decoded by ffmpeg."""
    src = os.path.join(OPENCV_DATA, "vtest.avi")
    if not os.path.exists(src):
        return []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["ffmpeg", "-v", "error", "-i", src, "-vf",
             "select=not(mod(n\\,%d))" % step, "-vsync", "0",
             os.path.join(tmp, "f%04d.png")], check=True)
        return [_to_tensor(Image.open(p))
                for p in sorted(glob.glob(os.path.join(tmp, "*.png")))]


def load_images(log=print):
    """The training images as uint8 (3, H, W) tensors, longest side <= 960."""
    images = []
    for p in image_paths():
        t = _load(p)
        if t is not None:
            images.append(t)
    n_still = len(images)
    images += vtest_frames()
    log("data: %d images (%d stills, %d vtest.avi frames)"
        % (len(images), n_still, len(images) - n_still))
    if not images:
        raise SystemExit("data: no training images; install opencv-doc, "
                         "gnome-backgrounds, plasma-workspace-wallpapers")
    return images


def load_pairs(folder, log=print):
    """(input, target) uint8 tensor pairs from folder.

    Layout: folder/input/NAME and folder/target/NAME (same file names), or
    files NAME_in.EXT and NAME_out.EXT side by side. Sizes must match.
    """
    pairs = []
    ins = sorted(glob.glob(os.path.join(folder, "input", "*")))
    if ins:
        for p in ins:
            q = os.path.join(folder, "target", os.path.basename(p))
            if os.path.exists(q):
                pairs.append((p, q))
    else:
        for p in sorted(glob.glob(os.path.join(folder, "*_in.*"))):
            stem, ext = p.rsplit("_in.", 1)
            for e in (ext, "png", "jpg"):
                q = "%s_out.%s" % (stem, e)
                if os.path.exists(q):
                    pairs.append((p, q))
                    break
    out = []
    for p, q in pairs:
        a = _to_tensor(Image.open(p))
        b = _to_tensor(Image.open(q))
        if a.shape != b.shape:
            raise SystemExit("pairs: %s and %s differ in size" % (p, q))
        out.append(torch.cat([a, b], 0))  # (6, H, W)
    log("data: %d pairs from %s" % (len(out), folder))
    if not out:
        raise SystemExit("pairs: no pairs in %s (expected input/ and target/"
                         " or NAME_in / NAME_out files)" % folder)
    return out


def _rand(g, lo, hi, n=None):
    if n is None:
        return lo + (hi - lo) * torch.rand((), generator=g).item()
    return lo + (hi - lo) * torch.rand(n, generator=g)


def _affine(cx, cy, scale, angle, size, src_h, src_w):
    """theta (2, 3) for grid_sample: output pixel -> source normalized coords.

    The camera frame (size x size pixels) is centred on source pixel
    (cx, cy), shows source pixels at 1/scale per frame pixel, rotated.
    """
    c, s = np.cos(angle), np.sin(angle)
    half = size / 2.0 / scale  # half-width of the view in source pixels
    # Frame normalized (u, v) in [-1, 1] -> source pixel offsets.
    a = np.array([[c * half, -s * half], [s * half, c * half]])
    # Source pixel -> source normalized (align_corners=False).
    sx, sy = 2.0 / src_w, 2.0 / src_h
    m = np.array([[a[0, 0] * sx, a[0, 1] * sx],
                  [a[1, 0] * sy, a[1, 1] * sy]])
    t = np.array([(cx + 0.5) * sx - 1.0, (cy + 0.5) * sy - 1.0])
    return np.concatenate([m, t[:, None]], 1)


def _compose_back(theta_t, theta_p):
    """Map frame-t normalized coords to frame-(t-1) normalized coords."""
    a = np.vstack([theta_t, [0, 0, 1]])
    b = np.vstack([theta_p, [0, 0, 1]])
    return (np.linalg.inv(b) @ a)[:2]


class ClipSampler:
    """Draws batches of synthetic clips; deterministic for a given seed."""

    def __init__(self, images, seed, size=128, frames=4, pairs=False):
        self.images = images
        self.size = size
        self.frames = frames
        self.pairs = pairs
        self.g = torch.Generator().manual_seed(seed)
        # Half-resolution copies avoid aliasing when the camera zooms out.
        self.half = [F.avg_pool2d(im.float().unsqueeze(0), 2)[0]
                     for im in images]
        self.full = [im.float() for im in images]

    def _trajectory(self, h, w, taus, still):
        """Affine maps of a virtual camera at times taus over an h x w image,
        and its scale (frame pixels per image pixel)."""
        g, size = self.g, self.size
        # Camera frames 400-900 px wide map the image's long side.
        frame_side = _rand(g, 400, 900)
        scale = frame_side / max(h, w)
        v = 0.0 if still else _rand(g, 0, 4.0)
        dirn = _rand(g, 0, 2 * np.pi)
        vx, vy = v * np.cos(dirn) / scale, v * np.sin(dirn) / scale
        zoom = 1.0 if still else np.exp(_rand(g, -0.02, 0.02))
        rot = 0.0 if still else _rand(g, -0.01, 0.01)
        angle = _rand(g, -0.1, 0.1)
        # Keep the whole path inside the image where possible.
        margin = size / scale * 0.75
        span = taus[-1]
        span_x, span_y = abs(vx) * span, abs(vy) * span
        lo_x, hi_x = margin + span_x, w - margin - span_x
        lo_y, hi_y = margin + span_y, h - margin - span_y
        cx = _rand(g, lo_x, hi_x) if hi_x > lo_x else w / 2.0
        cy = _rand(g, lo_y, hi_y) if hi_y > lo_y else h / 2.0
        thetas = []
        for t in taus:
            sc = scale * zoom ** t
            thetas.append(_affine(cx + vx * t, cy + vy * t, sc,
                                  angle + rot * t, size, h, w))
        return thetas, scale

    def _render(self, i, taus, still):
        """Frames (T, C, S, S) of image i seen along a random trajectory,
        and the trajectory's affine maps."""
        src = self.full[i]
        h, w = src.shape[1:]
        thetas, scale = self._trajectory(h, w, taus, still)
        if scale < 0.7:
            # Same normalized coordinates, so theta stays as it is.
            src = self.half[i]
        n = len(taus)
        theta = torch.tensor(np.stack(thetas), dtype=torch.float32)
        grid = F.affine_grid(theta, (n, 3, self.size, self.size),
                             align_corners=False)
        frames = F.grid_sample(src.unsqueeze(0).expand(n, -1, -1, -1) / 255.0,
                               grid, mode="bilinear", padding_mode="border",
                               align_corners=False)
        return frames, thetas

    def _sprite_mask(self, taus):
        """(T, 1, S, S) soft ellipse moving over the frame."""
        g, size = self.g, self.size
        rx, ry = _rand(g, 10, 40), _rand(g, 10, 40)
        cx, cy = _rand(g, 0, size), _rand(g, 0, size)
        v, dirn = _rand(g, 0.5, 4.0), _rand(g, 0, 2 * np.pi)
        yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32),
                                torch.arange(size, dtype=torch.float32),
                                indexing="ij")
        masks = []
        for t in taus:
            px, py = cx + v * np.cos(dirn) * t, cy + v * np.sin(dirn) * t
            r = torch.sqrt(((xx - px) / rx) ** 2 + ((yy - py) / ry) ** 2)
            masks.append(((1.0 - r) * min(rx, ry) / 1.5).clamp(0, 1))
        return torch.stack(masks).unsqueeze(1)

    def _clip(self):
        """One clip: frames (T, C, S, S) and back-maps (T-1, 2, 3).

        Half the clips hold the camera still; most of those have a
        moving object (another image's texture in a moving soft ellipse)
        over the still background, so that most pixels keep their input
        while others change. Some clips hold frames (repeat the time step),
        like a camera or codec that repeats frames: the output must settle
        in one step."""
        g, n = self.g, self.frames
        if _rand(g, 0, 1) < 0.4:
            inc = (torch.rand(n - 1, generator=g) > 0.4).float().tolist()
        else:
            inc = [1.0] * (n - 1)
        taus = [0.0]
        for d in inc:
            taus.append(taus[-1] + d)
        still = _rand(g, 0, 1) < 0.5
        i = int(torch.randint(len(self.images), (1,), generator=g))
        frames, thetas = self._render(i, taus, still)
        if still and _rand(g, 0, 1) < 0.75:
            j = int(torch.randint(len(self.images), (1,), generator=g))
            sprite, _ = self._render(j, taus, False)
            m = self._sprite_mask(taus)
            frames = frames * (1 - m) + sprite * m
        flip = _rand(g, 0, 1) < 0.5
        if flip:
            frames = frames.flip(3)
        back = []
        for t in range(1, n):
            m = _compose_back(thetas[t], thetas[t - 1])
            if flip:
                # A horizontal flip of every frame keeps the warps
                # consistent if the back-maps are conjugated by diag(-1, 1).
                f = np.diag([-1.0, 1.0, 1.0])
                m = (f @ np.vstack([m, [0, 0, 1]]) @ f)[:2]
            back.append(m)
        back = torch.tensor(np.stack(back), dtype=torch.float32)
        return frames, back

    def _camera(self, clean, lighting=True):
        """Lighting drift and sensor noise on (T, C, S, S) clean frames.
        Without lighting only noise is added (pairs: the target would not
        follow a lighting change)."""
        g, n = self.g, clean.shape[0]
        gain0 = np.exp(_rand(g, -0.3, 0.2))
        dgain = 0.0 if _rand(g, 0, 1) < 0.5 else _rand(g, -0.04, 0.04)
        wb = 1.0 + _rand(g, -0.06, 0.06, 3)
        offset = _rand(g, -0.03, 0.03)
        t = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1)
        gain = gain0 * (1.0 + dgain * t)
        lit = (clean * gain * wb.view(1, 3, 1, 1) + offset).clamp(0, 1)
        if not lighting:
            lit = clean
        sigma = _rand(g, 0.0, 0.025)
        noise = torch.randn(lit.shape, generator=g) * sigma
        # Shot-noise-like: stronger in brighter pixels, plus read noise.
        noisy = (lit + noise * (0.5 + lit)).clamp(0, 1)
        return noisy, lit

    def batch(self, batch):
        """Returns (noisy, clean, back), noisy/clean (B, T, 3, S, S) and
        back (B, T-1, 2, 3). With pairs, clean holds the targets seen
        through the same camera (noise on the input only, no lighting)."""
        noisy, clean, backs = [], [], []
        for _ in range(batch):
            frames, back = self._clip()
            if self.pairs:
                inp, tgt = frames[:, :3], frames[:, 3:]
                nz, _ = self._camera(inp, lighting=False)
                noisy.append(nz)
                clean.append(tgt)
            else:
                nz, lit = self._camera(frames)
                noisy.append(nz)
                clean.append(lit)
            backs.append(back)
        return torch.stack(noisy), torch.stack(clean), torch.stack(backs)


def warp(x, back):
    """Warps (B, C, H, W) previous frames into the current frame with back
    (B, 2, 3); returns the warped frames and a validity mask (B, 1, H, W)."""
    grid = F.affine_grid(back, x.shape, align_corners=False)
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                      align_corners=False)
    inside = (grid.abs() <= 1.0).all(3, keepdim=True).permute(0, 3, 1, 2)
    return y, inside.float()
