"""Typed configuration of MVP-LM. Serialises into the bundle manifest (`to_dict` / `from_dict`).

Sizes follow /work/shared/design/mvp-lm-architecture.md; `full` is the paper model (Swin-B + Phi-1.5),
`tiny` the same architecture at toy sizes for CPU training and tests.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

Variant = Literal["paper", "released-code"]
VARIANTS = ("paper", "released-code")


@dataclass
class SwinConfig:
    patch_size: int = 4
    in_channels: int = 3
    embed_dim: int = 128
    depths: tuple[int, ...] = (2, 2, 18, 2)
    num_heads: tuple[int, ...] = (4, 8, 16, 32)
    window_size: int = 12
    mlp_ratio: float = 4.0

    @property
    def stage_channels(self) -> list[int]:
        """Channels of res2..res5."""
        return [self.embed_dim * 2**i for i in range(len(self.depths))]


@dataclass
class ConnectorConfig:
    """res5 -> ResNet basic block -> flatten -> Linear to the LLM width."""
    block_channels: int = 2048
    # The paper's block has stride 2 (res5 32×32 -> 256 image tokens at 1024²). The tiny preset keeps stride 1: at
    # 128² stride 2 would leave the LLM 4 image tokens, too few for a caption to name the shapes (model/README.md).
    stride: int = 2


@dataclass
class PhiConfig:
    """Phi architecture; field names follow Hugging Face `PhiConfig`."""
    vocab_size: int = 51200
    hidden_size: int = 2048
    intermediate_size: int = 8192
    num_hidden_layers: int = 24
    num_attention_heads: int = 32
    partial_rotary_factor: float = 0.5
    rope_theta: float = 10000.0
    layer_norm_eps: float = 1e-5
    max_position_embeddings: int = 2048

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def rotary_dim(self) -> int:
        return int(self.head_dim * self.partial_rotary_factor)


@dataclass
class PixelDecoderConfig:
    num_layers: int = 6
    num_heads: int = 8
    num_points: int = 4
    ffn_dim: int = 2048
    num_groups: int = 32  # GroupNorm groups


@dataclass
class DecoderConfig:
    num_layers: int = 9
    num_heads: int = 8
    num_points: int = 4
    ffn_dim: int = 2048
    num_queries: int = 100  # K, text-selected thing queries
    num_stuff_queries: int = 100


@dataclass
class PreprocessConfig:
    """Constants the serving side needs to build `pixel_values` (see design note, stage 1)."""
    pad_value: float = 128.0  # raw 0-255 value of padded pixels, before normalising
    mean: tuple[float, float, float] = (123.675, 116.28, 103.53)  # ImageNet, 0-255 scale
    std: tuple[float, float, float] = (58.395, 57.12, 57.375)


@dataclass
class PostprocessConfig:
    """Thresholds of the released code's post-processing (design note, stage 8)."""
    panoptic_score_threshold: float = 0.1  # keep a non-background query with class prob above this
    panoptic_overlap_threshold: float = 0.8  # drop a segment whose visible area is below this share of its mask
    panoptic_mask_threshold: float = 0.5  # a query's mask is sigmoid(logit) >= this
    instance_top_k: int = 100
    generalised_sentence_threshold: float = 0.6  # gRefCOCO: union of masks with score above this
    # "no target" answer for sentences: best score below this; must be calibrated on no-target data
    no_target_threshold: float = 0.5


