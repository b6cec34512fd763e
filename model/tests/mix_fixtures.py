"""The converter fixtures (tests/fixtures/) arranged in the standard dataset layouts `python -m mvp_lm.data.mix`
reads, with images of the sizes the annotations give (the fixtures have none)."""
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

FIX = Path(__file__).parent / "fixtures"


def write_images(images: list[dict], folder: Path) -> None:
    rng = np.random.default_rng(0)
    for im in images:
        path = folder / im["file_name"]
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (im["height"], im["width"], 3), dtype=np.uint8)).save(path)


def copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    return dst


def arrange_datasets(root: Path) -> list[str]:
    """Every dataset folder under root; returns the mix command's folder arguments (splits: COCO and Objects365
    "val", the referring datasets' default "train"). RefCOCO+ reuses RefCOCO's files, under its own source."""
    coco, o365, refer, gref, goldg = (root / n for n in ("coco", "objects365", "refer", "grefcoco", "goldg"))
    pan = FIX / "coco_panoptic"
    copy(pan / "panoptic_val.json", coco / "annotations/panoptic_val.json")
    copy(pan / "panoptic_val", coco / "annotations/panoptic_val")
    copy(pan / "captions_val.json", coco / "annotations/captions_val.json")
    write_images(json.loads((pan / "panoptic_val.json").read_text())["images"], coco / "val")
    o365_json = copy(FIX / "objects365/zhiyuan_objv2_val.json", o365 / "annotations/zhiyuan_objv2_val.json")
    write_images(json.loads(o365_json.read_text())["images"], o365 / "val")
    for name in ("refcoco", "refcoco+"):
        copy(FIX / "refcoco/instances.json", refer / name / "instances.json")
        copy(FIX / "refcoco/refs(unc).p", refer / name / "refs(unc).p")
    copy(FIX / "refcoco/instances.json", gref / "instances.json")
    copy(FIX / "grefcoco/grefs(unc).json", gref / "grefs(unc).json")
    write_images(json.loads((FIX / "refcoco/instances.json").read_text())["images"], coco / "train2014")
    goldg_json = FIX / "goldg/final_mixed_train.json"
    for file, images in (("final_mixed_train_no_coco.json", "gqa/images"),
                         ("final_flickr_separateGT_train.json", "flickr30k/flickr30k_images/train")):
        copy(goldg_json, goldg / "mdetr_annotations" / file)
        write_images(json.loads(goldg_json.read_text())["images"], goldg / images)
    return ["--coco-panoptic", str(coco), "--coco-split", "val", "--objects365", str(o365), "--objects365-split", "val",
            "--refcoco", str(refer / "refcoco"), "--refcoco+", str(refer / "refcoco+"), "--grefcoco", str(gref),
            "--coco-train2014", str(coco / "train2014"), "--goldg", str(goldg)]
