"""Swin Transformer backbone (image encoder) returning res2..res5, each after its own LayerNorm.

Parameter names follow the official Swin / Swin-Transformer-Object-Detection / Mask2Former `D2SwinTransformer`
layout (`patch_embed`, `layers.{i}.blocks.{j}`, `layers.{i}.downsample`, `norm{i}`), which is also what the
released MVP-LM code uses. As there, a stage whose size is not a multiple of the window is zero-padded before window
attention. The input size is fixed by the config, so padding sizes and shifted-window masks are precomputed.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import SwinConfig


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class WindowAttention(nn.Module):
    def __init__(self, dim: int, window_size: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        ws = window_size
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * ws - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (ws - 1)
        index = rel[..., 0] * (2 * ws - 1) + rel[..., 1]
        self.register_buffer("relative_position_index", index, persistent=False)
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x [B*nW, N, C]; mask [nW, N, N] additive (0 / -100) or None."""
        bw, n, c = x.shape
        qkv = self.qkv(x).reshape(bw, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1)
        attn = attn + bias.permute(2, 0, 1)[None]
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(-1, nw, self.num_heads, n, n) + mask[None, :, None]
            attn = attn.view(-1, self.num_heads, n, n)
        attn = attn.softmax(-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(bw, n, c))


def _window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)


def _window_reverse(windows: torch.Tensor, ws: int, h: int, w: int) -> torch.Tensor:
    c = windows.shape[-1]
    x = windows.view(-1, h // ws, w // ws, ws, ws, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def _shift_mask(hp: int, wp: int, ws: int, shift: int) -> torch.Tensor:
    """Additive mask [nW, ws², ws²] that stops shifted windows from attending across the wrap-around."""
    img = torch.zeros(1, hp, wp, 1)
    region = 0
    for hs in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
        for wsl in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
            img[:, hs, wsl, :] = region
            region += 1
    ids = _window_partition(img, ws).squeeze(-1)
    diff = ids[:, None, :] - ids[:, :, None]
    return torch.where(diff != 0, torch.tensor(-100.0), torch.tensor(0.0))


class SwinBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, window_size: int, shift: int, mlp_ratio: float):
        super().__init__()
        self.window_size, self.shift = window_size, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, h: int, w: int, mask: torch.Tensor | None) -> torch.Tensor:
        b, _, c = x.shape
        ws, s = self.window_size, self.shift
        shortcut = x
        x = self.norm1(x).view(b, h, w, c)
        pad_b, pad_r = (-h) % ws, (-w) % ws
        if pad_b or pad_r:
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        hp, wp = h + pad_b, w + pad_r
        if s:
            x = torch.roll(x, shifts=(-s, -s), dims=(1, 2))
        x = _window_reverse(self.attn(_window_partition(x, ws), mask if s else None), ws, hp, wp)
        if s:
            x = torch.roll(x, shifts=(s, s), dims=(1, 2))
        if pad_b or pad_r:
            x = x[:, :h, :w, :].contiguous()
        x = shortcut + x.view(b, h * w, c)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, _, c = x.shape
        x = x.view(b, h, w, c)
        if h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class SwinStage(nn.Module):
    def __init__(self, dim: int, depth: int, num_heads: int, window_size: int, mlp_ratio: float,
                 resolution: int, downsample: bool):
        super().__init__()
        shift = window_size // 2
        self.resolution = resolution
        self.blocks = nn.ModuleList(
            SwinBlock(dim, num_heads, window_size, 0 if i % 2 == 0 else shift, mlp_ratio) for i in range(depth))
        self.downsample = PatchMerging(dim) if downsample else None
        padded = resolution + (-resolution) % window_size
        self.register_buffer("attn_mask", _shift_mask(padded, padded, window_size, shift), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (stage output before downsampling, input of the next stage)."""
        r = self.resolution
        for blk in self.blocks:
            x = blk(x, r, r, self.attn_mask)
        nxt = self.downsample(x, r, r) if self.downsample is not None else x
        return x, nxt


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, in_ch: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_ch, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class SwinTransformer(nn.Module):
    def __init__(self, cfg: SwinConfig, image_size: int):
        super().__init__()
        if image_size % (cfg.patch_size * 2 ** (len(cfg.depths) - 1)) != 0:
            raise ValueError(f"SwinTransformer: image_size {image_size} must divide into the stage strides")
        self.patch_embed = PatchEmbed(cfg.patch_size, cfg.in_channels, cfg.embed_dim)
        res = image_size // cfg.patch_size
        self.layers = nn.ModuleList()
        for i, (depth, heads) in enumerate(zip(cfg.depths, cfg.num_heads)):
            self.layers.append(SwinStage(cfg.embed_dim * 2**i, depth, heads, cfg.window_size, cfg.mlp_ratio,
                                         res // 2**i, downsample=i < len(cfg.depths) - 1))
        for i, ch in enumerate(cfg.stage_channels):
            self.add_module(f"norm{i}", nn.LayerNorm(ch))
        self.apply(_init_weights)

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """pixel_values [B,3,S,S] -> [res2, res3, res4, res5], each [B, C_i, S/2^(i+2), S/2^(i+2)]."""
        x = self.patch_embed(pixel_values)
        outs = []
        for i, stage in enumerate(self.layers):
            out, x = stage(x)
            out = getattr(self, f"norm{i}")(out)
            r = stage.resolution
            outs.append(out.transpose(1, 2).reshape(out.shape[0], -1, r, r))
        return outs


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
