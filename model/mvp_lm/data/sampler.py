"""Per-iteration materialisation of an SFT record into one training sample (paper §3.2, "Randomness in Training
Pairs"): negatives drawn from the absent categories, the phrase list shuffled, one caption picked at random,
targets remapped to the shuffled phrase order. The trainer turns a Sample into token ids with
mvp_lm.prompt.build_training_ids (phrases, sentence, caption); the text properties below render the same
"paper" templates for people and logs."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..prompt import TEMPLATES
from .record import Phrase, Record, Target

_T = TEMPLATES["paper"]
WORD_TASK_DESCRIPTION = _T["word_task"].strip()
SENTENCE_TASK_DESCRIPTION = _T["sentence_task"].strip()
PER_TOKEN = "<PER>"


@dataclass
class Sample:
    record_id: str
    image: str
    height: int
    width: int
    kind: str
    task: str
    task_description: str
    phrases: list[Phrase]          # in prompt order; for words: positives and negatives, shuffled
    targets: list[Target]          # phrase_index refers to `phrases`
    caption: str | None            # None: the no-caption response

    @property
    def instruction(self) -> str:
        """The phrase list (words) or the expression (sentence), as it appears in the prompt."""
        return _T["phrase_separator"].join(p.text for p in self.phrases)

    @property
    def prompt_text(self) -> str:
        return f"{self.task_description} {self.instruction}"

    @property
    def response(self) -> str:
        return response_text(self.caption)


def response_text(caption: str | None) -> str:
    """"[caption]. The perception result is <PER>", or "The perception result is <PER>" without a caption."""
    if caption is None:
        return f"{_T['no_caption_response']} {PER_TOKEN}"
    return f"{caption.strip().rstrip('.').strip()}{_T['response_marker']} {PER_TOKEN}"


@dataclass
class SamplerConfig:
    max_phrases: int = 64          # positives + negatives in one prompt (keeps the prompt within the context)
    max_negatives: int = 32        # the number of negatives is drawn uniformly from 0..min(this, room, absent)
    caption_prob: float = 1.0      # probability of the caption response when the record has captions
    shuffle: bool = True


class Sampler:
    def __init__(self, pools: dict[str, list[Phrase]] | None = None, config: SamplerConfig | None = None):
        self.pools = pools or {}
        self.config = config or SamplerConfig()

    def sample(self, record: Record, rng: np.random.Generator) -> Sample:
        cfg = self.config
        phrases = list(record.phrases)
        if record.kind == "words":
            # Positives beyond the prompt budget are dropped together with their targets.
            keep = sorted(rng.choice(len(phrases), cfg.max_phrases, replace=False)) \
                if len(phrases) > cfg.max_phrases else list(range(len(phrases)))
            old_to_kept = {old: new for new, old in enumerate(keep)}
            phrases = [phrases[i] for i in keep]
            targets = [Target(old_to_kept[t.phrase_index], t.box, t.segmentation, t.is_stuff)
                       for t in record.targets if t.phrase_index in old_to_kept]
            phrases += self._negatives(record, phrases, rng)
            description = WORD_TASK_DESCRIPTION
        else:
            targets = list(record.targets)
            description = SENTENCE_TASK_DESCRIPTION
        order = rng.permutation(len(phrases)) if cfg.shuffle and len(phrases) > 1 else np.arange(len(phrases))
        new_index = {int(old): new for new, old in enumerate(order)}
        phrases = [phrases[int(i)] for i in order]
        targets = [Target(new_index[t.phrase_index], t.box, t.segmentation, t.is_stuff) for t in targets]
        caption = None
        if record.captions and rng.random() < cfg.caption_prob:
            caption = record.captions[int(rng.integers(len(record.captions)))]
        return Sample(record.id, record.image, record.height, record.width, record.kind, record.task,
                      description, phrases, targets, caption)

    def _negatives(self, record: Record, positives: list[Phrase], rng: np.random.Generator) -> list[Phrase]:
        present = {p.text.lower() for p in record.phrases}
        absent = [p for p in self.pools.get(record.source, []) if p.text.lower() not in present]
        room = min(self.config.max_negatives, self.config.max_phrases - len(positives), len(absent))
        if room <= 0:
            return []
        n = int(rng.integers(0, room + 1))
        return [absent[int(i)] for i in rng.choice(len(absent), n, replace=False)]
