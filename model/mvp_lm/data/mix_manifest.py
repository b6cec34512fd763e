"""The mix manifest beside a mixed SFT JSONL: `train.jsonl` → `train.mix.json`, written by `python -m mvp_lm.data.mix`.

  {"images_root": str, "groups": [{"name": str, "ratio": float, "sources": [str], "records": int}, ...]}

Ratios sum to 1. The trainer draws every sample as: a group with probability `ratio`, then a record of that
group, each record of the group once before any twice (mvp_lm.train.dataset.MixedBatches). A record belongs to
the group that lists its `source`. Without a manifest the trainer goes through the JSONL epoch by epoch.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import DataFormatError
from .record import Record


@dataclass(frozen=True)
class MixGroup:
    name: str
    ratio: float
    sources: tuple[str, ...]
    records: int


def mix_path(jsonl_path: str | Path) -> Path:
    p = Path(jsonl_path)
    return p.with_name(p.name.removesuffix(".jsonl") + ".mix.json")


def write_mix(jsonl_path: str | Path, groups: list[MixGroup], images_root: str | Path) -> Path:
    out = mix_path(jsonl_path)
    out.write_text(json.dumps({"images_root": str(images_root), "groups": [asdict(g) for g in groups]}, indent=1))
    return out


def read_mix(jsonl_path: str | Path) -> list[MixGroup] | None:
    """The groups of the manifest beside `jsonl_path`, or None when there is none."""
    p = mix_path(jsonl_path)
    if not p.exists():
        return None
    try:
        groups = [MixGroup(g["name"], float(g["ratio"]), tuple(g["sources"]), int(g["records"]))
                  for g in json.loads(p.read_text())["groups"]]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise DataFormatError(str(p), "<file>", "groups", f"not a mix manifest: {e!r}") from None
    total = sum(g.ratio for g in groups)
    if not groups or any(g.ratio <= 0 for g in groups) or abs(total - 1) > 1e-6:
        raise DataFormatError(str(p), "<file>", "groups[].ratio", f"ratios must be positive and sum to 1, got "
                              f"{[g.ratio for g in groups]}")
    return groups


def group_members(records: list[Record], groups: list[MixGroup], file: str | Path) -> list[np.ndarray]:
    """Per group, the indices of its records in `records`."""
    group_of = {s: gi for gi, g in enumerate(groups) for s in g.sources}
    members: list[list[int]] = [[] for _ in groups]
    for i, r in enumerate(records):
        if r.source not in group_of:
            raise DataFormatError(str(file), r.id, "source", f"{r.source!r} is in no group of {mix_path(file)}")
        members[group_of[r.source]].append(i)
    for g, m in zip(groups, members):
        if not m:
            raise DataFormatError(str(file), "<file>", "source", f"group {g.name!r} of {mix_path(file)} has no records")
    return [np.asarray(m, dtype=np.int64) for m in members]
