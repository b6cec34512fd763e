"""DINO-style multi-granularity decoder with iterative box refinement (OpenSeeD's `TransformerDecoder`).

Each layer: self-attention (positional queries = MLP of the sine embedding of the current box), deformable
cross-attention over the memory with 4-d reference boxes, FFN; after each layer the shared box head refines the
boxes. Names follow OpenSeeD: `layers.{i}.{self_attn,norm2,cross_attn,norm1,linear1,linear2,norm3}`, `norm`,
`ref_point_head`, `bbox_embed` (one head shared by all layers).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import MVPLMConfig
from .heads import MLP
from .msdeform import MSDeformAttn
from .position import sine_box_embedding
from .query_gen import inverse_sigmoid


class MultiheadSelfAttention(nn.Module):
    """Same parameters and names as `nn.MultiheadAttention`, written out so that export sees plain matmuls."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.num_heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d, d))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d))
        self.out_proj = nn.Linear(d, d)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, query, key, value, attn_mask: torch.Tensor | None) -> torch.Tensor:
        """[B,Q,D] each; attn_mask [Q,Q] bool, True = blocked."""
        b, q, d = query.shape
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.in_proj_bias.chunk(3)
        split = lambda t: t.view(b, -1, self.num_heads, d // self.num_heads).transpose(1, 2)
        qh, kh, vh = split(F.linear(query, w_q, b_q)), split(F.linear(key, w_k, b_k)), split(F.linear(value, w_v, b_v))
        scores = (qh @ kh.transpose(-1, -2)) * (d // self.num_heads) ** -0.5
        if attn_mask is not None:
            scores = scores.masked_fill(attn_mask, torch.finfo(scores.dtype).min)
        return self.out_proj((scores.softmax(-1) @ vh).transpose(1, 2).reshape(b, q, d))


class DecoderLayer(nn.Module):
    def __init__(self, d: int, heads: int, levels: int, points: int, ffn: int):
        super().__init__()
        self.self_attn = MultiheadSelfAttention(d, heads)
        self.norm2 = nn.LayerNorm(d)
        self.cross_attn = MSDeformAttn(d, levels, heads, points)
        self.norm1 = nn.LayerNorm(d)
        self.linear1 = nn.Linear(d, ffn)
        self.linear2 = nn.Linear(ffn, d)
        self.norm3 = nn.LayerNorm(d)

    def forward(self, tgt, pos, ref_boxes, memory, shapes, attn_mask):
        q = tgt + pos
        tgt = self.norm2(tgt + self.self_attn(q, q, tgt, attn_mask))
        tgt = self.norm1(tgt + self.cross_attn(tgt + pos, ref_boxes, memory, shapes))
        return self.norm3(tgt + self.linear2(F.relu(self.linear1(tgt))))


class Decoder(nn.Module):
    def __init__(self, cfg: MVPLMConfig):
        super().__init__()
        dc, d = cfg.decoder, cfg.d_model
        self.d_model = d
        self.level_shapes = cfg.level_shapes
        levels = len(self.level_shapes)
        self.layers = nn.ModuleList(
            DecoderLayer(d, dc.num_heads, levels, dc.num_points, dc.ffn_dim) for _ in range(dc.num_layers))
        self.norm = nn.LayerNorm(d)
        self.ref_point_head = MLP(2 * d, d, d, 2)
        self.bbox_embed = MLP(d, d, 4, 3)
        nn.init.zeros_(self.bbox_embed.layers[-1].weight)
        nn.init.zeros_(self.bbox_embed.layers[-1].bias)

    def forward(self, tgt: torch.Tensor, ref_unsig: torch.Tensor, memory: torch.Tensor,
                attn_mask: torch.Tensor | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """tgt [B,Q,D], ref_unsig [B,Q,4] -> (per layer: normed outputs [B,Q,D]; per layer: its input boxes,
        sigmoid [B,Q,4], not detached, for the box prediction `sigmoid(bbox_embed(h) + inverse_sigmoid(ref))`)."""
        levels = len(self.level_shapes)
        ref = ref_unsig.sigmoid()
        hs, refs_in = [], []
        out = tgt
        for layer in self.layers:
            refs_in.append(ref)
            ref_input = ref.detach()
            pos = self.ref_point_head(sine_box_embedding(ref_input, self.d_model))
            out = layer(out, pos, ref_input[:, :, None].expand(-1, -1, levels, -1), memory, self.level_shapes,
                        attn_mask)
            # box refinement: gradients stop between layers ("look forward once" keeps the undetached box)
            ref = (self.bbox_embed(out) + inverse_sigmoid(ref_input)).sigmoid()
            hs.append(self.norm(out))
        return hs, refs_in
