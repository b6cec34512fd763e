"""COCO / Objects365 detection JSON (instances with bbox [x,y,w,h]; segmentation polygons, RLE or absent) →
word records. task "instance" when the file has masks, else "detection". Crowd instances are skipped."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ..errors import DataFormatError
from ..masks import xywh_to_xyxy
from ..record import Phrase, Record, Target
from .common import check_annotation, get_list, image_path, index_categories, index_images, load_captions, load_json


def convert(instances_json: str | Path, captions: str | Path | None = None, source: str = "coco",
            task: str | None = None, image_prefix: str = ""):
    data = load_json(instances_json)
    images = index_images(data, instances_json)
    cats = index_categories(data, instances_json)
    caps = load_captions(captions)
    per_image: dict[int, list[dict]] = defaultdict(list)
    for i, raw in enumerate(get_list(data, "annotations", instances_json)):
        a = check_annotation(raw, i, instances_json, images)
        if a["category_id"] not in cats:
            raise DataFormatError(str(instances_json), a["record"], f"annotations[{i}].category_id",
                                  f"unknown category {a['category_id']!r}")
        if not a["iscrowd"]:
            per_image[a["image_id"]].append(a)
    has_masks = any(a["segmentation"] is not None for anns in per_image.values() for a in anns)
    task = task or ("instance" if has_masks else "detection")
    records = []
    for iid, im in images.items():
        anns = per_image.get(iid)
        if not anns:
            continue
        phrase_of: dict[int, int] = {}
        for a in anns:
            phrase_of.setdefault(a["category_id"], len(phrase_of))
        phrases = [Phrase(cats[cid]["name"]) for cid in phrase_of]
        targets = [Target(phrase_of[a["category_id"]], xywh_to_xyxy(a["bbox"]),
                          a["segmentation"] if task != "detection" else None) for a in anns]
        records.append(Record(f"{source}/{task}/{iid}", source, image_path(image_prefix, im["file_name"]),
                              im["height"], im["width"], "words", task, phrases, caps.get(iid, []), targets))
    return records, {source: [Phrase(c["name"]) for _, c in sorted(cats.items())]}
