"""Language-guided query generation (OpenSeeD two-stage selection).

The text-independent half (`encoder_output`: fixed proposals, validity, LN(Linear(memory))) runs in the vision
encoder; `select` picks the top-K memory tokens by their best phrase score and builds their reference boxes
(box head + proposal), with `topk`/`gather` only.
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import MVPLMConfig


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    x = x.clamp(0, 1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def fixed_proposals(shapes: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """One box per memory token: its cell centre and side 0.05 * 2**level, `level` counting in memory order (low
    resolution first). As in the released code, the coarsest level gets the smallest boxes: its
    `gen_encoder_output_proposals` runs on the decoder's low-resolution-first flattening.
    Returns (proposals [N,4] in inverse-sigmoid space, valid [N] bool: all coordinates in (0.01, 0.99))."""
    props = []
    for lvl, (h, w) in enumerate(shapes):
        y, x = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
        side = torch.full((h * w, 2), 0.05 * 2.0 ** lvl)
        props.append(torch.cat((torch.stack((x.flatten() / w, y.flatten() / h), -1), side), -1))
    p = torch.cat(props)
    valid = ((p > 0.01) & (p < 0.99)).all(-1)
    return torch.log(p / (1 - p)), valid


class QueryGenerator(nn.Module):
    def __init__(self, cfg: MVPLMConfig):
        super().__init__()
        d = cfg.d_model
        self.num_queries = cfg.decoder.num_queries
        if self.num_queries > cfg.num_memory_tokens:
            raise ValueError(f"decoder.num_queries {self.num_queries} exceeds the {cfg.num_memory_tokens} memory tokens")
        self.enc_output = nn.Linear(d, d)
        self.enc_output_norm = nn.LayerNorm(d)
        proposals, valid = fixed_proposals(cfg.level_shapes)
        self.register_buffer("proposals", proposals, persistent=False)
        self.register_buffer("valid", valid.float(), persistent=False)

    def encoder_output(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """memory [B,N,D] -> output_memory [B,N,D] (invalid rows zero), output_proposals [B,N,4], proposal_valid [B,N]."""
        b = memory.shape[0]
        valid = self.valid[None, :, None]
        out = self.enc_output_norm(self.enc_output(memory * valid)) * valid
        return out, self.proposals[None].expand(b, -1, -1), self.valid[None].expand(b, -1)

    def select(self, output_memory: torch.Tensor, output_proposals: torch.Tensor, proposal_valid: torch.Tensor,
               scores: torch.Tensor, box_head: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """scores [B,N] -> content [B,K,D] and reference boxes [B,K,4] (inverse-sigmoid) of the top-K valid tokens."""
        scores = scores.masked_fill(proposal_valid <= 0, torch.finfo(scores.dtype).min)
        idx = torch.topk(scores, self.num_queries, dim=1).indices
        d = output_memory.shape[-1]
        content = torch.gather(output_memory, 1, idx[..., None].expand(-1, -1, d))
        selected_props = torch.gather(output_proposals, 1, idx[..., None].expand(-1, -1, 4))
        return content, box_head(content) + selected_props
