"""python -m mvp_lm.data.mix: the paper's SFT training mix from dataset folders in their standard layouts.

  python -m mvp_lm.data.mix --coco-panoptic COCO --objects365 O365 --refcoco REFER/refcoco \\
      --refcoco+ REFER/refcoco+ --refcocog REFER/refcocog --coco-train2014 COCO/train2014 --goldg GLIP_DATA \\
      [--grefcoco GREFCOCO] [--ratio coco_panoptic=33.3 ...] --out mix/train.jsonl

Runs the per-dataset converters (mvp_lm.data.convert) on the files named in LAYOUT below and writes OUT.jsonl
(all records), OUT.categories.json (negative-phrase pools) and OUT.mix.json (data/mix_manifest.py: the sampling
groups and their ratios), from which mvp_lm.train draws each sample: a group by its ratio, then one of its records.
A dataset that is not given is left out and the ratios are renormalised over the rest (the log says so).
docs/training.md has the recipe.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from .convert import coco_detection, coco_panoptic, goldg, grefcoco, refcoco
from .convert.merge import Merged
from .errors import DataFormatError
from .mix_manifest import MixGroup, write_mix
from .record import Phrase, Record, write_categories, write_jsonl

# Paper Table 2, "Training Data": CP(33.3%) RC(33.3%) O(16.7%) GG(16.7%). RC is the RefCOCO series (RefCOCO,
# RefCOCO+, RefCOCOg: "126K samples in total" = their train refs, one pool). The paper trains on no gRefCOCO; its
# weight is ours: half the smallest paper group, so the model sees no-target sentences (calibrate needs them).
PAPER_RATIOS = {"coco_panoptic": 33.3, "refcoco": 33.3, "objects365": 16.7, "goldg": 16.7}
DEFAULT_RATIOS = PAPER_RATIOS | {"grefcoco": 8.3}

LAYOUT = """expected layouts (S: --coco-split, O: --objects365-split):
  --coco-panoptic DIR   DIR/annotations/panoptic_S.json, DIR/annotations/panoptic_S/ (PNGs), images DIR/S/,
                        DIR/annotations/captions_S.json (optional)
  --objects365 DIR      DIR/annotations/zhiyuan_objv2_O.json, images DIR/O/<file_name>
  --refcoco DIR         DIR/instances.json, DIR/refs(unc).p            (the refer toolkit's refcoco/)
  --refcoco+ DIR        DIR/instances.json, DIR/refs(unc).p            (refcoco+/)
  --refcocog DIR        DIR/instances.json, DIR/refs(umd).p            (refcocog/)
  --grefcoco DIR        DIR/instances.json, DIR/grefs(unc).json
  --coco-train2014 DIR  COCO train2014 images, which the four referring datasets point into
  --goldg DIR           DIR/mdetr_annotations/final_mixed_train_no_coco.json with images DIR/gqa/images/,
                        DIR/mdetr_annotations/final_flickr_separateGT_train.json with images
                        DIR/flickr30k/flickr30k_images/train/
"""
REFERRING = {"refcoco": "refs(unc).p", "refcoco+": "refs(unc).p", "refcocog": "refs(umd).p"}


@dataclass
class Part:
    """One converter run: the records of one source, in one sampling group, with its images under `images`."""
    group: str
    source: str
    images: Path
    convert: Callable[..., tuple[list[Record], dict[str, list[Phrase]]]]  # (image_prefix=...) -> records, pools


def need(path: Path, flag: str, folder: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{flag} {folder}: {path} is missing (see --help for the expected layout)")
    return path


def coco_panoptic_part(d: Path, split: str, captions: Path | None) -> Part:
    flag = "--coco-panoptic"
    return Part("coco_panoptic", "coco_panoptic", need(d / split, flag, d), partial(
        coco_panoptic.convert, need(d / "annotations" / f"panoptic_{split}.json", flag, d),
        need(d / "annotations" / f"panoptic_{split}", flag, d), captions, source="coco_panoptic"))


def objects365_part(d: Path, split: str, captions: Path | None) -> Part:
    flag = "--objects365"
    return Part("objects365", "objects365", need(d / split, flag, d), partial(
        coco_detection.convert, need(d / "annotations" / f"zhiyuan_objv2_{split}.json", flag, d), captions,
        source="objects365", task="detection"))


def referring_part(name: str, d: Path, images: Path, split: str, captions: Path | None) -> Part:
    flag = f"--{name}"
    instances = need(d / "instances.json", flag, d)
    if name == "grefcoco":
        return Part("grefcoco", "grefcoco", images, partial(
            grefcoco.convert, need(d / "grefs(unc).json", flag, d), instances, split, captions, source="grefcoco"))
    return Part("refcoco", name, images, partial(
        refcoco.convert, need(d / REFERRING[name], flag, d), instances, split, captions, source=name))


def goldg_parts(d: Path) -> list[Part]:
    flag, ann = "--goldg", d / "mdetr_annotations"
    # The two files number their images from 0 each, so each is a source of its own (record ids stay unique).
    return [Part("goldg", source, need(images, flag, d), partial(goldg.convert, need(ann / file, flag, d), source=source))
            for source, file, images in (
                ("goldg_mixed", "final_mixed_train_no_coco.json", d / "gqa" / "images"),
                ("goldg_flickr", "final_flickr_separateGT_train.json", d / "flickr30k" / "flickr30k_images" / "train"))]


def plan(a: argparse.Namespace) -> list[Part]:
    """The converter runs for the given folders; every file they read is checked to exist first."""
    parts = []
    coco_captions = a.coco_captions
    if a.coco_panoptic:
        found = a.coco_panoptic / "annotations" / f"captions_{a.coco_split}.json"
        coco_captions = coco_captions or (found if found.exists() else None)
        parts.append(coco_panoptic_part(a.coco_panoptic, a.coco_split, coco_captions))
    if a.objects365:
        parts.append(objects365_part(a.objects365, a.objects365_split, a.objects365_captions))
    for name in ("refcoco", "refcoco+", "refcocog", "grefcoco"):
        folder = getattr(a, name.replace("+", "_plus"))
        if folder is None:
            continue
        if a.coco_train2014 is None:
            raise FileNotFoundError(f"--{name} needs --coco-train2014 DIR (the COCO train2014 images it points into)")
        # COCO 2017 keeps the 2014 image ids, so COCO's captions file serves the referring datasets too.
        parts.append(referring_part(name, folder, need(a.coco_train2014, "--coco-train2014", a.coco_train2014),
                                    a.ref_split, coco_captions))
    if a.goldg:
        parts += goldg_parts(a.goldg)
    if not parts:
        raise FileNotFoundError("no dataset folder given (--coco-panoptic, --objects365, --refcoco, ...)")
    return parts


def resolve_ratios(asked: dict[str, float], given: list[str], log: Callable[[str], None]) -> dict[str, float]:
    """Ratios of the given groups, renormalised to sum to 1 (groups at 0 are left out)."""
    weights = DEFAULT_RATIOS | asked
    for name in sorted(set(weights) - set(given)):
        if name in asked or name in PAPER_RATIOS:
            log(f"ratio: {name} left out (no folder given)")
    kept = {g: weights[g] for g in given if weights[g] > 0}
    for g in given:
        if g not in kept:
            log(f"ratio: {g} left out (ratio 0)")
    if not kept:
        raise ValueError("every given dataset has ratio 0")
    total = sum(kept.values())
    ratios = {g: w / total for g, w in kept.items()}
    log("ratios: " + ", ".join(f"{g} {r:.1%}" for g, r in ratios.items())
        + (" (paper Table 2)" if kept == PAPER_RATIOS else " (renormalised over the given datasets)"))
    return ratios


def build(parts: list[Part], asked: dict[str, float], out: Path, images_root: Path | None = None,
          progress: bool = True, log: Callable[[str], None] = print) -> list[MixGroup]:
    """Convert every part, write OUT.jsonl, OUT.categories.json and OUT.mix.json; returns the groups."""
    given = list(dict.fromkeys(p.group for p in parts))
    ratios = resolve_ratios(asked, given, log)
    parts = [p for p in parts if p.group in ratios]
    root = (images_root or Path(os.path.commonpath([p.images.resolve() for p in parts]))).resolve()
    merged = Merged()
    counts: dict[str, int] = {}
    for part in tqdm(parts, desc="convert", unit="source", disable=not progress):
        prefix = os.path.relpath(part.images.resolve(), root)
        if prefix.startswith(".."):
            raise ValueError(f"{part.images} is outside --images-root {root}")
        got, got_pools = part.convert(image_prefix=Path(prefix).as_posix() if prefix != "." else "")
        if not got:
            raise DataFormatError(part.images, "<all>", "<records>", f"{part.source} gave no records (wrong split?)")
        log(f"{part.source}: {len(got)} records")
        counts[part.source] = len(got)
        merged.add(part.source, got, got_pools)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(out, tqdm(merged.records, desc="write", unit="rec", disable=not progress))
    write_categories(out, merged.pools)
    groups = [MixGroup(g, ratios[g], tuple(p.source for p in parts if p.group == g),
                       sum(counts[p.source] for p in parts if p.group == g)) for g in ratios]
    write_mix(out, groups, root)
    log(f"wrote {len(merged.records)} records to {out}; train with --data {out} --images {root}")
    return groups


def ratio(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep or name not in DEFAULT_RATIOS:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=WEIGHT, NAME one of {', '.join(DEFAULT_RATIOS)}")
    try:
        weight = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {value!r} is not a number") from None
    if weight < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a weight cannot be negative")
    return name, weight


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mvp_lm.data.mix", formatter_class=argparse.RawDescriptionHelpFormatter,
                                description=__doc__.split("\n\n")[0], epilog=LAYOUT)
    for flag, what in (("--coco-panoptic", "COCO panoptic"), ("--objects365", "Objects365 v2"),
                       ("--refcoco", "RefCOCO"), ("--refcoco+", "RefCOCO+"), ("--refcocog", "RefCOCOg"),
                       ("--grefcoco", "gRefCOCO"), ("--goldg", "GoldG (GLIP's DATASET folder)")):
        p.add_argument(flag, dest=flag[2:].replace("-", "_").replace("+", "_plus"), type=Path, metavar="DIR",
                       help=f"{what} folder")
    p.add_argument("--coco-train2014", type=Path, metavar="DIR", help="COCO train2014 images (referring datasets)")
    p.add_argument("--coco-split", default="train2017")
    p.add_argument("--objects365-split", default="train")
    p.add_argument("--ref-split", default="train", help="refs of this split (RefCOCO/+/g, gRefCOCO)")
    p.add_argument("--coco-captions", type=Path, metavar="FILE",
                   help="COCO-format captions by image id for COCO panoptic and the referring datasets "
                        "(default: --coco-panoptic's annotations/captions_S.json when present)")
    p.add_argument("--objects365-captions", type=Path, metavar="FILE", help="COCO-format captions for Objects365")
    p.add_argument("--ratio", type=ratio, action="append", default=[], metavar="NAME=WEIGHT",
                   help="sampling weight of a group, renormalised over the given groups; defaults: "
                        + ", ".join(f"{k}={v}" for k, v in DEFAULT_RATIOS.items()) + " (gRefCOCO: not in the paper)")
    p.add_argument("--images-root", type=Path,
                   help="root the records' image paths are relative to (default: the image folders' common parent)")
    p.add_argument("--out", type=Path, required=True, help="output SFT JSONL (OUT.categories.json, OUT.mix.json beside)")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    try:
        build(plan(a), dict(a.ratio), a.out, a.images_root, a.progress)
    except (DataFormatError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
