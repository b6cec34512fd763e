"""Weight loading: Hugging Face Phi names, Swin (official and timm layouts), released-code checkpoints, errors."""
import json

import pytest
import torch
from safetensors.torch import save_file

from mvp_lm import MVPLM, tiny
from mvp_lm.modules.msdeform import MSDeformAttn
from mvp_lm.weights import (WeightLoadError, convert_released_state_dict, load_checkpoint, load_hf_phi,
                            load_released_checkpoint, load_swin, reverse_level_axis)


def _randomised(variant="released-code"):
    m = MVPLM(tiny(variant)).eval()
    with torch.no_grad():
        for t in m.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.randn_like(t))
    return m


def _assert_same_state(a, b, prefix=""):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        if k.startswith(prefix):
            assert torch.equal(sa[k], sb[k]), k


# ---------------------------------------------------------------------------------------------- Phi
def _hf_phi_names(layers):
    """Hugging Face PhiForCausalLM (phi-1_5) parameter names, written from transformers' modeling_phi."""
    names = {"model.embed_tokens.weight", "model.final_layernorm.weight", "model.final_layernorm.bias",
             "lm_head.weight", "lm_head.bias"}
    for i in range(layers):
        for mod in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.dense", "mlp.fc1",
                    "mlp.fc2", "input_layernorm"):
            names |= {f"model.layers.{i}.{mod}.weight", f"model.layers.{i}.{mod}.bias"}
    return names


def test_phi_parameter_names_are_hugging_face_names():
    m = MVPLM(tiny())
    assert set(m.phi.state_dict()) == _hf_phi_names(m.config.phi.num_hidden_layers)


