"""The unified SFT record: one annotated sample of any source dataset, before per-iteration sampling.

One JSON object per line (JSONL). Fields:
  id        str   unique within the file, e.g. "coco_panoptic/139"
  source    str   dataset name; also the key of the negative-phrase pool (see `categories_path`)
  image     str   path relative to an images root (the root is given to the trainer, not stored)
  height, width   int  image size in pixels
  kind      "words" | "sentence"
  task      words: "panoptic" | "instance" | "detection" | "semantic"; sentence: "single" | "multi"
  phrases   [{text, stuff}]  words: the positive categories; sentence: exactly one entry, the expression
  captions  [str]            cleaned captions (may be empty: the sampler then uses the no-caption response)
  targets   [{phrase_index, box [x0,y0,x1,y1] absolute px, segmentation, is_stuff}]
            segmentation: COCO RLE {size:[h,w], counts:str}, polygon list [[x,y,...],...], or null (boxes only).
            sentence "multi" with no target: [].

Next to `train.jsonl` a converter writes `train.categories.json`: {source: [{text, stuff}]} — the vocabulary
negative phrases are drawn from (categories absent from an image).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from .errors import DataFormatError

WORD_TASKS = ("panoptic", "instance", "detection", "semantic")
SENTENCE_TASKS = ("single", "multi")
TASKS = {"words": WORD_TASKS, "sentence": SENTENCE_TASKS}


@dataclass(frozen=True)
class Phrase:
    text: str
    stuff: bool = False


@dataclass
class Target:
    phrase_index: int
    box: list[float]
    segmentation: dict | list | None = None
    is_stuff: bool = False


@dataclass
class Record:
    id: str
    source: str
    image: str
    height: int
    width: int
    kind: str
    task: str
    phrases: list[Phrase]
    captions: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @staticmethod
    def from_dict(d: dict, file: str = "<memory>", where: object = "?") -> "Record":
        rid = f"{d['id']} ({where})" if isinstance(d, dict) and isinstance(d.get("id"), str) else where

        def bad(fld: str, problem: str) -> DataFormatError:
            return DataFormatError(file, rid, fld, problem)

        if not isinstance(d, dict):
            raise bad("<record>", "not a JSON object")
        for name, typ in (("id", str), ("source", str), ("image", str), ("kind", str), ("task", str)):
            if not isinstance(d.get(name), typ):
                raise bad(name, f"missing or not a {typ.__name__}")
        for name in ("height", "width"):
            if not isinstance(d.get(name), int) or d[name] <= 0:
                raise bad(name, "missing or not a positive integer")
        if d["kind"] not in TASKS:
            raise bad("kind", f"{d['kind']!r} is not one of {sorted(TASKS)}")
        if d["task"] not in TASKS[d["kind"]]:
            raise bad("task", f"{d['task']!r} is not a {d['kind']} task {TASKS[d['kind']]}")
        raw_phrases = d.get("phrases")
        if not isinstance(raw_phrases, list) or not raw_phrases:
            raise bad("phrases", "missing or empty")
        phrases = []
        for i, p in enumerate(raw_phrases):
            if not isinstance(p, dict) or not isinstance(p.get("text"), str) or not p["text"].strip():
                raise bad(f"phrases[{i}].text", "missing or empty")
            phrases.append(Phrase(p["text"], bool(p.get("stuff", False))))
        if d["kind"] == "sentence" and len(phrases) != 1:
            raise bad("phrases", f"a sentence record has exactly one phrase, got {len(phrases)}")
        if len({p.text for p in phrases}) != len(phrases):
            raise bad("phrases", "phrase texts repeat")
        captions = d.get("captions", [])
        if not isinstance(captions, list) or not all(isinstance(c, str) for c in captions):
            raise bad("captions", "not a list of strings")
        targets = []
        for i, t in enumerate(d.get("targets", [])):
            targets.append(_target_from_dict(t, len(phrases), lambda f, m, i=i: bad(f"targets[{i}].{f}", m)))
        if d["kind"] == "sentence" and d["task"] == "single" and len(targets) != 1:
            raise bad("targets", f"a single-target sentence record has exactly one target, got {len(targets)}")
        return Record(d["id"], d["source"], d["image"], d["height"], d["width"], d["kind"], d["task"],
                      phrases, list(captions), targets)


def _target_from_dict(t: object, num_phrases: int, bad) -> Target:
    if not isinstance(t, dict):
        raise bad("<target>", "not a JSON object")
    pi = t.get("phrase_index")
    if not isinstance(pi, int) or not 0 <= pi < num_phrases:
        raise bad("phrase_index", f"{pi!r} is not an index into {num_phrases} phrases")
    box = t.get("box")
    if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
        raise bad("box", "not [x0, y0, x1, y1]")
    if box[2] < box[0] or box[3] < box[1]:
        raise bad("box", f"{box} has x1 < x0 or y1 < y0")
    seg = t.get("segmentation")
    if seg is not None:
        if isinstance(seg, dict):
            if not (isinstance(seg.get("size"), list) and len(seg["size"]) == 2 and isinstance(seg.get("counts"), str)):
                raise bad("segmentation", "an RLE needs size [h, w] and compressed string counts")
        elif isinstance(seg, list):
            if not seg or not all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 for p in seg):
                raise bad("segmentation", "a polygon list needs lists of at least 3 (x, y) pairs")
        else:
            raise bad("segmentation", "not an RLE dict, a polygon list or null")
    return Target(pi, [float(v) for v in box], seg, bool(t.get("is_stuff", False)))


def write_jsonl(path: str | Path, records: Iterable[Record]) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(r.to_json() + "\n")
            n += 1
    return n


def iter_jsonl(path: str | Path) -> Iterator[Record]:
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataFormatError(str(path), f"line {line_no}", "<json>", str(e)) from None
            yield Record.from_dict(d, str(path), f"line {line_no}")


def read_jsonl(path: str | Path) -> list[Record]:
    return list(iter_jsonl(path))


def categories_path(jsonl_path: str | Path) -> Path:
    p = Path(jsonl_path)
    return p.with_name(p.name.removesuffix(".jsonl") + ".categories.json")


def write_categories(jsonl_path: str | Path, pools: dict[str, list[Phrase]]) -> Path:
    out = categories_path(jsonl_path)
    out.write_text(json.dumps({s: [asdict(p) for p in ps] for s, ps in pools.items()}, indent=1, sort_keys=True))
    return out


def read_categories(jsonl_path: str | Path) -> dict[str, list[Phrase]]:
    """The negative-phrase pools next to a JSONL file ({} when there is none)."""
    p = categories_path(jsonl_path)
    if not p.exists():
        return {}
    pools = json.loads(p.read_text())
    return {s: [Phrase(c["text"], bool(c.get("stuff", False))) for c in cs] for s, cs in pools.items()}
