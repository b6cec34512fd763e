"""Stage 1, stage 2 and a sentence-heavy continuation of stage 2 for the tiny config through `mvp_lm.train`,
resumable, plus the weights file the export reads."""
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
    """The shipped model's schedule, sized for about an hour of stage 2 on an idle 2-core CPU (models/demo/README.md
    has the measurements): a stage-2 step of 2 samples takes ~0.18 s there, image encoder included."""
    stage1_steps: int = 30
    stage1_batch: int = 8
    stage2_steps: int = 18000
    stage2_batch: int = 2
    response_mix: float = 0.5  # stage 2: half the samples answer with the caption, half with "The perception result is <PER>"
    train_encoder: bool = True  # the Swin starts random here (no pretrained weights), so stage 2 trains it
    # The sentence score is the only thing a single-target sentence is picked by; at the released code's 0.1 the
    # sentence BCE's weight (0.1 × class weight 2) is about a hundredth of the mask, dice and box weights' sum (17).
    sentence_loss_scale: float = 1.0
    stage2_stop: int | None = None  # end stage 2 at this step of its schedule; None runs the whole schedule
    # Then stage 2 again from those weights, on a cosine schedule of its own, with every sentence of the train set
    # (77 % of the records instead of 65 %): sentences, relations most of them, gain most from further steps
    # (REC of 300 held-out sentences, probe.py: 34 -> 45 -> 52 at steps 2,500 / 6,250 / 12,250). 0 skips it.
    sentences_steps: int = 7000
    sentences_lr: float = 3e-4
    save_every: int = 250
    seed: int = 0


def checkpoint_step(run: Path) -> int:
    ckpt = run / "checkpoint.pt"
    return int(torch.load(ckpt, map_location="cpu", weights_only=False)["step"]) if ckpt.exists() else 0


def run_stage(stage: int, data: Path, images: Path, run: Path, s: Schedule, init: Path | None,
              sentences: bool = False) -> None:
    """Stage 1, stage 2, or (`sentences`) the sentence-heavy continuation of stage 2 from `init`."""
    steps, batch = (s.stage1_steps, s.stage1_batch) if stage == 1 else (s.stage2_steps, s.stage2_batch)
    until = steps if stage == 1 or s.stage2_stop is None else min(s.stage2_stop, steps)
    if sentences:
        steps = until = s.sentences_steps
    name = "sentence continuation" if sentences else f"stage {stage}"
    done = checkpoint_step(run)
    if done >= until:
        step(f"{name}: {run} already at step {done} (of a {steps}-step schedule), skipped")
        return
    # Stage 1 aligns the connector on captions, so every stage-1 sample answers with its caption (a caption-off
    # response carries no LM loss and would only waste the sample).
    mix = 1.0 if stage == 1 else s.response_mix
    argv = ["--config", "tiny", "--variant", "paper", "--stage", str(stage), "--data", str(data),
            "--images", str(images), "--out", str(run), "--steps", str(steps), "--batch-size", str(batch),
            "--response-mix", str(mix), "--save-every", str(s.save_every), "--seed", str(s.seed),
            "--sentence-loss-scale", str(s.sentence_loss_scale)]
    if stage == 2 and s.train_encoder:
        argv.append("--train-encoder")
    if sentences:
        argv += ["--lr", str(s.sentences_lr)]
    if init is not None:
        argv += ["--init", str(init)]
    if done:
        argv.append("--resume")
    if until < steps:
        argv += ["--stop-after", str(until - done)]
    step(f"{name}: {'resuming at step ' + str(done) if done else 'starting'}: python -m mvp_lm.train "
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
