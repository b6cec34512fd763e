"""python -m mvp_lm.demo [--work .data/demo] [--until STEP]: reproduce the shipped demo model end to end.

Steps (data, train and eval are skipped when their outputs exist, so an interrupted run continues where it stopped;
export and calibration, under a minute, always run):
  data    synthetic train set (seed 1), held-out set (seed 2, split "val") and dev set (seed 3, split "val", for
          the checkpoint selection); SFT files from the converters
  train   stage 1, stage 2, then stage 2 continued on every train sentence, then once more in snapshots, of the
          tiny config, paper variant (mvp_lm.train; resumes from the last checkpoint)
  export  each snapshot of the last continuation exported, calibrated and scored on the dev set (select.py; scores
          are kept, so only new snapshots are scored); the best one's weights -> models/demo (mvp_lm.export), the
          generalised-sentence constants calibrated on the train split (mvp_lm.calibrate)
  eval    held-out predictions of the exported bundle (mvp_lm.reference, onnx backend) -> models/demo/metrics.json
  docs    docs/loss-curve.png, docs/demo-overlay.png, models/demo/ci-slice/
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..eval.evaluate import evaluate
from ..eval.referring import box_iou
from ..export import file_entry
from ..reference import load_image
from .bundle import export_calibrated
from .ci_slice import write_slice
from .data import make_sft, make_synth
from .log import step
from .plots import ReferringExample, loss_curve, overlay, read_log
from .predict import build_cases, ground_truth, predict, write_json
from .select import make_dev, select_snapshot
from .targets import shown, target_rows
from .training import (Schedule, checkpoint_step, export_weights, run_refine, run_stage, weights_of_run,
                       weights_of_snapshot)

STEPS = ("data", "train", "export", "eval", "docs")
SLICE_IMAGES = 16


def write_metrics(out: Path, held_out: dict, manifest: dict, runs: list[Path], val_images: int,
                  selection: dict | None) -> dict:
    training = {}
    for run in runs:
        rows = read_log(run, checkpoint_step(run))
        opts = json.loads((run / "options.json").read_text())
        training[run.name] = {"steps": rows[-1]["step"] if rows else 0, "batch_size": opts["batch_size"],
                              "lr": opts["lr"], "response_mix": opts["response_mix"],
                              "step_seconds": round(sum(r["sec"] for r in rows), 1),
                              "final_loss_mean_last_20": round(sum(r["loss"] for r in rows[-20:]) / max(len(rows[-20:]), 1), 4)}
    doc = {"model": {k: manifest[k] for k in ("name", "version", "variant")},
           "checkpoint_sha256": manifest["weights"]["checkpoint_sha256"],
           "held_out": {"dataset": "python -m mvp_lm.synth --seed 2 --size 128", "split": "val", "images": val_images,
                        **held_out},
           "targets": target_rows(held_out), "training": training, "selection": selection,
           "reproduce": "python -m mvp_lm.demo  (see models/demo/README.md)"}
    out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return doc


def targets_table(metrics: dict) -> str:
    """The README's table (markdown)."""
    rows = ["| metric (held-out, 500 images) | value | target | reached |", "|---|---|---|---|"]
    for t in metrics["targets"]:
        rows.append(f"| {t['metric']} | {shown(t['value'])} | ≥ {t['target']} | {'yes' if t['reached'] else 'no'} |")
    return "\n".join(rows)


def kinds_table(metrics: dict) -> str:
    """REC Acc@0.5 by expression kind next to picking one of the image's objects at random (markdown)."""
    rows = ["| expression kind | share | REC Acc@0.5 | random object |", "|---|---|---|---|"]
    kinds = metrics["held_out"].get("refcoco", {}).get("by_kind", {})
    total = sum(k["num"] for k in kinds.values()) or 1
    for kind, k in kinds.items():
        rows.append(f"| {kind} | {100 * k['num'] / total:.0f} % | {k['Acc@0.5']:.1f} | {k['random_Acc@0.5']:.1f} |")
    return "\n".join(rows)


def selection_table(selection: dict | None) -> str:
    """Every snapshot's dev-split scores in step order, the selected one marked (markdown); empty without a
    selection."""
    if not selection:
        return ""
    labels = [r["metric"] for r in selection["candidates"][0]["targets"]]
    rows = ["| snapshot (dev split) | attainment | " + " | ".join(labels) + " |", "|---" * (len(labels) + 2) + "|"]
    for c in selection["candidates"]:
        mark = " (selected)" if c["snapshot"] == selection["selected"] else ""
        values = " | ".join(shown(r["value"]) for r in c["targets"])
        rows.append(f"| {c['snapshot'].removesuffix('.pt')}{mark} | {c['attainment']:.2f} | {values} |")
    return "\n".join(rows)


