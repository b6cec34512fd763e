"""GoldG / MDETR-style grounding JSON → word "detection" records. Each image entry carries its `caption`;
each annotation a `bbox` [x,y,w,h] and `tokens_positive` [[start, end], ...] character spans into that caption.
The phrase of an annotation is the caption text of its spans; annotations with equal spans share a phrase.
The image's own caption is the record's caption. No negative pool: phrases are free text, so any phrase
drawn from another image could be present in this one."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ..captions import clean_captions
from ..errors import DataFormatError
from ..masks import xywh_to_xyxy
from ..record import Phrase, Record, Target
from .common import check_box_xywh, get, get_list, image_path, index_images, load_json


def phrase_text(caption: str, spans: object, file, rec: str, field: str) -> tuple[tuple[int, int], ...]:
    if not (isinstance(spans, list) and spans and all(
            isinstance(s, list) and len(s) == 2 and all(isinstance(v, int) for v in s) for s in spans)):
        raise DataFormatError(str(file), rec, field, f"{spans!r} is not a list of [start, end] spans")
    for s, e in spans:
        if not 0 <= s < e <= len(caption):
            raise DataFormatError(str(file), rec, field,
                                  f"span [{s}, {e}] is outside the caption ({len(caption)} chars)")
    return tuple((s, e) for s, e in sorted(spans))


def convert(goldg_json: str | Path, source: str = "goldg", image_prefix: str = ""):
    data = load_json(goldg_json)
    images = index_images(data, goldg_json)
    per_image: dict[int, list] = defaultdict(list)
    for i, a in enumerate(get_list(data, "annotations", goldg_json)):
        rec = f"annotations[{i}]"
        iid = get(a, "image_id", int, goldg_json, rec, f"{rec}.image_id")
        if iid not in images:
            raise DataFormatError(str(goldg_json), rec, f"{rec}.image_id", f"no image {iid}")
        caption = get(images[iid], "caption", str, goldg_json, f"images (id {iid})", "caption")
        spans = phrase_text(caption, a.get("tokens_positive"), goldg_json, rec, f"{rec}.tokens_positive")
        box = check_box_xywh(a.get("bbox"), goldg_json, rec, f"{rec}.bbox")
        if not a.get("iscrowd", 0):
            per_image[iid].append((spans, box))
    records = []
    for iid, im in images.items():
        if not per_image.get(iid):
            continue
        phrase_of: dict[tuple, int] = {}
        phrases: list[Phrase] = []
        targets = []
        for spans, box in per_image[iid]:
            if spans not in phrase_of:
                text = " ".join(im["caption"][s:e].strip() for s, e in spans)
                existing = [j for j, p in enumerate(phrases) if p.text == text]
                phrase_of[spans] = existing[0] if existing else len(phrases)
                if not existing:
                    phrases.append(Phrase(text))
            targets.append(Target(phrase_of[spans], xywh_to_xyxy(box), None))
        records.append(Record(f"{source}/{iid}", source, image_path(image_prefix, im["file_name"]),
                              im["height"], im["width"], "words", "detection", phrases,
                              clean_captions([im["caption"]]), targets))
    return records, {}
