"""Export an MVP-LM model bundle (model/BUNDLE.md): five ONNX graphs, tokenizer.json and manifest.json.

    python -m mvp_lm.export --preset tiny|full --variant paper|released-code [--checkpoint PATH] [--seed 0]
                            [--fp16] [--max-batch 8] --out DIR
    python -m mvp_lm.export --add-generation-graph --bundle DIR

The fifth graph, decoder_generate.onnx (greedy decoding in one run, `mvp_lm/generation_graph.py`), is built from
the exported decoder and embedding graphs, so the second form adds it to an existing bundle (one exported before the
graph existed, or one whose checkpoint is not at hand) without touching its other files.

Without --checkpoint the weights are random (torch.manual_seed(seed) before the model is built), which the manifest
records, so `mvp_lm.reference --backend torch` can rebuild the same model. Graphs use opset 17 and built-in ONNX
ops only (checked node by node); tensors go to one external-data file per graph when a graph exceeds 2 GB.
Every graph is traced at batch 2, so that its batch axis stays symbolic, and the fp32 graphs are then run at batch
--max-batch against each item alone (`check_batching`; the manifest's `batching.max_batch`).
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

import numpy as np
import onnx
import torch
from torch import nn

from . import generation_graph, pretrained
from .config import MVPLMConfig, full, mid, tiny
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
    "mid": {"max_new_tokens": 64, "vocab_chunk_size": 64},
    "full": {"max_new_tokens": 64, "vocab_chunk_size": 300},
}
PRESETS = {"tiny": tiny, "mid": mid, "full": full}


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


def _session(path: Path):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _check_loads(path: Path) -> None:
    """fp16 traces can hold ops that ONNX defines for float32 only (e.g. Range); ONNX Runtime's loader runs the full
    type check that onnx.checker skips, so a graph that would fail in the worker fails the export instead."""
    try:
        _session(path)
    except Exception as e:  # onnxruntime raises its own exception types
        raise ValueError(f"{path}: exported graph does not load in ONNX Runtime: {e}") from e


# ----------------------------------------------------------------------------------------------- batch check
BATCH_TOL = 1e-4  # of each output's range


def same_batched_and_alone(session, batch: dict, items: list[dict], what: str,
                           outputs: list[str] | None = None) -> tuple[dict, list[dict]]:
    """Runs `session` on `batch` (the items at once) and on each of `items` alone. Each item's `outputs` (default
    all) must equal its row of the batch's, cut to the item's own shape (right padding is not compared): integers
    exactly, floats within BATCH_TOL of the output's range. Returns both (name → array)."""
    names = [o.name for o in session.get_outputs()]
    together = dict(zip(names, session.run(None, batch)))
    alone = [dict(zip(names, session.run(None, feeds))) for feeds in items]
    for i, out in enumerate(alone):
        for name in outputs or names:
            want = out[name]
            got = together[name][(slice(i, i + 1), *(slice(0, s) for s in want.shape[1:]))]
            if got.shape != want.shape:
                raise ValueError(f"{what}: {name} of item {i} in a batch of {len(items)} has shape {got.shape}, "
                                 f"alone {want.shape}")
            if want.dtype.kind != "f":
                if not np.array_equal(got, want):
                    raise ValueError(f"{what}: {name} of item {i} in a batch of {len(items)} differs from the item "
                                     f"alone: {got.tolist()} vs {want.tolist()}")
                continue
            err = float(np.abs(got - want).max(initial=0)) / (float(np.abs(want).max(initial=0)) + 1e-6)
            if err > BATCH_TOL:
                raise ValueError(f"{what}: {name} of item {i} in a batch of {len(items)} differs from the item alone "
                                 f"by {err:.2e} of its range (> {BATCH_TOL})")
    return together, alone


def _rows(feeds: dict, i: int) -> dict:
    return {k: v[i:i + 1] for k, v in feeds.items()}


def _batch_vision(session, dims: dict, n: int, rng) -> dict:
    s = dims["image_size"]
    batch = {"pixel_values": rng.standard_normal((n, 3, s, s)).astype(np.float32)}
    return same_batched_and_alone(session, batch, [_rows(batch, i) for i in range(n)], "vision_encoder")[0]


def _batch_embed(session, dims: dict, n: int, rng) -> None:
    batch = {"input_ids": rng.integers(0, dims["vocab_size"], (n, 5), dtype=np.int64)}
    same_batched_and_alone(session, batch, [_rows(batch, i) for i in range(n)], "embed_tokens")


