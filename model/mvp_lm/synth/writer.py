"""Writes a synthetic benchmark in the real datasets' formats, so the converters and metrics need no special path.

Layout of DIR (image ids 1..N; each image is in split train or val):
  images/{id:012d}.png                      RGB images
  annotations/panoptic_{split}.json         COCO panoptic JSON  + annotations/panoptic_{split}/{id:012d}.png
  annotations/instances_{split}.json        COCO instances (things; bbox xywh, segmentation compressed RLE)
  annotations/captions_{split}.json         COCO captions (4 per image, different styles)
  refcoco/refs(unc).p + refcoco/instances.json   RefCOCO refs pickle (unique targets) + instances of all images
  grefcoco/grefs(unc).json                  gRefCOCO refs (multi-, single- and no-target);
                                            their instances are refcoco/instances.json
"""
from __future__ import annotations

import json
import pickle
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..data.masks import encode_rle, mask_box, xyxy_to_xywh
from .language import captions, expressions, pick_grefs, pick_refs
from .scene import sample_scene
from .vocab import CATEGORIES, CATEGORY_ID

SPLITS = ("train", "val")


def _dump(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, separators=(",", ":")))


def _sentence(sent_id: int, text: str) -> dict:
    return {"sent_id": sent_id, "sent": text, "raw": text[0].upper() + text[1:] + ".", "tokens": text.split()}


def generate(out: str | Path, seed: int, num_images: int, size: int = 128, val_fraction: float = 0.2,
             progress: bool = True) -> dict[str, int]:
    out = Path(out)
    info = {"description": "MVP-LM synthetic perception benchmark", "seed": seed, "size": size}
    panoptic = {s: {"info": info, "images": [], "annotations": [], "categories": CATEGORIES} for s in SPLITS}
    instances = {s: {"info": info, "images": [], "annotations": [],
                     "categories": [c for c in CATEGORIES if c["isthing"]]} for s in SPLITS}
    caps = {s: {"info": info, "images": [], "annotations": []} for s in SPLITS}
    all_instances = {"info": info, "images": [], "annotations": [], "categories": instances["train"]["categories"]}
    refs, grefs = [], []
    counts: dict[str, int] = defaultdict(int)
    for i in tqdm(range(num_images), desc="synth", unit="img", disable=not progress):
        rng = np.random.default_rng([seed, i])   # per-image stream: image i is the same whatever N is
        split = "val" if rng.random() < val_fraction else "train"
        scene = sample_scene(rng, size)
        iid = i + 1
        name = f"{iid:012d}"
        image = {"id": iid, "file_name": f"{name}.png", "height": size, "width": size}
        (out / "images").mkdir(parents=True, exist_ok=True)
        Image.fromarray(scene.image).save(out / "images" / f"{name}.png")
        for coll in (panoptic[split], instances[split], caps[split], all_instances):
            coll["images"].append(image)

        seg_map = np.zeros((size, size), np.uint32)
        segments, ann_ids = [], []
        for k, t in enumerate(scene.things):
            sid = k + 1
            seg_map[t.mask] = sid
            box = xyxy_to_xywh(mask_box(t.mask))
            segments.append({"id": sid, "category_id": CATEGORY_ID[t.shape], "iscrowd": 0, "bbox": box, "area": t.area})
            ann = {"id": iid * 100 + k, "image_id": iid, "category_id": CATEGORY_ID[t.shape], "bbox": box,
                   "area": t.area, "iscrowd": 0, "segmentation": encode_rle(t.mask),
                   "attributes": {"colour": t.colour, "size": t.size}}
            ann_ids.append(ann["id"])
            instances[split]["annotations"].append(ann)
            all_instances["annotations"].append(ann)
        for k, (stuff, m) in enumerate(scene.stuff.items()):
            sid = len(scene.things) + k + 1
            seg_map[m] = sid
            segments.append({"id": sid, "category_id": CATEGORY_ID[stuff], "iscrowd": 0,
                             "bbox": xyxy_to_xywh(mask_box(m)), "area": int(m.sum())})
        rgb = np.stack([seg_map % 256, seg_map // 256 % 256, seg_map // 65536], -1).astype(np.uint8)
        (out / "annotations" / f"panoptic_{split}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(out / "annotations" / f"panoptic_{split}" / f"{name}.png")
        panoptic[split]["annotations"].append({"image_id": iid, "file_name": f"{name}.png", "segments_info": segments})

        for j, c in enumerate(captions(scene, size, rng)):
            caps[split]["annotations"].append({"id": iid * 10 + j, "image_id": iid, "caption": c})
        exprs = expressions(scene, size)
        for k, texts in pick_refs(exprs, len(scene.things), rng):
            rid = len(refs)
            sents = [_sentence(rid * 10 + j, t) for j, t in enumerate(texts)]
            refs.append({"ref_id": rid, "ann_id": ann_ids[k], "image_id": iid, "split": split,
                         "category_id": CATEGORY_ID[scene.things[k].shape], "file_name": f"{name}_{ann_ids[k]}.png",
                         "sentences": sents, "sent_ids": [s["sent_id"] for s in sents]})
        for e in pick_grefs(exprs, rng):
            rid = len(grefs)
            grefs.append({"ref_id": rid, "image_id": iid, "split": split, "no_target": not e.targets,
                          "ann_id": [ann_ids[k] for k in e.targets] or [-1],
                          "category_id": sorted({CATEGORY_ID[scene.things[k].shape] for k in e.targets}) or [-1],
                          "sentences": [_sentence(rid, e.text)], "sent_ids": [rid]})
        counts[f"images_{split}"] += 1
        counts["things"] += len(scene.things)
    for s in SPLITS:
        _dump(out / "annotations" / f"panoptic_{s}.json", panoptic[s])
        _dump(out / "annotations" / f"instances_{s}.json", instances[s])
        _dump(out / "annotations" / f"captions_{s}.json", caps[s])
    _dump(out / "refcoco" / "instances.json", all_instances)
    with open(out / "refcoco" / "refs(unc).p", "wb") as f:
        pickle.dump(refs, f, protocol=4)
    _dump(out / "grefcoco" / "grefs(unc).json", grefs)
    counts.update(refs=len(refs), grefs=len(grefs), grefs_no_target=sum(g["no_target"] for g in grefs))
    return dict(counts)
