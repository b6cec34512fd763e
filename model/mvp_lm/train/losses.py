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


def lm_loss(logits: Tensor, input_ids: Tensor, label_mask: Tensor) -> Tensor:
    """Next-token CE over the positions whose token is marked in label_mask [B,T] (the response)."""
    targets = input_ids[:, 1:]
    mask = label_mask[:, 1:].bool()
    flat = logits[:, :-1][mask]
    if flat.shape[0] == 0:
        return logits.sum() * 0.0
    return F.cross_entropy(flat.float(), targets[mask])


@dataclass
class _ClassTerms:
    """Numerator/denominator accumulated over the images of a batch, so the class loss is a batch mean."""

    numerator: list[Tensor] = field(default_factory=list)
    denominator: float = 0.0


@dataclass
class SetCriterion:
    weights: LossWeights = field(default_factory=LossWeights)
    num_points: int = 12544
    oversample_ratio: float = 3.0
    importance_sample_ratio: float = 0.75
    background_weight: float = 0.1
    sentence_scale: float = 0.1
    generator: torch.Generator | None = None

    def __call__(
        self, outputs: list[dict], targets: list[ImageTargets], is_sentence: bool, num_masks: float,
        num_thing_queries: int | None = None, dn_groups: list[tuple[Tensor, Tensor]] | None = None,
        dn_num_groups: int = 0,
    ) -> dict[str, Tensor]:
        """outputs: one dict per image (no batch dim) with pred_logits [Q,P], pred_masks [Q,M,M] (optional),
        pred_boxes [Q,4], and optionally aux_outputs (list), enc_outputs, dn_outputs (with its own aux_outputs).
        num_masks: targets per image averaged over the global batch (≥1), the normaliser of mask/box losses.
        dn_groups: per image the fixed (dn query, target) index pairs; dn_num_groups scales their normaliser.
        Returns raw (unweighted) losses keyed "<component>/<set>"."""
        losses: dict[str, Tensor] = {}
        sets = {"final": outputs}
        for i in range(len(outputs[0].get("aux_outputs") or [])):
            sets[f"aux{i}"] = [o["aux_outputs"][i] for o in outputs]
        if outputs[0].get("enc_outputs") is not None:
            sets["enc"] = [o["enc_outputs"] for o in outputs]
        for name, preds in sets.items():
            nq = num_thing_queries if name != "enc" else None  # enc queries are the text-selected things only
            matches = [
                hungarian_match(p["pred_logits"], p.get("pred_masks"), p["pred_boxes"], t, is_sentence, self.weights,
                                self.num_points, nq, self.generator)
                for p, t in zip(preds, targets)
            ]
            losses.update(self._set_losses(preds, targets, matches, is_sentence, num_masks, name))
        if dn_groups is not None and outputs[0].get("dn_outputs") is not None:
            dn_sets = {"dn": [o["dn_outputs"] for o in outputs]}
            for i in range(len(outputs[0]["dn_outputs"].get("aux_outputs") or [])):
                dn_sets[f"dn_aux{i}"] = [o["dn_outputs"]["aux_outputs"][i] for o in outputs]
            for name, preds in dn_sets.items():
                losses.update(self._set_losses(preds, targets, dn_groups, is_sentence, num_masks * dn_num_groups, name,
                                               matched_only_class=True))
        return losses

    def _set_losses(
        self, preds: list[dict], targets: list[ImageTargets], matches: list[tuple[Tensor, Tensor]], is_sentence: bool,
        num_masks: float, name: str, matched_only_class: bool = False,
    ) -> dict[str, Tensor]:
        device = preds[0]["pred_boxes"].device
        # 0 that depends on every head, so each loss stays in the graph even without matches (DDP needs that)
        zero = sum(v.sum() for p in preds for k, v in p.items() if k.startswith("pred_") and v is not None) * 0.0
        out = {}
        if preds[0].get("pred_logits") is not None:
            out[f"cls/{name}"] = self._class_loss(preds, targets, matches, is_sentence, matched_only_class) + zero
        src_boxes, tgt_boxes, src_masks, tgt_masks = [], [], [], []
        for p, t, (qi, ti) in zip(preds, targets, matches):
            qi, ti = qi.to(device), ti.to(device)
            things = ~t.is_stuff[ti]
            src_boxes.append(p["pred_boxes"][qi[things]])
            tgt_boxes.append(t.boxes[ti[things]])
            if p.get("pred_masks") is not None:
                with_mask = t.has_mask[ti]
                src_masks.append(p["pred_masks"][qi[with_mask]])
                tgt_masks.append(t.masks[ti[with_mask]])
        src_b, tgt_b = torch.cat(src_boxes), torch.cat(tgt_boxes)
        if src_b.shape[0] > 0:
            out[f"l1/{name}"], out[f"giou/{name}"] = (v + zero for v in box_losses(src_b.float(), tgt_b.float(), num_masks))
        else:
            out[f"l1/{name}"] = out[f"giou/{name}"] = zero
        if src_masks:
            src_m, tgt_m = torch.cat(src_masks).float(), torch.cat(tgt_masks).float()
            if src_m.shape[0] > 0:
                with torch.no_grad():
                    coords = uncertain_point_coords(src_m, self.num_points, self.oversample_ratio,
                                                    self.importance_sample_ratio, self.generator)
                    labels = point_sample(tgt_m, coords)
                logits = point_sample(src_m, coords)
                out[f"mask/{name}"] = sigmoid_ce_loss(logits, labels, num_masks) + zero
                out[f"dice/{name}"] = dice_loss(logits, labels, num_masks) + zero
            else:
                out[f"mask/{name}"] = out[f"dice/{name}"] = zero
        return out

    def _class_loss(
        self, preds: list[dict], targets: list[ImageTargets], matches: list[tuple[Tensor, Tensor]], is_sentence: bool,
        matched_only: bool,
    ) -> Tensor:
        if is_sentence:
            scores = torch.cat([p["pred_logits"][:, 0].float() for p in preds])
            labels = torch.cat([_sentence_labels(p["pred_logits"].shape[0], qi) for p, (qi, _) in zip(preds, matches)])
            labels = labels.to(scores.device)
            positives = float(labels.sum())
            pos_weight = torch.tensor((labels.numel() - positives) / max(positives, 1.0), device=scores.device)
            bce = F.binary_cross_entropy_with_logits(scores, labels, pos_weight=pos_weight)
            return bce * self.sentence_scale
        terms = _ClassTerms()
        for p, t, (qi, ti) in zip(preds, targets, matches):
            logits = p["pred_logits"].float()
            num_classes = logits.shape[-1]
            qi, ti = qi.to(logits.device), ti.to(logits.device)
            classes = torch.full((logits.shape[0],), num_classes - 1, dtype=torch.int64, device=logits.device)
            classes[qi] = t.labels[ti]
            if matched_only:
                logits, classes = logits[qi], classes[qi]
            class_weight = torch.ones(num_classes, device=logits.device)
            class_weight[-1] = self.background_weight
            terms.numerator.append(F.cross_entropy(logits, classes, weight=class_weight, reduction="sum"))
            terms.denominator += float(class_weight[classes].sum())
        return torch.stack(terms.numerator).sum() / max(terms.denominator, 1e-6)


def _sentence_labels(num_queries: int, matched_queries: Tensor) -> Tensor:
    labels = torch.zeros(num_queries)
    labels[matched_queries] = 1.0
    return labels


def weighted_total(losses: dict[str, Tensor], weights: LossWeights) -> Tensor:
    """Σ weight(component) · loss over all "<component>/<set>" entries; "lm" has weight 1."""
    total = 0.0
    for key, value in losses.items():
        component = key.split("/")[0]
        total = total + (value if component == "lm" else getattr(weights, component) * value)
    return total
