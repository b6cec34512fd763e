"""Export an MVP-LM model bundle (model/BUNDLE.md): five ONNX graphs, tokenizer.json and manifest.json.

    python -m mvp_lm.export --preset tiny|full --variant paper|released-code [--checkpoint PATH] [--seed 0]
                            [--fp16] --out DIR
    python -m mvp_lm.export --add-generation-graph --bundle DIR

The fifth graph, decoder_generate.onnx (greedy decoding in one run, `mvp_lm/generation_graph.py`), is built from
the exported decoder and embedding graphs, so the second form adds it to an existing bundle (one exported before the
graph existed, or one whose checkpoint is not at hand) without touching its other files.

Without --checkpoint the weights are random (torch.manual_seed(seed) before the model is built), which the manifest
records, so `mvp_lm.reference --backend torch` can rebuild the same model. Graphs use opset 17 and built-in ONNX
ops only (checked node by node); tensors go to one external-data file per graph when a graph exceeds 2 GB.
"""
from __future__ import annotations

import argparse
import gc
import hashlib
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from . import generation_graph, pretrained
from .config import MVPLMConfig, full, tiny
from .model import MVPLM
from .postprocess import constants_from_config
from .prompt import default_spec
from .tokenizer import load_tokenizer, save_tokenizer, train_tokenizer
from .weights import read_tensors

SCHEMA_VERSION = "1"
OPSET = 17
GRAPHS = ("vision_encoder", "embed_tokens", "decoder_model_merged", "perception_decoder")
# Optional in the schema (bundles exported before it existed load without it); every export writes it.
OPTIONAL_GRAPHS = (generation_graph.GRAPH,)
# The tokenizer is trained up to this size; a larger model vocabulary (full: 51,200) is padding rows.
TOKENIZER_MAX_VOCAB = 4096
# The tiny cap covers the demo's longest synthetic caption (55 tokens) plus the response marker and <PER>; 16 was
# shorter than the median caption of every style (20-30 tokens).
GENERATION = {
    "tiny": {"max_new_tokens": 64, "vocab_chunk_size": 16},
    "full": {"max_new_tokens": 64, "vocab_chunk_size": 300},
}
PRESETS = {"tiny": tiny, "full": full}


def build_model(cfg: MVPLMConfig, seed: int = 0, checkpoint: str | Path | None = None,
                pre: pretrained.Pretrained | None = None, added: range | None = None, log=print) -> MVPLM:
    """The exported model: random weights from `seed`, or the checkpoint's, or random with the pretrained parts
    (`pre`, `added`: pretrained.py); eval mode, BatchNorm folded."""
    torch.manual_seed(seed)
    model = MVPLM(cfg)
    if checkpoint is not None:
        model.load_state_dict(read_tensors(checkpoint))
    if pre is not None:
        pretrained.initialise(model, pre, added, log=log)
    return model.fold_for_export()


# ----------------------------------------------------------------------------------------------- graph wrappers
class _Vision(nn.Module):
    OUTPUTS = ("image_embeds", "memory", "mask_features", "output_memory", "output_proposals", "proposal_valid")

    def __init__(self, model: MVPLM):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        out = self.model.encode_image(pixel_values)
        return tuple(out[k] for k in self.OUTPUTS)


class _Embed(nn.Module):
    def __init__(self, model: MVPLM):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        return self.model.embed_tokens(input_ids)


