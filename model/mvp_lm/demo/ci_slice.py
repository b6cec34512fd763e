"""The held-out CI slice: a few val images with their ground truth (same layout as `python -m mvp_lm.synth`, split
"val"), the reference cases that produce the predictions (`cases.json`, see .predict) and the metrics the shipped
bundle scored on them (`expected.json`). A check re-runs the cases through a pipeline (the Python reference here, the
TypeScript workers in CI), evaluates with mvp_lm.eval and compares: the served model is then the evaluated one."""
from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

from ..eval.evaluate import evaluate
from .predict import build_cases, ground_truth

SPLIT = "val"
TOLERANCE = 0.5  # metric points (metrics are percentages): a few boundary pixels, never a different model


def _subset_coco(src: Path, dst: Path, ids: set[int], ann_key: str = "annotations") -> None:
    data = json.loads(src.read_text())
    data["images"] = [im for im in data["images"] if im["id"] in ids]
    data[ann_key] = [a for a in data[ann_key] if a["image_id"] in ids]
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps(data))


def write_ground_truth(val_root: Path, out: Path, image_ids: list[int]) -> None:
    ids = set(image_ids)
    ann, out_ann = val_root / "annotations", out / "annotations"
    for name in (f"panoptic_{SPLIT}.json", f"instances_{SPLIT}.json", f"captions_{SPLIT}.json"):
        _subset_coco(ann / name, out_ann / name, ids)
    _subset_coco(val_root / "refcoco" / "instances.json", out / "refcoco" / "instances.json", ids)
    with open(val_root / "refcoco" / "refs(unc).p", "rb") as f:
        refs = [r for r in pickle.load(f) if r["image_id"] in ids]
    with open(out / "refcoco" / "refs(unc).p", "wb") as f:
        pickle.dump(refs, f, protocol=4)
    grefs = [r for r in json.loads((val_root / "grefcoco" / "grefs(unc).json").read_text()) if r["image_id"] in ids]
    (out / "grefcoco").mkdir(parents=True, exist_ok=True)
    (out / "grefcoco" / "grefs(unc).json").write_text(json.dumps(grefs))
    panoptic = json.loads((out_ann / f"panoptic_{SPLIT}.json").read_text())
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out_ann / f"panoptic_{SPLIT}").mkdir(parents=True, exist_ok=True)
    for im, pa in zip(panoptic["images"], panoptic["annotations"]):
        shutil.copyfile(val_root / "images" / im["file_name"], out / "images" / im["file_name"])
        shutil.copyfile(ann / f"panoptic_{SPLIT}" / pa["file_name"], out_ann / f"panoptic_{SPLIT}" / pa["file_name"])


def write_slice(val_root: Path, out: Path, image_ids: list[int], predictions: list[dict], bundle_manifest: dict) -> dict:
    """Ground truth, cases and the metrics of `predictions` (the full held-out run's) restricted to the slice."""
    if out.exists():
        shutil.rmtree(out)
    write_ground_truth(val_root, out, image_ids)
    gt = ground_truth(out, SPLIT)
    cases = build_cases(gt, image_ids)
    (out / "cases.json").write_text(json.dumps(cases, indent=1) + "\n")
    ids = set(image_ids)
    metrics = evaluate(gt, [p for p in predictions if p["image_id"] in ids])
    expected = {"bundle": {k: bundle_manifest[k] for k in ("name", "version", "variant")},
                "checkpoint_sha256": bundle_manifest["weights"].get("checkpoint_sha256"),
                "image_ids": image_ids, "tolerance": TOLERANCE, "metrics": metrics}
    (out / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    return expected


def flatten(metrics: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float)):
            out[f"{prefix}{k}"] = float(v)
    return out


def compare(expected: dict, got: dict, tolerance: float) -> list[str]:
    """Differences beyond the tolerance, one line each (empty: the metrics match)."""
    e, g = flatten(expected), flatten(got)
    problems = [f"{k}: missing" for k in sorted(set(e) - set(g))]
    problems += [f"{k}: expected {e[k]:.4f}, got {g[k]:.4f}" for k in sorted(set(e) & set(g))
                 if abs(e[k] - g[k]) > tolerance]
    return problems
