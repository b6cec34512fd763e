"""python -m mvp_lm.data.convert <format> ... --out OUT.jsonl  (also writes OUT.categories.json)"""
from __future__ import annotations

import argparse
import sys

from ..errors import DataFormatError
from ..record import write_categories, write_jsonl
from . import coco_detection, coco_panoptic, goldg, grefcoco, merge, refcoco


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mvp_lm.data.convert", description=__doc__)
    sub = p.add_subparsers(dest="format", required=True)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=help)
        s.add_argument("--out", required=True, help="output SFT JSONL")
        s.add_argument("--image-prefix", default="", help="prepended to file_name (path under the images root)")
        s.add_argument("--source", help="dataset name stored in each record (default: the format's)")
        return s

    s = add("coco-panoptic", "COCO panoptic JSON + PNG segment maps")
    s.add_argument("--panoptic-json", required=True)
    s.add_argument("--png-dir", required=True)
    s.add_argument("--captions", help="COCO captions JSON")
    s.add_argument("--task", choices=["panoptic", "semantic"], default="panoptic")
    s = add("coco-detection", "COCO / Objects365 instances JSON")
    s.add_argument("--instances", required=True)
    s.add_argument("--captions")
    s.add_argument("--task", choices=["instance", "detection"])
    for name in ("refcoco", "grefcoco"):
        s = add(name, f"{name} refs + instances.json")
        s.add_argument("--refs", required=True, help="refs(unc).p" if name == "refcoco" else "grefs(unc).json")
        s.add_argument("--instances", required=True)
        s.add_argument("--split", help="keep only refs of this split")
        s.add_argument("--captions")
    s = add("goldg", "GoldG / MDETR-style grounding JSON")
    s.add_argument("--json", required=True)
    s = sub.add_parser("merge", help="several SFT JSONL files (and their category pools) into one")
    s.add_argument("--out", required=True)
    s.add_argument("inputs", nargs="+")
    return p


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    common = {}
    if a.format != "merge":
        common = {"image_prefix": a.image_prefix, **({"source": a.source} if a.source else {})}
    try:
        if a.format == "merge":
            records, pools = merge.merge(a.inputs)
        elif a.format == "coco-panoptic":
            records, pools = coco_panoptic.convert(a.panoptic_json, a.png_dir, a.captions, task=a.task, **common)
        elif a.format == "coco-detection":
            records, pools = coco_detection.convert(a.instances, a.captions, task=a.task, **common)
        elif a.format == "refcoco":
            records, pools = refcoco.convert(a.refs, a.instances, a.split, a.captions, **common)
        elif a.format == "grefcoco":
            records, pools = grefcoco.convert(a.refs, a.instances, a.split, a.captions, **common)
        else:
            records, pools = goldg.convert(a.json, **common)
    except DataFormatError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    n = write_jsonl(a.out, records)
    if pools:
        write_categories(a.out, pools)
    print(f"{a.format}: wrote {n} records to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
