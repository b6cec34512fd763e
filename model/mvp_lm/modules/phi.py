"""Phi language model (Phi-1.5 architecture) with a KV cache.

Parameter names are Hugging Face `PhiForCausalLM`'s (`model.embed_tokens`, `model.layers.{i}.self_attn.{q,k,v}_proj`
/ `.dense`, `.mlp.fc1/fc2`, `.input_layernorm`, `model.final_layernorm`, `lm_head`), so a Hugging Face Phi-1.5
state dict loads as is. Parallel attention + MLP on one LayerNorm, partial rotary embedding (rotate-half form on
the first `rotary_dim` dims of each head), gelu_new (tanh GELU). The KV cache is a list of (key, value), each
[B, heads, past, head_dim].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..config import PhiConfig

KVCache = list[tuple[torch.Tensor, torch.Tensor]]


class PhiRotary(nn.Module):
    def __init__(self, cfg: PhiConfig):
        super().__init__()
        dim = cfg.rotary_dim
        inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """position_ids [B,T] -> cos, sin [B,1,T,rotary_dim]."""
        freqs = position_ids[..., None].float() * self.inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)[:, None]
        return emb.cos(), emb.sin()


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    rot = cos.shape[-1]
    x_rot, x_pass = x[..., :rot], x[..., rot:]
    return torch.cat((x_rot * cos + _rotate_half(x_rot) * sin, x_pass), dim=-1)


class PhiAttention(nn.Module):
    def __init__(self, cfg: PhiConfig):
        super().__init__()
        d = cfg.hidden_size
        self.num_heads, self.head_dim = cfg.num_attention_heads, cfg.head_dim
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d)
        self.dense = nn.Linear(d, d)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor,
                past: tuple[torch.Tensor, torch.Tensor] | None) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        b, t, _ = x.shape
        q, k, v = (p(x).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
                   for p in (self.q_proj, self.k_proj, self.v_proj))
        q, k = _apply_rotary(q, cos, sin), _apply_rotary(k, cos, sin)
        if past is not None:
            k = torch.cat((past[0], k), dim=2)
            v = torch.cat((past[1], v), dim=2)
        scores = (q.float() @ k.float().transpose(-1, -2)) * (self.head_dim ** -0.5)
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        out = (scores.softmax(-1).to(v.dtype) @ v).transpose(1, 2).reshape(b, t, -1)
        return self.dense(out), (k, v)


class PhiMLP(nn.Module):
    def __init__(self, cfg: PhiConfig):
        super().__init__()
        self.fc1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.fc2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class PhiDecoderLayer(nn.Module):
    def __init__(self, cfg: PhiConfig):
        super().__init__()
        self.self_attn = PhiAttention(cfg)
        self.mlp = PhiMLP(cfg)
        self.input_layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x, cos, sin, mask, past):
        h = self.input_layernorm(x)
        attn, present = self.self_attn(h, cos, sin, mask, past)
        return x + attn + self.mlp(h), present


class PhiModel(nn.Module):
    def __init__(self, cfg: PhiConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(PhiDecoderLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.final_layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.rotary_emb = PhiRotary(cfg)


class PhiForCausalLM(nn.Module):
    def __init__(self, cfg: PhiConfig):
        super().__init__()
        self.config = cfg
        self.model = PhiModel(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size)
        # Training only: keep each layer's input, recompute its activations in backward (mvp_lm.train
        # --grad-checkpoint). Non-reentrant, so frozen layers (stage 1) still pass gradients to the connector.
        self.gradient_checkpointing = False
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
                past_key_values: KVCache | None = None) -> dict:
        """inputs_embeds [B,T,H]; attention_mask [B,past+T] (1 = attend); position_ids [B,T].

        Returns logits [B,T,V], present (list of (k,v) [B,h,past+T,d]), last_hidden_state (after the final
        LayerNorm) and mean_hidden_states (mean of the L+1 hidden states: embeddings, the first L-1 layer outputs,
        the final-LayerNorm output, as Hugging Face's `output_hidden_states` lists them).
        """
        t = inputs_embeds.shape[1]
        past_len = past_key_values[0][0].shape[2] if past_key_values is not None else 0
        q_pos = torch.arange(t, device=inputs_embeds.device) + past_len
        k_pos = torch.arange(past_len + t, device=inputs_embeds.device)
        causal = k_pos[None, :] <= q_pos[:, None]  # [T, past+T]
        mask = causal[None, None] & attention_mask[:, None, None, :].bool()
        cos, sin = self.model.rotary_emb(position_ids)
        x = inputs_embeds
        hidden_sum = x
        present = []
        recompute = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for i, layer in enumerate(self.model.layers):
            past = past_key_values[i] if past_key_values is not None else None
            if recompute:
                x, kv = checkpoint(layer, x, cos, sin, mask, past, use_reentrant=False)
            else:
                x, kv = layer(x, cos, sin, mask, past)
            present.append(kv)
            if i < len(self.model.layers) - 1:
                hidden_sum = hidden_sum + x
        last = self.model.final_layernorm(x)
        hidden_sum = hidden_sum + last
        return {
            "logits": self.lm_head(last),
            "present": present,
            "last_hidden_state": last,
            "mean_hidden_states": hidden_sum / (len(self.model.layers) + 1),
        }
