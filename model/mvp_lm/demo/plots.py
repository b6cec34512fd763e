"""Pictures for the README, drawn with Pillow alone (matplotlib is not a dependency): the loss curves of both
training stages and an overlay of demo results: a panoptic one and a labelled referring success and failure."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..data.masks import decode_segmentation
from ..synth.preview import _palette

COLOURS = {"loss": (20, 20, 20), "lm": (31, 119, 180), "cls": (255, 127, 14), "mask": (44, 160, 44),
           "dice": (214, 39, 40), "l1": (148, 103, 189), "giou": (140, 86, 75)}


def read_log(run: Path, last_step: int) -> list[dict]:
    """The rows of the checkpointed steps: a resumed run re-logs the steps after its last checkpoint (the later row
    wins), and a killed run logged steps its checkpoint does not hold."""
    rows = {}
    for line in (run / "log.jsonl").read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            rows[row["step"]] = row
    return [rows[k] for k in sorted(rows) if k <= last_step]


def _smooth(v: np.ndarray, window: int) -> np.ndarray:
    if len(v) < window:
        return v
    kernel = np.ones(window) / window
    head = np.array([v[:k + 1].mean() for k in range(window - 1)])
    return np.concatenate([head, np.convolve(v, kernel, mode="valid")])


def loss_curve(runs: list[tuple[str, list[dict]]], out: Path, size=(900, 520)) -> Path:
    """Total and per-component losses against the global step, one training run after another (label, rows),
    moving average of 10."""
    w, h = size
    left, right, top, bottom = 70, 150, 40, 50
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    # per run: (global steps, smoothed series of the components that run trains; stage 1 has LM loss only)
    stages, offsets, offset = [], [], 0
    for label, rows in runs:
        if rows:
            steps = np.array([offset + r["step"] for r in rows], float)
            stages.append((steps, {k: _smooth(np.array([r[k] for r in rows], float), 10) for k in COLOURS
                                   if any(r[k] for r in rows)}))
            offsets.append((offset, label))
            offset += len(rows)
    series = {f"{i}{k}": v for i, (_, ser) in enumerate(stages) for k, v in ser.items()}
    steps = np.concatenate([st for st, _ in stages])
    # log scale: the stage-2 total (~50 at the start) and its smallest components (~0.1) share one plot
    lo = np.log10(max(min(float(v[v > 0].min()) for v in series.values() if (v > 0).any()), 1e-3))
    hi = np.log10(max(float(v.max()) for v in series.values()))
    lo, hi = np.floor(lo), np.ceil(hi)
    xmax = float(steps.max())

    def xy(x, y):
        ly = np.log10(max(y, 10 ** lo))
        return (left + (w - left - right) * x / xmax, h - bottom - (h - top - bottom) * (ly - lo) / (hi - lo))

    d.rectangle([left, top, w - right, h - bottom], outline=(0, 0, 0))
    for e in range(int(lo), int(hi) + 1):
        for m in (1, 2, 5):
            y = m * 10.0 ** e
            if y > 10 ** hi:
                continue
            px = xy(0, y)
            d.line([px, (w - right, px[1])], fill=(200, 200, 200) if m == 1 else (235, 235, 235))
            d.text((8, px[1] - 6), f"{y:g}", fill=(0, 0, 0))
    for k in range(6):
        x = xmax * k / 5
        px = xy(x, 0)
        d.text((px[0] - 10, h - bottom + 6), f"{int(x)}", fill=(0, 0, 0))
    for k, (start, label) in enumerate(offsets):
        sx = xy(start, 0)[0]
        if k:
            d.line([(sx, top), (sx, h - bottom)], fill=(160, 160, 160))
        d.text((sx + 4, top + 4 + 14 * (k % 2)), f"{label} ->" if k else label, fill=(100, 100, 100))
    for st, ser in stages:
        for k, v in ser.items():
            d.line([xy(x, y) for x, y in zip(st, v)], fill=COLOURS[k], width=2 if k == "loss" else 1)
    for i, k in enumerate(COLOURS):
        y = top + 10 + 18 * i
        d.line([(w - right + 12, y + 6), (w - right + 36, y + 6)], fill=COLOURS[k], width=3)
        d.text((w - right + 42, y), "total" if k == "loss" else k, fill=(0, 0, 0))
    d.text((left, 12), "MVP-LM demo (tiny, paper variant): training losses (log scale), moving average of 10 steps", fill=(0, 0, 0))
    d.text(((w - right + left) // 2 - 20, h - 22), "step", fill=(0, 0, 0))
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out)
    return out


def _mask(rle: dict) -> np.ndarray:
    return decode_segmentation(rle, *rle["size"]).astype(bool)


@dataclass
class ReferringExample:
    """One sentence result for the picture: its image, the sentence, the task result, the target box, a label."""
    rgb: np.ndarray
    sentence: str
    result: dict
    target_box: list[float]
    label: str  # e.g. "success (IoU 0.91)" / "failure (IoU 0.00)"


def _draw_box(d: ImageDraw.ImageDraw, box: list[float], scale: int, dx: int, colour, width: int = 2) -> None:
    x0, y0, x1, y1 = (v * scale for v in box)
    d.rectangle([x0 + dx, y0, x1 + dx, y1], outline=colour, width=width)


def overlay(rgb: np.ndarray, panoptic: dict, caption: str | None, referring: list[ReferringExample], out: Path,
            scale: int = 3) -> Path:
    """Panels: an image, its predicted panoptic segmentation (labelled boxes), then one panel per referring example
    (predicted mask and box in yellow, the target's box in cyan) labelled success or failure."""
    h, w = rgb.shape[:2]
    dets = panoptic["detections"]
    pal = _palette(len(dets) + 1)
    seg = rgb.astype(np.float32).copy()
    for k, det in enumerate(sorted(dets, key=lambda x: x["score"])):
        m = _mask(det["mask"])
        seg[m] = 0.4 * seg[m] + 0.6 * pal[k + 1]
    panels = [rgb, seg.astype(np.uint8)]
    for ex in referring:
        ref = ex.rgb.astype(np.float32).copy()
        for det in ex.result["detections"][:1]:
            m = _mask(det["mask"])
            ref[m] = 0.4 * ref[m] + 0.6 * np.array([255, 220, 0])
        panels.append(ref.astype(np.uint8))
    pw, ph = w * scale, h * scale
    text_h = 84
    canvas = Image.new("RGB", (len(panels) * (pw + 8) - 8, ph + text_h), "white")
    d = ImageDraw.Draw(canvas)
    for i, p in enumerate(panels):
        canvas.paste(Image.fromarray(p).resize((pw, ph), Image.NEAREST), (i * (pw + 8), 0))
    for det in dets:
        if det.get("stuff"):
            continue
        _draw_box(d, det["box"], scale, pw + 8, (255, 255, 255), 1)
        x0, y0 = det["box"][0] * scale + pw + 8, det["box"][1] * scale
        d.text((x0 + 2, y0 + 1), f"{det['phrase']} {det['score']:.2f}", fill=(255, 255, 255))
    d.text((4, ph + 6), "input", fill=(0, 0, 0))
    d.text((pw + 12, ph + 6), "panoptic (all categories)", fill=(0, 0, 0))
    for k, ex in enumerate(referring):
        dx = (k + 2) * (pw + 8)
        _draw_box(d, ex.target_box, scale, dx, (0, 220, 255))
        for det in ex.result["detections"][:1]:
            _draw_box(d, det["box"], scale, dx, (255, 220, 0))
        d.text((dx + 4, ph + 6), f'"{ex.sentence}"', fill=(0, 0, 0))
        ok = ex.label.startswith("success")
        d.text((dx + 4, ph + 22), ex.label, fill=(0, 140, 0) if ok else (200, 0, 0))
        d.text((dx + 4, ph + 38), "yellow: picked   cyan: target", fill=(90, 90, 90))
    d.text((4, ph + 60), f"caption (first image): {caption or '(none)'}", fill=(0, 0, 0))
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    return out
