"""Calibration of the "no target" answer of generalised (gRefCOCO) sentences on the *training* split.

The post-processing answers "no target" when the best query score sigmoid(logit) is below the manifest's
`postprocess.no_target_threshold` (config comment: "must be calibrated on no-target data"). The default 0.5 knows
nothing of a given model, so after training we pick the threshold that maximises the balanced accuracy
(no-target accuracy + target accuracy) / 2 on the train split's gRefCOCO sentences (never on the held-out split),
and write it into the exported manifest (the manifest is not among the hashed files)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..data.convert.grefcoco import target_ann_ids
from ..data.convert.common import load_json
from ..reference import Bundle, load_image, run_case
from .log import step


def best_scores(bundle_dir: Path, synth: Path, max_images: int) -> tuple[np.ndarray, np.ndarray]:
    """(best sigmoid score, has-target) per train gRefCOCO sentence of the first `max_images` images."""
    grefs = load_json(synth / "grefcoco" / "grefs(unc).json")
    images = {im["id"]: im for im in load_json(synth / "refcoco" / "instances.json")["images"]}
    by_image: dict[int, list[tuple[str, bool]]] = {}
    path = synth / "grefcoco" / "grefs(unc).json"
    for i, r in enumerate(grefs):
        if r["split"] == "train" and (r["image_id"] in by_image or len(by_image) < max_images):
            has_target = bool(target_ann_ids(r, path, f"refs[{i}]"))
            by_image.setdefault(r["image_id"], []).extend((s["sent"], has_target) for s in r["sentences"])
    bundle = Bundle(bundle_dir, "onnx")
    num_k = bundle.manifest["dims"]["num_queries"]
    scores, targets = [], []
    for iid, sents in tqdm(sorted(by_image.items()), desc="calibrate", unit="img"):
        tasks = [{"type": "sentence", "sentence": s, "mode": "multi"} for s, _ in sents]
        trace = run_case(bundle, load_image(synth / "images" / images[iid]["file_name"]), tasks, False,
                         full_array_limit=10_000)["trace"]
        for t, (_, has_target) in zip(trace["tasks"], sents):
            logits = np.asarray(t["raw"]["pred_logits"]["values"])[0, :num_k, 0]
            scores.append(float(1 / (1 + np.exp(-logits.max()))))
            targets.append(has_target)
    return np.asarray(scores), np.asarray(targets)


def pick_threshold(scores: np.ndarray, has_target: np.ndarray) -> tuple[float, float]:
    """Threshold (midpoint between neighbouring scores) with the best balanced accuracy, and that accuracy."""
    s = np.unique(scores)
    candidates = np.concatenate([[0.0], (s[:-1] + s[1:]) / 2, [1.0]])
    best_t, best_acc = 0.5, -1.0
    for t in candidates:
        no_target_acc = float(np.mean(scores[~has_target] < t)) if (~has_target).any() else 1.0
        target_acc = float(np.mean(scores[has_target] >= t)) if has_target.any() else 1.0
        acc = (no_target_acc + target_acc) / 2
        if acc > best_acc:
            best_t, best_acc = float(t), acc
    return best_t, best_acc


def calibrate_no_target(manifest: dict, bundle_dir: Path, synth_train: Path, max_images: int = 200) -> dict:
    """Write the calibrated threshold into the manifest; the evidence goes to calibration.json beside it (the
    manifest schema has no place for it)."""
    manifest_path, record_path = bundle_dir / "manifest.json", bundle_dir / "calibration.json"
    sha = manifest["weights"]["checkpoint_sha256"]
    if record_path.exists() and json.loads(record_path.read_text())["checkpoint_sha256"] == sha:
        step(f"calibration: {record_path} matches these weights, skipped")
        return manifest
    scores, has_target = best_scores(bundle_dir, synth_train, max_images)
    threshold, acc = pick_threshold(scores, has_target)
    step(f"calibration: no_target_threshold {threshold:.4f} (balanced accuracy {100 * acc:.1f} on "
         f"{len(scores)} train sentences, {int((~has_target).sum())} without target)")
    manifest["postprocess"]["no_target_threshold"] = threshold
    manifest["config"]["postprocess"]["no_target_threshold"] = threshold
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    record_path.write_text(json.dumps({
        "checkpoint_sha256": sha, "no_target_threshold": threshold, "balanced_accuracy": acc,
        "sentences": len(scores), "without_target": int((~has_target).sum()),
        "source": f"gRefCOCO sentences of the train split of {synth_train} (first {max_images} images)"},
        indent=1) + "\n")
    return manifest
