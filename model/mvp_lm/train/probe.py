"""Probes of a model under training, in PyTorch: what a referring sentence picks, what the LLM carries at <PER>, and
the caption it writes. The learnability tests (model/tests/test_learnability.py) and training diagnostics use them;
the served numbers come from the exported bundle through mvp_lm.reference and mvp_lm.eval.

A pick is the first-K query with the best sigmoid(score) × mean mask probability inside its mask (the serving rule
for a single-target sentence, postprocess.py), computed at mask resolution in the padded frame; it is correct when
that query's box has IoU ≥ 0.5 with the target's (REC Acc@0.5).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer
from torch import Tensor

from ..data.sampler import Sample
from ..model import MVPLM
from ..prompt import PromptSpec, build_prompt, caption_from_ids, splice_image
from .boxes import box_iou, cxcywh_to_xyxy
from .collate import collate, make_item
from .step import perception_inputs, vision_and_language


@dataclass
class SentenceProbe:
    boxes: Tensor  # [N,4] the picked queries' boxes, cxcywh in the padded frame (compare picks by box: the query
    # selection depends on the sentence, so one query index names different objects for different sentences)
    correct: list[bool]  # the picked box overlaps the (single) target box with IoU >= 0.5
    per_hidden: Tensor  # [N,H] LLM state at <PER> (paper variant; zeros otherwise)

    @property
    def accuracy(self) -> float:
        return 100.0 * sum(self.correct) / max(len(self.correct), 1)


@torch.no_grad()
def probe_sentences(model: MVPLM, samples: list[Sample], image_root: str | Path, tok: Tokenizer,
                    spec: PromptSpec) -> SentenceProbe:
    """Run each single-target sentence sample (caption-off response) and report its pick."""
    was_training = model.training
    model.eval()
    k = model.config.decoder.num_queries
    boxes, correct, per = [], [], []
    try:
        for sample in samples:
            batch = collate([make_item(sample, image_root, tok, spec, model.config)], spec.tokens["pad"])
            vision, llm = vision_and_language(model, batch)
            text, per_hidden = perception_inputs(model, batch, llm, 0)
            out = model.perceive(vision, text, True, per_hidden)
            score = out["pred_logits"][0, :k, 0].sigmoid()
            logits = out["pred_masks"][0, :k].flatten(1)
            inside = logits > 0
            mean_prob = (logits.sigmoid() * inside).sum(1) / inside.sum(1).clamp(min=1)
            box = out["pred_boxes"][0, int((score * mean_prob).argmax())]
            boxes.append(box)
            target = batch.targets[0].boxes
            iou = box_iou(cxcywh_to_xyxy(box[None]), cxcywh_to_xyxy(target[:1]))
            correct.append(len(target) == 1 and float(iou) >= 0.5)
            per.append(per_hidden[0] if per_hidden is not None else torch.zeros(model.config.phi.hidden_size))
    finally:
        model.train(was_training)
    return SentenceProbe(torch.stack(boxes), correct, torch.stack(per))


@torch.no_grad()
def greedy_caption(model: MVPLM, sample: Sample, image_root: str | Path, tok: Tokenizer, spec: PromptSpec,
                   max_new_tokens: int = 64) -> tuple[str, Tensor]:
    """The caption greedy decoding writes for the sample's image and instruction, and the logits of its first
    token [V]. Re-runs the whole sequence per token (no cache): probes are short."""
    was_training = model.training
    model.eval()
    try:
        item = make_item(sample, image_root, tok, spec, model.config)
        vision = model.encode_image(item.pixel_values[None])
        texts = [p.text for p in sample.phrases]
        prompt = (build_prompt(tok, spec, phrases=texts) if sample.kind == "words"
                  else build_prompt(tok, spec, sentence=texts[0]))
        ids, generated, first = list(prompt.input_ids), [], None
        while len(generated) < max_new_tokens:
            embeds = splice_image(model.embed_tokens(torch.tensor([ids])), vision["image_embeds"], prompt.image_index)
            n = embeds.shape[1]
            logits = model.llm(embeds, torch.ones(1, n, dtype=torch.int64), torch.arange(n)[None])["logits"][0, -1]
            first = logits if first is None else first
            nxt = int(logits.argmax())
            if nxt in (spec.tokens["per"], spec.tokens["eos"]):
                break
            generated.append(nxt)
            ids.append(nxt)
    finally:
        model.train(was_training)
    return caption_from_ids(tok, spec, generated), first
