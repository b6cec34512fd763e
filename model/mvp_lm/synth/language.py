"""Referring expressions and captions for a synthetic scene, with the set of things each expression denotes
computed from the scene itself (so "unique", "several" and "none" are true by construction)."""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .scene import Scene, Thing
from .vocab import COLOURS, NUMBER_WORDS, PLURAL, SHAPES, SIZES

RELATIONS = {"left of": lambda o, a, m: o.cx < a.cx - m, "right of": lambda o, a, m: o.cx > a.cx + m,
             "above": lambda o, a, m: o.cy < a.cy - m, "below": lambda o, a, m: o.cy > a.cy + m}
EXTREMES = {"left": lambda t: t.cx, "right": lambda t: -t.cx, "top": lambda t: t.cy, "bottom": lambda t: -t.cy}
STUFF_PREPOSITION = {"sky": "in the sky", "water": "in the water", "grass": "on the grass", "sand": "on the sand",
                     "wall": "in front of the wall"}


# The expression kinds the generator writes, for per-kind metrics and curricula; `expression_kind` reads them back.
EXPRESSION_KINDS = ("attribute", "position", "stuff", "relation")


def expression_kind(text: str) -> str:
    """Which template of `expressions` wrote `text`: a relation to another thing ("... left of the square"), a
    stuff region ("... on the grass"), an absolute position ("... on the left", "the topmost ..."), or attributes
    alone ("the red circle", "all squares", "the two stars")."""
    padded = f" {text} "
    if any(f" {rel} the " in padded for rel in RELATIONS):
        return "relation"
    if any(padded.endswith(f" {p} ") for p in STUFF_PREPOSITION.values()):
        return "stuff"
    if any(padded.endswith(f" on the {side} ") or f" {side}most " in padded for side in EXTREMES):
        return "position"
    return "attribute"


@dataclass(frozen=True)
class Desc:
    size: str | None
    colour: str | None
    shape: str | None

    def matches(self, t: Thing) -> bool:
        return all(v is None or v == getattr(t, k) for k, v in (("size", self.size), ("colour", self.colour),
                                                                   ("shape", self.shape)))

    def text(self, plural: bool = False) -> str:
        noun = self.shape or "shape"
        return " ".join(w for w in (self.size, self.colour, PLURAL.get(noun, noun + "s") if plural else noun) if w)

    @property
    def length(self) -> int:
        return sum(v is not None for v in (self.size, self.colour, self.shape))


@dataclass(frozen=True)
class Expression:
    text: str
    targets: tuple[int, ...]   # indices into scene.things; () = no target


def all_descs() -> list[Desc]:
    return [Desc(s, c, sh) for s, c, sh in itertools.product((None, *SIZES), (None, *COLOURS), (None, *SHAPES))]


def expressions(scene: Scene, size: int) -> list[Expression]:
    """Every expression this scene supports, with its true target set."""
    things = scene.things
    out: list[Expression] = []

    def add(text: str, idx) -> None:
        out.append(Expression(text, tuple(sorted(idx))))

    match = {d: [i for i, t in enumerate(things) if d.matches(t)] for d in all_descs()}
    present_colours = {t.colour for t in things}
    present_shapes = {t.shape for t in things}
    unique_anchor = {}
    for d, m in match.items():
        if len(m) == 1:
            add(f"the {d.text()}", m)
            if m[0] not in unique_anchor or d.length < unique_anchor[m[0]].length:
                unique_anchor[m[0]] = d
        elif len(m) >= 2:
            add(f"all {d.text(True)}", m)
            if len(m) < len(NUMBER_WORDS):
                add(f"the {NUMBER_WORDS[len(m)]} {d.text(True)}", m)
            for side, key in EXTREMES.items():
                ranked = sorted(m, key=lambda i: key(things[i]))
                if key(things[ranked[1]]) - key(things[ranked[0]]) > 0.12 * size:
                    add(f"the {d.text()} on the {side}" if len(m) == 2 else f"the {side}most {d.text()}",
                        ranked[:1])
        elif d.colour and d.shape and d.size is None and (d.colour in present_colours or d.shape in present_shapes):
            add(f"the {d.text()}", [])   # plausible but absent: a no-target expression
    margin = 0.05 * size
    for a, ad in unique_anchor.items():
        for d, m in match.items():
            if d.length > 2 or not m:
                continue
            cands = [i for i in m if i != a]
            if not cands:
                continue
            for rel, holds in RELATIONS.items():
                add(f"the {d.text()} {rel} the {ad.text()}", [i for i in cands if holds(things[i], things[a], margin)])
    for stuff in scene.stuff:
        for d, m in match.items():
            share = [scene.region_share(things[i], stuff) for i in m]
            # Things straddling a border make "on the grass" ambiguous: such expressions are not generated.
            if m and d.length <= 2 and all(s >= 0.8 or s <= 0.2 for s in share):
                add(f"the {d.text()} {STUFF_PREPOSITION[stuff]}", [i for i, s in zip(m, share) if s >= 0.8])
    return out


