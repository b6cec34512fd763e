"""The reference reads the task defaults from, and validates its result documents against, the JSON Schemas that
`npm run contracts` generates from contracts/*.ts (contracts/schema/)."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

from mvp_lm import contracts
from mvp_lm.postprocess import constants_from_config, geometry_for, normalize_task, postprocess_task

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "contracts" / "schema"
TASK_SCHEMA = json.loads((SCHEMA_DIR / "task.v1.json").read_text(encoding="utf-8"))


def _branch(task_type):
    return next(b for b in TASK_SCHEMA["oneOf"] if b["properties"]["type"]["const"] == task_type)


def _schema_defaults(task_type):
    return {k: p["default"] for k, p in _branch(task_type)["properties"].items() if "default" in p}


@pytest.fixture
def schema_dir(tmp_path, monkeypatch):
    """contracts.SCHEMA_DIR pointed at a copy of contracts/schema in tmp_path (caches cleared around the test)."""
    for f in SCHEMA_DIR.glob("*.json"):
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    caches = (contracts.load_schema, contracts._task_defaults, contracts._result_validator)
    for c in caches:
        c.cache_clear()
    monkeypatch.setattr(contracts, "SCHEMA_DIR", tmp_path)
    yield tmp_path
    for c in caches:
        c.cache_clear()


def test_the_package_finds_the_repository_schemas():
    assert contracts.SCHEMA_DIR == SCHEMA_DIR
    assert contracts.load_schema("task.v1.json") == TASK_SCHEMA


def test_task_defaults_are_the_schema_defaults():
    words, sentence = _schema_defaults("words"), _schema_defaults("sentence")
    # what contracts/task.ts says today; the point is that normalize_task follows the schema, checked below
    assert words == {"mode": "instance", "outputs": ["boxes", "masks"], "score_threshold": 0.3, "top_k": 100}
    assert sentence == {"mode": "single", "outputs": ["boxes", "masks"]}
    assert contracts.task_defaults("words") == words
    assert contracts.task_defaults("sentence") == sentence
    t = normalize_task({"type": "words", "phrases": ["cat", {"text": "sky", "stuff": True}, {"text": "dog"}]})
    assert {k: t[k] for k in words} == words
    assert t["phrases"] == [{"text": "cat", "stuff": False}, {"text": "sky", "stuff": True},
                            {"text": "dog", "stuff": False}]
    s = normalize_task({"type": "sentence", "sentence": "the cat"})
    assert {k: s[k] for k in sentence} == sentence and s["score_threshold"] is None
    given = normalize_task({"type": "words", "phrases": ["cat"], "mode": "panoptic", "top_k": 5, "outputs": ["boxes"]})
    assert (given["mode"], given["top_k"], given["outputs"]) == ("panoptic", 5, ["boxes"])


def test_defaults_follow_an_edited_schema_and_are_not_shared(schema_dir):
    schema = json.loads((schema_dir / "task.v1.json").read_text(encoding="utf-8"))
    words = next(b for b in schema["oneOf"] if b["properties"]["type"]["const"] == "words")
    words["properties"]["score_threshold"]["default"] = 0.55
    words["properties"]["top_k"]["default"] = 7
    (schema_dir / "task.v1.json").write_text(json.dumps(schema), encoding="utf-8")
    a = normalize_task({"type": "words", "phrases": ["cat"]})
    assert (a["score_threshold"], a["top_k"]) == (0.55, 7)
    a["outputs"].append("boxes")  # a task's lists are its own
    assert normalize_task({"type": "words", "phrases": ["cat"]})["outputs"] == ["boxes", "masks"]


def test_a_missing_schema_names_its_path(schema_dir):
    (schema_dir / "task.v1.json").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(schema_dir / "task.v1.json"))):
        normalize_task({"type": "words", "phrases": ["cat"]})


def test_an_unknown_task_type_is_refused():
    with pytest.raises(ValueError, match="neither 'words' nor 'sentence'"):
        normalize_task({"type": "caption"})


def _result():
    """A result document from the reference post-processing: instance words (box + RLE mask) and sentence multi."""
    c = constants_from_config({"panoptic_score_threshold": 0.1, "panoptic_overlap_threshold": 0.8,
                               "panoptic_mask_threshold": 0.5, "instance_top_k": 100,
                               "generalised_sentence_threshold": 0.6, "no_target_threshold": 0.5})
    geom = geometry_for((2, 2), 2)
    masks = np.full((3, 2, 2), -10.0, dtype=np.float32)
    masks[0, 0, :] = 10.0
    masks[1, 1, 1] = 10.0
    boxes = np.array([[0.5, 0.5, 0.5, 0.5], [0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5]], dtype=np.float32)
    words = {"pred_logits": np.log(np.array([[4, 1, 1], [1, 2, 1], [1, 1, 1]], dtype=np.float32)),
             "pred_masks": masks, "pred_boxes": boxes}
    sentence = {"pred_logits": np.array([[3.0], [-3.0], [2.0]], dtype=np.float32), "pred_masks": masks,
                "pred_boxes": boxes}
    tasks = [postprocess_task({"type": "words", "phrases": ["cat", "dog"]}, words, geom, c, 2, 0),
             postprocess_task({"type": "sentence", "sentence": "the cat", "mode": "multi"}, sentence, geom, c, 3, 1)]
    assert "box" in tasks[0]["detections"][0] and "mask" in tasks[0]["detections"][0]
    return {"schema_version": "1", "job_id": "case", "model": {"name": "tiny", "version": "0.1.0", "variant": "paper"},
            "provider": "cpu", "image": {"width": 2, "height": 2}, "caption": None, "tasks": tasks,
            "timings_ms": {"postprocess": 0.25}}


def test_a_reference_result_validates():
    doc = _result()
    assert contracts.validate_result(doc) is doc


@pytest.mark.parametrize("edit, where", [
    (lambda d: d.update(extra=True), "$"),
    (lambda d: d["tasks"][0]["detections"][0].update(label="cat"), "$.tasks[0].detections[0]"),
    (lambda d: d["tasks"][0]["detections"][0].update(box=[0.0, 1.0]), "$.tasks[0].detections[0].box"),
    # a numpy integer that leaked out of the post-processing is not a JSON integer
    (lambda d: d["tasks"][0]["detections"][0].update(area=np.int64(2)), "$.tasks[0].detections[0].area"),
    (lambda d: d.update(schema_version="2"), "$.schema_version"),
    (lambda d: d["timings_ms"].update(vision=-1.0), "$.timings_ms.vision"),
])
def test_an_invalid_result_is_refused(edit, where):
    doc = _result()
    edit(doc)
    with pytest.raises(contracts.ContractError, match=re.escape(f"result.v1.json: {where}: ")):
        contracts.validate_result(doc)
