"""Reference post-processing: the oracle the TypeScript worker is tested against.

Inputs are the raw `perception_decoder` outputs of ONE image (batch index removed): `pred_logits` [Q,P],
`pred_masks` [Q,M,M] (logits), `pred_boxes` [Q,4] (sigmoid cx,cy,w,h in the padded S×S frame). Every constant comes
from the manifest `postprocess` section (`constants` below); tasks are contract tasks with defaults applied
(`normalize_task`).

Interpolation (both the preprocess resize and the mask resizes) is bilinear with half-pixel centres and no
anti-aliasing, i.e. `torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=False)`:
for output index i of n_out from n_in, src = max((i + 0.5) * n_in / n_out - 0.5, 0), i0 = floor(src),
i1 = min(i0 + 1, n_in - 1), w = src - i0, value = (1 - w) * x[i0] + w * x[i1], applied to rows and columns.

Geometry: mask logits M×M → S×S (bilinear), crop the valid region [0:vh, 0:vw], → original h×w (bilinear); all
scores below are computed at the original resolution. Boxes: normalised × S ÷ valid size × original size → absolute
x0,y0,x1,y1, clipped to the image.

Ordering: ties in every ranking are broken by the lower index (stable sorts / first argmax).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .contracts import phrase_defaults, task_defaults
from .data.masks import encode_rle


def constants_from_config(postprocess_config: dict) -> dict:
    """The manifest `postprocess` section: the config's PostprocessConfig fields plus the binary-mask logit
    threshold (mask = resized logit > `mask_logit_threshold`, 0 in the released code). The functions below read
    every constant from the `constants` they are given, so a bundle may change them."""
    return {"mask_logit_threshold": 0.0, **postprocess_config}

# Scores of at most this many queries' masks are resized at once (bounds memory at full size).
_MASK_CHUNK = 16


@dataclass(frozen=True)
class Geometry:
    image_size: int  # S
    valid_hw: tuple[int, int]  # resized image inside the padded frame
    orig_hw: tuple[int, int]


def valid_size(orig_hw: tuple[int, int], image_size: int) -> tuple[int, int]:
    """Longer side → S, the other side round-half-up of h·S/max(h,w), in integer arithmetic."""
    h, w = orig_hw
    if h < 1 or w < 1:
        raise ValueError(f"image size {orig_hw} must be positive")
    m = max(h, w)
    return tuple(max(1, (2 * side * image_size + m) // (2 * m)) for side in (h, w))  # type: ignore[return-value]


def geometry_for(orig_hw: tuple[int, int], image_size: int) -> Geometry:
    return Geometry(image_size, valid_size(orig_hw, image_size), tuple(orig_hw))  # type: ignore[arg-type]


def resize_bilinear(x: np.ndarray | torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """[N,h,w] or [N,C,h,w] float32 → same leading dims at out_hw (see the module docstring for the formula)."""
    t = torch.as_tensor(x, dtype=torch.float32)
    squeeze = t.dim() == 3
    if squeeze:
        t = t[:, None]
    if tuple(t.shape[-2:]) != tuple(out_hw):
        t = torch.nn.functional.interpolate(t, size=tuple(out_hw), mode="bilinear", align_corners=False,
                                            antialias=False)
    return t[:, 0] if squeeze else t


def masks_to_original(mask_logits: np.ndarray, geom: Geometry) -> torch.Tensor:
    """[Q,M,M] mask logits → [Q,h,w] logits in original pixels."""
    s = geom.image_size
    vh, vw = geom.valid_hw
    padded = resize_bilinear(mask_logits, (s, s))
    return resize_bilinear(padded[:, :vh, :vw], geom.orig_hw)


def boxes_to_original(boxes: np.ndarray, geom: Geometry) -> np.ndarray:
    """[Q,4] sigmoid cx,cy,w,h (padded frame) → [Q,4] absolute x0,y0,x1,y1 in original pixels, clipped."""
    b = np.asarray(boxes, dtype=np.float64)
    s = geom.image_size
    (vh, vw), (h, w) = geom.valid_hw, geom.orig_hw
    sx, sy = s / vw * w, s / vh * h
    cx, cy, bw, bh = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    out = np.stack([(cx - bw / 2) * sx, (cy - bh / 2) * sy, (cx + bw / 2) * sx, (cy + bh / 2) * sy], axis=1)
    out[:, 0::2] = out[:, 0::2].clip(0, w)
    out[:, 1::2] = out[:, 1::2].clip(0, h)
    return out


def mask_bbox(mask: np.ndarray) -> list[float]:
    """Tight x0,y0,x1,y1 (pixel edges) of a binary mask; zeros for an empty one."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def _softmax(x: np.ndarray) -> np.ndarray:
    return torch.softmax(torch.as_tensor(x, dtype=torch.float32), dim=-1).numpy()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return torch.sigmoid(torch.as_tensor(x, dtype=torch.float32)).numpy()