def picture(gt, val_set: Path, preds: list[dict], slice_ids: list[int], out: Path) -> Path:
    """The README picture: the first slice image's panoptic result and caption, then the first single-target
    sentence of the slice (in image order) that the model gets right and the first it gets wrong."""
    def rgb(image_id: int):
        return load_image(val_set / "images" / gt.panoptic["images"][image_id]["file_name"])

    by_id = {e["image_id"]: e for e in preds}
    first = by_id[slice_ids[0]]
    examples: dict[bool, ReferringExample] = {}
    for iid in slice_ids:
        for t in (t for t in by_id[iid]["tasks"] if t["mode"] == "single"):
            target = gt.refs[t["sent_id"]]
            best = max(t["detections"], key=lambda d: d["score"], default=None)
            iou = box_iou(best["box"], target["box"]) if best else 0.0
            ok = iou >= 0.5
            if ok not in examples:
                examples[ok] = ReferringExample(rgb(iid), target["sent"], t, target["box"],
                                                f"{'success' if ok else 'failure'} (box IoU {iou:.2f})")
    pan = next(t for t in first["tasks"] if t["mode"] == "panoptic")
    return overlay(rgb(slice_ids[0]), pan, first["caption"], [examples[k] for k in (True, False) if k in examples], out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mvp_lm.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default=".data/demo", help="synthetic sets, SFT data, training runs, predictions")
    p.add_argument("--out", default="models/demo", help="the shipped bundle, metrics.json and ci-slice/")
    p.add_argument("--docs", default="docs", help="where the README pictures go")
    p.add_argument("--train-images", type=int, default=2000, help="train set size (seed 1)")
    p.add_argument("--val-images", type=int, default=500, help="held-out set size (seed 2)")
    p.add_argument("--stage2-steps", type=int, default=Schedule.stage2_steps,
                   help="stage-2 schedule length (the default reproduces the shipped model)")
    p.add_argument("--stage2-stop", type=int, default=Schedule.stage2_stop,
                   help="end stage 2 at this step of its schedule (the default reproduces the shipped model)")
    p.add_argument("--sentences-steps", type=int, default=Schedule.sentences_steps,
                   help="steps of the sentence-heavy continuation of stage 2, 0 = none (the default reproduces the "
                        "shipped model)")
    p.add_argument("--refine-steps", type=int, default=Schedule.refine_steps,
                   help="steps of the last continuation, whose snapshots the dev split selects from, 0 = none (the "
                        "default reproduces the shipped model)")
    p.add_argument("--response-mix", type=float, default=Schedule.response_mix,
                   help="share of stage-2 samples answering with the caption (the default reproduces the shipped model)")
    p.add_argument("--until", choices=STEPS, default=STEPS[-1], help="stop after this step")
    a = p.parse_args(argv)
    work, out, docs = Path(a.work), Path(a.out), Path(a.docs)
    started = time.time()
    train_set = make_synth(work / "synth-train", 1, a.train_images, "train")
    val_set = make_synth(work / "synth-val", 2, a.val_images, "val")
    sft = make_sft(train_set, work / "sft")
    sft_sentences = make_sft(train_set, work / "sft-sentences", sentences_per_image=None)
    dev_set = make_dev(work)
    if a.until == "data":
        return 0
    sched = Schedule(stage2_steps=a.stage2_steps, stage2_stop=a.stage2_stop, response_mix=a.response_mix,
                     sentences_steps=a.sentences_steps, refine_steps=a.refine_steps)
    runs = [work / "run-stage1", work / "run-stage2"]
    run_stage(1, sft, train_set, runs[0], sched, None)
    run_stage(2, sft, train_set, runs[1], sched, runs[0])
    if sched.sentences_steps:
        runs.append(work / "run-sentences")
        run_stage(2, sft_sentences, train_set, runs[2], sched, runs[1], "sentences")
    snapshots = []
    if sched.refine_steps:
        runs.append(work / "run-refine")
        snapshots = run_refine(sft_sentences, train_set, runs[-1], sched, runs[-2])
    if a.until == "train":
        return 0
    selection = None
    if snapshots:
        best, selection = select_snapshot(snapshots, runs[-1] / "tokenizer.json", train_set, dev_set,
                                          runs[-1] / "selection.json", work / "candidate")
        weights = export_weights(weights_of_snapshot(best), runs[-1] / "tokenizer.json",
                                 {"snapshot": str(best)}, work / "final")
    else:
        weights = export_weights(weights_of_run(runs[-1]), runs[-1] / "tokenizer.json", {"run": str(runs[-1])},
                                 work / "final")
    manifest = export_calibrated(weights, out, train_set)
    if a.until == "export":
        return 0
    gt = ground_truth(val_set)
    # The manifest names every graph's SHA-256 and every calibrated constant: its hash identifies the bundle.
    pred_path = work / f"pred-val-{file_entry(out / 'manifest.json')['sha256'][:12]}.json"
    if pred_path.exists():
        step(f"predictions {pred_path} exist, skipped")
        preds = json.loads(pred_path.read_text())
    else:
        step(f"predict: {out} (onnx) on {len(gt.panoptic['annotations'])} held-out images")
        preds = predict(out, val_set, build_cases(gt))
        write_json(pred_path, preds)
    step("evaluate")
    metrics = write_metrics(out / "metrics.json", evaluate(gt, preds, str(pred_path)), manifest, runs, a.val_images,
                            selection)
    print(targets_table(metrics), kinds_table(metrics), selection_table(selection), sep="\n\n", flush=True)
    if a.until == "eval":
        return 0
    labels = ("stage 1", "stage 2", "sentence continuation", "refine continuation")
    logs = [(label, read_log(run, checkpoint_step(run))) for label, run in zip(labels, runs)]
    step(f"loss curve -> {loss_curve(logs, docs / 'loss-curve.png')}")
    slice_ids = sorted(gt.panoptic["annotations"])[:SLICE_IMAGES]
    step(f"overlay -> {picture(gt, val_set, preds, slice_ids, docs / 'demo-overlay.png')}")
    write_slice(val_set, out / "ci-slice", slice_ids, preds, manifest)
    step(f"CI slice -> {out / 'ci-slice'} ({len(slice_ids)} images); done in {time.time() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
