"""Run-directory checkpoints: everything needed to continue a run exactly where it stopped.

RUN/checkpoint.pt   model (unwrapped) + optimizer + scheduler + step + config + options (written by rank 0)
RUN/rng/rank{r}.pt  each rank's torch RNG states (dn noise, point sampling, dropout differ per rank)
Files are written to a temporary name and renamed, so a crash mid-write never leaves a torn checkpoint.
"""
import os
from pathlib import Path

import torch


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def rng_state() -> dict:
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, rank: int, state: dict | None) -> None:
    """Rank 0 passes the main state; every rank saves its RNG."""
    (run_dir / "rng").mkdir(parents=True, exist_ok=True)
    _atomic_save(rng_state(), run_dir / "rng" / f"rank{rank}.pt")
    if rank == 0:
        _atomic_save(state, run_dir / "checkpoint.pt")


def load_checkpoint(run_dir: Path, rank: int) -> tuple[dict, dict]:
    main_path, rng_path = run_dir / "checkpoint.pt", run_dir / "rng" / f"rank{rank}.pt"
    for p in (main_path, rng_path):
        if not p.exists():
            raise FileNotFoundError(f"--resume: {p} is missing (was the run saved with this many processes?)")
    return torch.load(main_path, map_location="cpu", weights_only=False), torch.load(rng_path, weights_only=False)