class _Decoder(nn.Module):
    def __init__(self, model: MVPLM):
        super().__init__()
        self.model = model

    def forward(self, inputs_embeds, attention_mask, position_ids, *past_flat):
        past = [(past_flat[2 * i], past_flat[2 * i + 1]) for i in range(len(past_flat) // 2)]
        out = self.model.llm(inputs_embeds, attention_mask, position_ids, past)
        present = [t for kv in out["present"] for t in kv]
        return (out["logits"], *present, out["last_hidden_state"], out["mean_hidden_states"])


class _Perception(nn.Module):
    VISION = ("memory", "output_memory", "output_proposals", "proposal_valid", "mask_features")

    def __init__(self, model: MVPLM):
        super().__init__()
        self.model = model

    def forward(self, memory, output_memory, output_proposals, proposal_valid, mask_features, text_embeds,
                is_sentence, per_hidden=None):
        vision = dict(zip(self.VISION, (memory, output_memory, output_proposals, proposal_valid, mask_features)))
        out = self.model.perceive(vision, text_embeds, is_sentence, per_hidden)
        return out["pred_logits"], out["pred_masks"], out["pred_boxes"]


def _past_names(cfg: MVPLMConfig, prefix: str) -> list[str]:
    return [f"{prefix}.{i}.{kind}" for i in range(cfg.phi.num_hidden_layers) for kind in ("key", "value")]


def graph_spec(model: MVPLM, name: str, batch: int, dtype: torch.dtype):
    """(wrapper, example inputs, input names, output names, dynamic axes) of one bundle graph."""
    cfg = model.config
    s, h, d = cfg.image_size, cfg.phi.hidden_size, cfg.d_model
    heads, hd = cfg.phi.num_attention_heads, cfg.phi.head_dim
    n, m = cfg.num_memory_tokens, cfg.mask_size
    b = {0: "batch"}
    if name == "vision_encoder":
        return (_Vision(model), (torch.randn(batch, 3, s, s, dtype=dtype),), ["pixel_values"], list(_Vision.OUTPUTS),
                {k: b for k in ("pixel_values", *_Vision.OUTPUTS)})
    if name == "embed_tokens":
        return (_Embed(model), (torch.randint(0, cfg.phi.vocab_size, (batch, 5)),), ["input_ids"],
                ["inputs_embeds"], {"input_ids": {0: "batch", 1: "tokens"}, "inputs_embeds": {0: "batch", 1: "tokens"}})
    if name == "decoder_model_merged":
        t, past = 3, 2  # sizes > 1 so that the tracer keeps them symbolic
        past_in, present = _past_names(cfg, "past_key_values"), _past_names(cfg, "present")
        inputs = (torch.randn(batch, t, h, dtype=dtype), torch.ones(batch, past + t, dtype=torch.int64),
                  torch.arange(past, past + t).expand(batch, t).contiguous(),
                  *[torch.randn(batch, heads, past, hd, dtype=dtype) for _ in past_in])
        axes = {"inputs_embeds": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "total_length"},
                "position_ids": {0: "batch", 1: "tokens"}, "logits": {0: "batch", 1: "tokens"},
                "last_hidden_state": {0: "batch", 1: "tokens"}, "mean_hidden_states": {0: "batch", 1: "tokens"}}
        axes.update({k: {0: "batch", 2: "past_length"} for k in past_in})
        axes.update({k: {0: "batch", 2: "total_length"} for k in present})
        return (_Decoder(model), inputs, ["inputs_embeds", "attention_mask", "position_ids", *past_in],
                ["logits", *present, "last_hidden_state", "mean_hidden_states"], axes)
    if name == "perception_decoder":
        phrases = 3
        with torch.no_grad():
            vision = model.encode_image(torch.randn(batch, 3, s, s, dtype=dtype))
        inputs = [*(vision[k] for k in _Perception.VISION), torch.randn(batch, phrases, h, dtype=dtype),
                  torch.tensor([False])]
        names = [*_Perception.VISION, "text_embeds", "is_sentence"]
        if cfg.variant == "paper":
            inputs.append(torch.randn(batch, h, dtype=dtype))
            names.append("per_hidden")
        axes = {k: b for k in (*names, "pred_masks", "pred_boxes") if k != "is_sentence"}
        axes["text_embeds"] = {0: "batch", 1: "phrases"}
        axes["pred_logits"] = {0: "batch", 2: "phrases"}
        return (_Perception(model), tuple(inputs), names, ["pred_logits", "pred_masks", "pred_boxes"], axes)
    raise ValueError(f"unknown graph {name!r}; expected one of {GRAPHS}")


def export_graph(model: MVPLM, name: str, path: Path, batch: int, dtype: torch.dtype = torch.float32) -> list[Path]:
    """Trace one graph to `path` (+ `path.data` when the exporter had to use external data), check it; returns the
    files written. Large graphs are never loaded whole: their tensors are streamed into the one data file."""
    wrapper, inputs, in_names, out_names, axes = graph_spec(model, name, batch, dtype)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        raw = Path(tmp) / path.name
        torch.onnx.export(wrapper, inputs, str(raw), dynamo=False, opset_version=OPSET, input_names=in_names,
                          output_names=out_names, dynamic_axes=axes, do_constant_folding=True)
        del inputs, wrapper
        gc.collect()
        files = [path]
        if len(list(Path(tmp).iterdir())) > 1:  # above 2 GB the exporter writes one file per tensor
            files.append(_consolidate_external_data(raw, path))
        else:
            raw.replace(path)
    check_graph(path)
    return files


def _consolidate_external_data(raw: Path, path: Path) -> Path:
    """Rewrite a graph whose tensors lie in many files beside `raw` to `path` + one `path.data`, tensor by tensor."""
    proto = onnx.load(str(raw), load_external_data=False)
    data = path.with_name(path.name + ".data")
    offset = 0
    with data.open("wb") as out:
        for tensor in _all_tensors(proto.graph):
            if tensor.data_location != onnx.TensorProto.EXTERNAL:
                continue
            info = {e.key: e.value for e in tensor.external_data}
            with (raw.parent / info["location"]).open("rb") as src:
                src.seek(int(info.get("offset", 0)))
                blob = src.read(int(info["length"])) if "length" in info else src.read()
            pad = -offset % 4096  # page-aligned, so that runtimes may mmap the tensors
            out.write(b"\0" * pad)
            offset += pad
            out.write(blob)
            del tensor.external_data[:]
            for key, value in (("location", data.name), ("offset", str(offset)), ("length", str(len(blob)))):
                tensor.external_data.add(key=key, value=value)
            offset += len(blob)
    onnx.save_model(proto, str(path))
    return data


def _all_tensors(graph: onnx.GraphProto):
    yield from graph.initializer
    for node in _all_nodes(graph):
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                yield attr.t


def check_graph(path: Path) -> None:
    """onnx.checker on the file, and every node (also in subgraphs) in the default ONNX domain."""
    onnx.checker.check_model(str(path))
    proto = onnx.load(str(path), load_external_data=False)
    bad = sorted({f"{n.domain}::{n.op_type}" for n in _all_nodes(proto.graph) if n.domain not in ("", "ai.onnx")})
    if bad or proto.functions:
        raise ValueError(f"{path.name}: ops outside the default ONNX domain: {bad or [f.name for f in proto.functions]}")
    opsets = {o.domain: o.version for o in proto.opset_import}
    if opsets.get("", opsets.get("ai.onnx")) != OPSET:
        raise ValueError(f"{path.name}: opset {opsets} is not {OPSET}")


def _check_loads(path: Path) -> None:
    """fp16 traces can hold ops that ONNX defines for float32 only (e.g. Range); ONNX Runtime's loader runs the full
    type check that onnx.checker skips, so a graph that would fail in the worker fails the export instead."""
    import onnxruntime as ort
    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise ValueError(f"{path}: exported graph does not load in ONNX Runtime: {e}") from e


def _all_nodes(graph: onnx.GraphProto):
    for node in graph.node:
        yield node
        for attr in node.attribute:
            for sub in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)):
                yield from _all_nodes(sub)


