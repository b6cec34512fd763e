"""docs/training.md on the fixtures: the mix built by python -m mvp_lm.data.mix trains under torchrun with 2 gloo
processes and --grad-checkpoint; gradient checkpointing changes no gradient; the doc's commands use only flags
their parsers have."""
import argparse
import importlib
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from mix_fixtures import arrange_datasets
from mvp_lm.config import tiny
from mvp_lm.data.mix import main as mix_main
from mvp_lm.data.record import read_categories, read_jsonl
from mvp_lm.data.sampler import Sampler
from mvp_lm.model import MVPLM
from mvp_lm.prompt import default_spec
from mvp_lm.tokenizer import save_tokenizer, train_tokenizer
from mvp_lm.train.collate import collate, make_item
from mvp_lm.train.losses import SetCriterion, weighted_total
from mvp_lm.train.matcher import LossWeights
from mvp_lm.train.step import TrainingStep
from train_fixtures import write_synthetic_set

MODEL_DIR = Path(__file__).resolve().parents[1]
DOC = MODEL_DIR.parent / "docs" / "training.md"


def gradients(grad_checkpoint: bool, root: Path) -> tuple[dict[str, torch.Tensor], int]:
    """Gradients of one stage-2 step on the tiny config, and how many tensors autograd saved in the forward."""
    data = write_synthetic_set(root)
    tok = train_tokenizer(600)
    torch.manual_seed(0)
    model = MVPLM(tiny("paper", tok.get_vocab_size())).train()
    model.phi.gradient_checkpointing = grad_checkpoint
    spec = default_spec(tok, "paper", model.config.num_image_tokens)
    sampler = Sampler(read_categories(data))
    items = [make_item(sampler.sample(r, np.random.default_rng(i)), root, tok, spec, model.config)
             for i, r in enumerate(read_jsonl(data))]
    batch = collate(items, spec.tokens["pad"])
    step = TrainingStep(model, SetCriterion(num_points=64), stage=2, dn_queries=20, dn_noise=0.4)
    saved = []
    torch.manual_seed(1)  # dn noise and mask points: the same in both runs
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(1) or t, lambda t: t):
        losses = step(batch, num_masks=2.0)
    weighted_total(losses, LossWeights()).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}, len(saved)


def test_grad_checkpoint_changes_no_gradient(tmp_path):
    plain, saved_plain = gradients(False, tmp_path / "a")
    checkpointed, saved_checkpointed = gradients(True, tmp_path / "b")
    assert saved_checkpointed < saved_plain  # the layers' activations were not kept
    assert plain.keys() == checkpointed.keys() and any(n.startswith("phi.model.layers.") for n in plain)
    for name, g in plain.items():
        torch.testing.assert_close(checkpointed[name], g, rtol=1e-6, atol=1e-6, msg=name)


SCRIPT = textwrap.dedent("""
    import os, sys, torch
    from mvp_lm.train.__main__ import parse_args
    from mvp_lm.train.loop import train
    out = sys.argv[1]
    result = train(parse_args(sys.argv[2:]))
    assert result.model.phi.gradient_checkpointing
    torch.save({n: p.detach().clone() for n, p in result.model.named_parameters()},
               f"{out}/params_rank{os.environ['RANK']}.pt")
""")


def test_recipe_on_the_fixtures_with_two_gloo_processes(tmp_path):
    out = tmp_path / "mix" / "train.jsonl"
    assert mix_main(arrange_datasets(tmp_path / "datasets") + ["--out", str(out), "--no-progress"]) == 0
    images = json.loads(out.with_name("train.mix.json").read_text())["images_root"]
    save_tokenizer(train_tokenizer(600), tmp_path / "tokenizer.json")
    (tmp_path / "run_ddp.py").write_text(SCRIPT)
    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(MODEL_DIR))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531",
           str(tmp_path / "run_ddp.py"), str(tmp_path), "--data", str(out), "--images", images, "--out", str(run),
           "--config", "tiny", "--stage", "2", "--steps", "2", "--batch-size", "2", "--grad-checkpoint",
           "--tokenizer", str(tmp_path / "tokenizer.json"), "--no-progress", "--device", "cpu"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "data: mix of coco_panoptic" in proc.stdout
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and all(np.isfinite(r["loss"]) for r in rows)
    p0, p1 = torch.load(tmp_path / "params_rank0.pt"), torch.load(tmp_path / "params_rank1.pt")
    assert p0.keys() == p1.keys()
    for name in p0:
        torch.testing.assert_close(p0[name], p1[name], rtol=0, atol=0, msg=name)


# ------------------------------------------------------------------------------------- the doc cannot drift
def doc_commands() -> list[list[str]]:
    """Every `python -m mvp_lm.X ...` / `torchrun ... -m mvp_lm.X ...` command in the doc's sh blocks, as argv."""
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0]
            if "-m mvp_lm." in line:
                commands.append(shlex.split(line))
    return commands


class Parsed(Exception):
    """Raised by the patched ArgumentParser.parse_args once the arguments parsed: the command stops there."""


def parse_only(module: str, args: list[str], monkeypatch) -> None:
    """Parse `args` with the module's own parser, and run nothing after it (SystemExit when they do not parse)."""
    real = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, argv=None, namespace=None):
        real(self, argv, namespace)
        raise Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    entry = {"mvp_lm.train": "mvp_lm.train.__main__:parse_args", "mvp_lm.data.mix": "mvp_lm.data.mix:main",
             "mvp_lm.export": "mvp_lm.export:main", "mvp_lm.calibrate": "mvp_lm.calibrate:main"}
    assert module in entry, f"docs/training.md runs {module}, which this test does not know"
    name, function = entry[module].split(":")
    with pytest.raises(Parsed):
        getattr(importlib.import_module(name), function)(args)


def test_doc_commands_parse(monkeypatch):
    commands = doc_commands()
    modules = [c[c.index("-m") + 1] for c in commands]
    assert {"mvp_lm.data.mix", "mvp_lm.train", "mvp_lm.export", "mvp_lm.calibrate"} <= set(modules)
    for argv, module in zip(commands, modules):
        try:
            parse_only(module, argv[argv.index("-m") + 2:], monkeypatch)
        except SystemExit as e:
            pytest.fail(f"docs/training.md: {' '.join(argv)} does not parse (exit {e.code})")
