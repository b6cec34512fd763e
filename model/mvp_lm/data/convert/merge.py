"""Mixing datasets (the paper trains on several at once): several SFT JSONL files → one, with their
negative-phrase pools merged by source. Record ids must stay unique across the inputs."""
from __future__ import annotations

from pathlib import Path

from ..errors import DataFormatError
from ..record import Phrase, Record, iter_jsonl, read_categories


def merge(inputs: list[str | Path]) -> tuple[list[Record], dict[str, list[Phrase]]]:
    records: list[Record] = []
    seen: dict[str, str] = {}
    pools: dict[str, list[Phrase]] = {}
    for path in inputs:
        for r in iter_jsonl(path):
            if r.id in seen:
                raise DataFormatError(str(path), r.id, "id", f"already used by a record of {seen[r.id]}")
            seen[r.id] = str(path)
            records.append(r)
        for source, pool in read_categories(path).items():
            known = pools.setdefault(source, [])
            known += [p for p in pool if p not in known]
    return records, pools