def file_entry(path: Path) -> dict:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"sha256": digest.hexdigest(), "bytes": path.stat().st_size}


def dims_of(cfg: MVPLMConfig) -> dict:
    return {
        "image_size": cfg.image_size, "d_model": cfg.d_model, "hidden_size": cfg.phi.hidden_size,
        "num_layers": cfg.phi.num_hidden_layers, "num_heads": cfg.phi.num_attention_heads,
        "head_dim": cfg.phi.head_dim, "vocab_size": cfg.phi.vocab_size, "num_image_tokens": cfg.num_image_tokens,
        "mask_size": cfg.mask_size, "num_memory_tokens": cfg.num_memory_tokens,
        "level_shapes": [list(s) for s in cfg.level_shapes], "num_queries": cfg.decoder.num_queries,
        "num_stuff_queries": cfg.decoder.num_stuff_queries, "num_total_queries": cfg.num_total_queries,
    }


def build_manifest(cfg: MVPLMConfig, preset: str, tok, files: dict[str, dict], precisions: dict, weights: dict,
                   name: str, version: str) -> dict:
    spec = default_spec(tok, cfg.variant, cfg.num_image_tokens)
    pre = cfg.preprocess
    return {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "version": version,
        "variant": cfg.variant,
        "preset": preset,
        "config": cfg.to_dict(),
        "dims": dims_of(cfg),
        "tokens": spec.tokens,
        "tokenizer": {"file": "tokenizer.json", "vocab_size": tok.get_vocab_size()},
        "templates": spec.templates,
        "preprocess": {"image_size": cfg.image_size, "resize": "bilinear_half_pixel_no_antialias",
                       "rounding": "round_half_up", "pad_value": pre.pad_value, "mean": list(pre.mean),
                       "std": list(pre.std), "channel_order": "RGB", "layout": "NCHW"},
        "postprocess": constants_from_config(cfg.to_dict()["postprocess"]),
        "generation": {**GENERATION[preset], "strategy": "greedy"},
        "onnx": {"opset": OPSET, "domains": [""]},
        "precisions": precisions,
        "weights": weights,
        "files": files,
    }


