"""Stage 1, stage 2, a sentence-heavy continuation of stage 2 and a last continuation saved in snapshots for
selection, for the tiny config through `mvp_lm.train`, resumable, plus the weights file the export reads."""
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
    # Then once more from those weights, on the same data and a cosine of its own, saving the weights every
    # `select_every` steps; the demo ships the snapshot (the starting weights included) that scores best on a dev
    # split of its own (select.py). Greedy captions of this tiny LLM swing along training (caption shape F1 of 100
    # held-out images went 50 / 29 / 39 / 49 / 29 / 23 / 31 / 32 over one continuation), so without a selection
    # where a run happens to end decides them. Every 2,000 steps: each candidate costs ~1.5 min to export, calibrate
    # and score, so six keep the whole command within a 2-core working session. 0 skips it.
    refine_steps: int = 10000
    refine_lr: float = 2e-4
    select_every: int = 2000
    save_every: int = 250
    seed: int = 0


def checkpoint_step(run: Path) -> int:
    ckpt = run / "checkpoint.pt"
    return int(torch.load(ckpt, map_location="cpu", weights_only=False)["step"]) if ckpt.exists() else 0


# The continuations of stage 2: name -> (steps, lr, seed) of their schedule. The refine seed differs so that it
# draws the records in another order than the sentence continuation, which has the same data.
CONTINUATIONS = {"sentences": lambda s: (s.sentences_steps, s.sentences_lr, s.seed),
                 "refine": lambda s: (s.refine_steps, s.refine_lr, s.seed + 1)}


def run_stage(stage: int, data: Path, images: Path, run: Path, s: Schedule, init: Path | None,
              continuation: str | None = None, stop_at: int | None = None) -> None:
    """Stage 1, stage 2, or a continuation of stage 2 from `init` (CONTINUATIONS); `stop_at` ends this invocation
    at that step of the schedule."""
    steps, batch = (s.stage1_steps, s.stage1_batch) if stage == 1 else (s.stage2_steps, s.stage2_batch)
    until = steps if stage == 1 or s.stage2_stop is None else min(s.stage2_stop, steps)
    lr, seed = None, s.seed
    if continuation is not None:
        steps, lr, seed = CONTINUATIONS[continuation](s)
        until = steps
    if stop_at is not None:
        until = min(until, stop_at)
    name = f"{continuation} continuation" if continuation else f"stage {stage}"
    done = checkpoint_step(run)
    if done >= until:
        step(f"{name}: {run} already at step {done} (of a {steps}-step schedule), skipped")
        return
    # Stage 1 aligns the connector on captions, so every stage-1 sample answers with its caption (a caption-off
    # response carries no LM loss and would only waste the sample).
    mix = 1.0 if stage == 1 else s.response_mix
    argv = ["--config", "tiny", "--variant", "paper", "--stage", str(stage), "--data", str(data),
            "--images", str(images), "--out", str(run), "--steps", str(steps), "--batch-size", str(batch),
            "--response-mix", str(mix), "--save-every", str(s.save_every), "--seed", str(seed),
            "--sentence-loss-scale", str(s.sentence_loss_scale)]
    if stage == 2 and s.train_encoder:
        argv.append("--train-encoder")
    if lr is not None:
        argv += ["--lr", str(lr)]
    if init is not None:
        argv += ["--init", str(init)]
    if done:
        argv.append("--resume")
    if until < steps:
        argv += ["--stop-after", str(until - done)]
    step(f"{name}: {'resuming at step ' + str(done) if done else 'starting'}: python -m mvp_lm.train "
         + " ".join(argv))
    train(parse_args(argv))


def run_refine(data: Path, images: Path, run: Path, s: Schedule, init: Path) -> list[Path]:
    """The refine continuation from `init`, `select_every` steps at a time, with the weights after each chunk kept as
    RUN/snapshots/step-K.pt (step-0: the starting weights). Resumable: finished snapshots are not redone."""
    snaps = run / "snapshots"
    snaps.mkdir(parents=True, exist_ok=True)
    paths = [snaps / "step-0.pt"]
    if not paths[0].exists():
        _save_weights(weights_of_run(init), paths[0])
    for k in [*range(s.select_every, s.refine_steps, s.select_every), s.refine_steps]:
        paths.append(snaps / f"step-{k}.pt")
        if not paths[-1].exists():
            run_stage(2, data, images, run, s, init, "refine", stop_at=k)
            ckpt = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
            assert ckpt["step"] == k, f"{run}: checkpoint at step {ckpt['step']}, expected {k}"
            _save_weights(ckpt["model"], paths[-1])
    return paths


def _save_weights(state: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # a crash mid-write never leaves a torn snapshot that looks finished


def weights_of_run(run: Path) -> dict:
    """The model state dict of a run directory's checkpoint."""
    return torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)["model"]


def weights_of_snapshot(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def export_weights(state: dict, tokenizer: Path, origin: dict, out: Path) -> Path:
    """model.pt (the state dict alone) + tokenizer.json: the `--checkpoint` that mvp_lm.export reads; weights.json
    says where the weights came from."""
    out.mkdir(parents=True, exist_ok=True)
    weights = out / "model.pt"
    _save_weights(state, weights)
    (out / "tokenizer.json").write_bytes(tokenizer.read_bytes())
    (out / "weights.json").write_text(json.dumps(origin))
    return weights
