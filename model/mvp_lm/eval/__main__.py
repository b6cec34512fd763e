"""python -m mvp_lm.eval --gt DIR --pred PRED.json [--split val] [--out METRICS.json] [path overrides]"""
from __future__ import annotations

import argparse
import json
import sys

from ..data.errors import DataFormatError
from .evaluate import evaluate
from .gt import GroundTruth, GTPaths
from .predictions import load_predictions


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mvp_lm.eval", description=__doc__)
    p.add_argument("--gt", required=True, help="ground-truth root (the layout python -m mvp_lm.synth writes)")
    p.add_argument("--pred", required=True, help="prediction JSON (see mvp_lm.eval.predictions)")
    p.add_argument("--split", default="val")
    p.add_argument("--out", help="also write the metrics here")
    for name in ("panoptic-json", "panoptic-dir", "instances", "captions", "refs", "grefs", "ref-instances"):
        p.add_argument(f"--{name}", help=f"override the {name} path under --gt")
    a = p.parse_args(argv)
    overrides = {k: getattr(a, k) for k in ("panoptic_json", "panoptic_dir", "instances", "captions", "refs", "grefs",
                                            "ref_instances")}
    try:
        metrics = evaluate(GroundTruth(GTPaths.for_dir(a.gt, a.split, **overrides), a.split),
                           load_predictions(a.pred), a.pred)
    except (DataFormatError, FileNotFoundError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    text = json.dumps(metrics, indent=1, sort_keys=True)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
