"""Predictions of an exported bundle on a synthetic split, through the reference pipeline (mvp_lm.reference), in
the prediction-file format of mvp_lm.eval.

Per image: the three word tasks over the whole category vocabulary (panoptic, semantic, instance) and one sentence
task per RefCOCO (single) and gRefCOCO (multi) sentence. They are written as two reference *cases* per image: the
panoptic task with `caption: true` (the caption is generated once per image) and the other tasks with
`caption: false`, so the metrics cover both response forms. The cases carry `image_id` and, per task, `sent_ids`
(null for word tasks), which is all that is needed to turn results back into predictions (`merge_results`).
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from tqdm import tqdm

from ..eval.gt import GroundTruth, GTPaths
from ..reference import Bundle, load_image, run_case

# AP needs the low-scoring detections too (COCO evaluates up to 100 per image); the API default (0.3) would cut them.
INSTANCE_SCORE_THRESHOLD = 0.05


def ground_truth(root: Path, split: str = "val") -> GroundTruth:
    return GroundTruth(GTPaths.for_dir(root, split), split)


def build_cases(gt: GroundTruth, image_ids: list[int] | None = None) -> list[dict]:
    """Reference cases (image paths relative to the ground-truth root) for the images, in id order."""
    cats = sorted(gt.panoptic["categories"].values(), key=lambda c: c["id"])
    every = [{"text": c["name"], "stuff": not c.get("isthing", 1)} for c in cats]
    things = [{"text": c["name"], "stuff": False} for c in cats if c.get("isthing", 1)]
    sentences: dict[int, list[tuple[dict, int]]] = defaultdict(list)
    for mode, refs in (("single", gt.refs), ("multi", gt.grefs)):
        for sent_id, r in sorted(refs.items()):
            sentences[r["image_id"]].append(({"type": "sentence", "sentence": r["sent"], "mode": mode}, sent_id))
    cases = []
    for iid in sorted(gt.panoptic["annotations"]) if image_ids is None else image_ids:
        image = f"images/{gt.panoptic['images'][iid]['file_name']}"
        rest = [({"type": "words", "phrases": every, "mode": "semantic"}, None),
                ({"type": "words", "phrases": things, "mode": "instance",
                  "score_threshold": INSTANCE_SCORE_THRESHOLD}, None)] + sentences[iid]
        cases.append({"id": f"image-{iid}-caption", "image": image, "image_id": iid, "caption": True,
                      "tasks": [{"type": "words", "phrases": every, "mode": "panoptic"}], "sent_ids": [None]})
        cases.append({"id": f"image-{iid}", "image": image, "image_id": iid, "caption": False,
                      "tasks": [t for t, _ in rest], "sent_ids": [s for _, s in rest]})
    return cases


def merge_results(cases: list[dict], results: list[dict]) -> list[dict]:
    """Per-case PerceptionResults (contracts/result.ts) → one prediction entry per image."""
    by_image: dict[int, dict] = {}
    for case, res in zip(cases, results, strict=True):
        e = by_image.setdefault(case["image_id"], {"image_id": case["image_id"], "caption": None, "tasks": []})
        if case["caption"]:
            e["caption"] = res["caption"]
        for t, sent_id in zip(res["tasks"], case["sent_ids"], strict=True):
            e["tasks"].append({**t, "task_index": len(e["tasks"]),
                               **({"sent_id": sent_id} if sent_id is not None else {})})
    return [by_image[k] for k in sorted(by_image)]


def predict(bundle_dir: Path, gt_root: Path, cases: list[dict], progress: bool = True) -> list[dict]:
    """Run the bundle (onnx backend) on the cases and return the predictions."""
    bundle = Bundle(bundle_dir, "onnx")
    results = []
    stage_ms: dict[str, float] = defaultdict(float)
    for case in tqdm(cases, desc="predict", unit="case", disable=not progress):
        res = run_case(bundle, load_image(gt_root / case["image"]), case["tasks"], case["caption"], case["id"],
                       full_array_limit=0)["result"]
        for k, v in res["timings_ms"].items():
            stage_ms[k] += v
        results.append(res)
    n = max(len({c["image_id"] for c in cases}), 1)
    print(f"[predict] {n} images, {sum(stage_ms.values()) / n:.0f} ms/image ("
          + ", ".join(f"{k} {v / n:.0f}" for k, v in stage_ms.items()) + ")", flush=True)
    return merge_results(cases, results)


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path
