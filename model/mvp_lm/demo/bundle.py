"""The demo's bundle: the export of a set of weights, with its generalised-sentence constants calibrated."""
from __future__ import annotations

import json
from pathlib import Path

from ..calibrate import calibrate
from ..export import export_bundle
from .log import step

NAME, VERSION = "mvp-lm-demo", "1.0.0"


def export_calibrated(weights: Path, out: Path, train_set: Path, quiet: bool = False) -> dict:
    """mvp_lm.export of the weights into `out`, then mvp_lm.calibrate on the train split. Always both (under a minute
    together): a bundle already holding these weights may come from an older export (without the batched
    generation graph or `batching.max_batch`), and an export resets the calibrated constants."""
    log = (lambda m: None) if quiet else (lambda m: print(m, flush=True))
    step(f"export: {weights} -> {out}")
    export_bundle("tiny", "paper", out, checkpoint=weights, seed=0, name=NAME, version=VERSION, log=log)
    step(f"calibrate: {out} on the train split {train_set}")
    calibrate(out, train_set, "train", log=log)
    return json.loads((out / "manifest.json").read_text())
