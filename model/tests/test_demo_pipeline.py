"""The demo command's own logic, on small inputs: sentence thinning, log rows of a resumed or
killed run, predictions from reference results, and the slice comparison."""
import json

import numpy as np

from mvp_lm.demo.ci_slice import compare, flatten
from mvp_lm.demo.data import thin_per_image
from mvp_lm.demo.plots import read_log
from mvp_lm.demo.predict import merge_results


def test_thin_keeps_at_most_n_records_per_image_deterministically(tmp_path):
    path = tmp_path / "refs.jsonl"
    lines = [json.dumps({"id": f"r{i}", "image": f"images/{i % 3}.png"}) for i in range(10)]  # 4, 3, 3 per image
    path.write_text("\n".join(lines) + "\n")
    thin_per_image(path, 2, seed=7)
    first = path.read_text()
    kept = [json.loads(line) for line in first.splitlines()]
    assert len(kept) == 6
    assert all(sum(r["image"] == f"images/{k}.png" for r in kept) == 2 for k in range(3))
    assert [r["id"] for r in kept] == sorted((r["id"] for r in kept), key=lambda s: int(s[1:]))  # file order
    path.write_text("\n".join(lines) + "\n")
    thin_per_image(path, 2, seed=7)
    assert path.read_text() == first


def test_read_log_keeps_checkpointed_steps_and_the_rerun_rows(tmp_path):
    rows = [{"step": s, "loss": 1.0} for s in (1, 2, 3, 4)] + [{"step": s, "loss": 2.0} for s in (3, 4, 5)]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = read_log(tmp_path, last_step=4)
    assert [(r["step"], r["loss"]) for r in got] == [(1, 1.0), (2, 1.0), (3, 2.0), (4, 2.0)]


def test_merge_results_rebuilds_one_prediction_per_image_with_sent_ids():
    cases = [{"image_id": 5, "caption": True, "sent_ids": [None]},
             {"image_id": 5, "caption": False, "sent_ids": [None, 41]}]
    results = [{"caption": "A red star.", "tasks": [{"task_index": 0, "mode": "panoptic"}]},
               {"caption": None, "tasks": [{"task_index": 0, "mode": "semantic"}, {"task_index": 1, "mode": "single"}]}]
    (entry,) = merge_results(cases, results)
    assert entry["image_id"] == 5 and entry["caption"] == "A red star."
    assert [(t["task_index"], t["mode"], t.get("sent_id")) for t in entry["tasks"]] == \
        [(0, "panoptic", None), (1, "semantic", None), (2, "single", 41)]


def test_compare_reports_missing_and_out_of_tolerance_metrics():
    expected = {"panoptic": {"PQ": 30.0, "SQ": 70.0}, "refcoco": {"cIoU": 20.0}}
    assert compare(expected, {"panoptic": {"PQ": 30.4, "SQ": 70.0}, "refcoco": {"cIoU": 20.0}}, 0.5) == []
    problems = compare(expected, {"panoptic": {"PQ": 31.0, "SQ": 70.0}}, 0.5)
    assert problems == ["refcoco.cIoU: missing", "panoptic.PQ: expected 30.0000, got 31.0000"]
    assert flatten({"a": {"b": 1, "c": "x"}}) == {"a.b": 1.0}
