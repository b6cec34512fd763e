"""Sine position encodings (DETR / Mask2Former style for feature maps, DINO style for boxes)."""
from __future__ import annotations

import math

import torch


def sine_position_map(batch: int, height: int, width: int, num_feats: int, device=None, dtype=torch.float32,
                      temperature: float = 10000.0) -> torch.Tensor:
    """Normalised sine encoding of an unmasked H×W map -> [B, 2*num_feats, H, W] (y features first).

    Computed in float32 and cast at the end: a float16 `Range` is not a valid ONNX op, so an fp16 export would
    otherwise produce a graph ONNX Runtime refuses to load."""
    scale = 2 * math.pi
    eps = 1e-6
    y = torch.arange(1, height + 1, device=device, dtype=torch.float32)[:, None].expand(height, width)
    x = torch.arange(1, width + 1, device=device, dtype=torch.float32)[None, :].expand(height, width)
    y = y / (height + eps) * scale
    x = x / (width + eps) * scale
    dim_t = torch.arange(num_feats, device=device, dtype=torch.float32)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)
    pos_x = _interleave_sin_cos(x[..., None] / dim_t)
    pos_y = _interleave_sin_cos(y[..., None] / dim_t)
    pos = torch.cat((pos_y, pos_x), dim=-1).permute(2, 0, 1)
    return pos[None].expand(batch, -1, -1, -1).to(dtype)


def sine_box_embedding(boxes: torch.Tensor, d_model: int) -> torch.Tensor:
    """DINO's `gen_sineembed_for_position`: [..., 4] sigmoid cx,cy,w,h -> [..., 2*d_model] ordered y, x, w, h."""
    half = d_model // 2
    scale = 2 * math.pi
    dim_t = torch.arange(half, dtype=torch.float32, device=boxes.device)  # float32: see sine_position_map
    dim_t = 10000.0 ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / half)
    b = boxes.float()
    parts = [_interleave_sin_cos(b[..., i:i + 1] * scale / dim_t) for i in range(4)]
    x, y, w, h = parts
    return torch.cat((y, x, w, h), dim=-1).to(boxes.dtype)


def _interleave_sin_cos(t: torch.Tensor) -> torch.Tensor:
    """[..., F] -> [..., F] with sin of even and cos of odd features, interleaved as (sin0, cos1, sin2, cos3...)."""
    return torch.stack((t[..., 0::2].sin(), t[..., 1::2].cos()), dim=-1).flatten(-2)
