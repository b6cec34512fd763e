"""The export's batch check (mvp_lm/export.py `check_batching`): it refuses a graph whose rows depend on each other,
and the manifest records the batch it was run at (`batching.max_batch`; --max-batch 1 skips it)."""
import json
import shutil
from pathlib import Path

import jsonschema
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from mvp_lm import export
from mvp_lm.export import OPSET, check_batching, export_bundle, same_batched_and_alone

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "manifest.schema.json").read_text())


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("batch")
    export_bundle("tiny", "paper", out, seed=0, max_batch=3, log=lambda _: None)
    return out


def _embed(path: Path, vocab: int, hidden: int, mix_rows: bool) -> None:
    """An embed_tokens.onnx stand-in (input_ids [B,T] → inputs_embeds [B,T,H]); `mix_rows` adds the batch mean,
    which is the row itself alone and not in a batch."""
    table = numpy_helper.from_array(np.random.default_rng(0).standard_normal((vocab, hidden)).astype(np.float32), "w")
    nodes = [helper.make_node("Gather", ["w", "input_ids"], ["rows" if mix_rows else "inputs_embeds"])]
    if mix_rows:
        nodes += [helper.make_node("ReduceMean", ["rows"], ["mean"], axes=[0], keepdims=1),
                  helper.make_node("Add", ["rows", "mean"], ["inputs_embeds"])]
    graph = helper.make_graph(
        nodes, "embed", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "t"])],
        [helper.make_tensor_value_info("inputs_embeds", TensorProto.FLOAT, ["b", "t", hidden])], initializer=[table])
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]), str(path))


def test_a_graph_that_mixes_rows_fails_the_check(bundle, tmp_path):
    m = json.loads((bundle / "manifest.json").read_text())
    d = m["dims"]
    for mix_rows in (False, True):
        path = tmp_path / f"mix-{mix_rows}.onnx"
        _embed(path, d["vocab_size"], d["hidden_size"], mix_rows)
        session = export._session(path)
        batch = {"input_ids": np.array([[5, 6], [7, 8], [9, 10]], np.int64)}
        items = [{"input_ids": batch["input_ids"][i:i + 1]} for i in range(3)]
        if mix_rows:
            with pytest.raises(ValueError, match="inputs_embeds of item 0 in a batch of 3 differs"):
                same_batched_and_alone(session, batch, items, "mix")
        else:
            same_batched_and_alone(session, batch, items, "plain")
    # the same graph in place of the bundle's embed_tokens.onnx: the bundle's check refuses it
    broken = tmp_path / "broken"
    shutil.copytree(bundle, broken)
    _embed(broken / "embed_tokens.onnx", d["vocab_size"], d["hidden_size"], mix_rows=True)
    with pytest.raises(ValueError, match="^embed_tokens: inputs_embeds of item 0 in a batch of 2"):
        check_batching(broken, m["precisions"]["fp32"]["graphs"], d, 2)
    check_batching(bundle, m["precisions"]["fp32"]["graphs"], d, 2)


def test_the_manifest_records_the_checked_batch(bundle, tmp_path, monkeypatch):
    m = json.loads((bundle / "manifest.json").read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(m)
    assert m["batching"] == {"max_batch": 3}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**m, "batching": {"max_batch": 0}}, SCHEMA)

    def not_called(*_):
        raise AssertionError("--max-batch 1 runs no batch check")

    monkeypatch.setattr(export, "check_batching", not_called)
    assert export.main(["--preset", "tiny", "--out", str(tmp_path / "one"), "--max-batch", "1"]) == 0
    assert json.loads((tmp_path / "one" / "manifest.json").read_text())["batching"] == {"max_batch": 1}
    with pytest.raises(ValueError, match="max_batch 0 must be at least 1"):
        export_bundle("tiny", "paper", tmp_path / "zero", max_batch=0, log=lambda _: None)
