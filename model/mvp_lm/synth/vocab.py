"""The synthetic benchmark's vocabulary: thing shapes with colour and size attributes, textured stuff regions.
Category ids follow COCO panoptic's convention (things first, then stuff)."""
from __future__ import annotations

SHAPES = ("circle", "square", "triangle", "star", "diamond", "hexagon")
STUFF = ("sky", "wall", "water", "sand", "grass")   # also the top-to-bottom order of the bands
COLOURS = {"red": (220, 40, 40), "yellow": (245, 215, 40), "purple": (140, 60, 190),
           "orange": (245, 140, 30), "white": (250, 250, 250), "black": (25, 25, 25)}
SIZES = {"small": (0.06, 0.08), "medium": (0.10, 0.12), "large": (0.15, 0.18)}  # radius / image size

CATEGORIES = ([{"id": i + 1, "name": s, "isthing": 1, "supercategory": "shape"} for i, s in enumerate(SHAPES)]
              + [{"id": len(SHAPES) + i + 1, "name": s, "isthing": 0, "supercategory": "background"}
                 for i, s in enumerate(STUFF)])
CATEGORY_ID = {c["name"]: c["id"] for c in CATEGORIES}
PLURAL = {s: s + ("es" if s.endswith("x") else "s") for s in SHAPES}
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight")
