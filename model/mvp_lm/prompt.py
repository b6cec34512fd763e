"""Prompt templates per variant and the exact id/span builder of BUNDLE.md ("The language side").

Every text piece is encoded on its own with `tok.encode(piece, add_special_tokens=False)` and the id lists are
concatenated, so phrase spans are exact and the TypeScript worker can reproduce them piece by piece.

Positions: `input_ids` holds ONE image placeholder (`tokens.image`) at `image_index`; the LLM sees that row replaced
by `num_image_tokens` rows of `image_embeds` (see `splice_image`). Everything named a *position* or a *span* below
is in that spliced sequence (length `seq_len`); `spliced_position(i)` converts an `input_ids` index.

Training (the model-train helper calls this):

    build_training_ids(tok, spec, *, phrases=None, sentence=None, caption=None) -> TrainingIds
        phrases: list[str] for a word sample (background is appended), or sentence: str for a sentence sample.
        caption: str, or None for a caption-off sample ("The perception result is <PER>").
      TrainingIds.input_ids     list[int]  prompt + response ids, one image placeholder
      TrainingIds.image_index   int        index of the placeholder in input_ids
      TrainingIds.labels        list[int]  length seq_len (spliced), HF style (NOT shifted: logits at j-1 predict
                                           labels[j]); -100 everywhere except a caption response (caption, marker, <PER>);
                                           all -100 for a caption-off sample (its response is fed, not generated)
      TrainingIds.phrase_spans  list[(start, end)]  spliced, end exclusive, one per phrase (background last)
      TrainingIds.per_position  int | None spliced position of <PER> (None in released-code: no response)
      TrainingIds.seq_len       int
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from tokenizers import Tokenizer

from .config import VARIANTS

TEMPLATES: dict[str, dict[str, str]] = {
    "paper": {
        "prefix": "A chat between a user and a visual assistant that first describes an image and then perceives "
                  "the objects in it.\nUSER: This is an image: ",
        "word_task": "\nPlease identify all objects according to the given phrase list. "
                     "This is all the candidate phrases: ",
        "sentence_task": "\nPlease identify the target according to the following instruction: ",
        "phrase_separator": ", ",
        "background_phrase": "background",
        "suffix": "\nASSISTANT:",
        "response_marker": ". The perception result is",
        "no_caption_response": "The perception result is",
    },
    # After the authors' code (PSALM-style LLaMA-2 chat). No response is generated in this variant.
    "released-code": {
        "prefix": "[INST] <<SYS>>\nYou are a helpful assistant that segments images.\n<</SYS>>\n\nThis is an image ",
        "word_task": ", Please do Segmentation.\nThis is all the candidate categories: ",
        "sentence_task": ", Please do Referring Segmentation.\nThis is the instruction: ",
        "phrase_separator": ", ",
        "background_phrase": "background",
        "suffix": "\n [/INST]",
        "response_marker": "",
        "no_caption_response": "",
    },
}


@dataclass(frozen=True)
class PromptSpec:
    """What the builder needs from a manifest: variant, `templates`, `tokens`, `dims.num_image_tokens`."""

    variant: str
    templates: dict[str, str]
    tokens: dict[str, int | None]  # image, per, seg (None in paper), eos, pad
    num_image_tokens: int

    @classmethod
    def from_manifest(cls, manifest: dict) -> "PromptSpec":
        return cls(manifest["variant"], manifest["templates"], manifest["tokens"],
                   manifest["dims"]["num_image_tokens"])


def token_ids(tok: Tokenizer, variant: str) -> dict[str, int | None]:
    """The manifest `tokens` section for a tokenizer with our special tokens."""
    ids = {"image": "<image>", "per": "<PER>", "seg": "[SEG]", "eos": "<|endoftext|>", "pad": "<|endoftext|>"}
    out = {}
    for key, text in ids.items():
        out[key] = tok.token_to_id(text)
        if out[key] is None:
            raise ValueError(f"tokenizer has no token {text!r} (tokens.{key})")
    if variant == "paper":
        out["seg"] = None
    return out


def default_spec(tok: Tokenizer, variant: str, num_image_tokens: int) -> PromptSpec:
    if variant not in TEMPLATES:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    return PromptSpec(variant, dict(TEMPLATES[variant]), token_ids(tok, variant), num_image_tokens)


@dataclass
class Prompt:
    input_ids: list[int]
    image_index: int
    phrase_spans: list[tuple[int, int]]
    phrases: list[str]  # in span order; for word prompts with background the last one is the background phrase
    num_image_tokens: int

    @property
    def seq_len(self) -> int:
        return len(self.input_ids) - 1 + self.num_image_tokens

    def spliced_position(self, index: int) -> int:
        if index == self.image_index:
            raise ValueError("the image placeholder has no single spliced position")
        return index if index < self.image_index else index + self.num_image_tokens - 1


@dataclass
class TrainingIds:
    input_ids: list[int]
    image_index: int
    labels: list[int]
    phrase_spans: list[tuple[int, int]]
    per_position: int | None
    seq_len: int


def _encode(tok: Tokenizer, text: str) -> list[int]:
    return tok.encode(text, add_special_tokens=False).ids if text else []


def _check_user_text(tok: Tokenizer, text: str, what: str) -> None:
    # A user phrase containing e.g. "<image>" would otherwise be encoded as the special token itself.
    for added in tok.get_added_tokens_decoder().values():
        if added.content in text:
            raise ValueError(f"{what} {text!r} contains the reserved token text {added.content!r}")


def build_prompt(tok: Tokenizer, spec: PromptSpec, *, phrases: list[str] | None = None,
                 sentence: str | None = None, background: bool = True) -> Prompt:
    """Prompt ids and phrase spans for one word prompt (`phrases`, background appended when `background`) or one
    sentence prompt (`sentence`, one span)."""
    if (phrases is None) == (sentence is None):
        raise ValueError("give exactly one of phrases or sentence")
    t = spec.templates
    ids = _encode(tok, t["prefix"])
    image_index = len(ids)
    ids.append(spec.tokens["image"])
    shift = spec.num_image_tokens - 1
    spans: list[tuple[int, int]] = []

    def add_span(text: str, with_seg: bool) -> None:
        start = len(ids)
        ids.extend(_encode(tok, text))
        if with_seg:
            ids.append(spec.tokens["seg"])
        if len(ids) == start:
            raise ValueError(f"phrase {text!r} encodes to no tokens")
        spans.append((start + shift, len(ids) + shift))

    seg = spec.variant == "released-code"
    if sentence is not None:
        _check_user_text(tok, sentence, "sentence")
        ids.extend(_encode(tok, t["sentence_task"]))
        add_span(sentence, with_seg=seg)
        texts = [sentence]
    else:
        if not phrases:
            raise ValueError("phrases is empty")
        for p in phrases:
            _check_user_text(tok, p, "phrase")
        texts = list(phrases) + ([t["background_phrase"]] if background else [])
        ids.extend(_encode(tok, t["word_task"]))
        for i, text in enumerate(texts):
            if i:
                ids.extend(_encode(tok, t["phrase_separator"]))
            add_span(text, with_seg=seg)
    ids.extend(_encode(tok, t["suffix"]))
    return Prompt(ids, image_index, spans, texts, spec.num_image_tokens)


def build_word_prompts(tok: Tokenizer, spec: PromptSpec, phrases: list[str], chunk_size: int) -> list[Prompt]:
    """One prompt per chunk of `chunk_size` phrases; only the last chunk carries the background phrase."""
    if chunk_size < 1:
        raise ValueError(f"vocab_chunk_size must be >= 1, got {chunk_size}")
    chunks = [phrases[i:i + chunk_size] for i in range(0, len(phrases), chunk_size)]
    return [build_prompt(tok, spec, phrases=c, background=(i == len(chunks) - 1)) for i, c in enumerate(chunks)]


def response_tail_ids(tok: Tokenizer, spec: PromptSpec) -> list[int]:
    """Fed when greedy decoding stopped without <PER>: the marker ids, then <PER>."""
    return _encode(tok, spec.templates["response_marker"]) + [spec.tokens["per"]]


def no_caption_ids(tok: Tokenizer, spec: PromptSpec) -> list[int]:
    """Fed right after the prompt when no caption is wanted."""
    return _encode(tok, spec.templates["no_caption_response"]) + [spec.tokens["per"]]


def caption_from_ids(tok: Tokenizer, spec: PromptSpec, generated: list[int]) -> str:
    """Decoded text of the generated ids, cut before the response marker, trimmed."""
    text = tok.decode(generated, skip_special_tokens=True)
    marker = spec.templates["response_marker"]
    if marker and marker in text:
        text = text[: text.index(marker)]
    return text.strip()


def splice_image(embeds: torch.Tensor, image_embeds: torch.Tensor, image_index: int) -> torch.Tensor:
    """[B,T,H] token embeddings with row `image_index` replaced by the [B,N,H] image embeddings -> [B,T-1+N,H]."""
    return torch.cat([embeds[:, :image_index], image_embeds.to(embeds.dtype), embeds[:, image_index + 1:]], dim=1)


def build_training_ids(tok: Tokenizer, spec: PromptSpec, *, phrases: list[str] | None = None,
                       sentence: str | None = None, caption: str | None = None) -> TrainingIds:
    """Prompt + response ids with the label mask on the response (see the module docstring)."""
    prompt = build_prompt(tok, spec, phrases=phrases, sentence=sentence)
    response: list[int] = []
    if spec.variant == "paper":
        if caption is None:
            response = no_caption_ids(tok, spec)
        else:
            text = caption.strip().rstrip(".").strip()
            _check_user_text(tok, text, "caption")
            response = _encode(tok, text) + response_tail_ids(tok, spec)
    ids = prompt.input_ids + response
    seq_len = prompt.seq_len + len(response)
    # A caption-off response is fed, never generated: no LM loss on it, or the most frequent response in a mixed
    # run becomes what greedy decoding writes instead of a caption.
    labels = [-100] * prompt.seq_len + (response if caption is not None else [-100] * len(response))
    per_position = seq_len - 1 if response else None
    return TrainingIds(ids, prompt.image_index, labels, prompt.phrase_spans, per_position, seq_len)
