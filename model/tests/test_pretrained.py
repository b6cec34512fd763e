"""Pretrained parts through the CLI paths (`mvp_lm.export` / `mvp_lm.train` --init-llm / --init-vision), on tiny
random models in the real formats: Hugging Face `transformers` Phi and Swin saved as the hub saves them (no
download). Our forward passes are compared with the library's own."""
import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer

from mvp_lm import pretrained
from mvp_lm.export import PRESETS, build_model, main as export_main
from mvp_lm.model import MVPLM
from mvp_lm.train.__main__ import parse_args
from mvp_lm.train.loop import train
from mvp_lm.weights import WeightLoadError, load_swin
from phi_fixtures import phi_style_tokenizer
from train_fixtures import write_synthetic_set

transformers = pytest.importorskip("transformers")

TINY = PRESETS["tiny"]("paper")
TOKENS = phi_style_tokenizer().get_vocab_size(with_added_tokens=True)  # its own ids, before MVP-LM's three


def _hf_phi(rows: int):
    p = TINY.phi
    torch.manual_seed(1)
    cfg = transformers.PhiConfig(vocab_size=rows, hidden_size=p.hidden_size, intermediate_size=p.intermediate_size,
                                 num_hidden_layers=p.num_hidden_layers, num_attention_heads=p.num_attention_heads,
                                 partial_rotary_factor=p.partial_rotary_factor, rope_theta=p.rope_theta,
                                 layer_norm_eps=p.layer_norm_eps)
    model = transformers.PhiForCausalLM(cfg).eval()
    with torch.no_grad():  # non-trivial biases and norms, so a mapping error cannot hide behind zeros and ones
        for name, t in model.named_parameters():
            if name.endswith("bias") or "layernorm" in name:
                t.add_(torch.randn_like(t) * 0.1)
    return model


@pytest.fixture(scope="module")
def phi_dir(tmp_path_factory):
    """A Phi directory as the hub has it: config.json, model.safetensors, tokenizer.json; rows > tokenizer ids."""
    d = tmp_path_factory.mktemp("phi")
    model = _hf_phi(320)
    model.save_pretrained(d)
    phi_style_tokenizer().save(str(d / "tokenizer.json"))
    return d, model


def _ids() -> torch.Tensor:
    return torch.tensor([[5, 17, 99, 250, 3, 42, 7]])


def _own_columns(rows: int) -> list[int]:
    """Logit columns of every id but the three added ones (whose LM-head rows are new)."""
    return [i for i in range(rows) if not TOKENS <= i < TOKENS + 3]


def _ours_vs_hf(ours: MVPLM, hf) -> tuple[float, float]:
    ids = _ids()
    with torch.no_grad():
        ref = hf(input_ids=ids, output_hidden_states=True)
        out = ours.phi(ours.phi.model.embed_tokens(ids), torch.ones_like(ids), torch.arange(ids.shape[1])[None])
    own = _own_columns(ref.logits.shape[-1])
    logits = (out["logits"][..., own] - ref.logits[..., own]).abs().max().item()
    hidden = (out["last_hidden_state"] - ref.hidden_states[-1]).abs().max().item()
    return logits, hidden


def test_phi_directory_layouts_load_with_the_library_forward_pass(phi_dir, tmp_path):
    d, hf = phi_dir
    sharded, pickled = tmp_path / "sharded", tmp_path / "bin"
    hf.save_pretrained(sharded, max_shard_size="300KB")
    assert (sharded / "model.safetensors.index.json").exists()
    pickled.mkdir()
    torch.save(hf.state_dict(), pickled / "pytorch_model.bin")
    for directory in (sharded, pickled):
        for f in ("config.json", "tokenizer.json"):
            (directory / f).write_bytes((d / f).read_bytes())
    for directory in (d, sharded, pickled):
        pre = pretrained.Pretrained(llm=directory)
        tok, added = pretrained.tokenizer(directory)
        cfg = pretrained.config(TINY, pre, tok)
        model = MVPLM(cfg).eval()
        pretrained.initialise(model, pre, added, log=lambda _: None)
        logits, hidden = _ours_vs_hf(model, hf)
        assert logits <= 1e-5 and hidden <= 1e-5, directory.name


