"""Perfect predictions made from ground truth, in the prediction-file format: a worked example of that format and
the upper bound every metric must reach (100). python -m mvp_lm.eval.oracle --gt DIR [--split val] --out PRED.json"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from ..data.masks import encode_rle, mask_box
from .gt import GroundTruth, GTPaths


def _det(phrase_index: int, phrase: str, mask: np.ndarray, stuff: bool = False) -> dict:
    return {"phrase_index": phrase_index, "phrase": phrase, "score": 1.0, "box": mask_box(mask),
            "mask": encode_rle(mask), "area": int(mask.sum()), "stuff": stuff}


def oracle_predictions(gt: GroundTruth) -> list[dict]:
    by_image: dict[int, dict] = {}

    def entry(iid: int) -> dict:
        return by_image.setdefault(iid, {"image_id": iid, "caption": (gt.captions.get(iid) or [None])[0],
                                         "tasks": []})

    cats = gt.panoptic["categories"]
    names = [c["name"] for c in cats.values()]
    for iid in gt.panoptic["annotations"]:
        ids, segs = gt.panoptic_image(iid)
        dets = [_det(names.index(cats[s.category_id]["name"]), cats[s.category_id]["name"], ids == sid,
                     not cats[s.category_id].get("isthing", 1)) for sid, s in segs.items() if not s.iscrowd]
        sem = gt.semantic_image(iid)
        regions = [{"phrase_index": names.index(cats[c]["name"]), "phrase": cats[c]["name"],
                    "mask": encode_rle(sem == c), "area": int((sem == c).sum())} for c in np.unique(sem) if c]
        things = [d for d in dets if not d["stuff"]]
        e = entry(iid)
        e["tasks"] += [{"type": "words", "mode": "panoptic", "detections": dets},
                       {"type": "words", "mode": "semantic", "detections": [], "semantic": regions},
                       {"type": "words", "mode": "instance", "detections": things}]
    for sent_id, r in sorted(gt.refs.items()):
        entry(r["image_id"])["tasks"].append({"type": "sentence", "mode": "single", "sent_id": sent_id,
                                              "detections": [{**_det(0, r["sent"], r["mask"]), "box": r["box"]}]})
    for sent_id, r in sorted(gt.grefs.items()):
        dets = [_det(0, r["sent"], r["mask"])] if r["mask"].any() else []
        entry(r["image_id"])["tasks"].append({"type": "sentence", "mode": "multi", "sent_id": sent_id,
                                              "detections": dets, "no_target": not dets})
    for e in by_image.values():
        for k, t in enumerate(e["tasks"]):
            t["task_index"] = k
    return [by_image[k] for k in sorted(by_image)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mvp_lm.eval.oracle", description=__doc__)
    p.add_argument("--gt", required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    preds = oracle_predictions(GroundTruth(GTPaths.for_dir(a.gt, a.split), a.split))
    with open(a.out, "w") as f:
        json.dump(preds, f)
    print(f"wrote {len(preds)} image predictions to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