def export_bundle(preset: str, variant: str, out: str | Path, *, checkpoint: str | Path | None = None,
                  seed: int = 0, fp16: bool = False, name: str | None = None, version: str = "0.1.0",
                  pre: pretrained.Pretrained | None = None, log=print) -> dict:
    """Write the bundle into `out` (created; existing bundle files are replaced) and return its manifest. `pre`:
    start from pretrained parts (the rest random from `seed`; not with `checkpoint`)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    if checkpoint is not None and pre is not None:
        raise ValueError("--checkpoint and --init-llm/--init-vision exclude each other")
    cfg = PRESETS[preset](variant)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    ckpt_tok = Path(checkpoint).with_name("tokenizer.json") if checkpoint else None
    added = None
    if pre is not None and pre.llm is not None:
        log(f"[export] tokenizer: {pre.llm / 'tokenizer.json'} + MVP-LM's special tokens")
        tok, added = pretrained.tokenizer(pre.llm)
    elif ckpt_tok is not None and ckpt_tok.exists():
        log(f"[export] tokenizer: {ckpt_tok} (beside the checkpoint)")
        tok = load_tokenizer(ckpt_tok)
    else:
        log(f"[export] tokenizer: training byte-level BPE (vocab <= {min(cfg.phi.vocab_size, TOKENIZER_MAX_VOCAB)})")
        tok = train_tokenizer(min(cfg.phi.vocab_size, TOKENIZER_MAX_VOCAB), seed=0)
    if pre is not None:
        cfg = pretrained.config(cfg, pre, tok)
    if tok.get_vocab_size() > cfg.phi.vocab_size:
        raise ValueError(f"tokenizer has {tok.get_vocab_size()} ids but the model only {cfg.phi.vocab_size} rows")
    save_tokenizer(tok, out / "tokenizer.json")
    log(f"[export] model: {preset}/{variant}, {'checkpoint ' + str(checkpoint) if checkpoint else f'random seed {seed}'}"
        + (" with pretrained parts" if pre is not None else ""))
    model = build_model(cfg, seed, checkpoint, pre, added, log)
    batch = 2 if preset == "tiny" else 1  # batch 2 keeps the batch axis symbolic; the full preset saves memory
    precisions = {"fp32": {"dtype": "float32", "graphs": {}}}
    stops = generation_graph.stop_tokens(default_spec(tok, cfg.variant, cfg.num_image_tokens), tok)
    written: list[Path] = [out / "tokenizer.json"]
    todo = [("fp32", torch.float32, out)] + ([("fp16", torch.float16, out / "fp16")] if fp16 else [])
    for precision, dtype, folder in todo:
        folder.mkdir(exist_ok=True)
        if dtype != torch.float32:
            model = model.to(dtype)
            precisions[precision] = {"dtype": "float16", "graphs": {}}
        for i, graph in enumerate(GRAPHS, 1):
            t0 = time.time()
            log(f"[export] {precision} {i}/{len(GRAPHS)} {graph} ...")
            files = export_graph(model, graph, folder / f"{graph}.onnx", batch, dtype)
            if dtype != torch.float32:
                _check_loads(files[0])
            written += files
            precisions[precision]["graphs"][graph] = str(files[0].relative_to(out))
            size = sum(f.stat().st_size for f in files)
            log(f"[export]   {graph}: {size / 2**20:.1f} MiB in {time.time() - t0:.1f}s")
            gc.collect()
        t0 = time.time()
        files = generation_graph.write(folder, dims_of(cfg), stops)
        check_graph(files[0])
        if dtype != torch.float32:
            _check_loads(files[0])
        written += files
        precisions[precision]["graphs"][generation_graph.GRAPH] = str(files[0].relative_to(out))
        log(f"[export] {precision} {generation_graph.GRAPH} (Loop over the two graphs above): "
            f"{sum(f.stat().st_size for f in files) / 2**20:.1f} MiB in {time.time() - t0:.1f}s")
    del model
    gc.collect()
    log("[export] hashing files ...")
    entries = {str(p.relative_to(out)): file_entry(p) for p in written}
    if checkpoint:
        weights = {"source": "checkpoint", "checkpoint": Path(checkpoint).name,
                   "checkpoint_sha256": file_entry(Path(checkpoint))["sha256"]}
    elif pre is not None:
        weights = {"source": "pretrained", "seed": seed, **({"llm": pre.llm.name} if pre.llm else {}),
                   **({"vision": pre.vision.name} if pre.vision else {})}
    else:
        weights = {"source": "random", "seed": seed}
    manifest = build_manifest(cfg, preset, tok, entries, precisions, weights,
                              name or f"mvp-lm-{preset}-{variant}", version)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    log(f"[export] done: {out} in {time.time() - started:.1f}s")
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mvp_lm.export", description=__doc__.split("\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS))
    ap.add_argument("--variant", choices=["paper", "released-code"], default="paper")
    ap.add_argument("--checkpoint", help="state dict (.safetensors or torch .pt); tokenizer.json beside it is used")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random weights (without --checkpoint)")
    ap.add_argument("--fp16", action="store_true", help="also write fp16/*.onnx")
    ap.add_argument("--name", help="manifest name (default mvp-lm-<preset>-<variant>)")
    ap.add_argument("--version", default="0.1.0", help="manifest version of these weights")
    pretrained.add_arguments(ap)
    ap.add_argument("--out")
    ap.add_argument("--add-generation-graph", action="store_true",
                    help="add decoder_generate.onnx to the existing bundle --bundle (no other file changes)")
    ap.add_argument("--bundle", help="with --add-generation-graph: the bundle directory")
    args = ap.parse_args(argv)
    if args.add_generation_graph:
        if not args.bundle or args.out or args.preset:
            ap.error("--add-generation-graph takes --bundle DIR only")
        generation_graph.add_to_bundle(args.bundle, log=lambda msg: print(msg, flush=True))
        return 0
    if not args.preset or not args.out:
        ap.error("--preset and --out are required (or --add-generation-graph --bundle DIR)")
    export_bundle(args.preset, args.variant, args.out, checkpoint=args.checkpoint, seed=args.seed, fp16=args.fp16,
                  name=args.name, version=args.version,
                  pre=pretrained.Pretrained.of(args.init_llm, args.init_vision, args.strict),
                  log=lambda msg: print(msg, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
