"""python -m mvp_lm.calibrate --bundle DIR --data ROOT [--split train]: set the post-processing constants of
generalised (gRefCOCO) sentences from data and rewrite the bundle's manifest.

A bundle's defaults know nothing of its weights (config comment: "must be calibrated on no-target data"). This runs
the bundle (onnx backend, the graphs the workers run) on the split's gRefCOCO sentences and picks, in this order:

  no_target_threshold             "no target" when the best sigmoid(score) is below it: the threshold (midpoint
                                  between neighbouring scores) with the best balanced accuracy,
                                  (no-target accuracy + target accuracy) / 2;
  generalised_sentence_threshold  the union of the masks of the queries scoring above it: the candidate with the
                                  best gRES cIoU (Σ intersection / Σ union, at the original size) given the first.

The answer of every candidate is computed exactly as `postprocess.sentence_multi` answers, from the same per-query
masks. Calibrate on training or validation data, never on the split you report. The evidence goes to
`calibration.json` beside the manifest, listed with its sha256 in the manifest's `files`.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .eval.gt import GroundTruth, GTPaths
from .postprocess import geometry_for, masks_to_original
from .reference import Bundle, load_image, run_case

RECORD = "calibration.json"


@dataclass
class Sentences:
    """Per sentence: the best score, whether it has a target, and for n = 1..K the intersection and union with the
    target of the union of the n best-scoring queries' masks (`postprocess.sentence_multi`'s answer), plus the
    sorted scores (to count the queries above a threshold) and the target's area."""
    best: np.ndarray  # [N]
    has_target: np.ndarray  # [N] bool
    sorted_scores: np.ndarray  # [N, K], descending
    inter: np.ndarray  # [N, K]
    union: np.ndarray  # [N, K]
    target_area: np.ndarray  # [N]


def collect(bundle_dir: Path, root: Path, split: str, max_images: int, progress: bool = True) -> Sentences:
    gt = GroundTruth(GTPaths.for_dir(root, split), split)
    by_image: dict[int, list[dict]] = {}
    for sent_id, r in sorted(gt.grefs.items()):
        if r["image_id"] in by_image or len(by_image) < max_images:
            by_image.setdefault(r["image_id"], []).append(r)
    if not by_image:
        raise ValueError(f"{root}: no gRefCOCO sentences of split {split!r}")
    bundle = Bundle(bundle_dir, "onnx")
    num_k, mask_t = bundle.manifest["dims"]["num_queries"], bundle.manifest["postprocess"]["mask_logit_threshold"]
    rows: list[tuple] = []
    for iid, refs in tqdm(sorted(by_image.items()), desc="calibrate", unit="img", disable=not progress):
        image = gt.ref_images[iid]
        tasks = [{"type": "sentence", "sentence": r["sent"], "mode": "multi"} for r in refs]
        trace = run_case(bundle, load_image(root / "images" / image["file_name"]), tasks, False,
                         full_array_limit=1 << 20)["trace"]
        g = trace["geometry"]
        geom = geometry_for(tuple(g["orig_hw"]), g["image_size"])
        for t, r in zip(trace["tasks"], refs):
            scores = 1 / (1 + np.exp(-np.asarray(t["raw"]["pred_logits"]["values"], np.float32)[0, :num_k, 0]))
            order = np.argsort(-scores, kind="stable")
            masks = (masks_to_original(np.asarray(t["raw"]["pred_masks"]["values"], np.float32)[0, order], geom)
                     > mask_t).numpy()
            prefix = np.logical_or.accumulate(masks, axis=0)
            target = r["mask"]
            rows.append((scores[order], target.any(), (prefix & target).sum((1, 2)), (prefix | target).sum((1, 2)),
                         target.sum()))
    s, has, inter, union, area = zip(*rows)
    return Sentences(np.array([x[0] for x in s]), np.array(has), np.array(s), np.array(inter), np.array(union),
                     np.array(area))


