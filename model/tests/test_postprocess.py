"""Reference post-processing against hand-computed fixtures (and RLE against pycocotools' own decoder)."""
import math

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from mvp_lm.postprocess import (boxes_to_original, constants_from_config, encode_rle, geometry_for, mask_bbox,
                                masks_to_original, postprocess_task, resize_bilinear, valid_size)

C = constants_from_config({"panoptic_score_threshold": 0.1, "panoptic_overlap_threshold": 0.8,
                           "panoptic_mask_threshold": 0.5, "instance_top_k": 100,
                           "generalised_sentence_threshold": 0.6, "no_target_threshold": 0.5})
IDENTITY = geometry_for((2, 2), 2)  # S = M = 2, no padding: masks pass through unchanged
POS, NEG = 10.0, -10.0
SIG = 1 / (1 + math.exp(-POS))


def test_valid_size_rounds_half_up_in_integers():
    assert valid_size((480, 640), 128) == (96, 128)
    assert valid_size((3, 7), 64) == (27, 64)  # 27.43
    assert valid_size((2, 7), 7) == (2, 7)
    assert valid_size((1, 1000), 128) == (1, 128)  # never 0
    assert valid_size((5, 2), 4) == (4, 2)  # 1.6 -> 2


def test_bilinear_half_pixel_upsample_and_downsample():
    up = resize_bilinear(np.array([[[0.0, 1.0], [2.0, 3.0]]]), (4, 4))[0].numpy()
    ramp = np.array([0.0, 0.25, 0.75, 1.0])  # src = (i + 0.5) / 2 - 0.5, clamped at 0 and n-1
    np.testing.assert_allclose(up, 2 * ramp[:, None] + ramp[None, :], atol=1e-6)
    down = resize_bilinear(np.arange(16, dtype=np.float32).reshape(1, 4, 4), (2, 2))[0].numpy()
    # src = (i + 0.5) * 2 - 0.5 = 0.5, 2.5 -> mean of rows/cols (0,1) and (2,3)
    np.testing.assert_allclose(down, [[2.5, 4.5], [10.5, 12.5]], atol=1e-6)


def test_masks_crop_the_padded_region_before_resizing_to_the_original():
    geom = geometry_for((2, 4), 8)  # valid 4x8 of the padded 8x8 frame
    logits = np.full((1, 4, 4), NEG, dtype=np.float32)
    logits[0, :2] = POS  # the valid top half of the frame is foreground, the padding background
    out = masks_to_original(logits, geom)
    assert out.shape == (1, 2, 4)
    assert (out > 0).all()


def test_boxes_scale_by_padded_over_valid_size_and_clip():
    geom = geometry_for((200, 400), 100)  # valid (50, 100)
    boxes = np.array([[0.5, 0.25, 0.2, 0.1], [0.95, 0.5, 0.2, 2.0]], dtype=np.float32)
    out = boxes_to_original(boxes, geom)
    np.testing.assert_allclose(out[0], [160, 80, 240, 120], atol=1e-3)
    np.testing.assert_allclose(out[1], [340, 0, 400, 200], atol=1e-3)


def test_rle_matches_golden_vectors_and_pycocotools_decode():
    m = np.zeros((4, 5), dtype=bool)
    m[1:3, 1:4] = True
    m[3, 4] = True
    assert encode_rle(m) == {"size": [4, 5], "counts": "5220002O"}
    big = np.zeros((100, 100), dtype=bool)
    big[20:80, 20:80] = True
    assert encode_rle(big)["counts"] == "To1l1X1" + "0" * 117 + "lm1"
    rng = np.random.default_rng(0)
    r = rng.random((37, 23)) > 0.6
    rle = encode_rle(r)
    decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
    np.testing.assert_array_equal(decoded.astype(bool), r)
    assert mask_bbox(m) == [1.0, 1.0, 5.0, 4.0]


def _mask(*cells):
    m = np.full((2, 2), NEG, dtype=np.float32)
    for y, x in cells:
        m[y, x] = POS
    return m


def _words(mode, phrases, **kw):
    return {"type": "words", "phrases": phrases, "mode": mode, **kw}


