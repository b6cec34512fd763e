"""The unified record (JSONL round trip, validation) and per-iteration sampling (negatives, shuffling, captions)."""
import json
from collections import Counter

import numpy as np
import pytest

from mvp_lm.data.errors import DataFormatError
from mvp_lm.data.record import (Phrase, Record, Target, read_categories, read_jsonl, write_categories,
                                write_jsonl)
from mvp_lm.data.sampler import Sampler, SamplerConfig

POOL = [Phrase(t) for t in ("person", "dog", "cat", "car", "kite", "bowl")] + [Phrase("sky", True)]


def word_record() -> Record:
    return Record("coco/1", "coco", "train/1.jpg", 10, 20, "words", "panoptic",
                  [Phrase("dog"), Phrase("sky", True), Phrase("person")],
                  ["A dog and a person.", "Someone walks a dog under the sky."],
                  [Target(0, [1, 1, 4, 4]), Target(1, [0, 0, 20, 3], None, True), Target(2, [5, 5, 8, 9]),
                   Target(0, [10, 1, 14, 4])])


def test_jsonl_round_trip_and_categories(tmp_path):
    recs = [word_record(), Record("ref/1/0", "refcoco", "a.jpg", 5, 5, "sentence", "single", [Phrase("left dog")],
                                  [], [Target(0, [0, 0, 2, 2], {"size": [5, 5], "counts": "05"})])]
    path = tmp_path / "train.jsonl"
    assert write_jsonl(path, recs) == 2
    back = read_jsonl(path)
    assert [r.id for r in back] == ["coco/1", "ref/1/0"]
    assert back[0].phrases[1] == Phrase("sky", True) and back[0].targets[3].box == [10.0, 1.0, 14.0, 4.0]
    write_categories(path, {"coco": POOL})
    assert (tmp_path / "train.categories.json").exists()
    assert read_categories(path)["coco"] == POOL


@pytest.mark.parametrize("mutate,field", [
    (lambda d: d.pop("width"), "width"),
    (lambda d: d.update(kind="pictures"), "kind"),
    (lambda d: d.update(task="single"), "task"),
    (lambda d: d["targets"][2].update(phrase_index=3), "targets[2].phrase_index"),
    (lambda d: d["targets"][0].update(box=[4, 4, 1, 1]), "targets[0].box"),
    (lambda d: d["targets"][0].update(segmentation={"size": [10, 20]}), "targets[0].segmentation"),
    (lambda d: d["phrases"].append({"text": "dog"}), "phrases"),
])
def test_invalid_records_name_file_record_and_field(tmp_path, mutate, field):
    d = json.loads(word_record().to_json())
    mutate(d)
    path = tmp_path / "bad.jsonl"
    path.write_text(word_record().to_json() + "\n" + json.dumps(d) + "\n")
    with pytest.raises(DataFormatError) as e:
        read_jsonl(path)
    assert (e.value.file, e.value.record, e.value.field) == (str(path), "coco/1 (line 2)", field)
    assert str(path) in str(e.value) and "coco/1 (line 2)" in str(e.value) and f"'{field}'" in str(e.value)


def test_negatives_are_absent_categories_and_targets_follow_their_phrase():
    rec = word_record()
    sampler = Sampler({"coco": POOL}, SamplerConfig(max_phrases=64, max_negatives=4))
    counts = Counter()
    for seed in range(200):
        s = sampler.sample(rec, np.random.default_rng(seed))
        texts = [p.text for p in s.phrases]
        assert len(set(texts)) == len(texts)
        assert {"dog", "sky", "person"} <= set(texts)
        negatives = set(texts) - {"dog", "sky", "person"}
        assert negatives <= {"cat", "car", "kite", "bowl"} and len(negatives) <= 4
        counts[len(negatives)] += 1
        # each target still points at its own phrase, with its box and stuff flag unchanged
        assert [(s.phrases[t.phrase_index].text, t.box, t.is_stuff) for t in s.targets] == [
            ("dog", [1, 1, 4, 4], False), ("sky", [0, 0, 20, 3], True), ("person", [5, 5, 8, 9], False),
            ("dog", [10, 1, 14, 4], False)]
        assert s.phrases[texts.index("sky")].stuff
    assert set(counts) == {0, 1, 2, 3, 4}   # the number of negatives varies over the whole range


def test_shuffling_and_caption_choice_vary_per_iteration_and_repeat_per_seed():
    rec = word_record()
    sampler = Sampler({"coco": POOL}, SamplerConfig(max_negatives=0))
    orders = {tuple(p.text for p in sampler.sample(rec, np.random.default_rng(s)).phrases) for s in range(50)}
    assert len(orders) == 6   # all permutations of 3 phrases appear
    captions = Counter(sampler.sample(rec, np.random.default_rng(s)).caption for s in range(100))
    assert set(captions) == set(rec.captions)
    a = sampler.sample(rec, np.random.default_rng(7))
    b = sampler.sample(rec, np.random.default_rng(7))
    assert a == b
    no_shuffle = Sampler({}, SamplerConfig(shuffle=False)).sample(rec, np.random.default_rng(0))
    assert [p.text for p in no_shuffle.phrases] == ["dog", "sky", "person"]


def test_prompt_and_response_texts():
    rec = word_record()
    s = Sampler({}, SamplerConfig(shuffle=False)).sample(rec, np.random.default_rng(0))
    assert s.prompt_text == ("Please identify all objects according to the given phrase list. This is all the "
                             "candidate phrases: dog, sky, person")
    assert s.response.endswith(". The perception result is <PER>")
    assert s.response[:-len(". The perception result is <PER>")] + "." in rec.captions
    no_cap = Sampler({}, SamplerConfig(caption_prob=0.0)).sample(rec, np.random.default_rng(0))
    assert no_cap.caption is None and no_cap.response == "The perception result is <PER>"
    sent = Record("r/1/0", "refcoco", "a.jpg", 5, 5, "sentence", "multi", [Phrase("the two dogs")], [], [])
    ss = Sampler({"refcoco": POOL}).sample(sent, np.random.default_rng(0))
    assert ss.prompt_text == "Please identify the target according to the following instruction: the two dogs"
    assert ss.phrases == [Phrase("the two dogs")] and ss.targets == [] and ss.caption is None


def test_phrase_budget_drops_positives_with_their_targets():
    rec = word_record()
    s = Sampler({"coco": POOL}, SamplerConfig(max_phrases=2, max_negatives=5)).sample(rec, np.random.default_rng(3))
    assert len(s.phrases) == 2
    assert all(s.phrases[t.phrase_index].text in {"dog", "sky", "person"} for t in s.targets)
    kept = {p.text for p in s.phrases}
    expected = sum(1 for t in rec.targets if rec.phrases[t.phrase_index].text in kept)
    assert len(s.targets) == expected
