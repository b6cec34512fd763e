"""Mixing datasets (the paper trains on several at once): several sets of records → one, with their
negative-phrase pools merged by source. Record ids must stay unique across the inputs."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..errors import DataFormatError
from ..record import Phrase, Record, iter_jsonl, read_categories


class Merged:
    """Records and pools accumulated from several inputs, each named for the error of a repeated id."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.pools: dict[str, list[Phrase]] = {}
        self._seen: dict[str, str] = {}

    def add(self, name: str, records: Iterable[Record], pools: dict[str, list[Phrase]]) -> None:
        for r in records:
            if r.id in self._seen:
                raise DataFormatError(name, r.id, "id", f"already used by a record of {self._seen[r.id]}")
            self._seen[r.id] = name
            self.records.append(r)
        for source, pool in pools.items():
            known = self.pools.setdefault(source, [])
            known += [p for p in pool if p not in known]


def merge(inputs: list[str | Path]) -> tuple[list[Record], dict[str, list[Phrase]]]:
    """SFT JSONL files (with their .categories.json) → one set."""
    merged = Merged()
    for path in inputs:
        merged.add(str(path), iter_jsonl(path), read_categories(path))
    return merged.records, merged.pools
