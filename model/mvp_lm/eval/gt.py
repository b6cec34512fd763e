"""Ground truth for the metrics, read from the datasets' own files. Default paths follow the layout that
`python -m mvp_lm.synth` writes (see mvp_lm.synth.writer); each can be overridden for the real datasets."""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO

from ..data.convert.common import index_instances, load_captions, load_json
from ..data.convert.coco_panoptic import read_segment_ids
from ..data.convert.grefcoco import target_ann_ids
from ..data.convert.refcoco import load_refs
from ..data.errors import DataFormatError
from ..data.masks import decode_segmentation, xywh_to_xyxy
from .panoptic import Segment


@dataclass
class GTPaths:
    panoptic_json: Path
    panoptic_dir: Path
    instances: Path
    captions: Path
    refs: Path
    grefs: Path
    ref_instances: Path

    @staticmethod
    def for_dir(root: str | Path, split: str, **overrides) -> "GTPaths":
        r = Path(root)
        paths = {"panoptic_json": r / "annotations" / f"panoptic_{split}.json",
                 "panoptic_dir": r / "annotations" / f"panoptic_{split}",
                 "instances": r / "annotations" / f"instances_{split}.json",
                 "captions": r / "annotations" / f"captions_{split}.json",
                 "refs": r / "refcoco" / "refs(unc).p", "grefs": r / "grefcoco" / "grefs(unc).json",
                 "ref_instances": r / "refcoco" / "instances.json"}
        paths.update({k: Path(v) for k, v in overrides.items() if v is not None})
        return GTPaths(**paths)


class GroundTruth:
    """Loads each part on first use, so evaluating one task type needs only that task's files."""

    def __init__(self, paths: GTPaths, split: str):
        self.paths, self.split = paths, split

    def _need(self, p: Path) -> Path:
        if not p.exists():
            raise FileNotFoundError(f"ground truth file {p} is missing (needed by the predictions' task types)")
        return p

    @cached_property
    def panoptic(self) -> dict:
        data = load_json(self._need(self.paths.panoptic_json))
        return {"categories": {c["id"]: c for c in data["categories"]},
                "annotations": {a["image_id"]: a for a in data["annotations"]},
                "images": {im["id"]: im for im in data["images"]}}

    def panoptic_image(self, image_id: int) -> tuple[np.ndarray, dict[int, Segment]]:
        ann = self.panoptic["annotations"].get(image_id)
        if ann is None:
            raise KeyError(f"image {image_id} is not in {self.paths.panoptic_json}")
        ids = read_segment_ids(self._need(self.paths.panoptic_dir) / ann["file_name"])
        return ids, {s["id"]: Segment(s["category_id"], bool(s.get("iscrowd", 0))) for s in ann["segments_info"]}

    def semantic_image(self, image_id: int) -> np.ndarray:
        ids, segs = self.panoptic_image(image_id)
        lut = {sid: s.category_id for sid, s in segs.items()}
        out = np.zeros(ids.shape, np.int64)
        for sid, cid in lut.items():
            out[ids == sid] = cid
        return out

    @cached_property
    def coco(self) -> COCO:
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(str(self._need(self.paths.instances)))

    @cached_property
    def captions(self) -> dict[int, list[str]]:
        return load_captions(self._need(self.paths.captions))

    @cached_property
    def _ref_instances(self):
        return index_instances(self._need(self.paths.ref_instances))

    @property
    def ref_images(self) -> dict[int, dict]:
        return self._ref_instances[0]

    @cached_property
    def ref_boxes(self) -> dict[int, list[list[float]]]:
        """image_id → the xyxy boxes of every referable object (the choices a random pick has)."""
        out: dict[int, list[list[float]]] = {}
        for a in self._ref_instances[1].values():
            out.setdefault(a["image_id"], []).append(xywh_to_xyxy(a["bbox"]))
        return out

    def present_categories(self, image_id: int) -> set[int]:
        """Category ids with a panoptic segment in the image."""
        return {s["category_id"] for s in self.panoptic["annotations"][image_id]["segments_info"]}

    def _target_mask(self, ann_id: int) -> tuple[np.ndarray, list[float]]:
        images, anns = self._ref_instances
        a = anns[ann_id]
        im = images[a["image_id"]]
        if a["segmentation"] is None:
            raise DataFormatError(str(self.paths.ref_instances), f"annotation {ann_id}", "segmentation", "missing")
        return decode_segmentation(a["segmentation"], im["height"], im["width"]), xywh_to_xyxy(a["bbox"])

    @cached_property
    def refs(self) -> dict[int, dict]:
        """sent_id → {image_id, mask, box} for the RefCOCO sentences of this split."""
        out = {}
        for ref in load_refs(self._need(self.paths.refs)):
            if ref.get("split") != self.split:
                continue
            mask, box = self._target_mask(ref["ann_id"])
            for j, s in enumerate(ref["sentences"]):
                out[s.get("sent_id", j)] = {"image_id": ref["image_id"], "mask": mask, "box": box, "sent": s["sent"]}
        return out

    @cached_property
    def grefs(self) -> dict[int, dict]:
        """sent_id → {image_id, mask (union of targets; empty for no-target)} for this split."""
        out = {}
        for i, ref in enumerate(load_json(self._need(self.paths.grefs))):
            if ref.get("split") != self.split:
                continue
            im = self.ref_images[ref["image_id"]]
            mask = np.zeros((im["height"], im["width"]), bool)
            for a in target_ann_ids(ref, self.paths.grefs, f"refs[{i}]"):
                mask |= self._target_mask(a)[0]
            for j, s in enumerate(ref["sentences"]):
                out[s.get("sent_id", j)] = {"image_id": ref["image_id"], "mask": mask, "sent": s["sent"]}
        return out
