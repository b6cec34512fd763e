"""The synthetic benchmark: determinism, internal consistency of its annotation files, expressions true by
construction, and a round trip through the dataset converters."""
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mvp_lm.data.captions import HEDGING_WORDS, words
from mvp_lm.data.convert import coco_detection, coco_panoptic, grefcoco, refcoco
from mvp_lm.data.convert.coco_panoptic import read_segment_ids
from mvp_lm.data.masks import decode_segmentation, mask_box, xyxy_to_xywh
from mvp_lm.data.sampler import Sampler
from mvp_lm.synth.__main__ import main as synth_main
from mvp_lm.synth.language import expressions
from mvp_lm.synth.scene import Scene, Thing, _shape_mask
from mvp_lm.synth.writer import generate


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "a"
    generate(root, seed=3, num_images=10, size=64, val_fraction=0.3, progress=False)
    return root


def test_same_seed_gives_identical_bytes_and_other_seeds_differ(bench, tmp_path):
    generate(tmp_path / "b", seed=3, num_images=10, size=64, val_fraction=0.3, progress=False)
    generate(tmp_path / "c", seed=4, num_images=10, size=64, val_fraction=0.3, progress=False)
    a, b, c = files(bench), files(tmp_path / "b"), files(tmp_path / "c")
    assert a == b
    assert a.keys() & c.keys() and all(a[k] != c[k] for k in a.keys() & c.keys() if k.startswith("images/"))
    generate(tmp_path / "d", seed=3, num_images=4, size=64, val_fraction=0.3, progress=False)
    d = files(tmp_path / "d")   # image i does not depend on how many images are generated
    assert all(d[k] == a[k] for k in d if k.startswith("images/"))


def test_annotation_files_agree_with_each_other(bench):
    for split in ("train", "val"):
        pan = json.loads((bench / f"annotations/panoptic_{split}.json").read_text())
        inst = json.loads((bench / f"annotations/instances_{split}.json").read_text())
        assert [im["id"] for im in pan["images"]] == [im["id"] for im in inst["images"]]
        anns = {}
        for a in inst["annotations"]:
            anns.setdefault(a["image_id"], []).append(a)
        for ann in pan["annotations"]:
            ids = read_segment_ids(bench / f"annotations/panoptic_{split}" / ann["file_name"])
            assert ids.shape == (64, 64)
            assert sorted(np.unique(ids)) == sorted(s["id"] for s in ann["segments_info"])   # no void, no strays
            things = [s for s in ann["segments_info"] if s["category_id"] <= 6]
            for s in ann["segments_info"]:
                m = ids == s["id"]
                assert s["area"] == m.sum() and s["bbox"] == xyxy_to_xywh(mask_box(m))
            for s, a in zip(things, anns.get(ann["image_id"], [])):
                m = decode_segmentation(a["segmentation"], 64, 64)
                assert (m == (ids == s["id"])).all() and a["bbox"] == s["bbox"] and a["category_id"] == s["category_id"]
            assert len(things) == len(anns.get(ann["image_id"], []))


def _thing(shape, colour, size, cx, cy, r):
    return Thing(shape, colour, size, cx, cy, _shape_mask(shape, cx, cy, r, 0.0, 128))


def test_expressions_denote_the_right_things():
    things = [_thing("circle", "red", "small", 20, 30, 9), _thing("circle", "red", "small", 100, 30, 9),
              _thing("square", "yellow", "large", 60, 90, 20)]
    background = {"sky": np.zeros((128, 128), bool), "grass": np.zeros((128, 128), bool)}
    background["sky"][:64] = True
    background["grass"][64:] = True
    scene = Scene(np.zeros((128, 128, 3), np.uint8), dict(background), things, background)
    got = {e.text: e.targets for e in expressions(scene, 128)}
    assert got["the yellow square"] == (2,)
    assert got["the two red circles"] == (0, 1) and got["all circles"] == (0, 1)
    assert got["the red circle on the left"] == (0,) and got["the red circle on the right"] == (1,)
    assert got["the circle above the square"] == (0, 1)
    assert got["the red circle left of the square"] == (0,) and got["the red circle right of the square"] == (1,)
    assert got["the purple circle"] == ()             # plausible (circles exist) but absent: no target
    assert got["the circle on the grass"] == () and got["the circle in the sky"] == (0, 1)
    assert got["the square on the grass"] == (2,)
    assert "the purple hexagon" not in got            # neither its colour nor its shape is in the scene


def test_round_trip_through_the_converters(bench):
    ann = bench / "annotations"
    pan, pools = coco_panoptic.convert(ann / "panoptic_train.json", ann / "panoptic_train",
                                       ann / "captions_train.json", source="synth", image_prefix="images")
    n_train = len(json.loads((ann / "panoptic_train.json").read_text())["images"])
    assert len(pan) == n_train and all((bench / r.image).exists() for r in pan)
    assert all(r.captions and not any(HEDGING_WORDS & set(words(c)) for c in r.captions) for r in pan)
    raw = json.loads((ann / "captions_train.json").read_text())["annotations"]
    assert any(HEDGING_WORDS & set(words(c["caption"])) for c in raw)   # the cleaning had something to remove
    assert {p.text for p in pools["synth"]} >= {"circle", "star", "sky", "grass"}
    inst, _ = coco_detection.convert(ann / "instances_train.json", ann / "captions_train.json")
    assert all(r.task == "instance" and all(t.segmentation for t in r.targets) for r in inst)
    refs = pickle.loads((bench / "refcoco/refs(unc).p").read_bytes())
    res, _ = refcoco.convert(bench / "refcoco/refs(unc).p", bench / "refcoco/instances.json", split="train")
    assert len(res) == sum(len(r["sentences"]) for r in refs if r["split"] == "train") > 0
    gres, _ = grefcoco.convert(bench / "grefcoco/grefs(unc).json", bench / "refcoco/instances.json")
    kinds = {len(r.targets) if len(r.targets) < 2 else 2 for r in gres}
    assert kinds == {0, 1, 2}                          # no-target, single- and multi-target expressions
    sample = Sampler(pools).sample(pan[0], np.random.default_rng(0))
    assert {p.text for p in pan[0].phrases} <= {p.text for p in sample.phrases}
    assert set(sample.phrases) <= set(pools["synth"])


def test_cli_and_preview(tmp_path, capsys):
    assert synth_main(["--seed", "1", "--num-images", "3", "--size", "48", "--out", str(tmp_path / "s"),
                       "--render-preview", "--no-progress", "--val-fraction", "0.5"]) == 0
    preview = Image.open(tmp_path / "s/preview.png")
    assert preview.width >= 2 * 48 * 2 and preview.height >= 48 * 2
    assert '"refs"' in capsys.readouterr().out


def test_expression_kind_reads_back_each_template():
    from mvp_lm.synth.language import EXPRESSION_KINDS, expression_kind
    cases = {"the red circle": "attribute", "all small squares": "attribute", "the two stars": "attribute",
             "the circle on the left": "position", "the topmost red shape": "position",
             "the star in the sky": "stuff", "the small shape in front of the wall": "stuff",
             "the square left of the red circle": "relation", "the shape above the white star": "relation",
             "the medium shape below the square": "relation"}
    assert {text: expression_kind(text) for text in cases} == cases
    assert set(cases.values()) == set(EXPRESSION_KINDS)