BOXES = np.array([[0.5, 0.5, 0.5, 0.5], [0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5]], dtype=np.float32)


def test_instance_scores_are_class_prob_times_mean_mask_prob():
    logits = np.log(np.array([[4, 1, 1], [1, 2, 1], [1, 1, 1]], dtype=np.float32))  # softmax rows known
    masks = np.stack([_mask((0, 0), (0, 1)), _mask((1, 1)), _mask((0, 0))])
    raw = {"pred_logits": logits, "pred_masks": masks, "pred_boxes": BOXES}
    res = postprocess_task(_words("instance", ["cat", "dog"]), raw, IDENTITY, C, num_k=2, task_index=3)
    assert res["task_index"] == 3 and res["mode"] == "instance"
    dets = res["detections"]
    # kept: (q0, cat) 4/6 and (q1, dog) 2/4; (q1, cat) 1/4 and (q0, dog) 1/6 fall under 0.3; q2 is not a thing query
    assert [(d["phrase"], d["phrase_index"]) for d in dets] == [("cat", 0), ("dog", 1)]
    assert dets[0]["score"] == pytest.approx(4 / 6 * SIG, rel=1e-5)
    assert dets[1]["score"] == pytest.approx(0.5 * SIG, rel=1e-5)
    assert dets[0]["area"] == 2 and dets[1]["area"] == 1
    assert dets[0]["box"] == pytest.approx([0.5, 0.5, 1.5, 1.5])
    assert mask_utils.decode({"size": [2, 2], "counts": dets[0]["mask"]["counts"].encode()}).tolist() == [[1, 1],
                                                                                                           [0, 0]]


def test_detection_scores_class_prob_only_and_honours_outputs_and_top_k():
    logits = np.log(np.array([[4, 1, 1], [1, 2, 1], [1, 1, 1]], dtype=np.float32))
    masks = np.stack([_mask((0, 0)), _mask((1, 1)), _mask()])
    raw = {"pred_logits": logits, "pred_masks": masks, "pred_boxes": BOXES}
    task = _words("detection", ["cat", "dog"], outputs=["boxes"], top_k=1, score_threshold=0.0)
    dets = postprocess_task(task, raw, IDENTITY, C, num_k=2, task_index=0)["detections"]
    assert len(dets) == 1 and "mask" not in dets[0]
    assert dets[0]["score"] == pytest.approx(4 / 6, rel=1e-6)
    assert dets[0]["area"] == 1  # box area when no mask was requested


def test_panoptic_merges_stuff_and_drops_occluded_segments():
    # phrases: person (thing), sky (stuff), background
    logits = np.log(np.array([
        [8, 1, 1],  # q0 person, 0.8, owns the top-left pixel
        [1, 8, 1],  # q1 sky, 0.8, right column
        [1, 8, 1],  # q2 sky again, bottom-left -> merged with q1
        [6, 1, 1],  # q3 person, 0.75 but its mask is mostly owned by q0 -> dropped
        [1, 1, 8],  # q4 background -> ignored
    ], dtype=np.float32))
    masks = np.stack([_mask((0, 0)), _mask((0, 1), (1, 1)), _mask((1, 0)), _mask((0, 0), (1, 0), (0, 1)),
                      _mask((0, 0), (0, 1), (1, 0), (1, 1))])
    raw = {"pred_logits": logits, "pred_masks": masks, "pred_boxes": np.zeros((5, 4), np.float32)}
    task = _words("panoptic", ["person", {"text": "sky", "stuff": True}])
    dets = postprocess_task(task, raw, IDENTITY, C, num_k=3, task_index=0)["detections"]
    assert [(d["phrase"], d["stuff"], d["area"]) for d in dets] == [("person", False, 1), ("sky", True, 3)]
    assert dets[1]["box"] == [0.0, 0.0, 2.0, 2.0]
    sky = mask_utils.decode({"size": [2, 2], "counts": dets[1]["mask"]["counts"].encode()})
    assert sky.tolist() == [[0, 1], [1, 1]]


