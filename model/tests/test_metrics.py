"""Metrics against hand-computed values and against pycocotools' COCOeval run directly."""
import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mvp_lm.data.errors import DataFormatError
from mvp_lm.data.masks import encode_rle
from mvp_lm.eval.__main__ import main as eval_main
from mvp_lm.eval.captions import bleu4, caption_scores, content_f1, named_categories, token_f1
from mvp_lm.eval.evaluate import evaluate
from mvp_lm.eval.gt import GroundTruth, GTPaths
from mvp_lm.eval.oracle import oracle_predictions
from mvp_lm.eval.panoptic import PQStat, Segment
from mvp_lm.eval.predictions import load_predictions
from mvp_lm.eval.referring import GRESStat, RESStat, SentenceDiagnostics
from mvp_lm.eval.semantic import SemanticStat
from mvp_lm.synth.writer import generate


def test_pq_on_two_hand_maps():
    gt = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 3, 3], [3, 3, 3, 0]])
    pred = np.array([[1, 1, 1, 2], [1, 1, 1, 2], [3, 3, 3, 3], [3, 3, 3, 3]])
    stat = PQStat()
    segs = {1: Segment(7), 2: Segment(7), 3: Segment(9)}
    stat.add_image(gt, segs, pred, dict(segs))
    # thing 7: gt1/pred1 IoU 4/6 (TP); gt2 unmatched (FN; its best IoU with pred2 is 2/4, not > 0.5); pred2 FP.
    #   PQ_7 = (2/3) / (1 + 0.5 + 0.5) = 1/3, SQ_7 = 2/3, RQ_7 = 1/2
    # stuff 9: the void pixel is left out of the union: IoU 7 / (8 + 7 - 7 - 1) = 1, PQ_9 = 1
    s = stat.summary({7: True, 9: False})
    assert s["PQ"] == pytest.approx(100 * (1 / 3 + 1) / 2)
    assert s["SQ"] == pytest.approx(100 * (2 / 3 + 1) / 2) and s["RQ"] == pytest.approx(100 * (0.5 + 1) / 2)
    assert s["PQ_things"] == pytest.approx(100 / 3) and s["PQ_stuff"] == pytest.approx(100)


def test_pq_ignores_predictions_on_void_and_same_category_crowd():
    gt = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [2, 2, 2, 2], [2, 2, 2, 2]])
    pred = np.array([[1, 1, 3, 3], [1, 1, 3, 3], [4, 4, 4, 0], [4, 4, 4, 0]])
    stat = PQStat()
    # pred 3 lies on void: no FP; pred 4 (category 5) lies 6/6 on the category-5 crowd: no FP; crowd gives no FN.
    stat.add_image(gt, {1: Segment(5), 2: Segment(5, iscrowd=True)}, pred,
                   {1: Segment(5), 3: Segment(5), 4: Segment(5)})
    assert (stat.tp[5], stat.fp[5], stat.fn[5]) == (1, 0, 0) and stat.summary({5: True})["PQ"] == 100
    stat2 = PQStat()
    stat2.add_image(gt, {1: Segment(5), 2: Segment(5, iscrowd=True)}, pred, {1: Segment(5), 4: Segment(6)})
    assert stat2.fp[6] == 1                          # a crowd of another category does not excuse it


def test_semantic_miou_by_hand():
    stat = SemanticStat([1, 2])
    stat.add(np.array([[1, 1], [2, 0]]), np.array([[1, 2], [2, 2]]))
    # valid pixels (gt != 0): class 1: TP 1, union 2; class 2: TP 1, union 2
    s = stat.summary()
    assert s["mIoU"] == pytest.approx(50) and s["pixel_acc"] == pytest.approx(200 / 3) and s["num_categories"] == 2


