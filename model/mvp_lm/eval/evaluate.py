"""Scores a prediction file (see .predictions) against ground truth (see .gt), one block per task type present:
panoptic (PQ/SQ/RQ), semantic (mIoU; also derived from panoptic predictions), detection / instance (box and mask
AP via COCOeval), res + rec (RefCOCO, single-target sentences), gres (gRefCOCO, multi-mode sentences), caption."""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..data.errors import DataFormatError
from ..data.masks import xyxy_to_xywh
from ..synth.language import expression_kind
from .captions import caption_scores, content_f1
from .coco_ap import coco_ap
from .gt import GroundTruth
from .panoptic import PQStat, Segment
from .predictions import mask_of
from .referring import GRESStat, RESStat, SentenceDiagnostics
from .semantic import SemanticStat


class _Context:
    """Where a prediction sits, for error messages, and the phrase → category lookup."""

    def __init__(self, path: str, categories: dict[int, dict]):
        self.path = path
        self.by_name = {c["name"].lower(): cid for cid, c in categories.items()}

    def category(self, phrase: str, rec: str, field: str) -> int:
        cid = self.by_name.get(phrase.strip().lower())
        if cid is None:
            raise DataFormatError(self.path, rec, field, f"phrase {phrase!r} is not a ground-truth category")
        return cid


def _panoptic_prediction(task: dict, h: int, w: int, ctx: _Context, rec: str, isthing: dict[int, bool]):
    """Detections → a non-overlapping segment map: higher scores claim pixels first; stuff merged per category."""
    ids = np.zeros((h, w), np.int64)
    segs: dict[int, Segment] = {}
    stuff_seg: dict[int, int] = {}
    order = sorted(range(len(task["detections"])), key=lambda k: -task["detections"][k]["score"])
    for k in order:
        d = task["detections"][k]
        f = f"tasks[{task['_index']}].detections[{k}]"
        if d.get("mask") is None:
            raise DataFormatError(ctx.path, rec, f + ".mask", "panoptic predictions need masks")
        cid = ctx.category(d["phrase"], rec, f + ".phrase")
        free = mask_of(d["mask"], h, w, ctx.path, rec, f + ".mask") & (ids == 0)
        if not isthing.get(cid, True) and cid in stuff_seg:
            sid = stuff_seg[cid]
        else:
            sid = len(segs) + 1
            segs[sid] = Segment(cid)
            if not isthing.get(cid, True):
                stuff_seg[cid] = sid
        ids[free] = sid
    return ids, segs


def _semantic_prediction(task: dict, h: int, w: int, ctx: _Context, rec: str) -> np.ndarray:
    """Category per pixel from the semantic regions (or, without them, from the detections by score)."""
    out = np.zeros((h, w), np.int64)
    regions = task.get("semantic")
    items = [(f"tasks[{task['_index']}].semantic[{k}]", r) for k, r in enumerate(regions)] if regions else \
        [(f"tasks[{task['_index']}].detections[{k}]", d) for k, d in
         sorted(enumerate(task["detections"]), key=lambda kd: -kd[1]["score"]) if d.get("mask")]
    for f, r in items:
        m = mask_of(r["mask"], h, w, ctx.path, rec, f + ".mask") & (out == 0)
        out[m] = ctx.category(r["phrase"], rec, f + ".phrase")
    return out


def _union_mask(task: dict, h: int, w: int, path: str, rec: str) -> np.ndarray:
    """The answer to a generalised expression: the union of its masks, empty when it says "no target"."""
    m = np.zeros((h, w), bool)
    if task.get("no_target"):
        return m
    for k, d in enumerate(task["detections"]):
        if d.get("mask") is not None:
            m |= mask_of(d["mask"], h, w, path, rec, f"tasks[{task['_index']}].detections[{k}].mask")
    return m


Item = tuple[dict, dict, str]   # (per-image entry, task with its "_index", record name for errors)


def _panoptic_and_semantic(gt: GroundTruth, by_mode: dict[str, list[Item]], path: str) -> dict[str, dict]:
    cats = gt.panoptic["categories"]
    ctx = _Context(path, cats)
    isthing = {cid: bool(c.get("isthing", 1)) for cid, c in cats.items()}
    out = {}
    if by_mode["panoptic"]:
        pq, sem = PQStat(), SemanticStat(list(cats))
        for e, t, rec in by_mode["panoptic"]:
            gt_ids, gt_segs = gt.panoptic_image(e["image_id"])
            ids, segs = _panoptic_prediction(t, *gt_ids.shape, ctx, rec, isthing)
            pq.add_image(gt_ids, gt_segs, ids, segs)
            lut = np.zeros(len(segs) + 1, np.int64)
            for sid, seg in segs.items():
                lut[sid] = seg.category_id
            sem.add(gt.semantic_image(e["image_id"]), lut[ids])
        out["panoptic"] = {**pq.summary(isthing), "num_images": len(by_mode["panoptic"])}
        out["semantic_from_panoptic"] = sem.summary()
    if by_mode["semantic"]:
        sem = SemanticStat(list(cats))
        for e, t, rec in by_mode["semantic"]:
            g = gt.semantic_image(e["image_id"])
            sem.add(g, _semantic_prediction(t, *g.shape, ctx, rec))
        out["semantic"] = {**sem.summary(), "num_images": len(by_mode["semantic"])}
    return out


