"""mvp_lm.calibrate: the threshold pickers, and the whole command on a random tiny bundle and a small synthetic set,
whose recorded cIoU must be what the served post-processing then scores on the same sentences."""
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from mvp_lm.calibrate import RECORD, Sentences, ciou, main, pick_no_target, pick_union_threshold
from mvp_lm.eval.gt import GroundTruth, GTPaths
from mvp_lm.eval.referring import GRESStat
from mvp_lm.export import export_bundle, file_entry
from mvp_lm.reference import Bundle, load_image, run_case
from mvp_lm.synth.writer import generate


def test_no_target_threshold_has_the_best_balanced_accuracy():
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.35])
    has_target = np.array([False, False, False, True, True, True])
    t, acc = pick_no_target(scores, has_target)
    assert 0.3 < t < 0.35 and acc == 1.0
    t, acc = pick_no_target(np.array([0.9, 0.2]), np.array([False, True]))  # inverted: no threshold helps
    assert acc == 0.5


def test_union_threshold_takes_the_queries_that_raise_ciou():
    # one sentence, three queries: the union of the best two matches the target best (inter 8, union 10)
    d = Sentences(best=np.array([0.9]), has_target=np.array([True]), sorted_scores=np.array([[0.9, 0.7, 0.2]]),
                  inter=np.array([[5, 8, 8]]), union=np.array([[10, 10, 20]]), target_area=np.array([9]))
    t, value = pick_union_threshold(d, no_target=0.5)
    assert 0.2 < t < 0.7 and value == pytest.approx(0.8)
    assert ciou(d, 0.5, 0.95) == pytest.approx(0.5)  # no query above: the best one alone
    assert ciou(d, 0.95, 0.5) == 0.0  # "no target": nothing intersects, the target counts in the union


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cal")
    generate(root / "data", seed=5, num_images=8, size=64, val_fraction=0.0, progress=False)
    export_bundle("tiny", "paper", root / "bundle", seed=0, log=lambda _: None)
    return root / "data", root / "bundle"


def test_the_command_rewrites_the_manifest_and_its_ciou_is_what_serving_scores(setup):
    data, bundle = setup
    assert main(["--bundle", str(bundle), "--data", str(data), "--split", "train", "--max-images", "8"]) == 0
    manifest = json.loads((bundle / "manifest.json").read_text())
    record = json.loads((bundle / RECORD).read_text())
    for section in (manifest["postprocess"], manifest["config"]["postprocess"]):
        assert section["no_target_threshold"] == record["no_target_threshold"]
        assert section["generalised_sentence_threshold"] == record["generalised_sentence_threshold"]
    assert manifest["files"][RECORD] == file_entry(bundle / RECORD)
    assert record["cIoU"]["after"] >= record["cIoU"]["before"]

    gt = GroundTruth(GTPaths.for_dir(data, "train"), "train")
    served = Bundle(bundle, "onnx")
    stat = GRESStat()
    for r in gt.grefs.values():
        image = gt.ref_images[r["image_id"]]
        task = run_case(served, load_image(data / "images" / image["file_name"]),
                        [{"type": "sentence", "sentence": r["sent"], "mode": "multi"}], False)["result"]["tasks"][0]
        pred = (mask_utils.decode(task["detections"][0]["mask"]).astype(bool) if task["detections"]
                else np.zeros_like(r["mask"]))
        stat.add(pred, r["mask"])
    assert record["sentences"] == stat.n
    assert 100 * record["cIoU"]["after"] == pytest.approx(stat.summary()["cIoU"], abs=1e-9)
