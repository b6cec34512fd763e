"""A tiny synthetic SFT set for the training tests: a red rectangle over a sky/grass split (96×128 images)."""
from pathlib import Path

import numpy as np
from PIL import Image

from mvp_lm.data.masks import encode_rle
from mvp_lm.data.record import Phrase, Record, Target, write_categories, write_jsonl


def write_synthetic_set(root: Path, num_images: int = 1) -> Path:
    """One panoptic word record and one single-target sentence record per image; returns the JSONL path."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    records = []
    h, w = 96, 128
    for i in range(num_images):
        img = np.zeros((h, w, 3), np.uint8)
        img[: h // 2] = (120, 170, 250)
        img[h // 2:] = (60, 160, 60)
        x0, y0 = int(rng.integers(5, 60)), int(rng.integers(5, 40))
        square = np.zeros((h, w), bool)
        square[y0:y0 + 30, x0:x0 + 40] = True
        sky = np.zeros((h, w), bool)
        sky[: h // 2] = True
        sky &= ~square
        img[square] = (220, 30, 30)
        Image.fromarray(img).save(root / f"img{i}.png")
        box = [x0, y0, x0 + 40, y0 + 30]
        records.append(Record(f"words/{i}", "synth", f"img{i}.png", h, w, "words", "panoptic",
                              [Phrase("red square"), Phrase("sky", True)], ["a red square in front of the sky"],
                              [Target(0, box, encode_rle(square)),
                               Target(1, [0, 0, w, h // 2], encode_rle(sky), True)]))
        records.append(Record(f"sentence/{i}", "synth", f"img{i}.png", h, w, "sentence", "single",
                              [Phrase("the red square")], ["a red box on grass"], [Target(0, box, encode_rle(square))]))
    path = root / "train.jsonl"
    write_jsonl(path, records)
    write_categories(path, {"synth": [Phrase("red square"), Phrase("sky", True), Phrase("dog"), Phrase("tree", True)]})
    return path
