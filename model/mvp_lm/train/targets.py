"""Per-image training targets in the model's frame (what the matcher, losses and denoising consume)."""
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class ImageTargets:
    """N ground-truth objects of one image.

    labels: [N] int64 phrase index (word tasks) — 0 for every target of a sentence task.
    boxes: [N,4] sigmoid-space cx,cy,w,h normalised to the padded S×S frame.
    masks: [N,M,M] float coverage in [0,1] at mask resolution (M = S/4, padded frame); rows without a mask are 0.
    has_mask: [N] bool — False for box-only annotations (no mask cost or loss for them).
    is_stuff: [N] bool — stuff targets get no box cost or loss and match only stuff queries in panoptic.
    """

    labels: Tensor
    boxes: Tensor
    masks: Tensor
    has_mask: Tensor
    is_stuff: Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device | str) -> "ImageTargets":
        return ImageTargets(self.labels.to(device), self.boxes.to(device), self.masks.to(device),
                            self.has_mask.to(device), self.is_stuff.to(device))
