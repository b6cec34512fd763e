"""Connector res5 -> LLM image tokens: ResNet basic block (BatchNorm; stride 2 in the paper), flatten, Linear.

Parameter names follow the released code's `ResNetSwin` minus its `layer1.0.` prefix (see WEIGHTS.md).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, repeat_conv2: bool, stride: int = 2):
        super().__init__()
        self.repeat_conv2 = repeat_conv2
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))
        # set by fold_batchnorm() when conv2 is applied twice: the second application with bn2 folded in
        self.conv2_folded: nn.Conv2d | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.conv2(out)
        if self.repeat_conv2:
            # the released code applies conv2 twice with the same weights; its checkpoints depend on it
            out = (self.conv2 if self.conv2_folded is None else self.conv2_folded)(out)
        out = self.bn2(out)
        return F.relu(out + self.downsample(x))

    @torch.no_grad()
    def fold_batchnorm(self) -> None:
        """Fold every BatchNorm (running statistics) into the conv before it; the block then computes the same
        function in eval mode with no BatchNorm left. Irreversible; meant for export."""
        if isinstance(self.bn1, nn.Identity):
            return
        self.conv1 = fuse_conv_bn(self.conv1, self.bn1)
        self.downsample = nn.Sequential(fuse_conv_bn(self.downsample[0], self.downsample[1]))
        if self.repeat_conv2:
            self.conv2_folded = fuse_conv_bn(self.conv2, self.bn2)
        else:
            self.conv2 = fuse_conv_bn(self.conv2, self.bn2)
        self.bn1, self.bn2 = nn.Identity(), nn.Identity()


def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True).to(conv.weight.device, conv.weight.dtype)
    fused.weight.copy_(conv.weight * scale[:, None, None, None])
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
    return fused


class Connector(nn.Module):
    def __init__(self, in_channels: int, block_channels: int, out_dim: int, repeat_conv2: bool, stride: int = 2):
        super().__init__()
        self.block = BasicBlock(in_channels, block_channels, repeat_conv2, stride)
        self.fc = nn.Linear(block_channels, out_dim)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, res5: torch.Tensor) -> torch.Tensor:
        """res5 [B,C,h,w] -> image tokens [B, h/s*w/s, out_dim] (row-major over the stride-s grid)."""
        return self.fc(self.block(res5).flatten(2).transpose(1, 2))

    def fold_batchnorm(self) -> None:
        self.block.fold_batchnorm()
