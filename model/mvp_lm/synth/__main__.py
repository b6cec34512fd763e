"""python -m mvp_lm.synth --seed S --num-images N [--size 128] --out DIR [--render-preview]"""
from __future__ import annotations

import argparse
import json
import sys

from .preview import render_preview
from .writer import generate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mvp_lm.synth", description=__doc__)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--num-images", type=int, required=True)
    p.add_argument("--size", type=int, default=128, help="image side in pixels")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--out", required=True)
    p.add_argument("--render-preview", action="store_true", help="also write DIR/preview.png (val split)")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    if a.size < 32 or a.num_images < 1:
        p.error("--size must be at least 32 and --num-images at least 1")
    counts = generate(a.out, a.seed, a.num_images, a.size, a.val_fraction, progress=not a.no_progress)
    print(json.dumps(counts, sort_keys=True))
    if a.render_preview:
        split = "val" if counts.get("images_val") else "train"
        print(f"preview: {render_preview(a.out, f'{a.out}/preview.png', split)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
