"""Starting MVP-LM from pretrained parts: a Hugging Face Phi directory (`--init-llm`) and a Swin checkpoint
(`--init-vision`), for `mvp_lm.train` and `mvp_lm.export` alike.

The LLM directory brings its tokenizer: the bundle's tokenizer is that `tokenizer.json` plus the special tokens
MVP-LM needs (`<image>`, `<PER>`, `[SEG]`; `<|endoftext|>` where it lacks it), appended after its own ids. Their
embedding and LM-head rows (weight and bias) start at the mean of the rows of the tokenizer's own ids, the usual
initialisation for added tokens (a new row then behaves like an average token instead of a random one). When the
checkpoint's table is too small for them, the table grows; Phi-1.5 has 51,200 rows for 50,295 ids, so it does not.
`config.json` must agree with the preset on every field the architecture reads (`PHI_CONFIG_FIELDS`).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import AddedToken, Tokenizer

from .config import MVPLMConfig
from .model import MVPLM
from .tokenizer import SPECIAL_TOKENS, load_tokenizer
from .weights import WeightLoadError, load_state_dict_strict, load_swin, read_hf_phi

# Hugging Face PhiConfig key -> our PhiConfig field (same meaning)
PHI_CONFIG_FIELDS = {"hidden_size": "hidden_size", "intermediate_size": "intermediate_size",
                     "num_hidden_layers": "num_hidden_layers", "num_attention_heads": "num_attention_heads",
                     "partial_rotary_factor": "partial_rotary_factor", "rope_theta": "rope_theta",
                     "layer_norm_eps": "layer_norm_eps"}
_EMBED, _HEAD = "model.embed_tokens.weight", ("lm_head.weight", "lm_head.bias")


@dataclass(frozen=True)
class Pretrained:
    llm: Path | None = None  # Hugging Face Phi directory
    vision: Path | None = None  # Swin checkpoint file (official, timm or transformers layout)
    strict: bool = True  # False: tensors the model has no place for are skipped (and named), not an error

    @staticmethod
    def of(llm: str | None, vision: str | None, strict: bool = True) -> "Pretrained | None":
        return Pretrained(Path(llm) if llm else None, Path(vision) if vision else None, strict) if llm or vision else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--init-llm, --init-vision and --strict, which mvp_lm.train and mvp_lm.export share."""
    parser.add_argument("--init-llm", metavar="PHI_DIR",
                        help="start the LLM from a Hugging Face Phi directory (config.json checked against the preset); "
                             "its tokenizer plus MVP-LM's special tokens becomes the run's (or the bundle's)")
    parser.add_argument("--init-vision", metavar="SWIN_FILE",
                        help="start the image encoder from a Swin checkpoint (official, timm or transformers layout)")
    parser.add_argument("--strict", action=argparse.BooleanOptionalAction, default=True,
                        help="--no-strict: skip pretrained tensors the model has no place for instead of failing")


def _hf_config(directory: Path) -> dict:
    path = directory / "config.json"
    if not path.is_file():
        raise WeightLoadError(f"{directory}: no config.json (a Hugging Face Phi directory has one)")
    return json.loads(path.read_text())


def tokenizer(directory: Path) -> tuple[Tokenizer, range]:
    """The Phi directory's tokenizer with MVP-LM's special tokens appended, and the ids they got."""
    path = directory / "tokenizer.json"
    if not path.is_file():
        raise WeightLoadError(f"{directory}: no tokenizer.json")
    tok = load_tokenizer(path)
    base = tok.get_vocab_size(with_added_tokens=True)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t in SPECIAL_TOKENS if tok.token_to_id(t) is None])
    return tok, range(base, tok.get_vocab_size(with_added_tokens=True))


def config(cfg: MVPLMConfig, pre: Pretrained, tok: Tokenizer) -> MVPLMConfig:
    """The preset with the LLM's embedding table size (at least the tokenizer's); raises naming every field of
    config.json that disagrees with the preset."""
    if pre.llm is None:
        return cfg
    hf = _hf_config(pre.llm)
    wrong = [f"{k} {hf[k]!r} (preset {getattr(cfg.phi, ours)!r})" for k, ours in PHI_CONFIG_FIELDS.items()
             if k in hf and hf[k] != getattr(cfg.phi, ours)]
    if hf.get("num_key_value_heads") not in (None, cfg.phi.num_attention_heads):
        wrong.append(f"num_key_value_heads {hf['num_key_value_heads']} (the preset has no grouped-query attention)")
    if wrong:
        raise WeightLoadError(f"{pre.llm / 'config.json'} does not fit the preset: {', '.join(wrong)}")
    rows = max(int(hf.get("vocab_size", cfg.phi.vocab_size)), tok.get_vocab_size(with_added_tokens=True))
    return dataclasses.replace(cfg, phi=dataclasses.replace(cfg.phi, vocab_size=rows))


def _with_added_rows(state: dict, rows: int, added: range) -> dict:
    """Embedding and LM-head tables grown to `rows`; the `added` ids' rows set to the mean of the rows before
    them (the tokenizer's own ids)."""
    out = dict(state)
    for key in (_EMBED, *_HEAD):
        if key not in out:
            continue
        t = out[key]
        if t.shape[0] < rows:
            t = torch.cat([t, t.new_zeros((rows - t.shape[0], *t.shape[1:]))])
        else:
            t = t.clone()
        t[added.start:added.stop] = t[:added.start].mean(0)
        out[key] = t
    return out


def initialise(model: MVPLM, pre: Pretrained, added: range | None = None, log=print) -> None:
    """Loads the pretrained parts into `model` (built with `config(...)`); `added`: the ids `tokenizer(...)`
    appended (range(size before, size after))."""
    if pre.llm is not None:
        state = read_hf_phi(pre.llm)
        if added:
            state = _with_added_rows(state, model.config.phi.vocab_size, added)
        load_state_dict_strict(model.phi, state, f"{pre.llm} (Hugging Face Phi)", strict=pre.strict, log=log)
        log(f"[init] LLM from {pre.llm}" + (f" (rows of the added ids {added.start}..{added.stop - 1} set to the "
                                             "mean of the rows before them)" if added else ""))
    if pre.vision is not None:
        kept = load_swin(model, pre.vision, strict=pre.strict, log=log)
        log(f"[init] Swin from {pre.vision}" + (f"; kept initial values of {', '.join(kept)}" if kept else ""))
