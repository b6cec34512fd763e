"""Caption cleaning (paper §3.2, "Data Refinement"): drop sentences with hedging words, then reject captions that
are too short, too long, or of too low information entropy (repetitive, degenerate generations)."""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

HEDGING_WORDS = frozenset({
    "indicate", "indicates", "indicating", "indicated", "suggest", "suggests", "suggesting", "suggested",
    "might", "may", "maybe", "perhaps", "possibly", "possible", "probably", "likely", "imply", "implies",
    "implying", "implied", "seem", "seems", "seemingly", "appear", "appears", "could",
})

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[a-z0-9']+")


@dataclass(frozen=True)
class CaptionFilter:
    """Paper §3.2 filters meaningless captions by length and information entropy without giving thresholds. These
    reject four-word templates such as "Colorful shapes on grass." (4 words, 2.0 bits), which name nothing in the
    image and are what an image-blind language model learns first, and keep short real captions ("Two people fly
    a kite.": 5 words, 2.32 bits)."""
    min_words: int = 5
    max_words: int = 80
    min_entropy_bits: float = 2.3   # Shannon entropy of the caption's word distribution


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def word_entropy(text: str) -> float:
    counts = Counter(words(text))
    total = sum(counts.values())
    return -sum(c / total * math.log2(c / total) for c in counts.values()) if total else 0.0


def clean_caption(text: str, f: CaptionFilter = CaptionFilter()) -> str | None:
    """The caption without hedging sentences, or None when what remains fails the length/entropy filters."""
    kept = [s.strip() for s in _SENTENCE_END.split(text.strip())
            if s.strip() and not HEDGING_WORDS.intersection(words(s))]
    cleaned = " ".join(kept)
    n = len(words(cleaned))
    if n < f.min_words or n > f.max_words or word_entropy(cleaned) < f.min_entropy_bits:
        return None
    return cleaned


def clean_captions(texts: list[str], f: CaptionFilter = CaptionFilter()) -> list[str]:
    """Cleaned captions in their original order, without failures and duplicates."""
    out: list[str] = []
    for t in texts:
        c = clean_caption(t, f)
        if c is not None and c not in out:
            out.append(c)
    return out
