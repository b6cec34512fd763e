"""RefCOCO / RefCOCO+ / RefCOCOg (refs(unc).p or refs(umd).p pickle + instances.json) → sentence "single"
records, one per referring sentence. A ref is {ref_id, ann_id, image_id, split, sentences [{sent, tokens, raw}]}."""
from __future__ import annotations

import pickle
from pathlib import Path

from ..errors import DataFormatError
from ..masks import xywh_to_xyxy
from ..record import Phrase, Record, Target
from .common import get, image_path, index_instances, load_captions, sentence_texts


def load_refs(refs_pickle: str | Path) -> list:
    try:
        with open(refs_pickle, "rb") as f:
            refs = pickle.load(f, encoding="latin1")  # the published files were written by Python 2
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise DataFormatError(str(refs_pickle), "<file>", "<pickle>", f"cannot unpickle: {e}") from None
    if not isinstance(refs, list):
        raise DataFormatError(str(refs_pickle), "<file>", "<pickle>",
                              f"expected a list of refs, got {type(refs).__name__}")
    return refs


def convert(refs_pickle: str | Path, instances_json: str | Path, split: str | None = None,
            captions: str | Path | None = None, source: str = "refcoco", image_prefix: str = ""):
    images, anns = index_instances(instances_json)
    caps = load_captions(captions)
    records = []
    for i, ref in enumerate(load_refs(refs_pickle)):
        rec = f"refs[{i}]"
        ref_id = get(ref, "ref_id", int, refs_pickle, rec)
        rec = f"refs[{i}] (ref_id {ref_id})"
        if split is not None and get(ref, "split", str, refs_pickle, rec) != split:
            continue
        ann_id = get(ref, "ann_id", int, refs_pickle, rec)
        iid = get(ref, "image_id", int, refs_pickle, rec)
        if ann_id not in anns:
            raise DataFormatError(str(refs_pickle), rec, "ann_id", f"annotation {ann_id} is not in {instances_json}")
        ann = anns[ann_id]
        if ann["image_id"] != iid:
            raise DataFormatError(str(refs_pickle), rec, "image_id",
                                  f"{iid} differs from annotation {ann_id}'s image {ann['image_id']}")
        im = images[iid]
        target = Target(0, xywh_to_xyxy(ann["bbox"]), ann["segmentation"])
        for sent_id, text in sentence_texts(ref, refs_pickle, rec):
            records.append(Record(f"{source}/{ref_id}/{sent_id}", source, image_path(image_prefix, im["file_name"]),
                                  im["height"], im["width"], "sentence", "single", [Phrase(text)],
                                  caps.get(iid, []), [target]))
    return records, {}
