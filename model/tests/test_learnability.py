"""Learnability: can the tiny config learn to ground a sentence and to caption an image at all?

The shipped demo model once picked random objects for every sentence and wrote one caption for every image, while
its word tasks worked. These tests would have caught that in minutes instead of an hour of training:
- the path is alive: the sentence loss reaches the LLM and the sentence projector; the image reaches the LLM's
  state at <PER> and the caption logits; the sentence changes the chosen query;
- overfit: 1,200 steps on 16 synthetic images with colour-only and shape-only single-target sentences
  reach >= 95 % REC Acc@0.5 on those sentences, and the captions written for those images name their shapes.
"""
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch

from mvp_lm.config import tiny
from mvp_lm.data.convert.common import load_captions
from mvp_lm.data.masks import xywh_to_xyxy
from mvp_lm.data.record import Phrase, Record, Target, write_categories, write_jsonl
from mvp_lm.data.sampler import Sampler, SamplerConfig
from mvp_lm.eval.captions import content_f1
from mvp_lm.model import MVPLM
from mvp_lm.prompt import default_spec
from mvp_lm.synth.vocab import SHAPES
from mvp_lm.synth.writer import generate
from mvp_lm.tokenizer import train_tokenizer
from mvp_lm.train.__main__ import parse_args
from mvp_lm.train.boxes import box_iou, cxcywh_to_xyxy
from mvp_lm.train.collate import collate, make_item
from mvp_lm.train.loop import train
from mvp_lm.train.losses import SetCriterion
from mvp_lm.train.probe import greedy_caption, probe_sentences
from mvp_lm.train.step import TrainingStep, perception_inputs, vision_and_language

NUM_IMAGES = 16
OVERFIT_STEPS = 1200


def _instances(root: Path) -> tuple[dict[int, dict], dict[int, list[dict]], dict[int, str]]:
    instances = json.loads((root / "refcoco" / "instances.json").read_text())
    by_image: dict[int, list[dict]] = {}
    for a in instances["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    return ({im["id"]: im for im in instances["images"]}, by_image,
            {c["id"]: c["name"] for c in instances["categories"]})


def image_shapes(root: Path) -> dict[str, set[str]]:
    """Record image path -> the shape names in that image."""
    images, by_image, names = _instances(root)
    return {f"images/{images[iid]['file_name']}": {names[a["category_id"]] for a in anns} for iid, anns in by_image.items()}


def attribute_records(root: Path) -> list[Record]:
    """Per synthetic image, up to two sentences: "the <colour> shape" for the first thing of a unique colour and
    "the <shape>" for the first thing of a unique shape (another thing where one exists), with the image's cleaned
    captions. Two per image keep the set small enough to learn in 1,200 steps."""
    images, by_image, names = _instances(root)
    captions = load_captions(root / "annotations" / "captions_train.json")
    records = []
    for iid, anns in sorted(by_image.items()):
        im = images[iid]
        colour = [a for a in anns if sum(b["attributes"]["colour"] == a["attributes"]["colour"] for b in anns) == 1]
        shape = [a for a in anns if sum(b["category_id"] == a["category_id"] for b in anns) == 1]
        chosen = [(f"the {a['attributes']['colour']} shape", a) for a in colour[:1]]
        shape = [a for a in shape if not chosen or a is not chosen[0][1]] or shape
        chosen += [(f"the {names[a['category_id']]}", a) for a in shape[:1]]
        for k, (text, a) in enumerate(chosen):
            records.append(Record(f"attr/{a['id']}/{k}", "synth", f"images/{im['file_name']}", im["height"],
                                  im["width"], "sentence", "single", [Phrase(text)], captions.get(iid, []),
                                  [Target(0, xywh_to_xyxy(a["bbox"]), a["segmentation"])]))
    return records


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("learn")
    generate(root, seed=5, num_images=NUM_IMAGES, size=128, val_fraction=0.0, progress=False)
    return root


def _samples(records: list[Record]):
    sampler = Sampler(None, SamplerConfig(caption_prob=0.0, shuffle=False))
    return [sampler.sample(r, np.random.default_rng(0)) for r in records]


# ------------------------------------------------------------------------------------------- the path is alive
@pytest.fixture(scope="module")
def random_model():
    torch.manual_seed(0)
    tok = train_tokenizer(4096)
    model = MVPLM(tiny("paper", tok.get_vocab_size()))
    return model, tok, default_spec(tok, "paper", model.config.num_image_tokens)


