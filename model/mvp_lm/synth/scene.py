"""Sampling and rendering one synthetic scene: textured stuff bands plus overlapping coloured shapes.
Everything is drawn from the numpy Generator it is given, so a scene is a pure function of its seed."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from .vocab import COLOURS, SHAPES, SIZES, STUFF

MIN_VISIBLE_FRACTION = 0.6   # an object may be hidden by later ones, but never below this share of its area


@dataclass
class Thing:
    shape: str
    colour: str
    size: str
    cx: float
    cy: float
    mask: np.ndarray = field(repr=False)   # visible pixels (after occlusion)

    @property
    def area(self) -> int:
        return int(self.mask.sum())


@dataclass
class Scene:
    image: np.ndarray                      # H×W×3 uint8
    stuff: dict[str, np.ndarray]           # stuff name → visible mask
    things: list[Thing]                    # in drawing order (later ones on top)
    background: dict[str, np.ndarray] = field(repr=False)  # stuff layout before the things were drawn

    def region_share(self, t: Thing, stuff: str) -> float:
        """The share of a thing's visible pixels that lie on the given stuff region of the background."""
        m = self.background.get(stuff)
        return float((t.mask & m).sum() / max(t.area, 1)) if m is not None else 0.0


def _shape_mask(shape: str, cx: float, cy: float, r: float, angle: float, size: int) -> np.ndarray:
    img = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(img)
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=1)
    else:
        if shape == "star":
            radii = [r if k % 2 == 0 else r * 0.45 for k in range(10)]
        else:
            radii = [r] * {"square": 4, "triangle": 3, "diamond": 4, "hexagon": 6}[shape]
        n = len(radii)
        base = angle + (math.pi / 4 if shape == "square" else -math.pi / 2)
        pts = [(cx + rk * math.cos(base + 2 * math.pi * k / n), cy + rk * math.sin(base + 2 * math.pi * k / n))
               for k, rk in enumerate(radii)]
        if shape == "diamond":   # a rhombus: squash the square's horizontal axis
            pts = [(cx + (px - cx) * 0.65, py) for px, py in pts]
        d.polygon(pts, fill=1)
    return np.asarray(img, dtype=bool)


def _texture(name: str, size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    noise = rng.normal(0, 1, (size, size)).astype(np.float32)
    if name == "sky":
        base = np.stack([120 + 60 * yy, 175 + 40 * yy, np.full_like(yy, 235)], -1)
        base += 6 * noise[..., None]
    elif name == "grass":
        blades = np.sin(xx * size * 1.7 + 3 * noise) * 18
        base = np.stack([60 + blades * 0.3, 135 + blades, 50 + 0 * yy], -1) + 10 * noise[..., None]
    elif name == "water":
        waves = np.sin(yy * size * 0.8 + np.sin(xx * 12 + rng.uniform(0, 6)) * 2) * 20
        base = np.stack([30 + 0 * yy, 80 + waves * 0.5, 155 + waves], -1) + 5 * noise[..., None]
    elif name == "sand":
        speckle = (rng.random((size, size)) < 0.08) * -45.0
        base = np.stack([225 + 0 * yy, 200 + 0 * yy, 150 + 0 * yy], -1) + (speckle + 6 * noise)[..., None]
    elif name == "wall":
        bh = max(4, size // 16)
        row = (yy * size // bh).astype(int)
        mortar = ((yy * size) % bh < 1) | (((xx * size) + (row % 2) * bh) % (2 * bh) < 1)
        base = np.stack([160 + 0 * yy, 85 + 0 * yy, 65 + 0 * yy], -1) + 8 * noise[..., None]
        base[mortar] = (190, 185, 175)
    else:
        raise ValueError(f"no texture for stuff {name!r}")
    return base


def _background(size: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """1-3 horizontal bands with wavy borders, in the canonical top-to-bottom order of STUFF."""
    k = int(rng.integers(1, 4))
    names = [STUFF[i] for i in sorted(rng.choice(len(STUFF), k, replace=False))]
    cuts = np.sort(rng.uniform(0.25, 0.75, k - 1)) * size
    xs = np.arange(size)
    label = np.zeros((size, size), np.int32)
    for j, c in enumerate(cuts):
        border = c + rng.uniform(1, 0.06 * size) * np.sin(xs * rng.uniform(0.03, 0.15) + rng.uniform(0, 6.3))
        label[np.arange(size)[:, None] >= border[None, :]] = j + 1
    image = np.zeros((size, size, 3), np.float32)
    masks = {}
    for j, name in enumerate(names):
        m = label == j
        if m.any():
            masks[name] = m
            image[m] = _texture(name, size, rng)[m]
    return image, masks


def sample_scene(rng: np.random.Generator, size: int = 128, max_things: int = 6) -> Scene:
    image, background = _background(size, rng)
    n = int(rng.choice(np.arange(1, max_things + 1), p=_count_probs(max_things)))
    things: list[Thing] = []
    for _ in range(n * 8):          # rejection sampling; a crowded scene simply ends with fewer things
        if len(things) == n:
            break
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
        size_name = list(SIZES)[int(rng.integers(len(SIZES)))]
        r = float(rng.uniform(*SIZES[size_name])) * size
        cx, cy = (float(v) for v in rng.uniform(r, size - r, 2))
        full = _shape_mask(shape, cx, cy, r, float(rng.uniform(-0.3, 0.3)), size)
        if not full.any() or any((t.mask & ~full).sum() < MIN_VISIBLE_FRACTION * t.mask.sum() for t in things):
            continue
        for t in things:
            t.mask = t.mask & ~full
        things.append(Thing(shape, colour, size_name, cx, cy, full))
    shade = rng.normal(0, 4, (size, size, 1)).astype(np.float32)
    for t in things:
        image[t.mask] = (np.asarray(COLOURS[t.colour], np.float32) + shade[t.mask])
    covered = np.zeros((size, size), bool)
    for t in things:
        covered |= t.mask
    stuff = {name: m & ~covered for name, m in background.items() if (m & ~covered).any()}
    return Scene(np.clip(image, 0, 255).astype(np.uint8), stuff, things, background)


def _count_probs(k: int) -> np.ndarray:
    p = np.array([1.0 / (1 + abs(i - 3)) for i in range(1, k + 1)])
    return p / p.sum()
