"""The demo command's own logic, on small inputs: sentence thinning, log rows of a resumed or
killed run, the refine continuation's snapshots, the selection score, predictions from reference results, and the
slice comparison."""
import json

import numpy as np
import torch

from mvp_lm.demo import training
from mvp_lm.demo.targets import TARGETS, attainment, target_rows

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


def _metrics(values: dict[str, float]) -> dict:
    """mvp_lm.eval-shaped metrics holding `values` by target label."""
    out: dict = {}
    for label, path, _ in TARGETS:
        if label in values:
            node = out
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = values[label]
    return out


def test_attainment_caps_each_target_and_counts_a_missing_metric_as_zero():
    at_target = {label: float(t) for label, _, t in TARGETS}
    assert attainment(_metrics(at_target)) == 100.0
    # Beating PQ by 40 points does not make up for REC at half its target.
    surplus = at_target | {"PQ": 100.0, "REC Acc@0.5": 42.5}
    assert attainment(_metrics(surplus)) == 100 * (len(TARGETS) - 0.5) / len(TARGETS)
    missing = dict(at_target)
    del missing["gRES cIoU"]
    rows = target_rows(_metrics(missing))
    assert [r["value"] for r in rows if r["metric"] == "gRES cIoU"] == [None]
    assert attainment(_metrics(missing)) == 100 * (len(TARGETS) - 1) / len(TARGETS)


def test_refine_keeps_a_snapshot_per_chunk_and_resumes_without_redoing_them(tmp_path, monkeypatch):
    """run_refine's bookkeeping around mvp_lm.train (replaced here by a stand-in that advances the checkpoint to
    `stop_at` and puts the step into the weights)."""
    init, run = tmp_path / "init", tmp_path / "run"
    init.mkdir()
    torch.save({"model": {"w": torch.tensor(-1.0)}, "step": 7000}, init / "checkpoint.pt")
    calls = []

    def fake_stage(stage, data, images, run_dir, s, init_dir, continuation=None, stop_at=None):
        calls.append(stop_at)
        run_dir.mkdir(exist_ok=True)
        torch.save({"model": {"w": torch.tensor(float(stop_at))}, "step": stop_at}, run_dir / "checkpoint.pt")

    monkeypatch.setattr(training, "run_stage", fake_stage)
    sched = training.Schedule(refine_steps=2500, select_every=1000)
    paths = training.run_refine(tmp_path / "d", tmp_path / "i", run, sched, init)
    assert [p.name for p in paths] == ["step-0.pt", "step-1000.pt", "step-2000.pt", "step-2500.pt"]
    assert [float(training.weights_of_snapshot(p)["w"]) for p in paths] == [-1.0, 1000.0, 2000.0, 2500.0]
    assert calls == [1000, 2000, 2500]
    paths[2].unlink()  # as if killed between the chunk and its snapshot
    torch.save({"model": {"w": torch.tensor(2000.0)}, "step": 2000}, run / "checkpoint.pt")
    assert training.run_refine(tmp_path / "d", tmp_path / "i", run, sched, init) == paths
    assert calls == [1000, 2000, 2500, 2000]


def test_selection_table_lists_snapshots_in_their_order_and_marks_the_selected_one():
    from mvp_lm.demo.__main__ import selection_table

    def cand(name, value):
        return {"snapshot": name, "attainment": value, "targets": target_rows({"panoptic": {"PQ": value}})}
    selection = {"candidates": [cand("step-0.pt", 60.0), cand("step-2000.pt", 70.0), cand("step-10000.pt", 50.0)],
                 "selected": "step-2000.pt"}
    lines = selection_table(selection).splitlines()
    assert [line.split(" |")[0] for line in lines[2:]] == ["| step-0", "| step-2000 (selected)", "| step-10000"]
    assert lines[3].split(" | ")[1:3] == ["70.00", "70.0"] and lines[3].endswith("n/a |")
    assert selection_table(None) == ""


def test_select_snapshot_reports_only_these_snapshots_in_their_order_and_the_earliest_best(tmp_path, monkeypatch):
    from mvp_lm.demo import select
    from mvp_lm.export import file_entry

    monkeypatch.setattr(select, "ground_truth", lambda dev: {"panoptic": {"annotations": {}}})
    monkeypatch.setattr(select, "build_cases", lambda gt: [])
    snaps = []
    for k in (0, 2000, 4000):
        snaps.append(tmp_path / f"step-{k}.pt")
        snaps[-1].write_bytes(str(k).encode())
    sha = [file_entry(p)["sha256"] for p in snaps]
    # cached scores, out of order, plus one of a snapshot from another schedule (never scored again here)
    record = tmp_path / "selection.json"
    scores = {sha[2]: ("step-4000.pt", 81.0), "stale": ("step-1000.pt", 99.0), sha[0]: ("step-0.pt", 80.0),
              sha[1]: ("step-2000.pt", 81.0)}
    record.write_text(json.dumps({"dev_set": "dev", "candidates": {
        k: {"snapshot": name, "attainment": a, "targets": []} for k, (name, a) in scores.items()}}))
    best, selection = select.select_snapshot(snaps, tmp_path / "tok", tmp_path, tmp_path / "dev", record,
                                             tmp_path / "scratch")
    assert best == snaps[1] and selection["selected"] == "step-2000.pt"
    assert [c["snapshot"] for c in selection["candidates"]] == ["step-0.pt", "step-2000.pt", "step-4000.pt"]
    assert [c["sha256"] for c in selection["candidates"]] == sha
