"""Tasks and an image that exercise every task kind and mode end to end (test_export_parity, test_export_fp16)."""
import numpy as np
from pycocotools import mask as mask_utils

TASKS = [
    {"type": "words", "phrases": ["red square", "blue circle", {"text": "grass", "stuff": True}], "mode": "panoptic"},
    {"type": "words", "phrases": ["red square", "blue circle"], "mode": "instance", "score_threshold": 0.0,
     "top_k": 10},
    {"type": "words", "phrases": [f"shape {i}" for i in range(20)], "mode": "detection", "score_threshold": 0.0,
     "top_k": 5},
    {"type": "words", "phrases": ["red square", "grass"], "mode": "semantic"},
    {"type": "sentence", "sentence": "the red square left of the blue circle"},
    {"type": "sentence", "sentence": "the blue circle", "mode": "multi", "score_threshold": 0.0},
]


def synthetic_image() -> np.ndarray:
    img = np.zeros((75, 101, 3), np.uint8)
    img[:] = (40, 140, 50)
    img[10:40, 12:45] = (220, 30, 30)
    yy, xx = np.mgrid[:75, :101]
    img[(yy - 45) ** 2 + (xx - 70) ** 2 < 15 ** 2] = (30, 40, 220)
    return img


def mask_iou(a, b):
    ma, mb = (mask_utils.decode({"size": m["size"], "counts": m["counts"].encode()}).astype(bool) for m in (a, b))
    union = (ma | mb).sum()
    return 1.0 if union == 0 else (ma & mb).sum() / union