def _batch_decoder(session, dims: dict, lens: list[int], rng) -> tuple[dict, list[dict]]:
    """A prefill of prompts of lengths `lens` (right-padded, attention mask 0), then one step on its cache, whose
    padding slots only that step can see. Returns decoder_generate's feeds of the cache after the prompts: (the
    batch's, each item's)."""
    n, t, h = len(lens), max(lens), dims["hidden_size"]
    past = {f"past_key_values.{i}.{k}": np.zeros((n, dims["num_heads"], 0, dims["head_dim"]), np.float32)
            for i in range(dims["num_layers"]) for k in ("key", "value")}
    mask = (np.arange(t)[None] < np.asarray(lens)[:, None]).astype(np.int64)
    prefill = {"inputs_embeds": rng.standard_normal((n, t, h)).astype(np.float32), "attention_mask": mask,
               "position_ids": np.broadcast_to(np.arange(t), (n, t)).copy(), **past}
    items = [{**{k: v[i:i + 1, :lens[i]] for k, v in prefill.items() if not k.startswith("past_")},
              **_rows(past, i)} for i in range(n)]
    together, alone = same_batched_and_alone(session, prefill, items, "decoder_model_merged prefill")

    def cache(out: dict) -> dict:
        return {f"past_key_values.{k[len('present.'):]}": v for k, v in out.items() if k.startswith("present.")}

    positions = np.asarray(lens, np.int64)[:, None]
    step = {"inputs_embeds": rng.standard_normal((n, 1, h)).astype(np.float32),
            "attention_mask": np.concatenate([mask, np.ones((n, 1), np.int64)], 1), "position_ids": positions,
            **cache(together)}
    step_items = [{"inputs_embeds": step["inputs_embeds"][i:i + 1], "attention_mask": np.ones((1, lens[i] + 1),
                   np.int64), "position_ids": positions[i:i + 1], **cache(alone[i])} for i in range(n)]
    same_batched_and_alone(session, step, step_items, "decoder_model_merged step on a padded cache",
                           ["logits", "last_hidden_state", "mean_hidden_states"])
    return ({"attention_mask": mask, "position_ids": positions, **cache(together)},
            [{"attention_mask": np.ones((1, lens[i]), np.int64), "position_ids": positions[i:i + 1],
              **cache(alone[i])} for i in range(n)])


def _batch_generate(session, dims: dict, caches: tuple[dict, list[dict]], rng) -> None:
    batch, items = caches
    n = len(items)
    first = rng.integers(0, dims["vocab_size"], (n, 1), dtype=np.int64)
    cap = np.array([6], np.int64)
    together, _ = same_batched_and_alone(
        session, {**batch, "input_ids": first, "max_new_tokens": cap},
        [{**item, "input_ids": first[i:i + 1], "max_new_tokens": cap} for i, item in enumerate(items)],
        generation_graph.GRAPH)
    for i, (ids, count) in enumerate(zip(together["generated_ids"], together["num_generated"])):
        if (ids[:count] < 0).any() or (ids[count:] != -1).any():
            raise ValueError(f"{generation_graph.GRAPH}: row {i} of a batch of {n} is not {count} ids then -1: {ids}")


def _batch_perception(session, vision: dict, dims: dict, n: int, rng) -> None:
    """A batch of the perception decoder is tasks of one kind (`is_sentence` is one value) with one phrase count."""
    wanted = {i.name for i in session.get_inputs()}
    for is_sentence, phrases in ((False, 3), (True, 1)):
        batch = {**{k: v for k, v in vision.items() if k in wanted}, "is_sentence": np.array([is_sentence]),
                 "text_embeds": rng.standard_normal((n, phrases, dims["hidden_size"])).astype(np.float32)}
        if "per_hidden" in wanted:
            batch["per_hidden"] = rng.standard_normal((n, dims["hidden_size"])).astype(np.float32)
        rows = {k: v for k, v in batch.items() if k != "is_sentence"}
        items = [{**_rows(rows, i), "is_sentence": batch["is_sentence"]} for i in range(n)]
        same_batched_and_alone(session, batch, items, f"perception_decoder (is_sentence={is_sentence})")


def check_batching(folder: Path, graphs: dict[str, str], dims: dict, max_batch: int, seed: int = 0) -> None:
    """Every fp32 graph on `max_batch` random items at once gives each item's outputs alone (`same_batched_and_alone`);
    the language graphs' items have different prompt lengths, right-padded. Raises ValueError otherwise."""
    rng = np.random.default_rng(seed)
    sessions = {g: _session(folder / path) for g, path in graphs.items()}
    vision = _batch_vision(sessions["vision_encoder"], dims, max_batch, rng)
    _batch_embed(sessions["embed_tokens"], dims, max_batch, rng)
    caches = _batch_decoder(sessions["decoder_model_merged"], dims, [2 + 3 * i for i in range(max_batch)], rng)
    if generation_graph.GRAPH in sessions:
        _batch_generate(sessions[generation_graph.GRAPH], dims, caches, rng)
    _batch_perception(sessions["perception_decoder"], vision, dims, max_batch, rng)


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
                   name: str, version: str, max_batch: int) -> dict:
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
        "batching": {"max_batch": max_batch},
        "weights": weights,
        "files": files,
    }


def export_bundle(preset: str, variant: str, out: str | Path, *, checkpoint: str | Path | None = None,
                  seed: int = 0, fp16: bool = False, name: str | None = None, version: str = "0.1.0",
                  pre: pretrained.Pretrained | None = None, max_batch: int = 8, log=print) -> dict:
    """Write the bundle into `out` (created; existing bundle files are replaced) and return its manifest. `pre`:
    start from pretrained parts (the rest random from `seed`; not with `checkpoint`). `max_batch`: the batch the
    fp32 graphs are checked at (`check_batching`; 1 skips it), recorded as `batching.max_batch`."""
    if max_batch < 1:
        raise ValueError(f"max_batch {max_batch} must be at least 1")
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
    batch = 2  # traced at batch 2: at batch 1 the tracer may bake the batch axis into the graphs
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
    if max_batch > 1:
        t0 = time.time()
        check_batching(out, precisions["fp32"]["graphs"], dims_of(cfg), max_batch)
        log(f"[export] fp32 graphs at batch {max_batch} = each item alone ({time.time() - t0:.1f}s)")
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
                              name or f"mvp-lm-{preset}-{variant}", version, max_batch)
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
    ap.add_argument("--max-batch", type=int, default=8,
                    help="check the fp32 graphs at this batch against each item alone (1: skip); the manifest "
                         "records it as batching.max_batch")
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
                  pre=pretrained.Pretrained.of(args.init_llm, args.init_vision, args.strict), max_batch=args.max_batch,
                  log=lambda msg: print(msg, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
