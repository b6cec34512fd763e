"""Decoder losses (MaskDINO/OpenSeeD style, as the MVP-LM released code) and the LM next-token loss.

Every prediction set — the final layer, each auxiliary layer and the encoder's selected queries — is Hungarian-
matched on its own; denoising predictions use their known query→target assignment. Per matched set:
- class: word tasks CE over phrases+background (background weight 0.1), weighted mean over all queries;
  sentence tasks BCE on the sentence score with pos_weight = negatives/positives, ×0.1. A sentence sample
  without targets pushes every score towards 0.
- mask: BCE and Dice on importance-sampled points of each matched (query, mask) pair, summed ÷ num_masks.
- box: L1 and 1−GIoU of each matched thing pair, summed ÷ num_masks (stuff boxes are not supervised).
Weighting by LossWeights happens in `weighted_total`; the dict keeps raw values for logging.
"""
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from .boxes import cxcywh_to_xyxy, paired_generalized_box_iou
from .matcher import LossWeights, hungarian_match
from .points import point_sample, uncertain_point_coords
from .targets import ImageTargets


def sigmoid_ce_loss(logits: Tensor, labels: Tensor, num_masks: float) -> Tensor:
    """Point BCE: mean over the K points of each of the n masks [n,K], summed over masks, ÷ num_masks."""
    return F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(1).sum() / num_masks


def dice_loss(logits: Tensor, labels: Tensor, num_masks: float) -> Tensor:
    """1 − (2|p∩t|+1)/(|p|+|t|+1) per mask [n,K] over points, summed ÷ num_masks."""
    probs = logits.sigmoid()
    numerator = 2 * (probs * labels).sum(-1)
    denominator = probs.sum(-1) + labels.sum(-1)
    return (1 - (numerator + 1) / (denominator + 1)).sum() / num_masks


def box_losses(pred_boxes: Tensor, target_boxes: Tensor, num_boxes: float) -> tuple[Tensor, Tensor]:
    """(L1, 1−GIoU) of paired cxcywh boxes [n,4], each summed ÷ num_boxes."""
    l1 = F.l1_loss(pred_boxes, target_boxes, reduction="none").sum() / num_boxes
    giou = paired_generalized_box_iou(cxcywh_to_xyxy(pred_boxes), cxcywh_to_xyxy(target_boxes))
    return l1, (1 - giou).sum() / num_boxes


