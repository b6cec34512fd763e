"""Mask encodings shared by converters, the synthetic generator and the metrics (COCO RLE via pycocotools)."""
from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils


def encode_rle(mask: np.ndarray) -> dict:
    """A boolean H×W mask as COCO compressed RLE with string counts (JSON-ready, as contracts/result.ts expects)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def _as_pycoco(rle: dict) -> dict:
    counts = rle["counts"]
    return {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def normalise_segmentation(seg: dict | list | None, height: int, width: int) -> dict | list | None:
    """Polygons stay polygons; any RLE (compressed, or uncompressed with a counts list) becomes compressed RLE."""
    if seg is None or isinstance(seg, list):
        return seg or None
    if isinstance(seg.get("counts"), list):
        r = mask_utils.frPyObjects(seg, height, width)
        return {"size": [int(r["size"][0]), int(r["size"][1])], "counts": r["counts"].decode("ascii")}
    return {"size": list(seg["size"]), "counts": seg["counts"]}


def decode_segmentation(seg: dict | list, height: int, width: int) -> np.ndarray:
    """Any COCO segmentation (polygon list, compressed or uncompressed RLE) as a boolean H×W mask."""
    if isinstance(seg, list):
        return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(seg, height, width))).astype(bool)
    if isinstance(seg.get("counts"), list):
        return mask_utils.decode(mask_utils.frPyObjects(seg, height, width)).astype(bool)
    return mask_utils.decode(_as_pycoco(seg)).astype(bool)


def mask_box(mask: np.ndarray) -> list[float]:
    """Tight absolute [x0, y0, x1, y1] (exclusive right/bottom edge, COCO convention) of a non-empty mask."""
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def xywh_to_xyxy(b: list[float]) -> list[float]:
    return [float(b[0]), float(b[1]), float(b[0] + b[2]), float(b[1] + b[3])]


def xyxy_to_xywh(b: list[float]) -> list[float]:
    return [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]
