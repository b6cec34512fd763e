"""Checkpoint selection: every snapshot of the refine continuation is exported and calibrated as the shipped bundle
would be, run on a dev split of its own (synthetic seed 3; the held-out split is seed 2 and never takes part) and
ranked by `targets.attainment`; the demo ships the best. The scores are kept in RUN/selection.json (per snapshot,
under its SHA-256), so an interrupted selection resumes and a rerun only scores new snapshots."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..eval.evaluate import evaluate
from ..export import file_entry
from .bundle import export_calibrated
from .data import make_synth
from .log import step
from .predict import build_cases, ground_truth, predict, write_json
from .targets import attainment, shown, target_rows
from .training import export_weights, weights_of_snapshot

DEV_SEED, DEV_IMAGES = 3, 100


def make_dev(work: Path, num_images: int = DEV_IMAGES) -> Path:
    return make_synth(work / "synth-dev", DEV_SEED, num_images, "val")


def select_snapshot(snapshots: list[Path], tokenizer: Path, train_set: Path, dev_set: Path, record: Path,
                    scratch: Path) -> tuple[Path, dict]:
    """The best snapshot by dev attainment (the earliest on a tie) and the selection: these snapshots' scores in
    their order (the record file keeps every score it ever cached, snapshots of other schedules included)."""
    doc = json.loads(record.read_text()) if record.exists() else {"dev_set": str(dev_set), "candidates": {}}
    gt = ground_truth(dev_set)
    cases = build_cases(gt)
    shas = [file_entry(snap)["sha256"] for snap in snapshots]
    for snap, sha in zip(snapshots, shas):
        if sha in doc["candidates"]:
            continue
        step(f"select: scoring {snap.name} on the dev split ({len(gt.panoptic['annotations'])} images)")
        weights = export_weights(weights_of_snapshot(snap), tokenizer,
                                 {"snapshot": str(snap)}, scratch / "weights")
        export_calibrated(weights, scratch / "bundle", train_set, quiet=True)
        preds = predict(scratch / "bundle", dev_set, cases, progress=False)
        metrics = evaluate(gt, preds, str(write_json(scratch / "pred-dev.json", preds)))
        doc["candidates"][sha] = {"snapshot": snap.name, "attainment": round(attainment(metrics), 2),
                                  "targets": target_rows(metrics),
                                  "rec_by_kind": {k: v["Acc@0.5"] for k, v in
                                                  metrics.get("refcoco", {}).get("by_kind", {}).items()}}
        step(f"select: {snap.name} attainment {doc['candidates'][sha]['attainment']:.2f} ("
             + ", ".join(f"{r['metric']} {shown(r['value'])}" for r in doc["candidates"][sha]["targets"]) + ")")
        record.write_text(json.dumps(doc, indent=1) + "\n")
    shutil.rmtree(scratch, ignore_errors=True)
    candidates = [{"sha256": sha, **doc["candidates"][sha]} for sha in shas]
    # max keeps the first of equals: the earliest snapshot
    best = max(range(len(snapshots)), key=lambda i: candidates[i]["attainment"])
    step(f"select: {snapshots[best].name} (dev attainment {candidates[best]['attainment']:.2f})")
    return snapshots[best], {"dev_set": doc["dev_set"], "candidates": candidates, "selected": snapshots[best].name}
