"""Numerical parity of our modules with the released MVP-LM code (xiangwentao666/MVP-LM), at tiny sizes on CPU.

Needs a checkout of the released repository (not vendored here). Its detectron2 / fvcore / timm / CUDA-op imports
are satisfied by minimal shims written to a temporary directory (the released deformable attention then takes its
own PyTorch fallback path). Random weights are drawn for the released modules, loaded into ours through the same
renaming and level reordering as `mvp_lm.weights`, and the outputs compared.

    .venv/bin/python model/scripts/check_released_parity.py --released /path/to/MVP-LM

Prints the largest absolute difference per check; exits 1 if one exceeds --tol.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

from mvp_lm import MVPLM, tiny
from mvp_lm.config import SwinConfig
from mvp_lm.modules.connector import Connector
from mvp_lm.modules.query_gen import fixed_proposals, inverse_sigmoid
from mvp_lm.modules.swin import SwinTransformer
from mvp_lm.weights import reverse_memory_levels

OPENSEED = "mvp-lm/psalm/model/mask_decoder/Openseed_Simplify/modeling"
COPIED = [f"{OPENSEED}/{f}" for f in (
    "pixel_decoder/msdeformattn.py", "pixel_decoder/ops/modules/__init__.py", "pixel_decoder/ops/modules/ms_deform_attn.py",
    "pixel_decoder/ops/functions/__init__.py", "pixel_decoder/ops/functions/ms_deform_attn_func.py",
    "transformer_decoder/position_encoding.py", "transformer_decoder/transformer.py", "transformer_decoder/utils.py",
    "transformer_decoder/dino_decoder.py")] + ["mvp-lm/psalm/model/multimodal_encoder/swin_trans.py",
                                                 "mvp-lm/psalm/model/multimodal_projector/builder.py"]

SHIMS = {
    "timm/__init__.py": "",
    "timm/models/__init__.py": "",
    "timm/models/layers.py": (
        "import torch.nn as nn\nfrom torch.nn.init import trunc_normal_\n"
        "class DropPath(nn.Identity):\n    def __init__(self, p=0.0):\n        super().__init__()\n"
        "def to_2tuple(x):\n    return x if isinstance(x, tuple) else (x, x)\n"),
    "fvcore/__init__.py": "",
    "fvcore/nn/__init__.py": "",
    "fvcore/nn/weight_init.py": (
        "import torch.nn as nn\ndef c2_xavier_fill(m):\n    nn.init.kaiming_uniform_(m.weight, a=1)\n"
        "    if m.bias is not None:\n        nn.init.zeros_(m.bias)\n"),
    "detectron2/__init__.py": "",
    "detectron2/layers.py": (
        "import torch.nn as nn\n"
        "class Conv2d(nn.Conv2d):\n"
        "    def __init__(self, *args, norm=None, activation=None, **kwargs):\n"
        "        super().__init__(*args, **kwargs)\n        self.norm, self.activation = norm, activation\n"
        "    def forward(self, x):\n        x = super().forward(x)\n"
        "        x = self.norm(x) if self.norm is not None else x\n"
        "        return self.activation(x) if self.activation is not None else x\n"
        "class ShapeSpec:\n    def __init__(self, channels, stride):\n"
        "        self.channel = self.channels = channels\n        self.stride = stride\n"
        "def get_norm(norm, c):\n    return nn.GroupNorm(32, c) if norm == 'GN' else None\n"),
    # the compiled CUDA op: absent, so the released MSDeformAttn falls back to its PyTorch path
    "MultiScaleDeformableAttention.py": "def ms_deform_attn_forward(*args):\n    raise RuntimeError('no CUDA op')\n",
}


def prepare(released: Path, work: Path) -> None:
    for rel in COPIED:
        src = released / rel
        if not src.is_file():
            raise SystemExit(f"{src}: missing; --released must be a checkout of xiangwentao666/MVP-LM")
        dst = work / "released" / Path(rel).relative_to("mvp-lm/psalm/model")
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
    for pkg in [work / "released", *(p for p in (work / "released").rglob("*") if p.is_dir())]:
        (pkg / "__init__.py").touch(exist_ok=True)  # empty: the released package __init__s import far more
    for rel, text in SHIMS.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)
    sys.path.insert(0, str(work))


def randomise(module: nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.2)


def check_swin() -> float:
    from released.multimodal_encoder import swin_trans
    worst = 0.0
    for image, window in ((128, 4), (96, 5)):  # the second pads stages 24/12/6/3 to multiples of 5
        ref = swin_trans.SwinTransformer(pretrain_img_size=image, embed_dim=32, depths=[2, 2, 2, 2],
                                         num_heads=[1, 2, 4, 8], window_size=window, drop_path_rate=0.0,
                                         out_indices=(0, 1, 2, 3))
        ref.eval()
        randomise(ref)
        ours = SwinTransformer(SwinConfig(embed_dim=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8),
                                          window_size=window), image).eval()
        ours.load_state_dict({k: v for k, v in ref.state_dict().items()
                              if not k.endswith(("relative_position_index", "attn_mask"))})
        x = torch.randn(2, 3, image, image)
        with torch.no_grad():
            worst = max([worst] + [float((a - b).abs().max()) for a, b in zip(ref(x), ours(x))])
    return worst


def check_connector() -> float:
    from released.multimodal_projector.builder import ResNetSwin
    ref = ResNetSwin(input_dim=64, out_dim=96).eval()  # its block width is fixed at 2048
    randomise(ref)
    with torch.no_grad():
        for mod in ref.modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):  # fan-in scale keeps activations O(1) at width 2048
                mod.weight.normal_(0, (1.0 / mod.weight[0].numel()) ** 0.5)
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_var.uniform_(0.5, 2.0)
                mod.running_mean.normal_()
    ours = Connector(64, 2048, 96, repeat_conv2=True).eval()
    ours.load_state_dict({k.replace("layer1.0.", "block."): v for k, v in ref.state_dict().items()})
    x = torch.randn(2, 64, 8, 8)
    with torch.no_grad():
        expected = ref(x)
        diff = float((expected - ours(x)).abs().max())
        ours.fold_batchnorm()
        return max(diff, float((expected - ours(x)).abs().max()))


def check_pixel_decoder(model: MVPLM) -> float:
    from detectron2.layers import ShapeSpec
    from released.mask_decoder.Openseed_Simplify.modeling.pixel_decoder.msdeformattn import MSDeformAttnPixelDecoder
    cfg, pc = model.config, model.config.pixel_decoder
    ch = cfg.swin.stage_channels
    ref = MSDeformAttnPixelDecoder(
        {f"res{i + 2}": ShapeSpec(c, 4 * 2**i) for i, c in enumerate(ch)}, transformer_dropout=0.0,
        transformer_nheads=pc.num_heads, transformer_dim_feedforward=pc.ffn_dim, transformer_enc_layers=pc.num_layers,
        conv_dim=cfg.d_model, mask_dim=cfg.d_model, norm="GN", transformer_in_features=["res3", "res4", "res5"],
        common_stride=4, num_feature_levels=3, total_num_feature_levels=4, feature_order="low2high").eval()
    randomise(ref)
    state = reverse_memory_levels({"pixel_decoder." + k: v for k, v in ref.state_dict().items()}, model)
    model.pixel_decoder.load_state_dict({k.removeprefix("pixel_decoder."): v for k, v in state.items()})
    s = cfg.image_size
    feats = [torch.randn(2, c, s // (4 * 2**i), s // (4 * 2**i)) for i, c in enumerate(ch)]
    with torch.no_grad():
        mask_ref, _, levels = ref.forward_features({f"res{i + 2}": f for i, f in enumerate(feats)}, None, masks=None)
        memory, mask_ours = model.pixel_decoder(feats)
    # openseed_phi.py flattens multi_scale_features backwards (low resolution first) for the decoder
    memory_ref = torch.cat([x.flatten(2).transpose(1, 2) for x in levels[::-1]], 1)
    return max(float((memory_ref - memory).abs().max()), float((mask_ref - mask_ours).abs().max()))


def check_proposals(model: MVPLM) -> float:
    from released.mask_decoder.Openseed_Simplify.modeling.transformer_decoder.utils import gen_encoder_output_proposals
    shapes = model.config.level_shapes
    n = sum(h * w for h, w in shapes)
    memory = torch.randn(1, n, 8)
    out_mem, props_ref, _ = gen_encoder_output_proposals(memory, torch.zeros(1, n, dtype=torch.bool),
                                                         torch.tensor(shapes), torch.zeros(1, n, 8))
    props, valid = fixed_proposals(shapes)
    valid_ref = ~props_ref[0].isinf().any(-1)
    if not torch.equal(valid_ref, valid):
        return float("inf")
    return max(float((props_ref[0][valid] - props[valid]).abs().max()),
               float((out_mem[0] - memory[0] * valid[:, None]).abs().max()))


def check_decoder(model: MVPLM) -> float:
    from released.mask_decoder.Openseed_Simplify.modeling.transformer_decoder.dino_decoder import (
        DeformableTransformerDecoderLayer, TransformerDecoder)
    from released.mask_decoder.Openseed_Simplify.modeling.transformer_decoder.utils import MLP
    cfg, dc, d = model.config, model.config.decoder, model.config.d_model
    layer = DeformableTransformerDecoderLayer(d, dc.ffn_dim, 0.0, "relu", 4, dc.num_heads, dc.num_points)
    ref = TransformerDecoder(layer, dc.num_layers, nn.LayerNorm(d), return_intermediate=True, d_model=d,
                             query_dim=4, num_feature_levels=4)
    box = MLP(d, d, 4, 3)
    ref.bbox_embed = nn.ModuleList([box] * dc.num_layers)  # one head shared by all layers, as released
    ref.eval()
    randomise(ref)
    state = {}
    for k, v in ref.state_dict().items():
        state["bbox_embed." + k.split(".", 2)[2] if k.startswith("bbox_embed.") else k] = v
    model.decoder.load_state_dict(state)
    b, q = 2, cfg.num_total_queries
    shapes = torch.tensor(cfg.level_shapes)
    n = int(shapes.prod(1).sum())
    memory, tgt, refs = torch.randn(b, n, d), torch.randn(b, q, d), torch.randn(b, q, 4)
    with torch.no_grad():
        hs_ref, refs_ref = ref(tgt.transpose(0, 1), memory.transpose(0, 1),
                               memory_key_padding_mask=torch.zeros(b, n, dtype=torch.bool),
                               refpoints_unsigmoid=refs.transpose(0, 1),
                               level_start_index=torch.cat((shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1])),
                               spatial_shapes=shapes, valid_ratios=torch.ones(b, 4, 2))
        hs, refs_in = model.decoder(tgt, refs, memory)
        boxes_ref = [(box(h) + inverse_sigmoid(r)).sigmoid() for h, r in zip(hs_ref, refs_ref[:-1])]
        boxes = [(model.decoder.bbox_embed(h) + inverse_sigmoid(r)).sigmoid() for h, r in zip(hs, refs_in)]
    return max(float((a - c).abs().max()) for a, c in zip(hs_ref + boxes_ref, hs + boxes))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--released", required=True, type=Path, help="checkout of xiangwentao666/MVP-LM")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        prepare(args.released, Path(tmp))
        model = MVPLM(tiny("released-code")).eval()
        checks = {"swin (2 configs, one padded)": check_swin,
                  "connector (conv2 twice), folded too": check_connector,
                  "pixel decoder + level reorder": lambda: check_pixel_decoder(model),
                  "proposals and validity": lambda: check_proposals(model),
                  "DINO decoder + boxes": lambda: check_decoder(model)}
        failed = False
        for name, fn in checks.items():
            diff = fn()
            failed |= diff > args.tol
            print(f"{name:<38} max abs diff {diff:.3g}  {'OK' if diff <= args.tol else 'FAIL'}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