def test_added_tokens_get_the_mean_row_and_the_table_grows_when_needed(tmp_path):
    hf = _hf_phi(TOKENS)  # no spare rows: the three added tokens need three more
    hf.save_pretrained(tmp_path)
    phi_style_tokenizer().save(str(tmp_path / "tokenizer.json"))
    pre = pretrained.Pretrained(llm=tmp_path)
    tok, added = pretrained.tokenizer(tmp_path)
    assert [tok.id_to_token(i) for i in added] == ["<image>", "<PER>", "[SEG]"] and added.start == TOKENS
    cfg = pretrained.config(TINY, pre, tok)
    assert cfg.phi.vocab_size == TOKENS + 3
    model = MVPLM(cfg)
    pretrained.initialise(model, pre, added, log=lambda _: None)
    state = hf.state_dict()
    for key in ("model.embed_tokens.weight", "lm_head.weight", "lm_head.bias"):
        ours = model.phi.state_dict()[key]
        assert torch.equal(ours[:TOKENS], state[key])
        for i in added:
            assert torch.allclose(ours[i], state[key].mean(0))


def test_a_config_that_does_not_fit_the_preset_is_refused_naming_the_field(phi_dir, tmp_path):
    d, _ = phi_dir
    for f in ("config.json", "model.safetensors", "tokenizer.json"):
        (tmp_path / f).write_bytes((d / f).read_bytes())
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "num_hidden_layers": 3}))
    with pytest.raises(WeightLoadError, match="num_hidden_layers 3 \\(preset 2\\)"):
        pretrained.config(TINY, pretrained.Pretrained(llm=tmp_path), pretrained.tokenizer(tmp_path)[0])


def _hf_swin():
    s = TINY.swin
    torch.manual_seed(2)
    cfg = transformers.SwinConfig(image_size=TINY.image_size, patch_size=s.patch_size, embed_dim=s.embed_dim,
                                  depths=list(s.depths), num_heads=list(s.num_heads), window_size=s.window_size,
                                  mlp_ratio=s.mlp_ratio, out_features=["stage1", "stage2", "stage3", "stage4"])
    model = transformers.SwinBackbone(cfg).eval()
    with torch.no_grad():
        for name, t in model.named_parameters():
            if name.endswith("bias") or "norm" in name or "relative_position_bias_table" in name:
                t.add_(torch.randn_like(t) * 0.1)
    return model


_V4_NAMES = [(".attention.q_proj.", ".attention.self.query."), (".attention.k_proj.", ".attention.self.key."),
             (".attention.v_proj.", ".attention.self.value."), (".attention.o_proj.", ".attention.output.dense."),
             (".attention.relative_position_bias.relative_position_bias_table", ".attention.self.relative_position_bias_table"),
             (".mlp.fc1.", ".intermediate.dense."), (".mlp.fc2.", ".output.dense.")]


@pytest.mark.parametrize("layout", ["transformers-5", "transformers-4", "hub-classifier"])
def test_transformers_swin_stage_outputs_match_the_library(layout, tmp_path):
    hf = _hf_swin()
    if layout == "hub-classifier":  # an ImageNet checkpoint has no per-stage norms: ours keep their initial values
        with torch.no_grad():
            for name, t in hf.hidden_states_norms.named_parameters():
                t.fill_(1.0 if name.endswith("weight") else 0.0)
    state = {k: v.contiguous() for k, v in hf.state_dict().items()}
    if layout != "transformers-5":  # 4.x names; its SwinBackbone had no `swin.`
        for new, old in _V4_NAMES:
            state = {k.replace(new, old): v for k, v in state.items()}
        state = {k.removeprefix("swin."): v for k, v in state.items()}
    if layout == "hub-classifier":  # microsoft/swin-base-*: 4.x SwinForImageClassification
        state = {f"swin.{k}": v for k, v in state.items() if not k.startswith("hidden_states_norms.")}
        state["classifier.weight"], state["classifier.bias"] = torch.zeros(10, hf.num_features[-1]), torch.zeros(10)
    save_file(state, str(tmp_path / "model.safetensors"))
    model = MVPLM(TINY).eval()
    kept = load_swin(model, tmp_path / "model.safetensors", log=lambda _: None)
    assert kept == ([f"norm{i}.{p}" for i in range(4) for p in ("weight", "bias")] if layout == "hub-classifier" else [])
    x = torch.randn(1, 3, TINY.image_size, TINY.image_size)
    with torch.no_grad():
        ref = hf(pixel_values=x).feature_maps
        ours = model.swin(x)
    for i, (a, b) in enumerate(zip(ours, ref)):
        assert a.shape == b.shape and (a - b).abs().max().item() <= 1e-5, f"stage {i}"


