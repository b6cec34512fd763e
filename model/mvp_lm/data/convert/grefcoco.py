"""gRefCOCO (grefs(unc).json + instances.json) → sentence "multi" records, one per sentence. A gref is
{ref_id, ann_id: [ids] (or [-1] / a bare int), image_id, split, no_target, sentences [{sent, ...}]};
no-target expressions get targets []."""
from __future__ import annotations

from pathlib import Path

from ..errors import DataFormatError
from ..masks import xywh_to_xyxy
from ..record import Phrase, Record, Target
from .common import get, image_path, index_instances, load_captions, load_json, sentence_texts


def target_ann_ids(ref: dict, file, rec: str) -> list[int]:
    ids = get(ref, "ann_id", (int, list), file, rec)
    ids = ids if isinstance(ids, list) else [ids]
    if not all(isinstance(a, int) and not isinstance(a, bool) for a in ids):
        raise DataFormatError(str(file), rec, "ann_id", f"{ids!r} is not a list of integers")
    real = [a for a in ids if a != -1]
    if ref.get("no_target") and real:
        raise DataFormatError(str(file), rec, "no_target", f"true, but ann_id lists targets {real}")
    return real


def convert(grefs_json: str | Path, instances_json: str | Path, split: str | None = None,
            captions: str | Path | None = None, source: str = "grefcoco", image_prefix: str = ""):
    images, anns = index_instances(instances_json)
    caps = load_captions(captions)
    refs = load_json(grefs_json)
    if not isinstance(refs, list):
        raise DataFormatError(str(grefs_json), "<file>", "<json>", "expected a list of refs")
    records = []
    for i, ref in enumerate(refs):
        rec = f"refs[{i}]"
        ref_id = get(ref, "ref_id", int, grefs_json, rec)
        rec = f"refs[{i}] (ref_id {ref_id})"
        if split is not None and get(ref, "split", str, grefs_json, rec) != split:
            continue
        iid = get(ref, "image_id", int, grefs_json, rec)
        if iid not in images:
            raise DataFormatError(str(grefs_json), rec, "image_id", f"image {iid} is not in {instances_json}")
        targets = []
        for a in target_ann_ids(ref, grefs_json, rec):
            if a not in anns or anns[a]["image_id"] != iid:
                raise DataFormatError(str(grefs_json), rec, "ann_id",
                                      f"annotation {a} is not an annotation of image {iid}")
            targets.append(Target(0, xywh_to_xyxy(anns[a]["bbox"]), anns[a]["segmentation"]))
        im = images[iid]
        for sent_id, text in sentence_texts(ref, grefs_json, rec):
            records.append(Record(f"{source}/{ref_id}/{sent_id}", source, image_path(image_prefix, im["file_name"]),
                                  im["height"], im["width"], "sentence", "multi", [Phrase(text)],
                                  caps.get(iid, []), list(targets)))
    return records, {}
