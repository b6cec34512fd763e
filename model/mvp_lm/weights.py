"""Loading weights into MVPLM: our own checkpoints, a Hugging Face Phi-1.5 directory, a Swin checkpoint, and a
checkpoint trained with the released MVP-LM code. Name mappings are documented in model/WEIGHTS.md.

Every loader is strict: a missing, unexpected or wrongly shaped tensor raises `WeightLoadError` naming it (and both
shapes), never a silent partial load.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from torch import nn

from .model import MVPLM

StateDict = dict[str, torch.Tensor]


class WeightLoadError(ValueError):
    pass


# ------------------------------------------------------------------------------------------------ reading files
def read_tensors(path: str | Path) -> StateDict:
    """One weights file: .safetensors, or a torch pickle (.pth/.pt/.bin/.ckpt; unwraps `model`/`state_dict`/`module`)."""
    path = Path(path)
    if not path.is_file():
        raise WeightLoadError(f"{path}: no such weights file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path))
    obj = torch.load(str(path), map_location="cpu", weights_only=True)
    for key in ("model", "state_dict", "module"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        raise WeightLoadError(f"{path}: not a state dict of tensors")
    return dict(obj)


def read_hf_directory(directory: str | Path) -> StateDict:
    """A Hugging Face `save_pretrained` directory: model.safetensors, a sharded safetensors index, or
    pytorch_model.bin (sharded or not)."""
    d = Path(directory)
    for single in ("model.safetensors", "pytorch_model.bin"):
        if (d / single).is_file():
            return read_tensors(d / single)
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (d / index).is_file():
            weight_map = json.loads((d / index).read_text())["weight_map"]
            state: StateDict = {}
            for shard in sorted(set(weight_map.values())):
                state.update(read_tensors(d / shard))
            absent = sorted(set(weight_map) - set(state))
            if absent:
                raise WeightLoadError(f"{d / index}: tensors listed but not in their shard: {absent[:10]}")
            return state
    raise WeightLoadError(f"{d}: no model.safetensors, pytorch_model.bin or shard index found")


# ------------------------------------------------------------------------------------------------ strict loading
OPTIONAL_SUFFIXES = (".num_batches_tracked",)  # BatchNorm counters: not every exporter saves them


def load_state_dict_strict(module: nn.Module, state: StateDict, source: str, strict: bool = True,
                           log=print) -> None:
    """Load `state` into `module`; raise naming every missing, unexpected and mismatched tensor. `strict=False`
    skips (and logs) the unexpected ones; missing and mismatched tensors are errors either way."""
    expected = module.state_dict()
    missing = sorted(k for k in set(expected) - set(state) if not k.endswith(OPTIONAL_SUFFIXES))
    unexpected = sorted(set(state) - set(expected))
    if unexpected and not strict:
        log(f"{source}: skipped {len(unexpected)} tensors the model has no place for: {', '.join(unexpected[:20])}"
            + (" ..." if len(unexpected) > 20 else ""))
        state = {k: v for k, v in state.items() if k in expected}
        unexpected = []
    mismatched = [f"{k} (file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)})"
                  for k in sorted(set(state) & set(expected)) if state[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"missing tensors: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors: {', '.join(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatch: {', '.join(mismatched)}")
    if problems:
        raise WeightLoadError(f"{source}: " + "; ".join(problems))
    module.load_state_dict(state, strict=False)  # strictness checked above, with optional counters allowed


def load_checkpoint(model: MVPLM, path: str | Path) -> None:
    """A checkpoint of this package (`model.state_dict()` saved as .safetensors or torch pickle)."""
    load_state_dict_strict(model, read_tensors(path), str(path))


# ------------------------------------------------------------------------------------------------ Phi-1.5
def read_hf_phi(directory: str | Path) -> StateDict:
    """Hugging Face `microsoft/phi-1_5` tensors (our names are theirs), without the recomputed rotary buffer."""
    return {k: v for k, v in read_hf_directory(directory).items() if not k.endswith("rotary_emb.inv_freq")}


def load_hf_phi(model: MVPLM, directory: str | Path) -> None:
    """Hugging Face `microsoft/phi-1_5` weights into `model.phi`."""
    load_state_dict_strict(model.phi, read_hf_phi(directory), f"{directory} (Hugging Face Phi)")


# ------------------------------------------------------------------------------------------------ Swin
SWIN_IGNORED = (re.compile(r"^head\."), re.compile(r"^norm\."),  # ImageNet classifier and its final norm
                re.compile(r"^classifier\."),  # the classifier of transformers' SwinForImageClassification
                re.compile(r"\.relative_position_index$"), re.compile(r"\.attn_mask$"))  # recomputed buffers


def load_swin(model: MVPLM, path: str | Path, strict: bool = True, log=print) -> list[str]:
    """A Swin checkpoint into `model.swin`: official microsoft/Swin-Transformer names (also Mask2Former / OpenSeeD
    `backbone.` prefixed), timm >= 0.9 names (patch merging stored at the start of the next stage), or Hugging Face
    `transformers` SwinModel / SwinBackbone names (4.x `attention.self.query` and 5.x `attention.q_proj` alike,
    `swin.` prefixed too). ImageNet checkpoints lack the per-stage output norms `norm0..3`; those keep their
    initial (identity) values and are returned so that the caller can log them."""
    raw = read_tensors(path)
    if any(k.removeprefix("swin.").startswith("embeddings.patch_embeddings.") for k in raw):
        raw = transformers_swin_to_official({k.removeprefix("swin."): v for k, v in raw.items()})
    state = {}
    for k, v in raw.items():
        k = k.removeprefix("backbone.")
        if not any(p.search(k) for p in SWIN_IGNORED):
            state[k] = v
    num_stages = len(model.swin.layers)
    if any(k.startswith(f"layers.{num_stages - 1}.downsample.") for k in state):  # timm layout
        state = {_timm_to_official(k): v for k, v in state.items()}
    kept_init = []
    for i in range(num_stages):
        for name in ("weight", "bias"):
            key = f"norm{i}.{name}"
            if key not in state:
                state[key] = getattr(model.swin, f"norm{i}").state_dict()[name]
                kept_init.append(key)
    load_state_dict_strict(model.swin, state, f"{path} (Swin)", strict=strict, log=log)
    return kept_init


# transformers Swin names (after `encoder.layers.i.blocks.j.` / before) -> official names; q, k, v are fused below
_TRANSFORMERS_SWIN = [
    (r"^embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
    (r"^embeddings\.norm\.", "patch_embed.norm."),
    (r"^hidden_states_norms\.stage(\d+)\.", lambda m: f"norm{int(m.group(1)) - 1}."),  # SwinBackbone
    (r"^layernorm\.", "norm."),  # the final norm of SwinModel (ImageNet), ignored like the official one
    (r"^encoder\.layers\.", "layers."),
    (r"\.layernorm_before\.", ".norm1."), (r"\.layernorm_after\.", ".norm2."),
    (r"\.attention\.output\.dense\.", ".attn.proj."), (r"\.attention\.o_proj\.", ".attn.proj."),
    (r"\.attention\.(self|relative_position_bias)\.relative_position_bias_table$", ".attn.relative_position_bias_table"),
    (r"\.intermediate\.dense\.", ".mlp.fc1."), (r"\.output\.dense\.", ".mlp.fc2."),
]
_QKV = re.compile(r"^(.*)\.attention\.(?:self\.(query|key|value)|(q|k|v)_proj)\.(weight|bias)$")


def transformers_swin_to_official(state: StateDict) -> StateDict:
    """Hugging Face transformers Swin names -> official Swin names, with q/k/v fused into `attn.qkv`."""
    out: StateDict = {}
    parts: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        m = _QKV.match(key)
        if m:
            which = (m.group(2) or m.group(3))[0]
            parts.setdefault((m.group(1), m.group(4)), {})[which] = value
            continue
        out[_official_swin_name(key)] = value
    for (prefix, kind), qkv in parts.items():
        if set(qkv) != {"q", "k", "v"}:
            raise WeightLoadError(f"{prefix}.attention: {kind} of {sorted(set('qkv') - set(qkv))} missing")
        out[_official_swin_name(prefix) + f".attn.qkv.{kind}"] = torch.cat([qkv[c] for c in "qkv"])
    return out


def _official_swin_name(key: str) -> str:
    for pattern, repl in _TRANSFORMERS_SWIN:
        key = re.sub(pattern, repl, key)
    return key


def _timm_to_official(key: str) -> str:
    m = re.match(r"^layers\.(\d+)\.downsample\.(.*)$", key)
    return f"layers.{int(m.group(1)) - 1}.downsample.{m.group(2)}" if m else key


# ------------------------------------------------------------------------------------------------ released code
# (released name pattern, our name template); first match wins. See WEIGHTS.md for the source of each name.
RELEASED_RULES = [
    (r"^model\.vision_tower\.(.*)$", r"swin.\1"),
    (r"^model\.mm_projector\.layer1\.0\.(.*)$", r"connector.block.\1"),
    (r"^model\.mm_projector\.fc\.(.*)$", r"connector.fc.\1"),
    (r"^model\.(embed_tokens|layers|final_layernorm)\.(.*)$", r"phi.model.\1.\2"),
    (r"^lm_head\.(.*)$", r"phi.lm_head.\1"),
    (r"^pixel_decoder\.(.*)$", r"pixel_decoder.\1"),
    (r"^predictor\.decoder\.(layers|ref_point_head)\.(.*)$", r"decoder.\1.\2"),
    (r"^predictor\.(?:decoder\.norm|decoder_norm)\.(.*)$", r"decoder.norm.\1"),
    (r"^predictor\.(?:_bbox_embed|bbox_embed\.\d+|decoder\.bbox_embed\.\d+)\.(.*)$", r"decoder.bbox_embed.\1"),
    (r"^predictor\.(enc_output|enc_output_norm)\.(.*)$", r"query_gen.\1.\2"),
    (r"^predictor\.CLASS_proj\.(.*)$", r"heads.class_proj.\1"),
    (r"^predictor\.SEG_proj\.(.*)$", r"heads.sentence_proj.\1"),
    (r"^predictor\.mask_embed\.(.*)$", r"heads.mask_embed.\1"),
    (r"^class_name_projector\.(.*)$", r"phrase_projector.\1"),
    (r"^SEG_token_projector\.(.*)$", r"sentence_projector.\1"),
    (r"^(stuff_query|stuff_embed)\.weight$", r"\1.weight"),
]
# parts of the released model our pipeline does not run (region prompts, learned thing queries unused at
# inference, training-only DN label encoder, buffers we recompute)
RELEASED_IGNORED = [
    r"^predictor\.(SEG_query_embed|SEG_query_feat|REGION_proj|seg_proj_after_norm|class_name_proj_after_norm"
    r"|SEG_norm|class_name_norm|label_enc|input_proj)\.",
    r"^(thing_query|thing_embed|seg_query_projector|region_projector|expanded_seg_query_project|region_sampler)\.",
    r"^(model\.)?seg_query$", r"^(model\.)?(mgvp|perceiver)",
    r"^model\.vision_tower\.(head|norm)\.", r"\.relative_position_index$", r"\.attn_mask$", r"rotary_emb\.inv_freq$",
]


def convert_released_state_dict(state: StateDict, model: MVPLM) -> StateDict:
    """Rename a released-code state dict to ours, check that tied copies agree, and reorder memory levels.

    The released pixel decoder's encoder (OpenSeeD, FEATURE_ORDER low2high) flattens levels high resolution
    first (1/8, 1/16, 1/32, 1/64); we flatten low resolution first (BUNDLE.md). Its level-indexed tensors (level
    embedding, deformable self-attention offsets and weights) are reversed along the level axis, which computes
    the same function on the reordered memory. The released perception decoder already flattens low resolution
    first (`openseed_phi.py` walks `multi_scale_features` backwards), so its cross-attention is kept as is.
    """
    if model.config.variant != "released-code":
        raise WeightLoadError("released-code checkpoints need a model built with variant='released-code' "
                              f"(got {model.config.variant!r})")
    rules = [(re.compile(p), t) for p, t in RELEASED_RULES]
    ignored = [re.compile(p) for p in RELEASED_IGNORED]
    out: StateDict = {}
    source: dict[str, str] = {}
    unmapped = []
    for key, value in _split_fused_qkv(state, model.config.phi.num_attention_heads).items():
        if any(p.search(key) for p in ignored):
            continue
        for pattern, template in rules:
            if pattern.match(key):
                ours = pattern.sub(template, key)
                break
        else:
            unmapped.append(key)
            continue
        if ours in out:
            if out[ours].shape != value.shape or not torch.equal(out[ours], value):
                raise WeightLoadError(f"released checkpoint: {source[ours]} and {key} are tied copies of {ours} "
                                      "but differ")
            continue
        out[ours], source[ours] = value, key
    if unmapped:
        raise WeightLoadError(f"released checkpoint: unexpected tensors (no mapping): {', '.join(sorted(unmapped))}")
    if "phi.lm_head.weight" in out and "phi.lm_head.bias" not in out:
        # the released PSALM class builds its lm_head without a bias; a zero bias computes the same logits
        out["phi.lm_head.bias"] = torch.zeros(out["phi.lm_head.weight"].shape[0], dtype=out["phi.lm_head.weight"].dtype)
    return reverse_memory_levels(out, model)


_FUSED_QKV = re.compile(r"^model\.layers\.(\d+)\.self_attn\.query_key_value\.(weight|bias)$")


def _split_fused_qkv(state: StateDict, heads: int) -> StateDict:
    """The released code's own modeling_phi.py fuses Q, K, V into `query_key_value`, whose output features are
    laid out (heads, 3, head_dim) (its `_split_heads`); split it into Hugging Face's q_proj / k_proj / v_proj."""
    out: StateDict = {}
    for key, value in state.items():
        m = _FUSED_QKV.match(key)
        if not m:
            out[key] = value
            continue
        rest = value.shape[1:]
        parts = value.reshape(heads, 3, value.shape[0] // (3 * heads), *rest)
        for j, name in enumerate(("q_proj", "k_proj", "v_proj")):
            out[f"model.layers.{m.group(1)}.self_attn.{name}.{m.group(2)}"] = parts[:, j].reshape(-1, *rest)
    return out


def reverse_memory_levels(state: StateDict, model: MVPLM) -> StateDict:
    """Reverse the level axis of the pixel decoder's level-indexed tensors (an involution)."""
    pc = model.config.pixel_decoder
    state = dict(state)
    levels = len(model.config.level_shapes)
    if "pixel_decoder.transformer.level_embed" in state:
        state["pixel_decoder.transformer.level_embed"] = state["pixel_decoder.transformer.level_embed"].flip(0)
    for i in range(pc.num_layers):
        prefix = f"pixel_decoder.transformer.encoder.layers.{i}.self_attn"
        for name, tail in (("sampling_offsets", (pc.num_points, 2)), ("attention_weights", (pc.num_points,))):
            for kind in ("weight", "bias"):
                key = f"{prefix}.{name}.{kind}"
                if key in state:
                    state[key] = reverse_level_axis(state[key], pc.num_heads, levels, tail)
    return state


def reverse_level_axis(t: torch.Tensor, heads: int, levels: int, tail: tuple[int, ...]) -> torch.Tensor:
    """t's first axis is laid out (heads, levels, *tail); reverse the levels."""
    rest = t.shape[1:]
    return t.reshape(heads, levels, *tail, *rest).flip(1).reshape(t.shape)


def load_released_checkpoint(model: MVPLM, path: str | Path) -> None:
    """A checkpoint trained with the released MVP-LM code: a `save_pretrained` directory or one weights file."""
    p = Path(path)
    state = read_hf_directory(p) if p.is_dir() else read_tensors(p)
    load_state_dict_strict(model, convert_released_state_dict(state, model), f"{path} (released MVP-LM)")