@dataclass
class MVPLMConfig:
    variant: Variant = "paper"
    image_size: int = 1024
    d_model: int = 256  # pixel decoder / perception decoder width (mask features too)
    swin: SwinConfig = field(default_factory=SwinConfig)
    connector: ConnectorConfig = field(default_factory=ConnectorConfig)
    phi: PhiConfig = field(default_factory=PhiConfig)
    pixel_decoder: PixelDecoderConfig = field(default_factory=PixelDecoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"MVPLMConfig.variant must be one of {VARIANTS}, got {self.variant!r}")
        s = self.image_size
        if s % 64 != 0:
            raise ValueError(f"MVPLMConfig.image_size must be a multiple of 64 (res5 stride 32, a 1/64 memory level), got {s}")
        if self.connector.stride not in (1, 2):
            raise ValueError(f"ConnectorConfig.stride must be 1 or 2, got {self.connector.stride}")
        if self.d_model % self.pixel_decoder.num_groups != 0:
            raise ValueError(f"MVPLMConfig.d_model {self.d_model} is not divisible by pixel_decoder.num_groups "
                             f"{self.pixel_decoder.num_groups}")
        if self.phi.hidden_size % self.phi.num_attention_heads != 0:
            raise ValueError("PhiConfig.hidden_size must be divisible by num_attention_heads")

    # ---- derived sizes (the manifest's `dims`) ----
    @property
    def num_image_tokens(self) -> int:
        return (self.image_size // (32 * self.connector.stride)) ** 2

    @property
    def mask_size(self) -> int:
        return self.image_size // 4

    @property
    def level_shapes(self) -> list[tuple[int, int]]:
        """Memory levels in flattening order, low resolution first: 1/64, 1/32 (res5), 1/16 (res4), 1/8 (res3)."""
        return [(self.image_size // s, self.image_size // s) for s in (64, 32, 16, 8)]

    @property
    def num_memory_tokens(self) -> int:
        return sum(h * w for h, w in self.level_shapes)

    @property
    def num_total_queries(self) -> int:
        return self.decoder.num_queries + self.decoder.num_stuff_queries

    # ---- serialisation ----
    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MVPLMConfig":
        return _build(cls, d, "config")


def _plain(x: Any) -> Any:
    """Tuples become lists so that the dict is JSON-shaped."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _build(cls: type, d: dict[str, Any], where: str) -> Any:
    if not isinstance(d, dict):
        raise TypeError(f"{where}: expected an object, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(fields)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {sorted(unknown)} for {cls.__name__}")
    kwargs = {}
    for name, value in d.items():
        f = fields[name]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value, f"{where}.{name}")
        elif isinstance(default, tuple):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def full(variant: Variant = "paper") -> MVPLMConfig:
    """Swin-B at 1024² + Phi-1.5, as in the paper (~1.49 B parameters)."""
    return MVPLMConfig(variant=variant)


def tiny(variant: Variant = "paper", vocab_size: int = 4096) -> MVPLMConfig:
    """Same architecture at toy sizes: trains on a CPU in minutes. `vocab_size` follows the demo tokenizer."""
    return MVPLMConfig(
        variant=variant,
        image_size=128,
        d_model=64,
        swin=SwinConfig(embed_dim=32, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8), window_size=4),
        connector=ConnectorConfig(block_channels=256, stride=1),
        phi=PhiConfig(vocab_size=vocab_size, hidden_size=128, intermediate_size=512, num_hidden_layers=2,
                      num_attention_heads=4, max_position_embeddings=2048),
        pixel_decoder=PixelDecoderConfig(num_layers=1, num_heads=4, num_points=4, ffn_dim=256),
        decoder=DecoderConfig(num_layers=2, num_heads=4, num_points=4, ffn_dim=256, num_queries=20,
                              num_stuff_queries=10),
    )


def mid(variant: Variant = "paper", vocab_size: int = 4096) -> MVPLMConfig:
    """Between tiny and full (~40 M parameters, 256² input, a 6-layer 512-wide Phi): big enough on a CPU that the graphs,
    not the worker's JavaScript, take the time of a job; the batching benchmark's mid-size model (random weights)."""
    return MVPLMConfig(
        variant=variant,
        image_size=256,
        d_model=128,
        swin=SwinConfig(embed_dim=64, depths=(2, 2, 4, 2), num_heads=(2, 4, 8, 16), window_size=8),
        connector=ConnectorConfig(block_channels=512, stride=1),
        phi=PhiConfig(vocab_size=vocab_size, hidden_size=512, intermediate_size=2048, num_hidden_layers=6,
                      num_attention_heads=8, max_position_embeddings=2048),
        pixel_decoder=PixelDecoderConfig(num_layers=2, num_heads=4, num_points=4, ffn_dim=512),
        decoder=DecoderConfig(num_layers=3, num_heads=4, num_points=4, ffn_dim=512, num_queries=50,
                              num_stuff_queries=10),
    )