def test_sentence_loss_reaches_the_llm_and_the_sentence_projector(synth_set, random_model):
    model, tok, spec = random_model
    records = attribute_records(synth_set)[:2]
    batch = collate([make_item(s, synth_set, tok, spec, model.config) for s in _samples(records)], spec.tokens["pad"])
    step = TrainingStep(model.train(), SetCriterion(num_points=64), stage=2, dn_queries=0, dn_noise=0.4)
    losses = step(batch, num_masks=2.0)
    model.zero_grad()
    sum(v for k, v in losses.items() if k.startswith("cls/")).backward()
    grads = {name: p.grad.norm().item() if p.grad is not None else 0.0 for name, p in model.named_parameters()}
    assert sum(v for n, v in grads.items() if n.startswith("phi.model.layers.")) > 0
    assert grads["sentence_projector.weight"] > 0
    assert grads["base_query_mlp.layers.0.weight"] > 0
    assert grads["phrase_projector.weight"] == 0  # a sentence sample uses the sentence projector alone


def test_the_image_reaches_per_and_the_caption_logits(synth_set, random_model):
    model, tok, spec = random_model
    records = attribute_records(synth_set)
    a = records[0]
    b = next(r for r in records if r.image != a.image)
    b = Record(b.id, b.source, b.image, b.height, b.width, a.kind, a.task, a.phrases, a.captions, a.targets)
    per, first = [], []
    for sample in _samples([a, b]):
        batch = collate([make_item(sample, synth_set, tok, spec, model.config)], spec.tokens["pad"])
        with torch.no_grad():
            _, llm = vision_and_language(model.eval(), batch)
            per.append(perception_inputs(model, batch, llm, 0)[1][0])
        first.append(greedy_caption(model, sample, synth_set, tok, spec, max_new_tokens=1)[1].softmax(-1))
    # same sentence, another image: <PER> and the first caption token's distribution move
    assert torch.nn.functional.cosine_similarity(per[0], per[1], dim=0) < 0.999
    assert 0.5 * (first[0] - first[1]).abs().sum() > 1e-3


# ------------------------------------------------------------------------------------------------- overfit
@pytest.fixture(scope="module")
def overfit(synth_set, tmp_path_factory):
    """The tiny config trained on the attribute sentences of the synthetic images, every sample answering with a
    caption."""
    records = attribute_records(synth_set)
    data = tmp_path_factory.mktemp("overfit") / "train.jsonl"
    write_jsonl(data, records)
    write_categories(data, {"synth": []})
    run = data.parent / "run"
    result = train(parse_args(["--data", str(data), "--images", str(synth_set), "--out", str(run), "--stage", "2",
                               "--train-encoder", "--steps", str(OVERFIT_STEPS), "--response-mix", "1.0",
                               "--sentence-loss-scale", "1.0", "--save-every", str(OVERFIT_STEPS), "--no-progress"]))
    from mvp_lm.tokenizer import load_tokenizer
    tok = load_tokenizer(run / "tokenizer.json")
    return result.model, tok, default_spec(tok, "paper", result.model.config.num_image_tokens), records


def test_overfit_attribute_sentences_reach_95_percent_rec(synth_set, overfit):
    model, tok, spec, records = overfit
    probe = probe_sentences(model, _samples(records), synth_set, tok, spec)
    assert probe.accuracy >= 95.0, f"REC Acc@0.5 {probe.accuracy:.1f} on {len(records)} training sentences"
    # the sentence changes the pick: two sentences about different objects of one image pick different boxes
    pairs = defaultdict(list)
    for r, box in zip(records, probe.boxes):
        pairs[r.image].append((cxcywh_to_xyxy(box[None]), torch.tensor([r.targets[0].box])))
    differ = [float(box_iou(a, b)) < 0.5 for (a, ta), (b, tb) in (v for v in pairs.values() if len(v) == 2)
              if float(box_iou(ta, tb)) < 0.5]
    assert len(differ) >= 8 and np.mean(differ) >= 0.9


# Open defect (models/demo/README.md, "What still fails"): the captions follow the image only a little, shape F1
# 62.7 against 53.0 for the same captions scored against another image's shapes, here and at scale. Strict: the day
# this passes, the mark must go.
@pytest.mark.xfail(strict=True, reason="captions read little of the image yet (shape F1 ~63, image-blind ~53)")
def test_overfit_captions_name_the_shapes_of_each_training_image(synth_set, overfit):
    model, tok, spec, records = overfit
    first_per_image = list({r.image: r for r in records}.values())
    captions = [greedy_caption(model, s, synth_set, tok, spec)[0] for s in _samples(first_per_image)]
    shapes = image_shapes(synth_set)
    present = [shapes[r.image] for r in first_per_image]
    f1 = content_f1(captions, present, list(SHAPES))
    blind = content_f1(captions, present[1:] + present[:1], list(SHAPES))  # the same captions, another image's shapes
    assert f1 >= 80.0 and f1 >= blind + 20, f"shape F1 {f1:.1f} (against the next image's shapes {blind:.1f}): {captions[:3]}"