def pick_no_target(best: np.ndarray, has_target: np.ndarray) -> tuple[float, float]:
    """Threshold (midpoint between neighbouring scores) with the best balanced accuracy, and that accuracy."""
    s = np.unique(best)
    candidates = np.concatenate([[0.0], (s[:-1] + s[1:]) / 2, [1.0]])
    best_t, best_acc = 0.5, -1.0
    for t in candidates:
        no_target_acc = float(np.mean(best[~has_target] < t)) if (~has_target).any() else 1.0
        target_acc = float(np.mean(best[has_target] >= t)) if has_target.any() else 1.0
        acc = (no_target_acc + target_acc) / 2
        if acc > best_acc:
            best_t, best_acc = float(t), acc
    return best_t, best_acc


def ciou(d: Sentences, no_target: float, threshold: float) -> float:
    """gRES cIoU of the answers `postprocess.sentence_multi` gives with these two constants."""
    answered = d.best >= no_target
    n = np.maximum((d.sorted_scores > threshold).sum(1), 1)  # at least the best query
    rows = np.arange(len(n))
    inter = np.where(answered, d.inter[rows, n - 1], 0)
    union = np.where(answered, d.union[rows, n - 1], d.target_area)
    return float(inter.sum() / max(union.sum(), 1))


def pick_union_threshold(d: Sentences, no_target: float) -> tuple[float, float]:
    """The score threshold (midpoint between neighbouring scores) with the best cIoU, and that cIoU."""
    s = np.unique(d.sorted_scores)
    candidates = np.concatenate([(s[:-1] + s[1:]) / 2, [1.0]])
    values = [ciou(d, no_target, float(t)) for t in candidates]
    i = int(np.argmax(values))
    return float(candidates[i]), values[i]


def calibrate(bundle_dir: Path, root: Path, split: str = "train", max_images: int = 200,
              progress: bool = True, log=print) -> dict:
    """Sets both constants in the manifest (its `postprocess` and `config.postprocess`), writes calibration.json
    and lists it in `files`; returns the record."""
    from .export import file_entry
    manifest_path = bundle_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    d = collect(bundle_dir, root, split, max_images, progress)
    old = {k: manifest["postprocess"][k] for k in ("no_target_threshold", "generalised_sentence_threshold")}
    no_target, balanced = pick_no_target(d.best, d.has_target)
    union_t, union_ciou = pick_union_threshold(d, no_target)
    record = {
        "checkpoint_sha256": manifest["weights"].get("checkpoint_sha256"),
        "source": f"gRefCOCO sentences of split {split!r} of {root} (first {max_images} images)",
        "sentences": int(len(d.best)), "without_target": int((~d.has_target).sum()),
        "no_target_threshold": no_target, "balanced_accuracy": balanced,
        "generalised_sentence_threshold": union_t,
        # the union step alone, both at the calibrated no-target threshold: that threshold trades cIoU for balanced
        # accuracy, so a cIoU "before" at both defaults would mix the two steps
        "cIoU": {"before": ciou(d, no_target, old["generalised_sentence_threshold"]), "after": union_ciou},
        "before": old,
    }
    for section in (manifest["postprocess"], manifest["config"]["postprocess"]):
        section.update(no_target_threshold=no_target, generalised_sentence_threshold=union_t)
    (bundle_dir / RECORD).write_text(json.dumps(record, indent=1) + "\n")
    manifest["files"][RECORD] = file_entry(bundle_dir / RECORD)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    log(f"[calibrate] {record['sentences']} sentences ({record['without_target']} without target): "
        f"no_target_threshold {old['no_target_threshold']:.4f} -> {no_target:.4f} (balanced accuracy "
        f"{100 * balanced:.1f}); generalised_sentence_threshold {old['generalised_sentence_threshold']:.4f} -> "
        f"{union_t:.4f} (cIoU at the new no-target threshold {100 * record['cIoU']['before']:.1f} -> "
        f"{100 * union_ciou:.1f})")
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mvp_lm.calibrate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", required=True, help="bundle directory (its manifest.json is rewritten)")
    p.add_argument("--data", required=True,
                   help="dataset root in the standard layout (grefcoco/grefs(unc).json, refcoco/instances.json, images/)")
    p.add_argument("--split", default="train", help="the split to calibrate on (never the one you report)")
    p.add_argument("--max-images", type=int, default=200, help="images of the split to use")
    a = p.parse_args(argv)
    calibrate(Path(a.bundle), Path(a.data), a.split, a.max_images, log=lambda m: print(m, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