def test_res_ciou_miou_and_rec_accuracy_by_hand():
    stat = RESStat()
    gt1 = np.zeros((6, 6), bool); gt1[0:2, 0:2] = True                                   # 4 px
    pred1 = np.zeros((6, 6), bool); pred1[0:1, 0:2] = True                               # 2 px inside
    gt2 = np.zeros((6, 6), bool); gt2[2:4, 0:5] = True                                   # 10 px
    pred2 = np.zeros((6, 6), bool); pred2[3:5, 0:5] = True                               # 10 px, 5 shared
    stat.add(pred1, gt1)
    stat.add(pred2, gt2)
    stat.add_box([0, 0, 10, 10], [0, 0, 10, 8])     # IoU 0.8
    stat.add_box([0, 0, 10, 10], [5, 0, 15, 10])    # IoU 1/3
    stat.add_box(None, [0, 0, 1, 1])
    s = stat.summary()
    assert s["cIoU"] == pytest.approx(100 * 7 / 19) and s["mIoU"] == pytest.approx(100 * (0.5 + 1 / 3) / 2)
    assert s["Acc@0.5"] == pytest.approx(100 / 3)


def test_gres_metrics_by_hand():
    stat = GRESStat()
    empty = np.zeros((4, 4), bool)
    three = empty.copy(); three[0, 0:3] = True
    gt = empty.copy(); gt[1:3, 1:3] = True                                               # 4 px
    pred = empty.copy(); pred[1, 1:3] = True; pred[3, 0:2] = True                        # 4 px, 2 shared
    stat.add(empty, empty)      # no target, answered empty: IoU 1
    stat.add(three, empty)      # no target, answered 3 px: IoU 0
    stat.add(pred, gt)          # IoU 2/6
    s = stat.summary()
    assert s["cIoU"] == pytest.approx(100 * 2 / 9) and s["gIoU"] == pytest.approx(100 * (1 + 0 + 1 / 3) / 3)
    assert s["N-acc"] == 50 and s["T-acc"] == 100


def test_caption_scores_by_hand():
    # 1..4-gram precisions 4/5, 3/4, 2/3, 1/2; equal lengths: no brevity penalty
    assert bleu4(["a b c d e"], [["a b c d f"]]) == pytest.approx(100 * (0.8 * 0.75 * (2 / 3) * 0.5) ** 0.25)
    # hypothesis shorter than the closest reference (6 words): brevity penalty exp(1 - 6/5)
    assert bleu4(["a b c d e"], [["a b c d e f", "x"]]) == pytest.approx(100 * np.exp(1 - 6 / 5))
    assert token_f1("a b c d e", ["x y", "a b c d f"]) == pytest.approx(80)
    assert caption_scores(["the red star"], [["The red star."]])["BLEU-4"] == 0.0   # no 4-gram: BLEU-4 is 0


@pytest.fixture
def coco_gt(tmp_path):
    square = lambda x, y, w, h: [[x, y, x + w, y, x + w, y + h, x, y + h]]
    gt = {"images": [{"id": 1, "file_name": "1.png", "height": 100, "width": 100},
                     {"id": 2, "file_name": "2.png", "height": 100, "width": 100}],
          "annotations": [
              {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 30], "area": 900, "iscrowd": 0,
               "segmentation": square(10, 10, 30, 30)},
              {"id": 2, "image_id": 1, "category_id": 2, "bbox": [50, 50, 20, 20], "area": 400, "iscrowd": 0,
               "segmentation": square(50, 50, 20, 20)},
              {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0, 0, 50, 50], "area": 2500, "iscrowd": 0,
               "segmentation": square(0, 0, 50, 50)}],
          "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations/instances_val.json").write_text(json.dumps(gt))
    return tmp_path