def _mask_scores(logits: torch.Tensor, c: dict) -> tuple[np.ndarray, np.ndarray]:
    """Binary masks (logit > threshold) and the mean sigmoid probability inside each ([Q,h,w] → masks, [Q])."""
    masks = logits > c["mask_logit_threshold"]
    prob = torch.sigmoid(logits)
    inside = (prob * masks).flatten(1).sum(1) / (masks.flatten(1).sum(1) + 1e-6)
    return masks.numpy(), inside.numpy()


def _detection(phrase_index: int, phrase: str, score: float, outputs: list[str], *, box=None, mask=None,
               area: int, stuff: bool | None = None) -> dict:
    det = {"phrase_index": int(phrase_index), "phrase": phrase, "score": float(score)}
    if "boxes" in outputs and box is not None:
        det["box"] = [float(v) for v in box]
    if "masks" in outputs and mask is not None:
        det["mask"] = encode_rle(mask)
    det["area"] = int(area)
    if stuff is not None:
        det["stuff"] = stuff
    return det


def normalize_task(task: dict) -> dict:
    """Apply the contract defaults (contracts/task.ts) to a task given as plain JSON. The defaults are read from
    contracts/schema/task.v1.json, which `npm run contracts` generates from contracts/task.ts."""
    t = dict(task)
    if t.get("type") not in ("words", "sentence"):
        raise ValueError(f"task type {t.get('type')!r} is neither 'words' nor 'sentence'")
    for key, value in task_defaults(t["type"]).items():
        t.setdefault(key, value)
    if t["type"] == "words":
        t["phrases"] = [{"text": p, **phrase_defaults()} if isinstance(p, str) else {**phrase_defaults(), **p}
                        for p in t["phrases"]]
    else:
        t.setdefault("score_threshold", None)  # optional, no default: the manifest's threshold applies
    return t


def _words_topk(logits: np.ndarray, masks_raw: np.ndarray, boxes: np.ndarray, task: dict, geom: Geometry,
                c: dict, num_k: int, with_mask_score: bool) -> list[dict]:
    """Instance (class prob × mean mask prob) and detection (class prob): top-k (query, phrase) pairs, no NMS."""
    probs = _softmax(logits[:num_k])[:, :-1]  # drop background
    n_phr = probs.shape[1]
    flat = probs.reshape(-1)
    order = np.argsort(-flat, kind="stable")[: min(task["top_k"], flat.size)]
    queries = order // n_phr
    need_masks = with_mask_score or "masks" in task["outputs"]
    uniq = np.unique(queries)
    masks, mask_score = {}, {}
    if need_masks:
        for start in range(0, len(uniq), _MASK_CHUNK):
            chunk = uniq[start:start + _MASK_CHUNK]
            m, sc = _mask_scores(masks_to_original(masks_raw[chunk], geom), c)
            for j, q in enumerate(chunk):
                masks[int(q)], mask_score[int(q)] = m[j], float(sc[j])
    abs_boxes = boxes_to_original(boxes, geom)
    dets = []
    for idx in order:
        q, c = int(idx // n_phr), int(idx % n_phr)
        score = float(flat[idx]) * (mask_score[q] if with_mask_score else 1.0)
        if score < task["score_threshold"]:
            continue
        mask = masks.get(q)
        area = int(mask.sum()) if mask is not None else int(round(_box_area(abs_boxes[q])))
        dets.append(_detection(c, task["phrases"][c]["text"], score, task["outputs"], box=abs_boxes[q],
                               mask=mask, area=area))
    dets.sort(key=lambda d: -d["score"])  # stable: equal scores keep the top-k order
    return dets


def _box_area(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], 0) * max(box[3] - box[1], 0))


