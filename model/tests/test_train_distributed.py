"""Two-process data-parallel training under torchrun (gloo on CPU): it finishes and both ranks hold the same
parameters afterwards (gradients were all-reduced; each rank saw different samples)."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from mvp_lm.config import MVPLMConfig
from mvp_lm.model import MVPLM
from mvp_lm.tokenizer import save_tokenizer, train_tokenizer
from train_fixtures import write_synthetic_set

MODEL_DIR = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import sys, torch
    from mvp_lm.train.__main__ import parse_args
    from mvp_lm.train.loop import train
    out = sys.argv[1]
    result = train(parse_args(sys.argv[2:]))
    rank = int(__import__("os").environ["RANK"])
    torch.save({n: p.detach().clone() for n, p in result.model.named_parameters()}, f"{out}/params_rank{rank}.pt")
""")


def test_two_process_gloo_run_keeps_ranks_identical(tmp_path):
    data = write_synthetic_set(tmp_path / "sft", num_images=2)  # 4 records: each rank gets its own 2 per epoch
    save_tokenizer(train_tokenizer(600), tmp_path / "tokenizer.json")
    (tmp_path / "run_ddp.py").write_text(SCRIPT)
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(MODEL_DIR))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           str(tmp_path / "run_ddp.py"), str(tmp_path),
           "--data", str(data), "--images", str(data.parent), "--out", str(out), "--steps", "2", "--batch-size", "1",
           "--tokenizer", str(tmp_path / "tokenizer.json"), "--no-progress", "--device", "cpu"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]  # rank 0 logs once per step
    p0, p1 = torch.load(tmp_path / "params_rank0.pt"), torch.load(tmp_path / "params_rank1.pt")
    assert p0.keys() == p1.keys()
    for name in p0:
        torch.testing.assert_close(p0[name], p1[name], rtol=0, atol=0, msg=name)
    torch.manual_seed(0)  # the run's --seed: its initial weights
    initial = dict(MVPLM(MVPLMConfig.from_dict(json.loads((out / "config.json").read_text()))).named_parameters())
    changed = {n.split(".")[0] for n in p0 if not torch.equal(p0[n], initial[n])}
    assert {"connector", "phi", "decoder", "heads"} <= changed and "swin" not in changed
    saved = torch.load(out / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(saved[n], p0[n]) for n in p0)
    assert (out / "rng" / "rank0.pt").exists() and (out / "rng" / "rank1.pt").exists()
