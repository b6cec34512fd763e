"""Box and mask AP / AP50 with pycocotools' COCOeval (COCO's own definition: 101-point interpolated precision
averaged over IoU 0.50:0.95, all areas, maxDets 100)."""
from __future__ import annotations

import contextlib
import io

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def coco_ap(gt: COCO, results: list[dict], iou_type: str, image_ids: list[int]) -> dict[str, float]:
    """results: COCO result dicts (image_id, category_id, score, and bbox [x,y,w,h] or segmentation RLE)."""
    if not results:
        return {"AP": 0.0, "AP50": 0.0, "num_images": len(image_ids)}
    with contextlib.redirect_stdout(io.StringIO()):   # COCOeval prints its progress and table
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iou_type)
        ev.params.imgIds = sorted(image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {"AP": 100 * float(ev.stats[0]), "AP50": 100 * float(ev.stats[1]), "num_images": len(image_ids)}
