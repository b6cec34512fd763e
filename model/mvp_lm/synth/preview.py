"""A PNG grid for humans: each image beside its panoptic segmentation (things outlined with their labels)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..data.convert.coco_panoptic import read_segment_ids


def _palette(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)   # fixed colours: previews of the same data are identical
    return rng.integers(40, 256, (n, 3)).astype(np.uint8)


def render_preview(root: str | Path, out: str | Path, split: str = "val", max_images: int = 16, scale: int = 2) -> Path:
    root = Path(root)
    data = json.loads((root / "annotations" / f"panoptic_{split}.json").read_text())
    names = {c["id"]: c["name"] for c in data["categories"]}
    cells = []
    for ann in data["annotations"][:max_images]:
        name = Path(ann["file_name"]).stem
        image = Image.open(root / "images" / f"{name}.png").convert("RGB")
        ids = read_segment_ids(root / "annotations" / f"panoptic_{split}" / ann["file_name"])
        colours = _palette(int(ids.max()) + 1)
        overlay = Image.fromarray((0.45 * np.asarray(image) + 0.55 * colours[ids]).astype(np.uint8))
        w, h = image.size
        pair = Image.new("RGB", (2 * w * scale, h * scale))
        pair.paste(image.resize((w * scale, h * scale), Image.NEAREST), (0, 0))
        pair.paste(overlay.resize((w * scale, h * scale), Image.NEAREST), (w * scale, 0))
        draw = ImageDraw.Draw(pair)
        for seg in ann["segments_info"]:
            x, y, bw, bh = (v * scale for v in seg["bbox"])
            x += w * scale
            draw.rectangle([x, y, x + bw - 1, y + bh - 1], outline=(255, 255, 255))
            draw.text((x + 2, y + 1), names[seg["category_id"]], fill=(255, 255, 255))
        cells.append(pair)
    if not cells:
        raise ValueError(f"{root}: split {split!r} has no images to preview")
    cols = min(4, len(cells))
    rows = -(-len(cells) // cols)
    cw, ch = cells[0].size
    grid = Image.new("RGB", (cols * cw + (cols - 1) * 4, rows * ch + (rows - 1) * 4), (30, 30, 30))
    for k, c in enumerate(cells):
        grid.paste(c, ((k % cols) * (cw + 4), (k // cols) * (ch + 4)))
    grid.save(out)
    return Path(out)
