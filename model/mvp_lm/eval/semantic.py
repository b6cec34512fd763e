"""Semantic segmentation mIoU: a confusion matrix accumulated over the dataset; IoU_c = TP / (TP + FP + FN) for
every category with ground-truth or predicted pixels; mIoU is their mean. Void ground truth (category 0 here) is
ignored; pixels the prediction leaves unlabelled (0) count as misses of the ground-truth category."""
from __future__ import annotations

import numpy as np


class SemanticStat:
    def __init__(self, category_ids: list[int]):
        self.ids = sorted(category_ids)
        self.index = np.zeros(max(self.ids) + 1, np.int64)        # category id → row (0 = unlabelled)
        self.index[self.ids] = np.arange(1, len(self.ids) + 1)
        self.conf = np.zeros((len(self.ids) + 1, len(self.ids) + 1), np.int64)

    def add(self, gt: np.ndarray, pred: np.ndarray) -> None:
        valid = gt > 0
        g, p = self.index[gt[valid]], self.index[pred[valid]]
        self.conf += np.bincount(g * len(self.conf) + p, minlength=self.conf.size).reshape(self.conf.shape)

    def summary(self) -> dict[str, float]:
        tp = np.diag(self.conf)[1:]
        gt_total = self.conf[1:, :].sum(1)
        pred_total = self.conf[:, 1:].sum(0)
        union = gt_total + pred_total - tp
        present = union > 0
        ious = tp[present] / union[present]
        return {"mIoU": 100 * float(ious.mean()) if present.any() else 0.0, "num_categories": int(present.sum()),
                "pixel_acc": 100 * float(tp.sum() / max(gt_total.sum(), 1))}
