"""COCO panoptic (panoptic_*.json + PNG segment maps, segment id = R + 256·G + 256²·B) → word records.

task "panoptic": one target per segment; task "semantic": one target per category (segments merged).
Crowd segments are skipped (COCO panoptic ignores them in training and evaluation)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DataFormatError
from ..masks import encode_rle, mask_box
from ..record import Phrase, Record, Target
from .common import get, get_list, image_path, index_categories, load_captions, load_json


def read_segment_ids(png: Path) -> np.ndarray:
    try:
        rgb = np.asarray(Image.open(png).convert("RGB"), dtype=np.uint32)
    except (OSError, ValueError) as e:
        raise DataFormatError(str(png), "<file>", "<png>", f"cannot read the segment map: {e}") from None
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def convert(panoptic_json: str | Path, png_dir: str | Path, captions: str | Path | None = None,
            source: str = "coco_panoptic", task: str = "panoptic", image_prefix: str = ""):
    if task not in ("panoptic", "semantic"):
        raise ValueError(f"coco_panoptic: task must be panoptic or semantic, not {task!r}")
    data = load_json(panoptic_json)
    cats = index_categories(data, panoptic_json)
    is_stuff = {cid: not bool(c.get("isthing", 1)) for cid, c in cats.items()}
    images = {}
    for i, im in enumerate(get_list(data, "images", panoptic_json)):
        images[get(im, "id", int, panoptic_json, f"images[{i}]", f"images[{i}].id")] = im
    caps = load_captions(captions)
    records = []
    for i, ann in enumerate(get_list(data, "annotations", panoptic_json)):
        rec = f"annotations[{i}]"
        iid = get(ann, "image_id", int, panoptic_json, rec, f"{rec}.image_id")
        rec = f"annotations[{i}] (image_id {iid})"
        png_name = get(ann, "file_name", str, panoptic_json, rec, f"annotations[{i}].file_name")
        if iid not in images:
            raise DataFormatError(str(panoptic_json), rec, f"annotations[{i}].image_id", "no such image")
        im = images[iid]
        ids = read_segment_ids(Path(png_dir) / png_name)
        h, w = ids.shape
        if (im.get("height"), im.get("width")) != (h, w):
            raise DataFormatError(str(panoptic_json), f"images (id {iid})", "height/width",
                                  f"({im.get('height')}, {im.get('width')}) differs from {png_name} ({h}, {w})")
        phrase_of: dict[int, int] = {}
        phrases: list[Phrase] = []
        masks: list[tuple[int, np.ndarray]] = []
        for j, seg in enumerate(get_list(ann, "segments_info", panoptic_json, rec)):
            f = f"annotations[{i}].segments_info[{j}]"
            sid = get(seg, "id", int, panoptic_json, rec, f + ".id")
            cid = get(seg, "category_id", int, panoptic_json, rec, f + ".category_id")
            if cid not in cats:
                raise DataFormatError(str(panoptic_json), rec, f + ".category_id", f"unknown category {cid}")
            if seg.get("iscrowd", 0):
                continue
            m = ids == sid
            if not m.any():
                raise DataFormatError(str(panoptic_json), rec, f + ".id", f"segment {sid} is absent from {png_name}")
            if cid not in phrase_of:
                phrase_of[cid] = len(phrases)
                phrases.append(Phrase(cats[cid]["name"], is_stuff[cid]))
            masks.append((phrase_of[cid], m))
        if not phrases:
            continue
        if task == "semantic":
            merged: dict[int, np.ndarray] = {}
            for pi, m in masks:
                merged[pi] = merged[pi] | m if pi in merged else m
            masks = sorted(merged.items())
        targets = [Target(pi, mask_box(m), encode_rle(m), phrases[pi].stuff) for pi, m in masks]
        records.append(Record(f"{source}/{task}/{iid}", source, image_path(image_prefix, im.get("file_name", png_name)),
                              h, w, "words", task, phrases, caps.get(iid, []), targets))
    pool = [Phrase(c["name"], is_stuff[cid]) for cid, c in sorted(cats.items())]
    return records, {source: pool}
