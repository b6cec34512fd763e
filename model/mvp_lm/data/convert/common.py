"""Helpers every converter uses: loading annotation files and checking fields with errors that name
the file, the record and the field."""
from __future__ import annotations

import json
import posixpath
from collections import defaultdict
from pathlib import Path

from ..captions import clean_captions
from ..errors import DataFormatError
from ..masks import normalise_segmentation

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", list: "a list", dict: "an object",
               bool: "a boolean"}


def load_json(path: str | Path) -> object:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DataFormatError(str(path), "<file>", "<json>", f"invalid JSON: {e}") from None


def get(obj: object, key: str, types: type | tuple, file: str | Path, record: object, field: str | None = None):
    """obj[key] checked against `types`; `field` is the path shown in the error (defaults to `key`)."""
    types = types if isinstance(types, tuple) else (types,)
    if not isinstance(obj, dict):
        raise DataFormatError(str(file), record, field or key, "the record is not an object")
    if key not in obj:
        raise DataFormatError(str(file), record, field or key, "missing")
    v = obj[key]
    if isinstance(v, bool) and bool not in types or not isinstance(v, types):
        names = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
        raise DataFormatError(str(file), record, field or key, f"{v!r} is not {names}")
    return v


def get_list(obj: object, key: str, file: str | Path, where: str = "<file>") -> list:
    return get(obj, key, list, file, where)


def check_box_xywh(box: object, file, record, field: str) -> list[float]:
    if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
        raise DataFormatError(str(file), record, field, f"{box!r} is not [x, y, w, h]")
    if box[2] < 0 or box[3] < 0:
        raise DataFormatError(str(file), record, field, f"{box!r} has a negative width or height")
    return [float(v) for v in box]


def check_segmentation(seg: object, file, rec: str, field: str, h: int, w: int):
    if seg in (None, [], {}):
        return None
    if isinstance(seg, list):
        if not all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0
                   and all(isinstance(v, (int, float)) for v in p) for p in seg):
            raise DataFormatError(str(file), rec, field, "a polygon needs at least 3 (x, y) number pairs")
        return seg
    if isinstance(seg, dict) and isinstance(seg.get("counts"), (str, list)) and isinstance(seg.get("size"), list):
        if list(seg["size"]) != [h, w]:
            raise DataFormatError(str(file), rec, field + ".size", f"{seg['size']} differs from the image [{h}, {w}]")
        return normalise_segmentation(seg, h, w)
    raise DataFormatError(str(file), rec, field, "not a polygon list or an RLE {size, counts}")


def index_images(data: dict, file) -> dict[int, dict]:
    """COCO `images` by id, each checked for id, file_name, height and width."""
    out = {}
    for i, im in enumerate(get_list(data, "images", file)):
        rec = f"images[{i}]"
        iid = get(im, "id", int, file, rec, f"images[{i}].id")
        for k, t in (("file_name", str), ("height", int), ("width", int)):
            get(im, k, t, file, f"images[{i}] (id {iid})", f"images[{i}].{k}")
        out[iid] = im
    return out


def index_categories(data: dict, file) -> dict[int, dict]:
    out = {}
    for i, c in enumerate(get_list(data, "categories", file)):
        cid = get(c, "id", int, file, f"categories[{i}]", f"categories[{i}].id")
        get(c, "name", str, file, f"categories[{i}] (id {cid})", f"categories[{i}].name")
        out[cid] = c
    return out


def load_captions(path: str | Path | None) -> dict[int, list[str]]:
    """COCO captions file (annotations [{image_id, caption}]) → cleaned captions per image id."""
    if path is None:
        return {}
    data = load_json(path)
    raw: dict[int, list[str]] = defaultdict(list)
    for i, a in enumerate(get_list(data, "annotations", path)):
        iid = get(a, "image_id", int, path, f"annotations[{i}]", f"annotations[{i}].image_id")
        raw[iid].append(get(a, "caption", str, path, f"annotations[{i}]", f"annotations[{i}].caption"))
    return {iid: clean_captions(cs) for iid, cs in raw.items()}


def image_path(prefix: str, file_name: str) -> str:
    return posixpath.join(prefix, file_name) if prefix else file_name


def check_annotation(a: object, i: int, file, images: dict[int, dict]) -> dict:
    """One COCO instance annotation checked: id, image_id (must exist), category_id, bbox [x,y,w,h],
    segmentation (normalised: polygons, compressed RLE or None), iscrowd."""
    aid = get(a, "id", int, file, f"annotations[{i}]", f"annotations[{i}].id")
    rec = f"annotations[{i}] (id {aid})"
    iid = get(a, "image_id", int, file, rec, f"annotations[{i}].image_id")
    if iid not in images:
        raise DataFormatError(str(file), rec, f"annotations[{i}].image_id", f"no image {iid}")
    im = images[iid]
    return {"id": aid, "image_id": iid, "record": rec,
            "category_id": a.get("category_id"),
            "bbox": check_box_xywh(a.get("bbox"), file, rec, f"annotations[{i}].bbox"),
            "segmentation": check_segmentation(a.get("segmentation"), file, rec, f"annotations[{i}].segmentation",
                                               im["height"], im["width"]),
            "iscrowd": bool(a.get("iscrowd", 0))}


def index_instances(instances_json: str | Path) -> tuple[dict[int, dict], dict[int, dict]]:
    """Images and checked annotations of an instances.json, by id — what the referring datasets point into."""
    data = load_json(instances_json)
    images = index_images(data, instances_json)
    anns = [check_annotation(a, i, instances_json, images) for i, a in enumerate(get_list(data, "annotations",
                                                                                          instances_json))]
    return images, {a["id"]: a for a in anns}


def sentence_texts(ref: dict, file, rec: str) -> list[tuple[object, str]]:
    """(sent_id or index, text) of a RefCOCO-style ref's `sentences` [{sent, tokens, raw}]."""
    out = []
    for j, s in enumerate(get(ref, "sentences", list, file, rec)):
        text = get(s, "sent", str, file, rec, f"sentences[{j}].sent").strip()
        if not text:
            raise DataFormatError(str(file), rec, f"sentences[{j}].sent", "empty")
        out.append((s.get("sent_id", j), text))
    return out
