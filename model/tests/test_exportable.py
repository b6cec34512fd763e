"""The model's methods export with the TorchScript-based exporter at opset 17 (built-in ops only) and ONNX Runtime
reproduces PyTorch, including a dynamic phrase count and KV-cache length. The bundle's own exporter is
mvp_lm/export.py; this only guards the property the model code promises."""
import io
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from mvp_lm import MVPLM, tiny

VISION_OUT = ["image_embeds", "memory", "mask_features", "output_memory", "output_proposals", "proposal_valid"]
PERCEIVE_IN = ["memory", "output_memory", "output_proposals", "proposal_valid", "mask_features", "text_embeds",
               "is_sentence", "per_hidden"]


class _Vision(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, pixel_values):
        out = self.m.encode_image(pixel_values)
        return tuple(out[k] for k in VISION_OUT)


class _Perceive(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, memory, output_memory, output_proposals, proposal_valid, mask_features, text, is_sentence, per):
        vision = dict(memory=memory, output_memory=output_memory, output_proposals=output_proposals,
                      proposal_valid=proposal_valid, mask_features=mask_features)
        out = self.m.perceive(vision, text, is_sentence, per)
        return out["pred_logits"], out["pred_masks"], out["pred_boxes"]


class _LLM(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, embeds, mask, pos, *flat_past):
        past = list(zip(flat_past[0::2], flat_past[1::2]))
        out = self.m.llm(embeds, mask, pos, past)
        return (out["logits"], out["last_hidden_state"], out["mean_hidden_states"],
                *[t for kv in out["present"] for t in kv])


def _export(module, args, names, dynamic):
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, f, opset_version=17, dynamo=False, input_names=names, dynamic_axes=dynamic)
    proto = onnx.load_from_string(f.getvalue())
    assert all(n.domain in ("", "ai.onnx") for n in proto.graph.node), "custom op in graph"
    return ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])


def _close(onnx_outs, torch_outs, atol=1e-4):
    for a, b in zip(onnx_outs, torch_outs):
        np.testing.assert_allclose(a, b.detach().numpy(), atol=atol, rtol=1e-4)


@pytest.fixture(scope="module")
def model():
    return MVPLM(tiny("paper")).fold_for_export()


def test_vision_and_perception_export(model):
    x = torch.randn(1, 3, 128, 128)
    sess = _export(_Vision(model), (x,), ["pixel_values"], {"pixel_values": {0: "B"}})
    with torch.no_grad():
        vis = _Vision(model)(x)
    _close(sess.run(None, {"pixel_values": x.numpy()}), vis)

    h = model.config.phi.hidden_size
    memory, mask_features, output_memory, proposals, valid = vis[1], vis[2], vis[3], vis[4], vis[5]
    args = (memory, output_memory, proposals, valid, mask_features, torch.randn(1, 4, h), torch.tensor([False]),
            torch.randn(1, h))
    sess = _export(_Perceive(model), args, PERCEIVE_IN, {"text_embeds": {1: "P"}})
    for sentence, phrases in ((False, 4), (False, 7), (True, 1)):
        feed = list(args)
        feed[5], feed[6] = torch.randn(1, phrases, h), torch.tensor([sentence])
        with torch.no_grad():
            ref = _Perceive(model)(*feed)
        _close(sess.run(None, dict(zip(PERCEIVE_IN, [t.numpy() for t in feed]))), ref)


def test_llm_export_with_cache(model):
    cfg = model.config.phi
    heads, hd, layers = cfg.num_attention_heads, cfg.head_dim, cfg.num_hidden_layers
    past_names = [f"past_key_values.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    names = ["inputs_embeds", "attention_mask", "position_ids"] + past_names
    dynamic = {"inputs_embeds": {1: "T"}, "attention_mask": {1: "A"}, "position_ids": {1: "T"}}
    dynamic.update({n: {2: "past"} for n in past_names})
    args = (torch.randn(1, 3, cfg.hidden_size), torch.ones(1, 5, dtype=torch.long), torch.tensor([[2, 3, 4]]),
            *[torch.randn(1, heads, 2, hd) for _ in past_names])
    sess = _export(_LLM(model), args, names, dynamic)
    for t, past in ((4, 0), (1, 6)):
        feed = (torch.randn(1, t, cfg.hidden_size), torch.ones(1, past + t, dtype=torch.long),
                torch.arange(past, past + t)[None], *[torch.randn(1, heads, past, hd) for _ in past_names])
        with torch.no_grad():
            ref = _LLM(model)(*feed)
        _close(sess.run(None, dict(zip(names, [x.numpy() for x in feed]))), ref)
