"""Caption scores against the reference captions. Two, reported separately:
  BLEU-4: corpus-level (Papineni et al. 2002): clipped 1..4-gram precisions against all references of an image,
          geometric mean, brevity penalty with the closest reference length; no smoothing.
  token F1: per image the best unigram-overlap F1 against any reference (SQuAD-style bag of words), averaged.
And caption content against the image's annotations: F1 between the category names a caption names (a name or its
plural as words) and the categories present, over all (image, category) pairs, things and stuff apart. Templated
references make BLEU easy; content says whether the caption looked at the image.
Tokens are lower-cased words (mvp_lm.data.captions.words)."""
from __future__ import annotations

import math
from collections import Counter

from ..data.captions import words


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def bleu4(hypotheses: list[str], references: list[list[str]]) -> float:
    matches, totals = [0] * 4, [0] * 4
    hyp_len = ref_len = 0
    for hyp, refs in zip(hypotheses, references):
        h = words(hyp)
        rs = [words(r) for r in refs]
        hyp_len += len(h)
        ref_len += min((abs(len(r) - len(h)), len(r)) for r in rs)[1] if rs else 0
        for n in range(1, 5):
            counts = _ngrams(h, n)
            max_ref = Counter()
            for r in rs:
                max_ref |= _ngrams(r, n)
            matches[n - 1] += sum(min(c, max_ref[g]) for g, c in counts.items())
            totals[n - 1] += max(len(h) - n + 1, 0)
    if hyp_len == 0 or min(matches) == 0:
        return 0.0
    log_p = sum(math.log(m / t) for m, t in zip(matches, totals)) / 4
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return 100 * bp * math.exp(log_p)


def token_f1(hypothesis: str, references: list[str]) -> float:
    h = Counter(words(hypothesis))
    best = 0.0
    for r in references:
        rc = Counter(words(r))
        common = sum((h & rc).values())
        if common:
            p, rec = common / sum(h.values()), common / sum(rc.values())
            best = max(best, 2 * p * rec / (p + rec))
    return 100 * best


def caption_scores(hypotheses: list[str], references: list[list[str]]) -> dict[str, float]:
    if not hypotheses:
        return {}
    return {"BLEU-4": bleu4(hypotheses, references),
            "token_F1": sum(token_f1(h, r) for h, r in zip(hypotheses, references)) / len(hypotheses),
            "num": len(hypotheses)}


def named_categories(caption: str, names: list[str]) -> set[str]:
    """The category names (one-word or multi-word) that the caption names, singular or plural."""
    text = f" {' '.join(words(caption))} "
    return {n for n in names if any(f" {form} " in text for form in (n, n + "s", n + "es"))}


def content_f1(captions: list[str], present: list[set[str]], names: list[str]) -> float:
    """Micro F1 (percent) of named vs present categories over all (image, category) pairs."""
    tp = fp = fn = 0
    for caption, gt in zip(captions, present):
        named = named_categories(caption, names)
        tp, fp, fn = tp + len(named & gt), fp + len(named - gt), fn + len(gt - named)
    return 100 * 2 * tp / max(2 * tp + fp + fn, 1)