def _coco_ap(gt: GroundTruth, items: list[Item], path: str) -> dict[str, dict]:
    coco = gt.coco
    ctx = _Context(path, coco.cats)
    boxes, masks, image_ids = [], [], set()
    for e, t, rec in items:
        iid = e["image_id"]
        if iid not in coco.imgs:
            raise DataFormatError(path, rec, "image_id", f"not an image of {gt.paths.instances}")
        image_ids.add(iid)
        h, w = coco.imgs[iid]["height"], coco.imgs[iid]["width"]
        for k, d in enumerate(t["detections"]):
            f = f"tasks[{t['_index']}].detections[{k}]"
            base = {"image_id": iid, "category_id": ctx.category(d["phrase"], rec, f + ".phrase"),
                    "score": float(d["score"])}
            if d.get("box") is not None:
                boxes.append({**base, "bbox": xyxy_to_xywh(d["box"])})
            if d.get("mask") is not None:
                mask_of(d["mask"], h, w, path, rec, f + ".mask")   # checks the size
                masks.append({**base, "segmentation": dict(d["mask"])})
    block = {"box": coco_ap(coco, boxes, "bbox", sorted(image_ids))}
    if masks:
        block["mask"] = coco_ap(coco, masks, "segm", sorted(image_ids))
    return block


def _sentence_target(targets: dict[int, dict], e: dict, t: dict, rec: str, path: str, split: str) -> dict:
    target = targets.get(t["sent_id"])
    if target is None or target["image_id"] != e["image_id"]:
        raise DataFormatError(path, rec, f"tasks[{t['_index']}].sent_id",
                              f"{t['sent_id']} is not a {split} sentence of image {e['image_id']}")
    return target


def _refcoco(gt: GroundTruth, items: list[Item], path: str) -> dict[str, float]:
    """RES on the best-scoring detection's mask, REC on its box; REC by expression kind and sentence sensitivity."""
    res, diag = RESStat(), SentenceDiagnostics()
    for e, t, rec in items:
        target = _sentence_target(gt.refs, e, t, rec, path, gt.split)
        h, w = target["mask"].shape
        best = max(t["detections"], key=lambda d: d["score"], default=None)
        f = f"tasks[{t['_index']}].detections"
        res.add(mask_of(best["mask"], h, w, path, rec, f + ".mask") if best and best.get("mask") else None,
                target["mask"])
        box = best.get("box") if best else None
        res.add_box(box, target["box"])
        diag.add(expression_kind(target["sent"]), e["image_id"], box, target["box"],
                 gt.ref_boxes.get(e["image_id"], []))
    return {**res.summary(), **diag.summary()}


def _grefcoco(gt: GroundTruth, items: list[Item], path: str) -> dict[str, float]:
    gres = GRESStat()
    for e, t, rec in items:
        target = _sentence_target(gt.grefs, e, t, rec, path, gt.split)
        gres.add(_union_mask(t, *target["mask"].shape, path, rec), target["mask"])
    return gres.summary()


def _caption_content(gt: GroundTruth, entries: list[dict]) -> dict[str, float]:
    """Content F1 of the captions: things and stuff categories named vs present (panoptic ground truth)."""
    cats = gt.panoptic["categories"]
    entries = [e for e in entries if e["image_id"] in gt.panoptic["annotations"]]
    out = {}
    for label, isthing in (("things", True), ("stuff", False)):
        names = {cid: c["name"].lower() for cid, c in cats.items() if bool(c.get("isthing", 1)) == isthing}
        present = [{names[c] for c in gt.present_categories(e["image_id"]) if c in names} for e in entries]
        out[f"content_F1_{label}"] = content_f1([e["caption"] for e in entries], present, list(names.values()))
    return out


def evaluate(gt: GroundTruth, predictions: list[dict], path: str = "<predictions>") -> dict[str, dict]:
    by_mode: dict[str, list[Item]] = defaultdict(list)
    for i, e in enumerate(predictions):
        rec = f"predictions[{i}] (image_id {e['image_id']})"
        for j, t in enumerate(e["tasks"]):
            by_mode[t["mode"]].append((e, {**t, "_index": j}, rec))
    results: dict[str, dict] = {}
    if by_mode["panoptic"] or by_mode["semantic"]:
        results.update(_panoptic_and_semantic(gt, by_mode, path))
    for mode in ("detection", "instance"):
        if by_mode[mode]:
            results[mode] = _coco_ap(gt, by_mode[mode], path)
    if by_mode["single"]:
        results["refcoco"] = _refcoco(gt, by_mode["single"], path)
    if by_mode["multi"]:
        results["grefcoco"] = _grefcoco(gt, by_mode["multi"], path)
    with_caption = [e for e in predictions if e.get("caption")]
    if with_caption and gt.paths.captions.exists():   # datasets without captions just get no caption block
        refs = gt.captions
        scored = [e for e in with_caption if refs.get(e["image_id"])]
        results["caption"] = caption_scores([e["caption"] for e in scored], [refs[e["image_id"]] for e in scored])
        if gt.paths.panoptic_json.exists():
            results["caption"].update(_caption_content(gt, with_caption))
    return results
