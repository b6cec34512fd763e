"""The fp16 graphs (for GPUs) load in ONNX Runtime and track the fp32 graphs on the same inputs."""
import json

import numpy as np

from mvp_lm.export import GRAPHS, OPTIONAL_GRAPHS, export_bundle
from mvp_lm.reference import OnnxBackend

# float16 keeps ~3 decimal digits; through a few layers the error grows to about 1e-3 of the output's range.
REL_TOL = 2e-2


def _half(feeds: dict) -> dict:
    return {k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in feeds.items()}


def test_fp16_graphs_track_fp32(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny-fp16")
    export_bundle("tiny", "paper", out, seed=0, fp16=True, log=lambda _: None)
    m = json.loads((out / "manifest.json").read_text())
    assert m["precisions"]["fp16"]["dtype"] == "float16"
    assert set(m["precisions"]["fp16"]["graphs"]) == {*GRAPHS, *OPTIONAL_GRAPHS}
    f32, f16 = OnnxBackend(out, m, "fp32"), OnnxBackend(out, m, "fp16")
    d, rng = m["dims"], np.random.default_rng(0)

    def compare(graph: str, feeds: dict) -> dict:
        want, got = f32._run(graph, feeds), f16._run(graph, _half(feeds))
        assert set(got) == set(want), graph
        for k, w in want.items():
            g = got[k].astype(w.dtype)
            assert g.shape == w.shape, f"{graph}.{k}"
            err = float(np.abs(g - w).max()) / (float(np.abs(w).max()) + 1e-6)
            assert err <= REL_TOL, f"{graph}.{k}: relative error {err:.2e}"
        return want

    s = d["image_size"]
    vision = compare("vision_encoder", {"pixel_values": rng.standard_normal((1, 3, s, s)).astype(np.float32)})
    t = 7
    embeds = compare("embed_tokens", {"input_ids": rng.integers(4, 500, (1, t), dtype=np.int64)})["inputs_embeds"]
    empty = np.zeros((1, d["num_heads"], 0, d["head_dim"]), np.float32)
    past = {f"past_key_values.{i}.{kv}": empty for i in range(d["num_layers"]) for kv in ("key", "value")}
    prefill = compare("decoder_model_merged", {"inputs_embeds": embeds, "attention_mask": np.ones((1, t), np.int64),
                                               "position_ids": np.arange(t, dtype=np.int64)[None], **past})
    # the fp16 generation graph is the fp16 step graph in a Loop: the same ids as feeding it token by token
    state = f16._run("decoder_model_merged", _half({"inputs_embeds": embeds, "attention_mask": np.ones((1, t), np.int64),
                                                    "position_ids": np.arange(t, dtype=np.int64)[None], **past}))
    assert prefill["logits"].shape == state["logits"].shape
    # the fp16 step graph returns float32 present keys (its rotary embedding is float32): fed back as float16
    cache = {f"past_key_values.{k[8:]}": v.astype(np.float16) for k, v in state.items() if k.startswith("present.")}
    start = dict(cache)
    nxt, ids, length = int(np.argmax(state["logits"][0, -1].astype(np.float32))), [], t
    for _ in range(6):  # random weights choose no stop token in these 6 steps (else the graph stops earlier)
        ids.append(nxt)
        e = f16._run("embed_tokens", {"input_ids": np.array([[nxt]], np.int64)})["inputs_embeds"]
        out = f16._run("decoder_model_merged", {"inputs_embeds": e, "attention_mask": np.ones((1, length + 1), np.int64),
                                                "position_ids": np.array([[length]], np.int64), **cache})
        cache = {f"past_key_values.{k[8:]}": v.astype(np.float16) for k, v in out.items() if k.startswith("present.")}
        nxt, length = int(np.argmax(out["logits"][0, -1].astype(np.float32))), length + 1
    first = int(np.argmax(state["logits"][0, -1].astype(np.float32)))
    gen = f16._run("decoder_generate", {"input_ids": np.array([[first]], np.int64),
                                        "max_new_tokens": np.array([6], np.int64), **start})
    assert gen["generated_ids"][0].tolist() == ids
    assert gen["per_hidden"].dtype == np.float16
    compare("perception_decoder", {**vision, "is_sentence": np.array([False]),
                                   "text_embeds": rng.standard_normal((1, 3, d["hidden_size"])).astype(np.float32),
                                   "per_hidden": rng.standard_normal((1, d["hidden_size"])).astype(np.float32)})
