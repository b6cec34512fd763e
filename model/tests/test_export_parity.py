"""The exported tiny bundles against the PyTorch model: per graph (KV-cache decode included) and end to end."""
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import jsonschema
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image
from torch import nn

from mvp_lm.export import GRAPHS, OPTIONAL_GRAPHS, export_bundle, file_entry
from mvp_lm.reference import Bundle, run_case, verify_files
from parity_cases import TASKS, mask_iou, synthetic_image

SCHEMA = json.loads((Path(__file__).parents[1] / "manifest.schema.json").read_text())
TOL = 1e-4


@pytest.fixture(scope="module", params=["paper", "released-code"])
def bundle(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"tiny-{request.param}")
    export_bundle("tiny", request.param, out, seed=0, log=lambda _: None)
    return Bundle(out, "onnx"), Bundle(out, "torch")


def session(b: Bundle, graph: str) -> ort.InferenceSession:
    return b.backend.sessions[graph]


def assert_close(actual, expected, what):
    diff = float(np.abs(np.asarray(actual) - np.asarray(expected)).max())
    assert diff <= TOL, f"{what}: max abs diff {diff}"


def test_manifest_validates_and_files_match(bundle, tmp_path):
    onnx_b, _ = bundle
    m = onnx_b.manifest
    jsonschema.Draft202012Validator(SCHEMA).validate(m)
    assert set(m["precisions"]["fp32"]["graphs"]) == {*GRAPHS, *OPTIONAL_GRAPHS}
    for rel, entry in m["files"].items():
        assert file_entry(onnx_b.path / rel) == entry, rel
    copy = tmp_path / "copy"
    shutil.copytree(onnx_b.path, copy)
    with (copy / "embed_tokens.onnx").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ValueError, match="embed_tokens.onnx does not match"):
        verify_files(copy, m)
    assert m["tokens"]["seg"] is None if m["variant"] == "paper" else m["tokens"]["seg"] is not None
    broken = {**m, "tokens": {**m["tokens"], "per": "2"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


def test_every_node_is_a_default_domain_op_at_opset_17(bundle):
    onnx_b, _ = bundle
    for graph in GRAPHS:
        proto = onnx.load(str(onnx_b.path / f"{graph}.onnx"))
        assert {n.domain for n in proto.graph.node} <= {"", "ai.onnx"}, graph
        assert not proto.functions, graph
        assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [17]


def test_vision_encoder_matches_with_a_dynamic_batch(bundle):
    onnx_b, torch_b = bundle
    s = onnx_b.manifest["dims"]["image_size"]
    for batch in (1, 3):
        pv = np.random.default_rng(batch).standard_normal((batch, 3, s, s)).astype(np.float32)
        got, want = onnx_b.backend.vision(pv), torch_b.backend.vision(pv)
        for k in want:
            assert got[k].shape == want[k].shape
            assert_close(got[k], want[k], f"vision {k} batch {batch}")


def test_embed_and_decoder_prefill_then_kv_cache_decode(bundle):
    onnx_b, torch_b = bundle
    d = onnx_b.manifest["dims"]
    ids = np.array([[5, 17, 99, 3, 250, 1, 42]], dtype=np.int64)
    emb = onnx_b.backend.embed(ids)
    assert_close(emb, torch_b.backend.embed(ids), "embed_tokens")
    empty = np.zeros((1, d["num_heads"], 0, d["head_dim"]), np.float32)
    past = {f"past_key_values.{i}.{k}": empty for i in range(d["num_layers"]) for k in ("key", "value")}
    t = ids.shape[1]
    args = (emb, np.ones((1, t), np.int64), np.arange(t, dtype=np.int64)[None], past)
    got, want = onnx_b.backend.decoder(*args), torch_b.backend.decoder(*args)
    for k in want:
        assert_close(got[k], want[k], f"prefill {k}")
    # one decode step on each side's own cache
    step = onnx_b.backend.embed(np.array([[int(np.argmax(got["logits"][0, -1]))]], np.int64))
    cache = lambda out: {f"past_key_values.{i}.{k}": out[f"present.{i}.{k}"]  # noqa: E731
                         for i in range(d["num_layers"]) for k in ("key", "value")}
    mask, pos = np.ones((1, t + 1), np.int64), np.array([[t]], np.int64)
    got2 = onnx_b.backend.decoder(step, mask, pos, cache(got))
    want2 = torch_b.backend.decoder(step, mask, pos, cache(want))
    assert got2["present.0.key"].shape[2] == t + 1
    for k in want2:
        assert_close(got2[k], want2[k], f"decode {k}")
    # the cache is exact: decoding the last token on the cache of the first t-1 equals the full prefill's last row
    short = (emb[:, :-1], np.ones((1, t - 1), np.int64), np.arange(t - 1, dtype=np.int64)[None], past)
    last = onnx_b.backend.decoder(emb[:, -1:], np.ones((1, t), np.int64), np.array([[t - 1]], np.int64),
                                  cache(onnx_b.backend.decoder(*short)))
    assert_close(last["logits"][0, -1], got["logits"][0, -1], "cached vs full prefill")


@pytest.mark.parametrize("phrases,is_sentence", [(4, False), (1, True)])
def test_perception_decoder(bundle, phrases, is_sentence):
    onnx_b, torch_b = bundle
    d = onnx_b.manifest["dims"]
    rng = np.random.default_rng(7)
    pv = rng.standard_normal((1, 3, d["image_size"], d["image_size"])).astype(np.float32)
    vision = {k: v for k, v in torch_b.backend.vision(pv).items() if k != "image_embeds"}
    text = rng.standard_normal((1, phrases, d["hidden_size"])).astype(np.float32)
    per = rng.standard_normal((1, d["hidden_size"])).astype(np.float32) if onnx_b.manifest["variant"] == "paper" \
        else None
    got = onnx_b.backend.perceive(vision, text, is_sentence, per)
    want = torch_b.backend.perceive(vision, text, is_sentence, per)
    q = d["num_total_queries"]
    assert got["pred_logits"].shape == (1, q, phrases)
    assert got["pred_masks"].shape == (1, q, d["mask_size"], d["mask_size"])
    for k in ("pred_logits", "pred_boxes", "pred_masks"):
        assert_close(got[k], want[k], k)


def test_end_to_end_onnx_equals_torch(bundle):
    onnx_b, torch_b = bundle
    img = synthetic_image()
    got = run_case(onnx_b, img, TASKS, caption=True)
    want = run_case(torch_b, img, TASKS, caption=True)
    assert got["result"]["caption"] == want["result"]["caption"]
    for tg, tw in zip(got["trace"]["tasks"], want["trace"]["tasks"]):
        assert tg["generated_ids"] == tw["generated_ids"]
        assert tg["prompts"] == tw["prompts"]
        assert len(tg["prompts"]) == (2 if len(tg["prompts"][0]["phrases"]) == 16 else 1)  # chunked at 16
    if onnx_b.manifest["variant"] == "paper":
        assert got["trace"]["tasks"][0]["generated_ids"] is not None
    for rg, rw in zip(got["result"]["tasks"], want["result"]["tasks"]):
        assert [d["phrase"] for d in rg["detections"]] == [d["phrase"] for d in rw["detections"]]
        for dg, dw in zip(rg["detections"], rw["detections"]):
            assert dg["score"] == pytest.approx(dw["score"], abs=1e-4)
            assert dg["box"] == pytest.approx(dw["box"], abs=1e-2)
            assert mask_iou(dg["mask"], dw["mask"]) >= 0.999
        for sg, sw in zip(rg.get("semantic", []), rw.get("semantic", [])):
            assert sg["phrase"] == sw["phrase"] and mask_iou(sg["mask"], sw["mask"]) >= 0.999
    no_caption = run_case(onnx_b, img, TASKS[4:5], caption=False)
    assert no_caption["result"]["caption"] is None


def test_reference_cli_writes_result_and_trace(bundle, tmp_path):
    onnx_b, _ = bundle
    Image.fromarray(synthetic_image()).save(tmp_path / "img.png")
    (tmp_path / "cases.json").write_text(json.dumps([{"id": "c1", "image": "img.png", "caption": True,
                                                      "tasks": TASKS[4:5]}]))
    subprocess.run([sys.executable, "-m", "mvp_lm.reference", "--bundle", str(onnx_b.path), "--cases",
                    str(tmp_path / "cases.json"), "--out", str(tmp_path / "out.json")], check=True,
                   capture_output=True)
    doc = json.loads((tmp_path / "out.json").read_text())
    case = doc["cases"][0]
    assert doc["backend"] == "onnx" and case["id"] == "c1"
    assert case["result"]["image"] == {"width": 101, "height": 75}
    raw = case["trace"]["tasks"][0]["raw"]
    assert np.asarray(raw["pred_boxes"]["values"]).shape == (1, onnx_b.manifest["dims"]["num_total_queries"], 4)
    assert np.asarray(raw["pred_logits"]["values"]).shape == (1, onnx_b.manifest["dims"]["num_total_queries"], 1)


def test_external_data_is_consolidated_into_one_file(tmp_path):
    # what a graph above 2 GB goes through, on a small one: many per-tensor files -> one page-aligned .data file
    from mvp_lm.export import _consolidate_external_data, check_graph
    net = nn.Sequential(nn.Linear(64, 300), nn.ReLU(), nn.Linear(300, 8))
    raw = tmp_path / "raw" / "g.onnx"
    raw.parent.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.randn(1, 64),), str(raw), dynamo=False, opset_version=17, input_names=["x"],
                          output_names=["y"])
    onnx.save_model(onnx.load(str(raw)), str(raw), save_as_external_data=True, all_tensors_to_one_file=False,
                    size_threshold=0)
    assert len(list(raw.parent.iterdir())) == 5
    out = tmp_path / "g.onnx"
    data = _consolidate_external_data(raw, out)
    check_graph(out)
    assert data.name == "g.onnx.data"
    x = np.random.default_rng(0).standard_normal((1, 64)).astype(np.float32)
    want = ort.InferenceSession(str(raw)).run(None, {"x": x})[0]
    assert_close(ort.InferenceSession(str(out)).run(None, {"x": x})[0], want, "consolidated graph")
