"""Prediction heads of the perception decoder (names follow OpenSeeD / the released code, see WEIGHTS.md)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Module):
    """`num_layers` Linear layers with ReLU between them (DETR's MLP; names `layers.{i}`)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, num_layers: int):
        super().__init__()
        dims = [in_dim] + [hidden] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:] + [out_dim]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class PredictionHeads(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.class_proj = MLP(d, d, d, 2)  # word tasks: query · phrase embeddings
        self.sentence_proj = MLP(d, d, d, 2)  # sentence tasks: query · sentence embedding
        self.mask_embed = MLP(d, d, d, 3)

    def logits(self, h: torch.Tensor, text: torch.Tensor, is_sentence: torch.Tensor) -> torch.Tensor:
        """h [B,Q,D], text [B,P,D] (projected), is_sentence bool [1] -> raw dot products [B,Q,P].
        Both heads are computed and one is chosen with `where`, so the choice can be a graph input."""
        word = torch.einsum("bqd,bpd->bqp", self.class_proj(h), text)
        sentence = torch.einsum("bqd,bpd->bqp", self.sentence_proj(h), text)
        return torch.where(is_sentence, sentence, word)

    def masks(self, h: torch.Tensor, mask_features: torch.Tensor) -> torch.Tensor:
        """h [B,Q,D], mask_features [B,D,M,M] -> mask logits [B,Q,M,M]."""
        return torch.einsum("bqd,bdhw->bqhw", self.mask_embed(h), mask_features)
