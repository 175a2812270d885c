"""Synthetic pictures that are neither a cat nor a dog: extra training negatives.

Noise, stripes, checkerboards, gradients, fractal (1/f) noise tinted like
grass, gravel, sand or water, and flat silhouettes of four-legged animals
and birds drawn from ellipses and bars. Deterministic (seeded). The Rust
test suite draws its own textures and silhouettes with its own code, so these
are close cousins of what it checks: MODEL.md says so.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

SIZE = 256

TINTS = {
    "grass": ((20, 60, 10), (120, 190, 60)),
    "gravel": ((60, 58, 55), (190, 185, 175)),
    "soil": ((50, 35, 20), (150, 115, 80)),
    "sand": ((170, 140, 100), (240, 220, 180)),
    "water": ((10, 40, 80), (90, 160, 210)),
    "fur-grey": ((40, 40, 40), (200, 200, 200)),
}


def _fractal(rng: np.random.Generator, beta: float) -> np.ndarray:
    """1/f^beta noise in [0, 1]."""
    f = np.fft.fftfreq(SIZE)
    radius = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    radius[0, 0] = 1.0
    spectrum = (rng.normal(size=(SIZE, SIZE)) + 1j * rng.normal(size=(SIZE, SIZE))) / radius ** (beta / 2)
    spectrum[0, 0] = 0
    x = np.real(np.fft.ifft2(spectrum))
    return (x - x.min()) / (x.max() - x.min() + 1e-12)


def _tinted(v: np.ndarray, lo, hi) -> np.ndarray:
    lo, hi = np.array(lo, float), np.array(hi, float)
    return lo + v[..., None] * (hi - lo)


def _colour(rng) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def texture(kind: str, rng: np.random.Generator) -> Image.Image:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(float)
    if kind == "noise":
        if rng.random() < 0.5:
            a = rng.integers(0, 256, (SIZE, SIZE, 3)).astype(float)
        else:
            a = np.repeat(np.clip(rng.normal(128, 50, (SIZE, SIZE, 1)), 0, 255), 3, axis=2)
    elif kind == "stripes":
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(4, 60)
        t = (xx * np.cos(angle) + yy * np.sin(angle)) / period
        v = (np.sin(2 * np.pi * t) > 0).astype(float) if rng.random() < 0.5 else 0.5 + 0.5 * np.sin(2 * np.pi * t)
        a = _tinted(v, _colour(rng), _colour(rng))
    elif kind == "checks":
        period = int(rng.integers(4, 64))
        v = ((xx // period + yy // period) % 2).astype(float)
        a = _tinted(v, _colour(rng), _colour(rng))
    elif kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        v = (xx * np.cos(angle) + yy * np.sin(angle)) / SIZE
        v = (v - v.min()) / (v.max() - v.min())
        a = _tinted(v, _colour(rng), _colour(rng))
    elif kind == "flat":
        a = np.broadcast_to(np.array(_colour(rng), float), (SIZE, SIZE, 3))
    elif kind == "fractal":
        tint = list(TINTS)[int(rng.integers(len(TINTS)))]
        v = _fractal(rng, rng.uniform(0.8, 2.6))
        if rng.random() < 0.5:  # blades / pebbles: add fine detail
            v = 0.6 * v + 0.4 * _fractal(rng, rng.uniform(0.2, 1.0))
        a = _tinted(v, *TINTS[tint])
    else:
        raise ValueError(kind)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")


def silhouette(rng: np.random.Generator) -> Image.Image:
    """A flat four-legged animal (horse, cow, deer-like) or a bird, in one colour."""
    dark = rng.random() < 0.75
    ink = tuple(int(c) for c in rng.integers(0, 70, 3)) if dark else tuple(int(c) for c in rng.integers(190, 256, 3))
    paper = tuple(int(c) for c in rng.integers(180, 256, 3)) if dark else tuple(int(c) for c in rng.integers(0, 70, 3))
    im = Image.new("RGB", (SIZE, SIZE), paper)
    d = ImageDraw.Draw(im)
    cx, cy = SIZE / 2 + rng.uniform(-20, 20), SIZE / 2 + rng.uniform(-10, 20)
    if rng.random() < 0.75:
        bw, bh = rng.uniform(60, 100), rng.uniform(25, 45)
        d.ellipse([cx - bw, cy - bh, cx + bw, cy + bh], fill=ink)
        leg_len, leg_w = rng.uniform(40, 80), rng.uniform(6, 14)
        for lx in (cx - bw * 0.75, cx - bw * 0.55, cx + bw * 0.55, cx + bw * 0.75):
            d.rectangle([lx - leg_w / 2, cy, lx + leg_w / 2, cy + bh + leg_len], fill=ink)
        side = 1 if rng.random() < 0.5 else -1
        nx, ny = cx + side * bw * 0.85, cy - bh * 0.4
        neck_len = rng.uniform(30, 70)
        hx, hy = nx + side * neck_len * 0.5, ny - neck_len
        d.line([nx, ny, hx, hy], fill=ink, width=int(rng.uniform(14, 26)))
        hl = rng.uniform(18, 40)
        d.ellipse([min(hx, hx + side * hl), hy - 12, max(hx, hx + side * hl), hy + 12], fill=ink)
        tx = cx - side * bw
        d.line([tx, cy - bh * 0.3, tx - side * rng.uniform(15, 40), cy + rng.uniform(0, 50)], fill=ink, width=int(rng.uniform(4, 12)))
    else:  # a bird: body, head, beak, wings
        bw, bh = rng.uniform(40, 70), rng.uniform(20, 35)
        d.ellipse([cx - bw, cy - bh, cx + bw, cy + bh], fill=ink)
        side = 1 if rng.random() < 0.5 else -1
        hx = cx + side * bw
        d.ellipse([hx - 18, cy - bh - 20, hx + 18, cy - bh + 14], fill=ink)
        d.polygon([(hx + side * 16, cy - bh - 6), (hx + side * 40, cy - bh), (hx + side * 16, cy - bh + 4)], fill=ink)
        d.polygon([(cx - 20, cy), (cx - side * rng.uniform(40, 90), cy - rng.uniform(50, 100)), (cx + 20, cy)], fill=ink)
        d.polygon([(cx - side * bw, cy), (cx - side * (bw + 40), cy - 15), (cx - side * (bw + 40), cy + 15)], fill=ink)
    return im


KINDS = ["noise", "stripes", "checks", "gradient", "flat", "fractal", "fractal", "fractal", "silhouette", "silhouette"]


def pictures(n: int = 400, seed: int = 14):
    """(kind, picture) for n synthetic negatives."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        yield kind, (silhouette(rng) if kind == "silhouette" else texture(kind, rng))