def panoptic(logits: np.ndarray, masks_raw: np.ndarray, task: dict, geom: Geometry, c: dict) -> list[dict]:
    """Mask2Former-style panoptic inference over all Q queries (things and stuff queries)."""
    probs = _softmax(logits)
    scores, labels = probs.max(-1), probs.argmax(-1)
    background = logits.shape[1] - 1
    keep = np.nonzero((labels != background) & (scores > c["panoptic_score_threshold"]))[0]
    if len(keep) == 0:
        return []
    prob_masks = torch.sigmoid(masks_to_original(masks_raw[keep], geom)).numpy()
    owner = np.argmax(scores[keep][:, None, None] * prob_masks, axis=0)
    segments: list[dict] = []
    stuff_segment: dict[int, dict] = {}
    for j, q in enumerate(keep):
        label = int(labels[q])
        phrase = task["phrases"][label]
        own = prob_masks[j] >= c["panoptic_mask_threshold"]
        visible = owner == j
        mask = visible & own
        original_area, visible_area = int(own.sum()), int(visible.sum())
        if visible_area == 0 or original_area == 0 or not mask.any():
            continue
        if visible_area / original_area < c["panoptic_overlap_threshold"]:
            continue
        if phrase["stuff"] and label in stuff_segment:
            seg = stuff_segment[label]
            seg["mask"] |= mask
            seg["score"] = max(seg["score"], float(scores[q]))
            continue
        seg = {"label": label, "mask": mask, "score": float(scores[q]), "stuff": phrase["stuff"]}
        segments.append(seg)
        if phrase["stuff"]:
            stuff_segment[label] = seg
    return [_detection(s["label"], task["phrases"][s["label"]]["text"], s["score"], task["outputs"],
                       box=mask_bbox(s["mask"]), mask=s["mask"], area=int(s["mask"].sum()), stuff=s["stuff"])
            for s in segments]


def semantic(logits: np.ndarray, masks_raw: np.ndarray, task: dict, geom: Geometry) -> list[dict]:
    """Σ_q softmax(q)[c] · sigmoid(mask_q) over ALL queries (the K thing queries and the stuff queries, as in
    Mask2Former's semantic inference: training matches stuff targets to the stuff queries only), argmax per pixel;
    one region per phrase."""
    num_q = logits.shape[0]
    probs = torch.as_tensor(_softmax(logits)[:, :-1])
    acc = None
    for start in range(0, num_q, _MASK_CHUNK):
        part = torch.sigmoid(masks_to_original(masks_raw[start:min(start + _MASK_CHUNK, num_q)], geom))
        term = torch.einsum("qc,qhw->chw", probs[start:start + part.shape[0]], part)
        acc = term if acc is None else acc + term
    label_map = acc.argmax(0).numpy()
    regions = []
    for c in np.unique(label_map):
        mask = label_map == c
        regions.append({"phrase_index": int(c), "phrase": task["phrases"][int(c)]["text"],
                        "mask": encode_rle(mask), "area": int(mask.sum())})
    return regions