def test_semantic_argmax_of_prob_weighted_masks():
    logits = np.log(np.array([[9, 1, 0.001], [1, 9, 0.001]], dtype=np.float32))
    masks = np.stack([_mask((0, 0), (0, 1)), _mask((1, 0), (1, 1))])
    raw = {"pred_logits": logits, "pred_masks": masks, "pred_boxes": np.zeros((2, 4), np.float32)}
    res = postprocess_task(_words("semantic", ["road", "car"]), raw, IDENTITY, C, num_k=2, task_index=0)
    assert res["detections"] == []
    assert [(r["phrase"], r["area"]) for r in res["semantic"]] == [("road", 2), ("car", 2)]


def test_semantic_counts_the_stuff_queries_too():
    # Query 2 lies past the K=2 thing queries: a stuff query, the only one that predicts "sky" (the bottom row).
    logits = np.log(np.array([[9, 0.5, 0.5], [9, 0.5, 0.5], [0.01, 9, 0.5]], dtype=np.float32))
    masks = np.stack([_mask((0, 0), (0, 1)), _mask((0, 0), (0, 1)), _mask((1, 0), (1, 1))])
    raw = {"pred_logits": logits, "pred_masks": masks, "pred_boxes": np.zeros((3, 4), np.float32)}
    task = _words("semantic", ["car", {"text": "sky", "stuff": True}])
    res = postprocess_task(task, raw, IDENTITY, C, num_k=2, task_index=0)
    assert [(r["phrase"], r["area"]) for r in res["semantic"]] == [("car", 2), ("sky", 2)]


def _sentence(mode, **kw):
    return {"type": "sentence", "sentence": "the red circle", "mode": mode, **kw}


def test_sentence_single_picks_best_score_times_mask_prob_and_reports_its_box():
    # q0 has the higher raw score but an empty mask (mean prob 0); q1 wins
    logits = np.array([[3.0], [1.0], [5.0]], dtype=np.float32)
    masks = np.stack([_mask(), _mask((0, 1)), _mask((0, 0))])
    raw = {"pred_logits": logits, "pred_masks": masks, "pred_boxes": BOXES}
    dets = postprocess_task(_sentence("single"), raw, IDENTITY, C, num_k=2, task_index=0)["detections"]
    assert len(dets) == 1 and dets[0]["phrase"] == "the red circle"
    assert dets[0]["score"] == pytest.approx(1 / (1 + math.exp(-1)) * SIG, rel=1e-5)
    assert dets[0]["box"] == pytest.approx([0.0, 0.0, 1.0, 1.0])  # q1's box-head box, not a mask box
    assert dets[0]["area"] == 1


def test_sentence_multi_union_and_no_target():
    masks = np.stack([_mask((0, 0)), _mask((1, 1)), _mask((0, 1))])
    raw = {"pred_logits": np.array([[2.0], [1.0], [-1.0]], np.float32), "pred_masks": masks,
           "pred_boxes": BOXES}
    res = postprocess_task(_sentence("multi"), raw, IDENTITY, C, num_k=3, task_index=0)
    assert res["no_target"] is False
    assert res["detections"][0]["area"] == 2  # sigmoid 0.88 and 0.73 > 0.6; 0.27 is not
    assert res["detections"][0]["box"] == [0.0, 0.0, 2.0, 2.0]
    low = {**raw, "pred_logits": np.array([[-1.0], [-2.0], [-3.0]], np.float32)}
    res = postprocess_task(_sentence("multi"), low, IDENTITY, C, num_k=3, task_index=0)
    assert res["no_target"] is True and res["detections"] == []
    strict = postprocess_task(_sentence("multi", score_threshold=0.8), raw, IDENTITY, C, num_k=3, task_index=0)
    assert strict["detections"][0]["area"] == 1


def test_word_task_with_wrong_phrase_count_names_the_task():
    raw = {"pred_logits": np.zeros((2, 2), np.float32), "pred_masks": np.zeros((2, 2, 2), np.float32),
           "pred_boxes": np.zeros((2, 4), np.float32)}
    with pytest.raises(ValueError, match="task 5"):
        postprocess_task(_words("instance", ["a", "b"]), raw, IDENTITY, C, num_k=2, task_index=5)
