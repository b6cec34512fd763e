"""Hungarian matching of decoder queries to ground-truth objects (one image at a time).

Cost = class·w_cls + mask BCE·w_mask + dice·w_dice + box L1·w_l1 − GIoU·w_giou, with mask costs on points shared
by all masks (uniformly sampled), as in Mask2Former/MaskDINO. Word tasks score a target's phrase with the softmax
over phrases+background; sentence tasks with the sigmoid of the single sentence score. Panoptic: the first
`num_thing_queries` queries match only thing targets and the remaining (stuff) queries only stuff targets.
"""
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from .boxes import cxcywh_to_xyxy, generalized_box_iou
from .points import point_sample
from .targets import ImageTargets


@dataclass(frozen=True)
class LossWeights:
    """Weights shared by the matching cost and the losses (paper / released code)."""

    cls: float = 2.0
    mask: float = 5.0
    dice: float = 5.0
    l1: float = 5.0
    giou: float = 2.0


def pairwise_sigmoid_ce(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean BCE over points of every prediction [Q,K] against every target [N,K] -> [Q,N]."""
    pos = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none")
    neg = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
    return (pos @ labels.T + neg @ (1 - labels).T) / logits.shape[1]


def pairwise_dice(logits: Tensor, labels: Tensor) -> Tensor:
    """Dice loss (+1 smoothing) of every prediction [Q,K] against every target [N,K] -> [Q,N]."""
    probs = logits.sigmoid()
    numerator = 2 * probs @ labels.T
    denominator = probs.sum(-1)[:, None] + labels.sum(-1)[None, :]
    return 1 - (numerator + 1) / (denominator + 1)


def class_cost(pred_logits: Tensor, labels: Tensor, is_sentence: bool) -> Tensor:
    """[Q,P] logits -> [Q,N] cost (negative probability of the target's class)."""
    if is_sentence:
        return -pred_logits[:, :1].sigmoid().expand(-1, labels.shape[0])
    return -pred_logits.softmax(-1)[:, labels]


@torch.no_grad()
def match_cost(
    pred_logits: Tensor, pred_masks: Tensor | None, pred_boxes: Tensor, targets: ImageTargets, is_sentence: bool,
    weights: LossWeights, num_points: int, generator: torch.Generator | None = None,
) -> Tensor:
    """Full cost matrix [Q,N] for one image."""
    cost = weights.cls * class_cost(pred_logits.float(), targets.labels, is_sentence)
    if pred_masks is not None and bool(targets.has_mask.any()):
        coords = torch.rand(1, num_points, 2, device=pred_masks.device, generator=generator)
        out_pts = point_sample(pred_masks.float(), coords.expand(pred_masks.shape[0], -1, -1))
        tgt_pts = point_sample(targets.masks.float(), coords.expand(len(targets), -1, -1))
        mask_cost = (weights.mask * pairwise_sigmoid_ce(out_pts, tgt_pts)
                     + weights.dice * pairwise_dice(out_pts, tgt_pts))
        cost = cost + mask_cost * targets.has_mask[None, :]
    pred, tgt = pred_boxes.float(), targets.boxes.float()
    box_cost = (weights.l1 * torch.cdist(pred, tgt, p=1)
                - weights.giou * generalized_box_iou(cxcywh_to_xyxy(pred), cxcywh_to_xyxy(tgt)))
    return cost + box_cost * (~targets.is_stuff)[None, :]


def _assign(cost: Tensor, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(rows) == 0 or len(cols) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    sub = cost[np.ix_(rows, cols)]
    if not np.isfinite(sub).all():
        raise ValueError("matching cost has NaN/inf entries (check predictions for NaN)")
    r, c = linear_sum_assignment(sub)
    return rows[r], cols[c]


def hungarian_match(
    pred_logits: Tensor, pred_masks: Tensor | None, pred_boxes: Tensor, targets: ImageTargets, is_sentence: bool,
    weights: LossWeights, num_points: int, num_thing_queries: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Optimal one-to-one assignment for one image -> (query indices, target indices), sorted by query.

    num_thing_queries: panoptic constraint — queries [0, K) may match only things, [K, Q) only stuff.
    """
    num_queries = pred_logits.shape[0]
    if len(targets) == 0:
        empty = torch.zeros(0, dtype=torch.int64)
        return empty, empty.clone()
    cost = match_cost(pred_logits, pred_masks, pred_boxes, targets, is_sentence, weights, num_points, generator)
    cost = cost.cpu().numpy()
    all_rows = np.arange(num_queries)
    all_cols = np.arange(len(targets))
    if num_thing_queries is None:
        rows, cols = _assign(cost, all_rows, all_cols)
    else:
        stuff = targets.is_stuff.cpu().numpy()
        tr, tc = _assign(cost, all_rows[:num_thing_queries], all_cols[~stuff])
        sr, sc = _assign(cost, all_rows[num_thing_queries:], all_cols[stuff])
        rows, cols = np.concatenate([tr, sr]), np.concatenate([tc, sc])
    order = np.argsort(rows, kind="stable")
    return torch.as_tensor(rows[order], dtype=torch.int64), torch.as_tensor(cols[order], dtype=torch.int64)
