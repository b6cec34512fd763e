"""Stage 1 then stage 2 of the tiny config through `mvp_lm.train`, resumable, plus the weights file the export reads."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..train.__main__ import parse_args
from ..train.loop import train
from .log import step


@dataclass
class Schedule:
    """Sized for a 2-core CPU (see models/demo/README.md for the measurements behind these numbers)."""
    stage1_steps: int = 30
    stage1_batch: int = 8
    stage2_steps: int = 280
    stage2_batch: int = 2
    response_mix: float = 0.5  # half the samples answer with the caption, half with "The perception result is <PER>"
    save_every: int = 25
    seed: int = 0


def checkpoint_step(run: Path) -> int:
    ckpt = run / "checkpoint.pt"
    return int(torch.load(ckpt, map_location="cpu", weights_only=False)["step"]) if ckpt.exists() else 0


def run_stage(stage: int, data: Path, images: Path, run: Path, s: Schedule, init: Path | None) -> None:
    steps, batch = (s.stage1_steps, s.stage1_batch) if stage == 1 else (s.stage2_steps, s.stage2_batch)
    done = checkpoint_step(run)
    if done >= steps:
        step(f"stage {stage}: {run} already at step {done}/{steps}, skipped")
        return
    argv = ["--config", "tiny", "--variant", "paper", "--stage", str(stage), "--data", str(data),
            "--images", str(images), "--out", str(run), "--steps", str(steps), "--batch-size", str(batch),
            "--response-mix", str(s.response_mix), "--save-every", str(s.save_every), "--seed", str(s.seed)]
    if init is not None:
        argv += ["--init", str(init)]
    if done:
        argv.append("--resume")
    step(f"stage {stage}: {'resuming at step ' + str(done) if done else 'starting'}: python -m mvp_lm.train "
         + " ".join(argv))
    train(parse_args(argv))


def export_weights(run: Path, out: Path) -> Path:
    """model.pt (the state dict alone) + tokenizer.json: the `--checkpoint` that mvp_lm.export reads."""
    weights = out / "model.pt"
    ckpt = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
    if weights.exists() and json.loads((out / "weights.json").read_text())["step"] == ckpt["step"]:
        return weights
    out.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt["model"], weights)
    (out / "tokenizer.json").write_bytes((run / "tokenizer.json").read_bytes())
    (out / "weights.json").write_text(json.dumps({"run": str(run), "step": ckpt["step"]}))
    return weights
