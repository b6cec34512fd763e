"""Referring metrics. RES (single target): cIoU = Σ intersection / Σ union over all expressions, mIoU = mean of
per-expression IoU; REC: Acc@0.5 = share of expressions whose predicted box has IoU ≥ 0.5 with the target box.
Generalised RES (gRefCOCO, Liu et al. 2023): cIoU over all expressions (a correct empty prediction adds nothing),
gIoU = mean per-expression IoU where an empty prediction for a no-target expression scores 1, N-acc = share of
no-target expressions predicted empty, T-acc = share of target expressions not predicted empty.

Diagnostics of single-target sentences: REC Acc@0.5 by expression kind (mvp_lm.synth.language.expression_kind)
next to the expected Acc@0.5 of picking one of the image's objects at random; sentence sensitivity = among pairs of
sentences on one image whose targets differ, the share whose picked boxes differ (IoU < 0.5): a model that ignores
the sentence picks the same object for both."""
from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np


def box_iou(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class RESStat:
    inter: int = 0
    union: int = 0
    iou_sum: float = 0.0
    n: int = 0
    rec_hits: int = 0
    rec_n: int = 0

    def add(self, pred: np.ndarray | None, gt: np.ndarray) -> None:
        pred = np.zeros_like(gt) if pred is None else pred
        i, u = int((pred & gt).sum()), int((pred | gt).sum())
        self.inter += i
        self.union += u
        self.iou_sum += i / u if u else 0.0
        self.n += 1

    def add_box(self, pred_box: list[float] | None, gt_box: list[float]) -> None:
        self.rec_n += 1
        self.rec_hits += pred_box is not None and box_iou(pred_box, gt_box) >= 0.5

    def summary(self) -> dict[str, float]:
        out = {}
        if self.n:
            out.update(cIoU=100 * self.inter / max(self.union, 1), mIoU=100 * self.iou_sum / self.n, num_res=self.n)
        if self.rec_n:
            out.update({"Acc@0.5": 100 * self.rec_hits / self.rec_n, "num_rec": self.rec_n})
        return out


@dataclass
class GRESStat:
    inter: int = 0
    union: int = 0
    iou_sum: float = 0.0
    n: int = 0
    no_target_n: int = 0
    no_target_hits: int = 0
    target_n: int = 0
    target_hits: int = 0

    def add(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """pred: the union of predicted masks (all False when the model says no target); gt likewise."""
        pred_empty, gt_empty = not pred.any(), not gt.any()
        i, u = int((pred & gt).sum()), int((pred | gt).sum())
        self.inter += i
        self.union += u
        self.n += 1
        if gt_empty:
            self.no_target_n += 1
            self.no_target_hits += pred_empty
            self.iou_sum += 1.0 if pred_empty else 0.0
        else:
            self.target_n += 1
            self.target_hits += not pred_empty
            self.iou_sum += i / u

    def summary(self) -> dict[str, float]:
        if not self.n:
            return {}
        out = {"cIoU": 100 * self.inter / max(self.union, 1), "gIoU": 100 * self.iou_sum / self.n, "num": self.n}
        if self.no_target_n:
            out["N-acc"] = 100 * self.no_target_hits / self.no_target_n
        if self.target_n:
            out["T-acc"] = 100 * self.target_hits / self.target_n
        return out


@dataclass
class SentenceDiagnostics:
    by_kind: dict[str, list[float]] = field(default_factory=lambda: defaultdict(lambda: [0, 0.0, 0]))  # hits, random, n
    picks: dict[int, list[tuple[list[float], list[float] | None]]] = field(default_factory=lambda: defaultdict(list))

    def add(self, kind: str, image_id: int, pred_box: list[float] | None, gt_box: list[float],
            choices: list[list[float]]) -> None:
        k = self.by_kind[kind]
        k[0] += pred_box is not None and box_iou(pred_box, gt_box) >= 0.5
        k[1] += sum(box_iou(c, gt_box) >= 0.5 for c in choices) / max(len(choices), 1)
        k[2] += 1
        self.picks[image_id].append((gt_box, pred_box))

    def summary(self) -> dict:
        kinds = {kind: {"Acc@0.5": 100 * hits / n, "random_Acc@0.5": 100 * rnd / n, "num": n}
                 for kind, (hits, rnd, n) in sorted(self.by_kind.items())}
        differ = pairs = 0
        for picks in self.picks.values():
            for (gt_a, pred_a), (gt_b, pred_b) in itertools.combinations(picks, 2):
                if box_iou(gt_a, gt_b) >= 0.5:
                    continue  # same target
                pairs += 1
                differ += pred_a is None or pred_b is None or box_iou(pred_a, pred_b) < 0.5
        out = {"by_kind": kinds}
        if pairs:
            out["sensitivity"] = {"differing_picks": 100 * differ / pairs, "pairs": pairs}
        return out