def test_unknown_swin_tensors_fail_strictly_and_are_skipped_without_strict(tmp_path):
    state = {k: v.contiguous() for k, v in _hf_swin().state_dict().items()}
    state["encoder.layers.0.extra.weight"] = torch.zeros(3)
    save_file(state, str(tmp_path / "swin.safetensors"))
    with pytest.raises(WeightLoadError, match="unexpected tensors: layers.0.extra.weight"):
        load_swin(MVPLM(TINY), tmp_path / "swin.safetensors")
    logged = []
    load_swin(MVPLM(TINY), tmp_path / "swin.safetensors", strict=False, log=logged.append)
    assert "layers.0.extra.weight" in logged[0]


def test_export_from_pretrained_parts_serves_the_library_logits(phi_dir, tmp_path):
    d, hf = phi_dir
    swin = tmp_path / "swin.safetensors"
    save_file({k: v.contiguous() for k, v in _hf_swin().state_dict().items()}, str(swin))
    out = tmp_path / "bundle"
    assert export_main(["--preset", "tiny", "--init-llm", str(d), "--init-vision", str(swin), "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["weights"] == {"source": "pretrained", "seed": 0, "llm": d.name, "vision": swin.name}
    bundled = Tokenizer.from_file(str(out / "tokenizer.json"))
    assert {k: bundled.token_to_id(k) for k in ("<image>", "<PER>", "[SEG]")} == {"<image>": TOKENS, "<PER>": TOKENS + 1, "[SEG]": TOKENS + 2}
    assert bundled.encode("a red square").ids == phi_style_tokenizer().encode("a red square").ids
    assert manifest["tokens"]["per"] == TOKENS + 1 and manifest["dims"]["vocab_size"] == 320

    ids = _ids().numpy()
    embed = ort.InferenceSession(str(out / "embed_tokens.onnx")).run(None, {"input_ids": ids})[0]
    decoder = ort.InferenceSession(str(out / "decoder_model_merged.onnx"))
    feeds = {"inputs_embeds": embed, "attention_mask": np.ones_like(ids), "position_ids": np.arange(ids.shape[1])[None]}
    d_model = manifest["dims"]
    for i in decoder.get_inputs():
        if i.name.startswith("past_key_values"):
            feeds[i.name] = np.zeros((1, d_model["num_heads"], 0, d_model["head_dim"]), np.float32)
    logits = decoder.run(["logits"], feeds)[0]
    with torch.no_grad():
        ref = hf(input_ids=torch.from_numpy(ids)).logits.numpy()
    own = _own_columns(320)
    assert np.abs(logits[..., own] - ref[..., own]).max() <= 1e-4


def test_train_starts_from_pretrained_parts(phi_dir, tmp_path):
    d, hf = phi_dir
    data = write_synthetic_set(tmp_path / "data")
    run = tmp_path / "run"
    result = train(parse_args(["--config", "tiny", "--stage", "2", "--data", str(data), "--images", str(tmp_path / "data"),
                               "--out", str(run), "--steps", "1", "--lr", "0", "--init-llm", str(d), "--no-progress"]))
    ours = result.model.phi.state_dict()
    for key, value in hf.state_dict().items():
        if "embed_tokens" in key or key.startswith("lm_head"):
            value, ours_value = value[:TOKENS], ours[key][:TOKENS]
        else:
            ours_value = ours[key]
        assert torch.equal(ours_value, value), key
    assert Tokenizer.from_file(str(run / "tokenizer.json")).token_to_id("<PER>") == TOKENS + 1
    with pytest.raises(ValueError, match="exclude each other"):
        train(parse_args(["--data", str(data), "--images", str(tmp_path / "data"), "--out", str(tmp_path / "r2"),
                          "--init", str(run), "--init-llm", str(d)]))
    with pytest.raises(ValueError, match="brings its tokenizer"):
        train(parse_args(["--data", str(data), "--images", str(tmp_path / "data"), "--out", str(tmp_path / "r3"),
                          "--tokenizer", str(run / "tokenizer.json"), "--init-llm", str(d)]))


def test_a_pretrained_swin_alone_keeps_the_tokenizer_size_check(tmp_path):
    data = write_synthetic_set(tmp_path / "data")
    swin = tmp_path / "swin.safetensors"
    save_file({k: v.contiguous() for k, v in _hf_swin().state_dict().items()}, str(swin))
    big = phi_style_tokenizer()
    big.add_tokens([f"word{i}" for i in range(TINY.phi.vocab_size)])
    big.save(str(tmp_path / "big.json"))
    with pytest.raises(ValueError, match="more than the tiny preset's 4096 embedding rows"):
        train(parse_args(["--data", str(data), "--images", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
                          "--tokenizer", str(tmp_path / "big.json"), "--init-vision", str(swin), "--no-progress"]))
