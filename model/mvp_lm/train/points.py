"""Point sampling of mask logits (Mask2Former / PointRend): losses are computed on sampled points, not full masks."""
import torch
import torch.nn.functional as F
from torch import Tensor


def point_sample(masks: Tensor, coords: Tensor) -> Tensor:
    """Bilinearly read masks [N,H,W] at coords [N,K,2] in [0,1] (x, y) -> [N,K]."""
    grid = (2.0 * coords - 1.0).unsqueeze(1)  # [N,1,K,2] in grid_sample's [-1,1]
    # border padding: a point in the outer half-pixel reads the edge pixel instead of fading towards 0
    out = F.grid_sample(masks.unsqueeze(1), grid, align_corners=False, padding_mode="border")
    return out.squeeze(1).squeeze(1)


def uncertain_point_coords(
    mask_logits: Tensor, num_points: int, oversample_ratio: float, importance_sample_ratio: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Importance sampling: oversample random points, keep the most uncertain ones (|logit| smallest), fill the
    rest with uniform random points. mask_logits [N,H,W] -> coords [N,num_points,2]."""
    n = mask_logits.shape[0]
    device = mask_logits.device
    num_sampled = int(num_points * oversample_ratio)
    coords = torch.rand(n, num_sampled, 2, device=device, generator=generator)
    uncertainty = -point_sample(mask_logits, coords).abs()
    num_uncertain = int(importance_sample_ratio * num_points)
    idx = uncertainty.topk(num_uncertain, dim=1).indices
    chosen = torch.gather(coords, 1, idx.unsqueeze(-1).expand(-1, -1, 2))
    num_random = num_points - num_uncertain
    if num_random > 0:
        chosen = torch.cat([chosen, torch.rand(n, num_random, 2, device=device, generator=generator)], dim=1)
    return chosen