def lm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Next-token CE: logits [B,T,V] at j−1 predict labels [B,T] at j (HF style, −100 = not trained: the prompt)."""
    targets = labels[:, 1:]
    if not bool((targets != -100).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), targets.flatten(), ignore_index=-100)


@dataclass
class SetCriterion:
    """Decoder losses of one image. Class terms are divided by `batch_size` (images on this rank), so summing the
    per-image results gives the batch mean of the class loss; mask and box terms are sums ÷ num_masks."""

    weights: LossWeights = field(default_factory=LossWeights)
    num_points: int = 12544
    oversample_ratio: float = 3.0
    importance_sample_ratio: float = 0.75
    background_weight: float = 0.1
    sentence_scale: float = 0.1
    generator: torch.Generator | None = None

    def __call__(
        self, outputs: dict, targets: ImageTargets, is_sentence: bool, num_masks: float, batch_size: int = 1,
        num_thing_queries: int | None = None, dn_match: tuple[Tensor, Tensor] | None = None, dn_num_groups: int = 0,
    ) -> dict[str, Tensor]:
        """outputs: pred_logits [Q,P], pred_masks [Q,M,M] (optional), pred_boxes [Q,4], and optionally aux_outputs
        (list of such dicts), enc_outputs, dn_outputs (with its own aux_outputs) — one image, no batch dim.
        num_masks: targets in this process's batch, averaged over processes (≥1): the mask/box normaliser.
        dn_match: the fixed (dn query, target) index pairs; dn_num_groups scales their normaliser.
        Returns raw (unweighted) losses keyed "<component>/<set>"."""
        sets = {"final": outputs}
        for i, aux in enumerate(outputs.get("aux_outputs") or []):
            sets[f"aux{i}"] = aux
        if outputs.get("enc_outputs") is not None:
            sets["enc"] = outputs["enc_outputs"]
        losses: dict[str, Tensor] = {}
        for name, preds in sets.items():
            nq = num_thing_queries if name != "enc" else None  # enc queries are the text-selected things only
            match = hungarian_match(preds["pred_logits"], preds.get("pred_masks"), preds["pred_boxes"], targets,
                                    is_sentence, self.weights, self.num_points, nq, self.generator)
            losses.update(self._set_losses(preds, targets, match, is_sentence, num_masks, batch_size, name))
        dn = outputs.get("dn_outputs")
        if dn_match is not None and dn is not None:
            dn_sets = {"dn": dn} | {f"dn_aux{i}": aux for i, aux in enumerate(dn.get("aux_outputs") or [])}
            for name, preds in dn_sets.items():
                losses.update(self._set_losses(preds, targets, dn_match, is_sentence, num_masks * dn_num_groups,
                                               batch_size, name, matched_only_class=True))
        return losses

    def _set_losses(
        self, preds: dict, targets: ImageTargets, match: tuple[Tensor, Tensor], is_sentence: bool, num_masks: float,
        batch_size: int, name: str, matched_only_class: bool = False,
    ) -> dict[str, Tensor]:
        # 0 that depends on every head, so each loss stays in the graph even without matches (DDP needs that)
        zero = sum(v.sum() for k, v in preds.items() if k.startswith("pred_") and v is not None) * 0.0
        device = preds["pred_boxes"].device
        qi, ti = match[0].to(device), match[1].to(device)
        out = {}
        if preds.get("pred_logits") is not None:
            cls = self._class_loss(preds["pred_logits"].float(), targets, qi, ti, is_sentence, matched_only_class)
            out[f"cls/{name}"] = cls / batch_size + zero
        things = ~targets.is_stuff[ti]
        if bool(things.any()):
            l1, giou = box_losses(preds["pred_boxes"][qi[things]].float(), targets.boxes[ti[things]].float(), num_masks)
            out[f"l1/{name}"], out[f"giou/{name}"] = l1 + zero, giou + zero
        else:
            out[f"l1/{name}"] = out[f"giou/{name}"] = zero
        if preds.get("pred_masks") is not None:
            with_mask = targets.has_mask[ti]
            if bool(with_mask.any()):
                src = preds["pred_masks"][qi[with_mask]].float()
                with torch.no_grad():
                    coords = uncertain_point_coords(src, self.num_points, self.oversample_ratio,
                                                    self.importance_sample_ratio, self.generator)
                    labels = point_sample(targets.masks[ti[with_mask]].float(), coords)
                logits = point_sample(src, coords)
                out[f"mask/{name}"] = sigmoid_ce_loss(logits, labels, num_masks) + zero
                out[f"dice/{name}"] = dice_loss(logits, labels, num_masks) + zero
            else:
                out[f"mask/{name}"] = out[f"dice/{name}"] = zero
        return out

    def _class_loss(
        self, logits: Tensor, targets: ImageTargets, qi: Tensor, ti: Tensor, is_sentence: bool, matched_only: bool,
    ) -> Tensor:
        if is_sentence:
            scores = logits[:, 0]
            labels = torch.zeros_like(scores)
            labels[qi] = 1.0
            positives = float(qi.numel())
            pos_weight = torch.tensor((labels.numel() - positives) / max(positives, 1.0), device=scores.device)
            return F.binary_cross_entropy_with_logits(scores, labels, pos_weight=pos_weight) * self.sentence_scale
        num_classes = logits.shape[-1]
        classes = torch.full((logits.shape[0],), num_classes - 1, dtype=torch.int64, device=logits.device)
        classes[qi] = targets.labels[ti]
        if matched_only:
            logits, classes = logits[qi], classes[qi]
            if classes.numel() == 0:
                return logits.sum() * 0.0
        class_weight = torch.ones(num_classes, device=logits.device)
        class_weight[-1] = self.background_weight
        return F.cross_entropy(logits, classes, weight=class_weight)


def weighted_total(losses: dict[str, Tensor], weights: LossWeights) -> Tensor:
    """Σ weight(component) · loss over all "<component>/<set>" entries; "lm" has weight 1."""
    total = 0.0
    for key, value in losses.items():
        component = key.split("/")[0]
        total = total + (value if component == "lm" else getattr(weights, component) * value)
    return total
