"""Denoising queries for word data (DN-DETR / DINO / MaskDINO, as the MVP-LM released code builds them).

Each ground-truth box is noised (centre moved by up to ±noise·w/2, ±noise·h/2; size changed by up to ±noise·w, h)
and becomes a reference box whose content is the GT phrase's projected text embedding. The budget of
`max_queries` is split into groups of `group_size` = most targets in any image of the batch; group g holds one
noised copy of every target. The decoder runs [dn queries; matching queries] together under an attention mask in
which matching queries cannot see any dn query and no dn group can see another group (dn queries do see the
matching queries). Their predictions are supervised with the known (dn query → target) assignment.
"""
from dataclasses import dataclass

import torch
from torch import Tensor

from .targets import ImageTargets


@dataclass
class DenoisingQueries:
    content: Tensor  # [B,Nd,D]
    ref_boxes: Tensor  # [B,Nd,4] sigmoid cx,cy,w,h
    attn_mask: Tensor  # [Nd+Q, Nd+Q] bool, True = may not attend
    num_groups: int
    group_size: int
    matches: list[tuple[Tensor, Tensor]]  # per image: (dn query indices, target indices)

    def model_input(self) -> dict:
        """The `dn` argument of MVPLM.perceive."""
        return {"content": self.content, "ref_boxes": self.ref_boxes, "attn_mask": self.attn_mask}


def noise_boxes(boxes: Tensor, noise_scale: float, generator: torch.Generator | None = None) -> Tensor:
    """Uniformly jitter cxcywh boxes [N,4] (DINO box noise); result clamped to [0,1]."""
    diff = torch.cat([boxes[:, 2:] / 2, boxes[:, 2:]], dim=1)
    jitter = torch.rand(boxes.shape, generator=generator, device=boxes.device) * 2 - 1
    return (boxes + jitter * diff * noise_scale).clamp(0.0, 1.0)


def denoising_attn_mask(num_groups: int, group_size: int, num_queries: int, device=None) -> Tensor:
    """[Nd+Q, Nd+Q] bool mask, True = blocked: matching queries do not see dn queries; dn groups are isolated."""
    nd = num_groups * group_size
    mask = torch.zeros(nd + num_queries, nd + num_queries, dtype=torch.bool, device=device)
    mask[nd:, :nd] = True
    group = torch.arange(nd, device=device) // group_size
    mask[:nd, :nd] = group[:, None] != group[None, :]
    return mask


def build_denoising(
    targets: list[ImageTargets], phrase_embeds: list[Tensor], num_queries: int, max_queries: int = 100,
    noise_scale: float = 0.4, generator: torch.Generator | None = None,
) -> DenoisingQueries | None:
    """phrase_embeds: per image the projected phrase embeddings [P,D] that targets' labels index.
    num_queries: matching queries Q the decoder runs after the dn queries. None when no image has targets."""
    group_size = max(len(t) for t in targets)
    if group_size == 0 or max_queries < group_size:
        return None
    num_groups = max_queries // group_size
    nd = num_groups * group_size
    dim = phrase_embeds[0].shape[-1]
    device = phrase_embeds[0].device
    content = phrase_embeds[0].new_zeros(len(targets), nd, dim)
    ref_boxes = torch.full((len(targets), nd, 4), 0.5, device=device)  # padding slots: a neutral centred box
    matches = []
    for b, (t, embeds) in enumerate(zip(targets, phrase_embeds)):
        n = len(t)
        group_start = torch.arange(num_groups, device=device)[:, None] * group_size
        slots = (group_start + torch.arange(n, device=device)).flatten()
        target_idx = torch.arange(n, device=device).repeat(num_groups)
        content[b, slots] = embeds[t.labels[target_idx]]
        ref_boxes[b, slots] = noise_boxes(t.boxes[target_idx].float(), noise_scale, generator)
        matches.append((slots.cpu(), target_idx.cpu()))
    attn_mask = denoising_attn_mask(num_groups, group_size, num_queries, device)
    return DenoisingQueries(content, ref_boxes, attn_mask, num_groups, group_size, matches)