def _rect(x0, y0, x1, y1):
    m = np.zeros((100, 100), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_box_and_mask_ap_equal_cocoeval(coco_gt):
    # (phrase, score, box, mask rectangle): the image-2 cat's mask covers only a quarter of its box
    dets = {1: [("cat", 0.9, [12, 10, 42, 40], [12, 10, 42, 40]), ("cat", 0.8, [60, 60, 80, 80], [60, 60, 80, 80]),
                ("Dog", 0.7, [50, 50, 70, 70], [50, 50, 70, 70])],
            2: [("cat", 0.6, [5, 5, 50, 50], [5, 5, 28, 28]), ("dog", 0.95, [0, 0, 10, 10], [0, 0, 10, 10])]}
    preds = [{"image_id": iid, "caption": None, "tasks": [{"type": "words", "mode": "instance", "detections": [
        {"phrase_index": 0, "phrase": p, "score": s, "box": b, "mask": encode_rle(_rect(*m)), "area": 0}
        for p, s, b, m in ds]}]} for iid, ds in dets.items()]
    preds[0]["caption"] = "A cat and a dog."   # no captions file in this ground truth: no caption block
    metrics = evaluate(GroundTruth(GTPaths.for_dir(coco_gt, "val"), "val"), preds)
    assert set(metrics) == {"instance"}
    got = metrics["instance"]

    ids = {"cat": 1, "dog": 2}
    ref = {}
    for iou_type in ("bbox", "segm"):
        results = [{"image_id": iid, "category_id": ids[p.lower()], "score": s,
                    **({"bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]} if iou_type == "bbox"
                       else {"segmentation": encode_rle(_rect(*m))})}
                   for iid, ds in dets.items() for p, s, b, m in ds]
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(coco_gt / "annotations/instances_val.json"))
            ev = COCOeval(coco, coco.loadRes(results), iou_type)
            ev.evaluate(); ev.accumulate(); ev.summarize()
        ref[iou_type] = (100 * ev.stats[0], 100 * ev.stats[1])
    assert (got["box"]["AP"], got["box"]["AP50"]) == pytest.approx(ref["bbox"])
    assert (got["mask"]["AP"], got["mask"]["AP50"]) == pytest.approx(ref["segm"])
    assert 0 < got["mask"]["AP"] < got["box"]["AP"] < 100


def test_prediction_errors_name_file_record_field(coco_gt, tmp_path):
    gt = GroundTruth(GTPaths.for_dir(coco_gt, "val"), "val")
    bad = [{"image_id": 1, "tasks": [{"type": "words", "mode": "instance", "detections": [
        {"phrase": "zebra", "score": 1.0, "box": [0, 0, 1, 1]}]}]}]
    with pytest.raises(DataFormatError) as e:
        evaluate(gt, bad, "p.json")
    assert (e.value.file, e.value.record, e.value.field) == ("p.json", "predictions[0] (image_id 1)",
                                                            "tasks[0].detections[0].phrase")
    bad[0]["tasks"][0]["detections"][0].update(phrase="cat", mask=encode_rle(np.zeros((5, 5), bool)))
    with pytest.raises(DataFormatError) as e:
        evaluate(gt, bad, "p.json")
    assert e.value.field == "tasks[0].detections[0].mask.size"
    path = tmp_path / "p.json"
    path.write_text(json.dumps([{"image_id": 1, "tasks": [{"type": "sentence", "mode": "single", "detections": []}]}]))
    with pytest.raises(DataFormatError) as e:
        load_predictions(str(path))
    assert (e.value.record, e.value.field) == ("predictions[0] (image_id 1)", "tasks[0].sent_id")


@pytest.fixture(scope="module")
def synth_gt(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    generate(root, seed=11, num_images=12, size=64, val_fraction=0.5, progress=False)
    return root


def test_oracle_predictions_score_100_everywhere_and_a_miss_costs(synth_gt, tmp_path):
    gt = GroundTruth(GTPaths.for_dir(synth_gt, "val"), "val")
    preds = oracle_predictions(gt)
    m = evaluate(gt, preds)
    assert set(m) == {"panoptic", "semantic", "semantic_from_panoptic", "instance", "refcoco", "grefcoco", "caption"}
    for block, keys in {"panoptic": ["PQ", "SQ", "RQ", "PQ_things", "PQ_stuff"], "semantic": ["mIoU"],
                        "refcoco": ["cIoU", "mIoU", "Acc@0.5"], "grefcoco": ["cIoU", "gIoU", "N-acc", "T-acc"],
                        "caption": ["BLEU-4", "token_F1"]}.items():
        assert all(m[block][k] == pytest.approx(100) for k in keys), (block, m[block])
    assert m["instance"]["box"]["AP"] == pytest.approx(100) and m["instance"]["mask"]["AP"] == pytest.approx(100)
    # the first reference caption (an inventory) names every shape and stuff region present
    assert m["caption"]["content_F1_things"] == pytest.approx(100) and m["caption"]["content_F1_stuff"] == pytest.approx(100)
    kinds = m["refcoco"]["by_kind"]
    assert set(kinds) <= {"attribute", "position", "stuff", "relation"} and "relation" in kinds
    assert all(k["Acc@0.5"] == pytest.approx(100) and 0 < k["random_Acc@0.5"] < 100 for k in kinds.values())
    assert m["refcoco"]["sensitivity"]["differing_picks"] == pytest.approx(100)
    # Answering "no target" to every gRefCOCO expression: N-acc stays 100, T-acc and gIoU drop.
    for e in preds:
        for t in e["tasks"]:
            if t["mode"] == "multi":
                t.update(detections=[], no_target=True)
    g = evaluate(gt, preds)["grefcoco"]
    n_none = sum(1 for r in gt.grefs.values() if not r["mask"].any())
    assert g["N-acc"] == 100 and g["T-acc"] == 0 and g["cIoU"] == 0
    assert g["gIoU"] == pytest.approx(100 * n_none / len(gt.grefs))
    # Dropping one thing from one panoptic prediction: one FN in its category, nothing else changes.
    pan = next(t for e in preds for t in e["tasks"]
               if t["mode"] == "panoptic" and any(not d["stuff"] for d in t["detections"]))
    dropped = next(d for d in pan["detections"] if not d["stuff"])
    pan["detections"].remove(dropped)
    stat = evaluate(gt, preds)["panoptic"]
    assert stat["PQ"] < 100 and stat["PQ_stuff"] == pytest.approx(100)


def test_cli(synth_gt, tmp_path, capsys):
    gt = GroundTruth(GTPaths.for_dir(synth_gt, "val"), "val")
    (tmp_path / "pred.json").write_text(json.dumps({"predictions": oracle_predictions(gt)}))
    assert eval_main(["--gt", str(synth_gt), "--pred", str(tmp_path / "pred.json"),
                      "--out", str(tmp_path / "m.json")]) == 0
    assert json.loads((tmp_path / "m.json").read_text())["panoptic"]["PQ"] == pytest.approx(100)
    capsys.readouterr()
    (tmp_path / "bad.json").write_text(json.dumps([{"image_id": 1}]))
    assert eval_main(["--gt", str(synth_gt), "--pred", str(tmp_path / "bad.json")]) == 2
    assert "predictions[0] (image_id 1)" in capsys.readouterr().err


def test_caption_content_f1_by_hand():
    names = ["circle", "square", "sky", "wall"]
    assert named_categories("Two circles and a square, with sky behind.", names) == {"circle", "square", "sky"}
    assert named_categories("A circled squarely walled", names) == set()   # whole words, not prefixes
    # image 1 names its circle and an absent square, misses its sky; image 2 misses its circle: tp 1, fp 1, fn 2
    f1 = content_f1(["a circle and a square", "nothing here"], [{"circle", "sky"}, {"circle"}], names)
    assert f1 == pytest.approx(100 * 2 * 1 / (2 * 1 + 1 + 2))


def test_sentence_diagnostics_by_hand():
    a, b, c = [0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]
    d = SentenceDiagnostics()
    d.add("attribute", 1, a, a, [a, b, c])        # right; a random pick is right 1 in 3
    d.add("relation", 1, a, b, [a, b, c])         # wrong: picks a for b's sentence
    d.add("relation", 2, None, c, [c])            # no answer
    out = d.summary()
    assert out["by_kind"]["attribute"] == {"Acc@0.5": 100.0, "random_Acc@0.5": pytest.approx(100 / 3), "num": 1}
    assert out["by_kind"]["relation"] == {"Acc@0.5": 0.0, "random_Acc@0.5": pytest.approx((100 / 3 + 100) / 2),
                                          "num": 2}
    # image 1: two sentences with different targets (a, b) that both picked a -> the one pair does not differ
    assert out["sensitivity"] == {"differing_picks": 0.0, "pairs": 1}
    d.add("attribute", 1, c, c, [a, b, c])        # two more pairs on image 1, both with differing picks
    assert d.summary()["sensitivity"] == {"differing_picks": pytest.approx(100 * 2 / 3), "pairs": 3}
