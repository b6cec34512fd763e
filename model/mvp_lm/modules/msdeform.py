"""Multi-scale deformable attention (Deformable DETR), in the `grid_sample` formulation.

No custom CUDA op: sampling is `F.grid_sample` (ONNX GridSample, opset 16+), so the module exports with built-in
ops. Spatial shapes are static Python ints (the input size is fixed per model), which keeps the graph free of
data-dependent control flow. Parameter names follow Deformable DETR / OpenSeeD.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def ms_deform_attn_core(value: torch.Tensor, spatial_shapes: list[tuple[int, int]],
                        sampling_locations: torch.Tensor, attention_weights: torch.Tensor) -> torch.Tensor:
    """value [B,N,h,dh]; sampling_locations [B,Lq,h,L,P,2] in [0,1] (x,y); attention_weights [B,Lq,h,L,P].

    Returns [B, Lq, h*dh]. Locations outside the map sample zeros (as the CUDA kernel does).
    """
    b, _, heads, dh = value.shape
    _, lq, _, levels, points, _ = sampling_locations.shape
    value_levels = value.split([hh * ww for hh, ww in spatial_shapes], dim=1)
    grids = 2 * sampling_locations - 1
    weights = attention_weights.transpose(1, 2).reshape(b * heads, 1, lq, levels, points)
    out = None
    for lvl, (hh, ww) in enumerate(spatial_shapes):
        v = value_levels[lvl].flatten(2).transpose(1, 2).reshape(b * heads, dh, hh, ww)
        g = grids[:, :, :, lvl].transpose(1, 2).flatten(0, 1)  # [B*h, Lq, P, 2]
        sampled = F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False)  # [B*h, dh, Lq, P]
        # weight and reduce level by level: never materialises all levels' samples at once
        contrib = (sampled * weights[..., lvl, :]).sum(-1)  # [B*h, dh, Lq]
        out = contrib if out is None else out + contrib
    return out.view(b, heads * dh, lq).transpose(1, 2)


class MSDeformAttn(nn.Module):
    def __init__(self, d_model: int, n_levels: int, n_heads: int, n_points: int):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"MSDeformAttn: d_model {d_model} not divisible by n_heads {n_heads}")
        self.n_levels, self.n_heads, self.n_points = n_levels, n_heads, n_points
        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        # Deformable DETR init: each head starts looking in its own direction, k steps out for point k
        nn.init.zeros_(self.sampling_offsets.weight)
        thetas = torch.arange(self.n_heads, dtype=torch.float32) * (2.0 * math.pi / self.n_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(self.n_heads, 1, 1, 2)
        grid = grid.repeat(1, self.n_levels, self.n_points, 1)
        for i in range(self.n_points):
            grid[:, :, i, :] *= i + 1
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.view(-1))
        for lin in (self.attention_weights,):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)
        for lin in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, query: torch.Tensor, reference_points: torch.Tensor, value_input: torch.Tensor,
                spatial_shapes: list[tuple[int, int]]) -> torch.Tensor:
        """query [B,Lq,D]; reference_points [B,Lq,L,2] (x,y) or [B,Lq,L,4] (cx,cy,w,h), all in [0,1];
        value_input [B,N,D] flattened in `spatial_shapes` order."""
        b, lq, _ = query.shape
        n = value_input.shape[1]
        h, lv, p = self.n_heads, self.n_levels, self.n_points
        value = self.value_proj(value_input).view(b, n, h, -1)
        offsets = self.sampling_offsets(query).view(b, lq, h, lv, p, 2)
        weights = self.attention_weights(query).view(b, lq, h, lv * p).softmax(-1).view(b, lq, h, lv, p)
        if reference_points.shape[-1] == 2:
            normaliser = torch.tensor([[w, hh] for hh, w in spatial_shapes], dtype=query.dtype, device=query.device)
            locations = reference_points[:, :, None, :, None, :] + offsets / normaliser[None, None, None, :, None, :]
        else:
            locations = (reference_points[:, :, None, :, None, :2]
                         + offsets / p * reference_points[:, :, None, :, None, 2:] * 0.5)
        return self.output_proj(ms_deform_attn_core(value, spatial_shapes, locations, weights))
