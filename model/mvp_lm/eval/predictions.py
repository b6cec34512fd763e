"""The prediction file the metrics read: per image, the tasks of contracts/result.ts, so a server result can be
evaluated as it is. JSON: a list (or {"predictions": [...]}) of
  {"image_id": int, "caption": str | null, "tasks": [TaskResult, ...]}
where a TaskResult is {"type": "words"|"sentence", "mode": ..., "detections": [{phrase_index, phrase, score,
box? [x0,y0,x1,y1], mask? {size:[h,w], counts}, area, stuff?}], "semantic"?: [{phrase_index, phrase, mask, area}],
"no_target"?: bool}. Sentence tasks add "sent_id" (the RefCOCO / gRefCOCO sentence they answer); word tasks are
matched to categories by phrase text (case-insensitive). Other keys (job_id, timings_ms, ...) are ignored."""
from __future__ import annotations

import numpy as np

from ..data.convert.common import get, load_json
from ..data.errors import DataFormatError
from ..data.masks import decode_segmentation

MODES = {"words": ("panoptic", "instance", "semantic", "detection"), "sentence": ("single", "multi")}


def load_predictions(path: str) -> list[dict]:
    data = load_json(path)
    entries = data.get("predictions") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise DataFormatError(path, "<file>", "predictions", "expected a list of per-image predictions")
    for i, e in enumerate(entries):
        rec = f"predictions[{i}]"
        iid = get(e, "image_id", int, path, rec)
        rec = f"predictions[{i}] (image_id {iid})"
        if e.get("caption") is not None and not isinstance(e["caption"], str):
            raise DataFormatError(path, rec, "caption", "not a string or null")
        for j, t in enumerate(get(e, "tasks", list, path, rec)):
            f = f"tasks[{j}]"
            typ = get(t, "type", str, path, rec, f + ".type")
            mode = get(t, "mode", str, path, rec, f + ".mode")
            if mode not in MODES.get(typ, ()):
                raise DataFormatError(path, rec, f + ".mode", f"{mode!r} is not a mode of {typ!r} tasks")
            if typ == "sentence":
                get(t, "sent_id", int, path, rec, f + ".sent_id")
            for k, d in enumerate(get(t, "detections", list, path, rec, f + ".detections")):
                g = f"{f}.detections[{k}]"
                get(d, "phrase", str, path, rec, g + ".phrase")
                get(d, "score", (int, float), path, rec, g + ".score")
                _check_box(d.get("box"), path, rec, g + ".box")
                _check_rle(d.get("mask"), path, rec, g + ".mask")
            for k, r in enumerate(t.get("semantic") or []):
                get(r, "phrase", str, path, rec, f"{f}.semantic[{k}].phrase")
                _check_rle(get(r, "mask", dict, path, rec, f"{f}.semantic[{k}].mask"), path, rec,
                           f"{f}.semantic[{k}].mask")
    return entries


def _check_box(box, path, rec, field) -> None:
    if box is not None and not (isinstance(box, list) and len(box) == 4
                                and all(isinstance(v, (int, float)) for v in box)):
        raise DataFormatError(path, rec, field, f"{box!r} is not [x0, y0, x1, y1]")


def _check_rle(rle, path, rec, field) -> None:
    if rle is not None and not (isinstance(rle, dict) and isinstance(rle.get("counts"), str)
                                and isinstance(rle.get("size"), list) and len(rle["size"]) == 2):
        raise DataFormatError(path, rec, field, "not a COCO RLE {size: [h, w], counts: str}")


def mask_of(rle: dict, height: int, width: int, path: str, rec: str, field: str) -> np.ndarray:
    if list(rle["size"]) != [height, width]:
        raise DataFormatError(path, rec, field + ".size", f"{rle['size']} differs from the image [{height}, {width}]")
    return decode_segmentation(rle, height, width)