def test_load_hf_phi_sharded_directory(tmp_path):
    src = _randomised()
    state = {k: v.contiguous() for k, v in src.phi.state_dict().items()}
    keys = sorted(state)
    shards = {"model-00001-of-00002.safetensors": keys[: len(keys) // 2],
              "model-00002-of-00002.safetensors": keys[len(keys) // 2:]}
    for name, ks in shards.items():
        save_file({k: state[k] for k in ks}, str(tmp_path / name))
    weight_map = {k: name for name, ks in shards.items() for k in ks}
    # older checkpoints carry the rotary buffer; it is recomputed, not loaded
    save_file({"model.layers.0.self_attn.rotary_emb.inv_freq": torch.ones(4)},
              str(tmp_path / "model-extra.safetensors"))
    weight_map["model.layers.0.self_attn.rotary_emb.inv_freq"] = "model-extra.safetensors"
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    dst = MVPLM(tiny("released-code"))
    load_hf_phi(dst, tmp_path)
    _assert_same_state(src.phi, dst.phi)


def test_load_hf_phi_names_missing_unexpected_and_mismatched(tmp_path):
    src = _randomised()
    state = dict(src.phi.state_dict())
    state.pop("model.layers.1.mlp.fc2.bias")
    state["model.layers.0.self_attn.qkv.weight"] = torch.zeros(3)
    state["lm_head.weight"] = torch.zeros(7, 128)
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(WeightLoadError) as err:
        load_hf_phi(MVPLM(tiny()), tmp_path)
    msg = str(err.value)
    assert "model.layers.1.mlp.fc2.bias" in msg
    assert "model.layers.0.self_attn.qkv.weight" in msg
    assert "lm_head.weight (file (7, 128) vs model (4096, 128))" in msg


# ---------------------------------------------------------------------------------------------- Swin
def _official_swin_state(model):
    """Official Swin classification checkpoint layout: {'model': ...} with head/norm, buffers, no norm0..3."""
    state = {k: v.clone() for k, v in model.swin.state_dict().items() if not k.startswith("norm")}
    state["layers.0.blocks.0.attn.relative_position_index"] = torch.zeros(16, 16, dtype=torch.long)
    state["layers.0.blocks.1.attn_mask"] = torch.zeros(64, 16, 16)
    state["norm.weight"], state["norm.bias"] = torch.ones(256), torch.zeros(256)
    state["head.weight"], state["head.bias"] = torch.zeros(10, 256), torch.zeros(10)
    return state


def test_load_swin_official_layout(tmp_path):
    src = _randomised()
    torch.save({"model": _official_swin_state(src)}, tmp_path / "swin.pth")
    dst = MVPLM(tiny())
    kept = load_swin(dst, tmp_path / "swin.pth")
    assert kept == [f"norm{i}.{n}" for i in range(4) for n in ("weight", "bias")]
    for k, v in src.swin.state_dict().items():
        if not k.startswith("norm"):
            assert torch.equal(dst.swin.state_dict()[k], v), k


def test_load_swin_timm_layout_and_backbone_prefix(tmp_path):
    src = _randomised()
    state = {}
    for k, v in src.swin.state_dict().items():
        if k.startswith("layers.") and ".downsample." in k:  # timm keeps patch merging in the next stage
            i = int(k.split(".")[1])
            k = k.replace(f"layers.{i}.downsample.", f"layers.{i + 1}.downsample.")
        state["backbone." + k] = v
    save_file(state, str(tmp_path / "swin.safetensors"))
    dst = MVPLM(tiny())
    assert load_swin(dst, tmp_path / "swin.safetensors") == []
    _assert_same_state(src.swin, dst.swin)


def test_load_swin_shape_mismatch_names_tensor(tmp_path):
    src = _randomised()
    state = _official_swin_state(src)
    state["patch_embed.proj.weight"] = torch.zeros(32, 3, 8, 8)
    torch.save(state, tmp_path / "swin.pth")
    with pytest.raises(WeightLoadError, match=r"patch_embed\.proj\.weight \(file \(32, 3, 8, 8\) vs model \(32, 3, 4, 4\)\)"):
        load_swin(MVPLM(tiny()), tmp_path / "swin.pth")


# ---------------------------------------------------------------------------------------------- released code
# our name prefix -> released name prefix(es), written from the released code's module tree (see WEIGHTS.md);
# several targets = tied copies of one tensor saved under each name
def _released_names(ours: str, num_layers: int) -> list[str]:
    table = [
        ("swin.", ["model.vision_tower."]),
        ("connector.block.", ["model.mm_projector.layer1.0."]),
        ("connector.fc.", ["model.mm_projector.fc."]),
        ("phi.model.", ["model."]),
        ("phi.lm_head.", ["lm_head."]),
        ("pixel_decoder.", ["pixel_decoder."]),
        ("decoder.layers.", ["predictor.decoder.layers."]),
        ("decoder.ref_point_head.", ["predictor.decoder.ref_point_head."]),
        ("decoder.norm.", ["predictor.decoder_norm.", "predictor.decoder.norm."]),
        ("decoder.bbox_embed.", ["predictor._bbox_embed."]
         + [f"predictor.bbox_embed.{i}." for i in range(num_layers)]
         + [f"predictor.decoder.bbox_embed.{i}." for i in range(num_layers)]),
        ("query_gen.", ["predictor."]),
        ("heads.class_proj.", ["predictor.CLASS_proj."]),
        ("heads.sentence_proj.", ["predictor.SEG_proj."]),
        ("heads.mask_embed.", ["predictor.mask_embed."]),
        ("phrase_projector.", ["class_name_projector."]),
        ("sentence_projector.", ["SEG_token_projector."]),
        ("stuff_", ["stuff_"]),
    ]
    for prefix, targets in table:
        if ours.startswith(prefix):
            return [t + ours[len(prefix):] for t in targets]
    raise AssertionError(f"no released name for {ours}")


def _to_released_level_order(key, t, cfg):
    """The released pixel-decoder encoder runs memory levels high resolution first; ours (and the released
    perception decoder) low resolution first."""
    if not key.startswith("pixel_decoder.transformer."):
        return t
    levels = len(cfg.level_shapes)
    if key.endswith("level_embed"):
        return t.flip(0)
    for name, tail in (("sampling_offsets", (2,)), ("attention_weights", ())):
        if f".{name}." in key:
            pc = cfg.pixel_decoder
            shape = (pc.num_heads, levels, pc.num_points, *tail, *t.shape[1:])
            return t.reshape(shape).flip(1).reshape(t.shape)
    return t


def _fuse_qkv(state, layers, heads):
    """The released modeling_phi.py: one `query_key_value` Linear whose outputs are viewed (heads, 3, head_dim)."""
    for i in range(layers):
        for kind in ("weight", "bias"):
            q, k, v = (state.pop(f"model.layers.{i}.self_attn.{n}_proj.{kind}") for n in "qkv")
            per_head = [t.reshape(heads, -1, *t.shape[1:]) for t in (q, k, v)]
            state[f"model.layers.{i}.self_attn.query_key_value.{kind}"] = \
                torch.stack(per_head, 1).reshape(-1, *q.shape[1:])


def _released_state(src):
    cfg = src.config
    state = {}
    for k, v in src.state_dict().items():
        if k == "phi.lm_head.bias":
            continue  # the released lm_head has no bias
        for name in _released_names(k, cfg.decoder.num_layers):
            state[name] = _to_released_level_order(k, v, cfg).clone()
    _fuse_qkv(state, cfg.phi.num_hidden_layers, cfg.phi.num_attention_heads)
    d, k_q = cfg.d_model, cfg.decoder.num_queries
    state.update({  # parts of the released model we do not use
        "predictor.SEG_query_feat.weight": torch.zeros(k_q, d), "predictor.SEG_query_embed.weight": torch.zeros(k_q, 4),
        "predictor.REGION_proj.layers.0.weight": torch.zeros(d, d), "thing_query.weight": torch.zeros(k_q, 128),
        "region_projector.weight": torch.zeros(d, 128), "seg_query_projector.weight": torch.zeros(d, 128),
        "model.vision_tower.layers.0.blocks.0.attn.relative_position_index": torch.zeros(16, 16, dtype=torch.long),
    })
    return state


def test_load_released_checkpoint_round_trip(tmp_path):
    src = _randomised()
    with torch.no_grad():
        src.phi.lm_head.bias.zero_()
    save_file(_released_state(src), str(tmp_path / "model.safetensors"))
    dst = MVPLM(tiny("released-code")).eval()
    load_released_checkpoint(dst, tmp_path)
    _assert_same_state(src, dst)


def test_released_fused_qkv_computes_the_same_attention_inputs():
    """Released attention: fused = x @ W.T + b viewed (B,T,heads,3,d); ours: separate q/k/v projections."""
    src = _randomised()
    state = _released_state(src)
    dst = MVPLM(tiny("released-code")).eval()
    converted = convert_released_state_dict(state, dst)
    heads, d = dst.config.phi.num_attention_heads, dst.config.phi.head_dim
    x = torch.randn(2, 5, dst.config.phi.hidden_size)
    w, b = state["model.layers.1.self_attn.query_key_value.weight"], state["model.layers.1.self_attn.query_key_value.bias"]
    fused = (x @ w.T + b).view(2, 5, heads, 3, d)
    for j, name in enumerate("qkv"):
        ours = x @ converted[f"phi.model.layers.1.self_attn.{name}_proj.weight"].T \
            + converted[f"phi.model.layers.1.self_attn.{name}_proj.bias"]
        torch.testing.assert_close(ours.view(2, 5, heads, d), fused[..., j, :])


def test_released_checkpoint_errors(tmp_path):
    src = _randomised()
    state = _released_state(src)
    state["predictor.bbox_embed.1.layers.0.bias"] = state["predictor.bbox_embed.1.layers.0.bias"] + 1
    torch.save(state, tmp_path / "a.bin")
    with pytest.raises(WeightLoadError, match=r"bbox_embed.*tied copies of decoder\.bbox_embed\.layers\.0\.bias"):
        load_released_checkpoint(MVPLM(tiny("released-code")), tmp_path / "a.bin")
    state = _released_state(src)
    state["predictor.new_head.weight"] = torch.zeros(2)
    del state["SEG_token_projector.bias"]
    torch.save(state, tmp_path / "b.bin")
    with pytest.raises(WeightLoadError, match=r"predictor\.new_head\.weight"):
        load_released_checkpoint(MVPLM(tiny("released-code")), tmp_path / "b.bin")
    del state["predictor.new_head.weight"]
    torch.save(state, tmp_path / "c.bin")
    with pytest.raises(WeightLoadError, match=r"missing tensors: sentence_projector\.bias"):
        load_released_checkpoint(MVPLM(tiny("released-code")), tmp_path / "c.bin")
    with pytest.raises(WeightLoadError, match="variant='released-code'"):
        load_released_checkpoint(MVPLM(tiny("paper")), tmp_path / "c.bin")


def test_level_reversal_computes_the_same_attention():
    """Weights for high-resolution-first memory, reversed, give the same output on low-resolution-first memory."""
    heads, levels, points, d = 2, 3, 2, 8
    a = MSDeformAttn(d, levels, heads, points)
    with torch.no_grad():
        for p in a.parameters():
            p.normal_(0, 0.3)
    b = MSDeformAttn(d, levels, heads, points)
    sd = a.state_dict()
    for name, tail in (("sampling_offsets", (points, 2)), ("attention_weights", (points,))):
        for kind in ("weight", "bias"):
            sd[f"{name}.{kind}"] = reverse_level_axis(sd[f"{name}.{kind}"], heads, levels, tail)
    b.load_state_dict(sd)
    shapes = [(6, 6), (3, 3), (2, 2)]  # high resolution first
    values = [torch.randn(1, h * w, d) for h, w in shapes]
    q, ref = torch.randn(1, 5, d), torch.rand(1, 5, 1, 2).expand(-1, -1, levels, -1)
    out_a = a(q, ref, torch.cat(values, 1), shapes)
    out_b = b(q, ref, torch.cat(values[::-1], 1), shapes[::-1])
    torch.testing.assert_close(out_a, out_b, atol=1e-5, rtol=1e-5)


def test_own_checkpoint_round_trip(tmp_path):
    src = _randomised("paper")
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(tmp_path / "ckpt.safetensors"))
    dst = MVPLM(tiny("paper"))
    load_checkpoint(dst, tmp_path / "ckpt.safetensors")
    _assert_same_state(src, dst)
    with pytest.raises(WeightLoadError, match="base_query_mlp"):
        load_checkpoint(MVPLM(tiny("released-code")), tmp_path / "ckpt.safetensors")
