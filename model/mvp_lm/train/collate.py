"""Turning a materialised SFT sample into tensors, and samples into a batch.

Image preprocessing is the inference code itself (`reference.preprocess`: longer side to S with half-pixel
bilinear, pad right/bottom with the raw value 128, ImageNet mean/std on the 0–255 scale). Boxes and masks are mapped
into the same padded S×S frame: boxes as normalised cx,cy,w,h; masks resized like the image, then averaged over
each mask-resolution cell (S/M × S/M pixels), i.e. the cell's coverage.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tokenizers import Tokenizer
from torch import Tensor

from ..config import MVPLMConfig
from ..data.errors import DataFormatError
from ..data.masks import decode_segmentation
from ..data.sampler import Sample
from ..postprocess import resize_bilinear, valid_size
from ..prompt import PromptSpec, build_training_ids
from ..reference import preprocess
from .boxes import xyxy_to_cxcywh
from .targets import ImageTargets


def preprocess_image(image: Image.Image, cfg: MVPLMConfig) -> Tensor:
    """PIL image -> pixel_values [3,S,S] float32, exactly as inference computes them."""
    pre = {"image_size": cfg.image_size, "pad_value": cfg.preprocess.pad_value, "mean": list(cfg.preprocess.mean),
           "std": list(cfg.preprocess.std)}
    pixel_values, _ = preprocess(np.asarray(image.convert("RGB"), dtype=np.uint8), pre)
    return torch.from_numpy(pixel_values[0])


def mask_in_frame(mask: np.ndarray, cfg: MVPLMConfig) -> Tensor:
    """Boolean H×W mask in original pixels -> [M,M] float coverage in the padded frame."""
    s, m = cfg.image_size, cfg.mask_size
    h, w = valid_size(mask.shape, s)
    canvas = torch.zeros(s, s)
    canvas[:h, :w] = resize_bilinear(mask[None].astype(np.float32), (h, w))[0]
    r = s // m
    return canvas.reshape(m, r, m, r).mean(dim=(1, 3))


def sample_targets(sample: Sample, cfg: MVPLMConfig) -> ImageTargets:
    """Targets of a sample in the padded normalised frame; sentence targets all get label 0."""
    n, m = len(sample.targets), cfg.mask_size
    h, w = valid_size((sample.height, sample.width), cfg.image_size)
    scale = torch.tensor([w / sample.width, h / sample.height] * 2) / cfg.image_size
    boxes = torch.tensor([t.box for t in sample.targets], dtype=torch.float32).reshape(n, 4) * scale
    masks = torch.zeros(n, m, m)
    has_mask = torch.zeros(n, dtype=torch.bool)
    for i, t in enumerate(sample.targets):
        if t.segmentation is not None:
            masks[i] = mask_in_frame(decode_segmentation(t.segmentation, sample.height, sample.width), cfg)
            has_mask[i] = True
    words = sample.kind == "words"
    labels = torch.tensor([t.phrase_index if words else 0 for t in sample.targets], dtype=torch.int64)
    return ImageTargets(labels, xyxy_to_cxcywh(boxes.clamp(0.0, 1.0)), masks, has_mask,
                        torch.tensor([t.is_stuff for t in sample.targets], dtype=torch.bool))


@dataclass
class TrainItem:
    pixel_values: Tensor  # [3,S,S]
    input_ids: list[int]  # prompt + response, one image placeholder
    image_index: int
    labels: list[int]  # spliced length, -100 outside the response
    phrase_spans: list[tuple[int, int]]  # spliced; word tasks: background last
    per_position: int | None
    targets: ImageTargets
    kind: str
    task: str


def make_item(sample: Sample, image_root: str | Path, tok: Tokenizer, spec: PromptSpec, cfg: MVPLMConfig) -> TrainItem:
    path = Path(image_root) / sample.image
    try:
        image = Image.open(path)
        image.load()
    except OSError as e:
        raise DataFormatError(str(path), sample.record_id, "image", f"cannot be read: {e}") from None
    if (image.height, image.width) != (sample.height, sample.width):
        raise DataFormatError(str(path), sample.record_id, "height/width",
                              f"record says {sample.height}×{sample.width}, image is {image.height}×{image.width}")
    texts = [p.text for p in sample.phrases]
    if sample.kind == "words":
        ids = build_training_ids(tok, spec, phrases=texts, caption=sample.caption)
    else:
        ids = build_training_ids(tok, spec, sentence=texts[0], caption=sample.caption)
    return TrainItem(preprocess_image(image, cfg), ids.input_ids, ids.image_index, ids.labels, ids.phrase_spans,
                     ids.per_position, sample_targets(sample, cfg), sample.kind, sample.task)


@dataclass
class TrainBatch:
    pixel_values: Tensor  # [B,3,S,S]
    input_ids: Tensor  # [B,T_ids] right-padded with the pad id
    image_index: int
    attention_mask: Tensor  # [B,T] over the spliced sequence, 1 = real token
    position_ids: Tensor  # [B,T]
    labels: Tensor  # [B,T], -100 = no LM loss
    phrase_spans: list[list[tuple[int, int]]]
    per_positions: list[int | None]
    targets: list[ImageTargets]
    kinds: list[str]
    tasks: list[str]

    def to(self, device: torch.device) -> "TrainBatch":
        moved = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in self.__dict__.items()}
        moved["targets"] = [t.to(device) for t in self.targets]
        return TrainBatch(**moved)


def collate(items: list[TrainItem], pad_id: int) -> TrainBatch:
    image_index = items[0].image_index
    if any(it.image_index != image_index for it in items):
        raise ValueError("collate: samples place the image at different positions (prompt prefixes differ)")
    num_ids = max(len(it.input_ids) for it in items)
    seq_len = max(len(it.labels) for it in items)
    input_ids = torch.full((len(items), num_ids), pad_id, dtype=torch.int64)
    labels = torch.full((len(items), seq_len), -100, dtype=torch.int64)
    attention_mask = torch.zeros(len(items), seq_len, dtype=torch.int64)
    for b, it in enumerate(items):
        input_ids[b, : len(it.input_ids)] = torch.tensor(it.input_ids)
        labels[b, : len(it.labels)] = torch.tensor(it.labels)
        attention_mask[b, : len(it.labels)] = 1
    return TrainBatch(
        pixel_values=torch.stack([it.pixel_values for it in items]),
        input_ids=input_ids,
        image_index=image_index,
        attention_mask=attention_mask,
        position_ids=torch.arange(seq_len).expand(len(items), -1).contiguous(),
        labels=labels,
        phrase_spans=[it.phrase_spans for it in items],
        per_positions=[it.per_position for it in items],
        targets=[it.targets for it in items],
        kinds=[it.kind for it in items],
        tasks=[it.task for it in items],
    )
