"""Synthetic train / held-out sets and their SFT training file, through the public synth and converter CLIs."""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..data.convert.__main__ import main as convert_main
from ..synth.__main__ import main as synth_main
from .log import step

# One SFT file per task family the demo model serves (words: panoptic/semantic/instance; sentences: RES and gRES).
WORD_TASKS = (("coco-panoptic", "panoptic"), ("coco-panoptic", "semantic"), ("coco-detection", "instance"))
# Sentence records kept per image and dataset. The synthetic set has ~6.5 RefCOCO and ~3.8 gRefCOCO sentences per
# image. Sentence grounding needs more of them than the word tasks (which supervise every segment of an image at
# once): 4 RefCOCO and 2 gRefCOCO leave 3 word : 4 RES : 2 gRES records per image.
SENTENCES_PER_IMAGE = {"refcoco": 4, "grefcoco": 2}


def make_synth(out: Path, seed: int, num_images: int, split: str) -> Path:
    """All images of one seed into one split (train or val)."""
    if (out / "grefcoco" / "grefs(unc).json").exists():
        step(f"synth {out} exists, skipped")
        return out
    step(f"synth: seed {seed}, {num_images} images -> {out} ({split})")
    fraction = "1.0" if split == "val" else "0.0"
    _check(synth_main(["--seed", str(seed), "--num-images", str(num_images), "--size", "128",
                       "--val-fraction", fraction, "--out", str(out)]), "synth")
    return out


def make_sft(synth: Path, out_dir: Path, sentences_per_image: dict[str, int] | None = SENTENCES_PER_IMAGE) -> Path:
    """Convert the train split with the dataset converters and merge into one train.jsonl (image root: synth),
    sentence records thinned to `sentences_per_image` per dataset (None keeps them all)."""
    merged = out_dir / "train.jsonl"
    if merged.exists():
        step(f"SFT {merged} exists, skipped")
        return merged
    out_dir.mkdir(parents=True, exist_ok=True)
    ann = synth / "annotations"
    common = ["--captions", str(ann / "captions_train.json"), "--image-prefix", "images"]
    parts = []
    for fmt, task in WORD_TASKS:
        src = (["--panoptic-json", str(ann / "panoptic_train.json"), "--png-dir", str(ann / "panoptic_train")]
               if fmt == "coco-panoptic" else ["--instances", str(ann / "instances_train.json")])
        parts.append(out_dir / f"{task}.jsonl")
        _check(convert_main([fmt, "--task", task, *src, *common, "--out", str(parts[-1])]), fmt)
    for fmt, refs in (("refcoco", synth / "refcoco" / "refs(unc).p"), ("grefcoco", synth / "grefcoco" / "grefs(unc).json")):
        parts.append(out_dir / f"{fmt}.jsonl")
        _check(convert_main([fmt, "--refs", str(refs), "--instances", str(synth / "refcoco" / "instances.json"),
                             "--split", "train", *common, "--out", str(parts[-1])]), fmt)
        if sentences_per_image is not None:
            thin_per_image(parts[-1], sentences_per_image[fmt], seed=len(parts))
    tmp = out_dir / "train.partial.jsonl"
    _check(convert_main(["merge", "--out", str(tmp), *map(str, parts)]), "merge")
    tmp.with_suffix(".categories.json").replace(merged.with_suffix(".categories.json"))
    tmp.replace(merged)  # last: its presence marks the step done
    return merged


def thin_per_image(jsonl: Path, keep: int, seed: int) -> None:
    """Rewrite an SFT file keeping `keep` records per image, drawn with a fixed seed (file order otherwise)."""
    lines = [line for line in jsonl.read_text().splitlines() if line.strip()]
    by_image: dict[str, list[int]] = defaultdict(list)
    for i, line in enumerate(lines):
        by_image[json.loads(line)["image"]].append(i)
    rng = np.random.default_rng(seed)
    kept = sorted(i for idx in by_image.values() for i in (idx if len(idx) <= keep else rng.choice(idx, keep, replace=False)))
    jsonl.write_text("".join(lines[i] + "\n" for i in kept))
    step(f"{jsonl.name}: kept {len(kept)} of {len(lines)} records ({keep} per image)")


def _check(rc: int, what: str) -> None:
    if rc != 0:
        raise RuntimeError(f"demo: {what} failed with exit code {rc}")