def pick_refs(exprs: list[Expression], n_things: int, rng: np.random.Generator, max_sentences: int = 3):
    """RefCOCO style: per thing with a unique expression, 1..max_sentences distinct sentences."""
    refs = []
    for i in range(n_things):
        texts = sorted({e.text for e in exprs if e.targets == (i,)})
        if texts:
            k = int(rng.integers(1, min(max_sentences, len(texts)) + 1))
            refs.append((i, [texts[j] for j in rng.choice(len(texts), k, replace=False)]))
    return refs


def pick_grefs(exprs: list[Expression], rng: np.random.Generator, multi: int = 2, single: int = 1, none: int = 1):
    """gRefCOCO style: a few multi-target, single-target and no-target expressions."""
    groups = {"multi": [e for e in exprs if len(e.targets) >= 2], "single": [e for e in exprs if len(e.targets) == 1],
              "none": [e for e in exprs if not e.targets]}
    chosen = []
    for kind, n in (("multi", multi), ("single", single), ("none", none)):
        g = sorted(set(groups[kind]), key=lambda e: e.text)
        chosen += [g[j] for j in rng.choice(len(g), min(n, len(g)), replace=False)]
    return chosen


def _listing(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def captions(scene: Scene, size: int, rng: np.random.Generator) -> list[str]:
    """Four captions in different styles (inventory, spatial, counting, short), like the paper's four captioners.
    Sometimes one carries a hedging sentence, which the converters' caption cleaning must remove.
    A scene always has at least one thing and one visible stuff region."""
    things = scene.things
    stuff = _listing(list(scene.stuff))
    inventory = f"A picture of {_listing([_a(f'{t.size} {t.colour} {t.shape}') for t in things])} over {stuff}."
    spatial = []
    for t in things:
        h = "left" if t.cx < size / 3 else "right" if t.cx > 2 * size / 3 else "center"
        v = "top" if t.cy < size / 3 else "bottom" if t.cy > 2 * size / 3 else "middle"
        spatial.append(f"{_a(t.colour)} {t.shape} at the {v} {h}" if (v, h) != ("middle", "center")
                       else f"{_a(t.colour)} {t.shape} in the center")
    spatial_caption = f"{_listing(spatial).capitalize()}, with {stuff} behind."
    counts = {s: sum(t.shape == s for t in things) for s in SHAPES}
    parts = [f"{NUMBER_WORDS[c]} {PLURAL[s] if c > 1 else s}" for s, c in counts.items() if c]
    counting = (f"There {'is' if len(things) == 1 else 'are'} {NUMBER_WORDS[len(things)]} "
                f"shape{'' if len(things) == 1 else 's'}: {_listing(parts)}. The background shows {stuff}.")
    short = f"Colorful shapes on {list(scene.stuff)[-1]}."
    caps = [inventory, spatial_caption, counting, short]
    if rng.random() < 0.3:
        j = int(rng.integers(len(caps)))
        caps[j] += " " + ["It might be a children's drawing.", "This may indicate a toy box.",
                          "The colours imply a playful mood."][int(rng.integers(3))]
    return caps
