"""Multi-scale deformable-attention pixel decoder (Mask DINO / OpenSeeD `MSDeformAttnPixelDecoder`).

res3/res4/res5 -> 1x1 conv + GroupNorm, plus a 1/64 level from res5 (3x3 stride-2 conv + GroupNorm); sine position
+ learned level embedding; deformable encoder layers -> memory; FPN fuse of the 1/8 level with res2 -> mask features.
Memory levels are flattened low resolution first (1/64, 1/32, 1/16, 1/8), as `MVPLMConfig.level_shapes` says.
Parameter names follow OpenSeeD (`input_proj.{i}` indexed res3, res4, res5, extra; `transformer.level_embed` and
`transformer.encoder.layers.{j}`; `adapter_1`, `layer_1`, `mask_features`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import MVPLMConfig
from .msdeform import MSDeformAttn
from .position import sine_position_map


class EncoderLayer(nn.Module):
    def __init__(self, d: int, heads: int, levels: int, points: int, ffn: int):
        super().__init__()
        self.self_attn = MSDeformAttn(d, levels, heads, points)
        self.norm1 = nn.LayerNorm(d)
        self.linear1 = nn.Linear(d, ffn)
        self.linear2 = nn.Linear(ffn, d)
        self.norm2 = nn.LayerNorm(d)

    def forward(self, src, pos, reference_points, spatial_shapes):
        src = self.norm1(src + self.self_attn(src + pos, reference_points, src, spatial_shapes))
        return self.norm2(src + self.linear2(F.relu(self.linear1(src))))


class DeformEncoder(nn.Module):
    def __init__(self, d: int, heads: int, levels: int, points: int, ffn: int, num_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(d, heads, levels, points, ffn) for _ in range(num_layers))


class DeformTransformer(nn.Module):
    """Holds the names OpenSeeD uses (`transformer.level_embed`, `transformer.encoder.layers`)."""

    def __init__(self, d: int, heads: int, levels: int, points: int, ffn: int, num_layers: int):
        super().__init__()
        self.level_embed = nn.Parameter(torch.empty(levels, d))
        nn.init.normal_(self.level_embed)
        self.encoder = DeformEncoder(d, heads, levels, points, ffn, num_layers)


class ConvNorm(nn.Conv2d):
    """detectron2's Conv2d with a `.norm` child, so names are `adapter_1.weight`, `adapter_1.norm.weight`."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, groups: int):
        super().__init__(in_ch, out_ch, kernel, padding=kernel // 2, bias=False)
        self.norm = nn.GroupNorm(groups, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(super().forward(x))


class PixelDecoder(nn.Module):
    def __init__(self, cfg: MVPLMConfig):
        super().__init__()
        pc, d = cfg.pixel_decoder, cfg.d_model
        res2, res3, res4, res5 = cfg.swin.stage_channels
        self.level_shapes = cfg.level_shapes
        levels = len(self.level_shapes)
        self.input_proj = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(c, d, 1), nn.GroupNorm(pc.num_groups, d)) for c in (res3, res4, res5)]
            + [nn.Sequential(nn.Conv2d(res5, d, 3, stride=2, padding=1), nn.GroupNorm(pc.num_groups, d))])
        for proj in self.input_proj:
            nn.init.xavier_uniform_(proj[0].weight)
            nn.init.zeros_(proj[0].bias)
        self.transformer = DeformTransformer(d, pc.num_heads, levels, pc.num_points, pc.ffn_dim, pc.num_layers)
        self.adapter_1 = ConvNorm(res2, d, 1, pc.num_groups)
        self.layer_1 = ConvNorm(d, d, 3, pc.num_groups)
        self.mask_features = nn.Conv2d(d, d, 1)
        self.register_buffer("reference_points", _encoder_reference_points(self.level_shapes), persistent=False)

    def forward(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """features [res2, res3, res4, res5] -> memory [B,N,D] (low resolution first), mask features [B,D,S/4,S/4]."""
        res2, res3, res4, res5 = features
        b = res2.shape[0]
        # low resolution first: extra 1/64, res5, res4, res3
        srcs = [self.input_proj[3](res5), self.input_proj[2](res5), self.input_proj[1](res4), self.input_proj[0](res3)]
        flat, pos_flat = [], []
        for lvl, src in enumerate(srcs):
            h, w = self.level_shapes[lvl]
            pos = sine_position_map(b, h, w, src.shape[1] // 2, src.device, src.dtype)
            flat.append(src.flatten(2).transpose(1, 2))
            pos_flat.append(pos.flatten(2).transpose(1, 2) + self.transformer.level_embed[lvl])
        memory, pos = torch.cat(flat, 1), torch.cat(pos_flat, 1)
        ref = self.reference_points[None].expand(b, -1, -1, -1)
        for layer in self.transformer.encoder.layers:
            memory = layer(memory, pos, ref, self.level_shapes)
        h, w = self.level_shapes[-1]
        finest = memory[:, -h * w:].transpose(1, 2).reshape(b, -1, h, w)
        lateral = self.adapter_1(res2)
        fused = lateral + F.interpolate(finest, size=lateral.shape[-2:], mode="bilinear", align_corners=False)
        mask_features = self.mask_features(F.relu(self.layer_1(fused)))
        return memory, mask_features


def _encoder_reference_points(shapes: list[tuple[int, int]]) -> torch.Tensor:
    """Cell centres of every level in [0,1], repeated for each level: [N, L, 2] (x, y)."""
    pts = []
    for h, w in shapes:
        y, x = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
        pts.append(torch.stack((x.flatten() / w, y.flatten() / h), -1))
    return torch.cat(pts)[:, None].expand(-1, len(shapes), -1).contiguous()