def sentence_single(logits: np.ndarray, masks_raw: np.ndarray, boxes: np.ndarray, task: dict, geom: Geometry,
                    c: dict, num_k: int) -> list[dict]:
    """RES/REC: the query with the best sigmoid(score) × mean mask prob; its box is the box-head box."""
    s = _sigmoid(logits[:num_k, 0])
    best, best_score, best_mask = -1, -np.inf, None
    for start in range(0, num_k, _MASK_CHUNK):
        m, sc = _mask_scores(masks_to_original(masks_raw[start:min(start + _MASK_CHUNK, num_k)], geom), c)
        total = s[start:start + len(sc)] * sc
        j = int(np.argmax(total))
        if total[j] > best_score:
            best, best_score, best_mask = start + j, float(total[j]), m[j]
    box = boxes_to_original(boxes[best:best + 1], geom)[0]
    return [_detection(0, task["sentence"], best_score, task["outputs"], box=box, mask=best_mask,
                       area=int(best_mask.sum()))]


def sentence_multi(logits: np.ndarray, masks_raw: np.ndarray, task: dict, geom: Geometry, c: dict,
                   num_k: int) -> tuple[list[dict], bool]:
    """gRefCOCO: no target when the best sigmoid(score) < `no_target_threshold`; otherwise the union of the masks
    of queries with score > threshold (task `score_threshold`, else `generalised_sentence_threshold`), at least the
    best one."""
    s = _sigmoid(logits[:num_k, 0])
    best = int(np.argmax(s))
    if s[best] < c["no_target_threshold"]:
        return [], True
    threshold = task.get("score_threshold")
    threshold = c["generalised_sentence_threshold"] if threshold is None else threshold
    chosen = np.nonzero(s > threshold)[0]
    if len(chosen) == 0:
        chosen = np.array([best])
    union = np.zeros(geom.orig_hw, dtype=bool)
    for start in range(0, len(chosen), _MASK_CHUNK):
        logits_q = masks_to_original(masks_raw[chosen[start:start + _MASK_CHUNK]], geom)
        union |= (logits_q > c["mask_logit_threshold"]).any(0).numpy()
    return [_detection(0, task["sentence"], float(s[best]), task["outputs"], box=mask_bbox(union), mask=union,
                       area=int(union.sum()))], False


def postprocess_task(task: dict, raw: dict, geom: Geometry, constants: dict, num_k: int, task_index: int) -> dict:
    """One TaskResult (contracts/result.ts) from the raw decoder outputs of this task's image.

    For word tasks `task["phrases"]` are the user phrases and `raw["pred_logits"]` has one more column (background).
    """
    task = normalize_task(task)
    logits = np.asarray(raw["pred_logits"], dtype=np.float32)
    masks_raw = np.asarray(raw["pred_masks"], dtype=np.float32)
    boxes = np.asarray(raw["pred_boxes"], dtype=np.float32)
    result = {"task_index": task_index, "type": task["type"], "mode": task["mode"], "detections": []}
    if task["type"] == "words":
        if logits.shape[1] != len(task["phrases"]) + 1:
            raise ValueError(f"task {task_index}: pred_logits has {logits.shape[1]} phrase columns, expected "
                             f"{len(task['phrases'])} phrases + background")
        mode = task["mode"]
        if mode == "panoptic":
            result["detections"] = panoptic(logits, masks_raw, task, geom, constants)
        elif mode == "semantic":
            result["semantic"] = semantic(logits, masks_raw, task, geom)
        elif mode in ("instance", "detection"):
            result["detections"] = _words_topk(logits, masks_raw, boxes, task, geom, constants, num_k,
                                               with_mask_score=mode == "instance")
        else:
            raise ValueError(f"task {task_index}: unknown words mode {mode!r}")
    else:
        if task["mode"] == "single":
            result["detections"] = sentence_single(logits, masks_raw, boxes, task, geom, constants, num_k)
        elif task["mode"] == "multi":
            result["detections"], result["no_target"] = sentence_multi(logits, masks_raw, task, geom, constants,
                                                                       num_k)
        else:
            raise ValueError(f"task {task_index}: unknown sentence mode {task['mode']!r}")
    return result
