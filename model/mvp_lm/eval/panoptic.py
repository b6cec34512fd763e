"""Panoptic quality (Kirillov et al., the COCO panoptic definition as in panopticapi's pq_compute):
a predicted and a ground-truth segment of the same category match when IoU > 0.5 (pixels the prediction puts on
unlabelled ground truth are left out of the union); PQ = Σ IoU(TP) / (TP + ½FP + ½FN) per category, averaged over
categories that occur; SQ and RQ are its two factors. Unmatched predictions covering mostly void or a same-category
crowd region are not false positives. Ground-truth id 0 is void; prediction id 0 is "no segment"."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Segment:
    category_id: int
    iscrowd: bool = False


@dataclass
class PQStat:
    iou: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    tp: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    fp: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    fn: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def add_image(self, gt_ids: np.ndarray, gt_segs: dict[int, Segment], pred_ids: np.ndarray,
                  pred_segs: dict[int, Segment]) -> None:
        if gt_ids.shape != pred_ids.shape:
            raise ValueError(f"panoptic maps differ in shape: ground truth {gt_ids.shape}, prediction {pred_ids.shape}")
        # One pass over pixels: the joint histogram of (gt id, pred id) pairs, keyed as gt * stride + pred.
        g_flat, p_flat = gt_ids.ravel().astype(np.int64), pred_ids.ravel().astype(np.int64)
        stride = int(p_flat.max()) + 1
        keys, counts = np.unique(g_flat * stride + p_flat, return_counts=True)
        inter = {(int(k // stride), int(k % stride)): int(c) for k, c in zip(keys, counts)}
        gt_area = defaultdict(int)
        pred_area = defaultdict(int)
        for (g, p), c in inter.items():
            gt_area[g] += c
            pred_area[p] += c
        crowd_of = {s.category_id: g for g, s in gt_segs.items() if s.iscrowd}
        matched_gt, matched_pred = set(), set()
        for (g, p), c in inter.items():
            if g not in gt_segs or p not in pred_segs or gt_segs[g].iscrowd:
                continue
            if gt_segs[g].category_id != pred_segs[p].category_id:
                continue
            union = pred_area[p] + gt_area[g] - c - inter.get((0, p), 0)
            iou = c / union
            if iou > 0.5:
                cat = gt_segs[g].category_id
                self.tp[cat] += 1
                self.iou[cat] += iou
                matched_gt.add(g)
                matched_pred.add(p)
        for g, s in gt_segs.items():
            if g not in matched_gt and not s.iscrowd:
                self.fn[s.category_id] += 1
        for p, s in pred_segs.items():
            if p in matched_pred or pred_area.get(p, 0) == 0:
                continue
            ignored = inter.get((0, p), 0) + inter.get((crowd_of.get(s.category_id, -1), p), 0)
            if ignored / pred_area[p] > 0.5:
                continue
            self.fp[s.category_id] += 1

    def summary(self, isthing: dict[int, bool]) -> dict[str, float]:
        out = {}
        for name, keep in (("all", lambda c: True), ("things", lambda c: isthing.get(c, True)),
                           ("stuff", lambda c: not isthing.get(c, True))):
            cats = [c for c in set(self.tp) | set(self.fp) | set(self.fn)
                    if keep(c) and self.tp[c] + self.fp[c] + self.fn[c] > 0]
            pq = sq = rq = 0.0
            for c in cats:
                tp, fp, fn = self.tp[c], self.fp[c], self.fn[c]
                rq_c = tp / (tp + 0.5 * fp + 0.5 * fn)
                sq_c = self.iou[c] / tp if tp else 0.0
                pq += sq_c * rq_c
                sq += sq_c
                rq += rq_c
            n = len(cats)
            suffix = "" if name == "all" else f"_{name}"
            out.update({f"PQ{suffix}": 100 * pq / n if n else 0.0, f"SQ{suffix}": 100 * sq / n if n else 0.0,
                        f"RQ{suffix}": 100 * rq / n if n else 0.0, f"num_categories{suffix}": n})
        return out
