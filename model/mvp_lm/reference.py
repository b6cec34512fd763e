"""End-to-end reference inference: the expected values of the TypeScript worker's parity tests.

    python -m mvp_lm.reference --bundle DIR --cases CASES.json --out OUT.json [--backend onnx|torch]
                               [--checkpoint PATH] [--full-array-limit N]

CASES.json: a list of {"id": str (optional), "image": path (relative to CASES.json), "tasks": [contract tasks,
contracts/task.ts; defaults are applied], "caption": bool}. OUT.json: {"bundle": {...}, "backend": ...,
"cases": [{"id", "result": a PerceptionResult (contracts/result.ts; every one is validated against
contracts/schema/result.v1.json), "trace": every intermediate}]}.
The trace holds, per case, the geometry, summaries of pixel_values and the vision outputs, and per task the prompt
ids/spans of each chunk, the generated ids and the ids fed after them, the caption, the pooled text embeddings,
per_hidden and the raw perception-decoder outputs (full arrays up to --full-array-limit elements, summaries always).

Backends: `onnx` runs the bundle's graphs with onnxruntime (CPU); `torch` runs the MVPLM module, rebuilt from the
manifest (random weights from the recorded seed, or --checkpoint). Image files are decoded with Pillow to RGB, with
no EXIF rotation.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .contracts import validate_result
from .postprocess import Geometry, geometry_for, normalize_task, postprocess_task, resize_bilinear
from .prompt import (Prompt, PromptSpec, build_prompt, build_word_prompts, caption_from_ids, no_caption_ids,
                     response_tail_ids, splice_image)
from .tokenizer import load_tokenizer

# The result document is contracts/result.ts version 1; run_case validates it against contracts/schema/result.v1.json.
RESULT_SCHEMA_VERSION = "1"


# --------------------------------------------------------------------------------------------------- backends
_FLOAT_INPUTS = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


class OnnxBackend:
    name = "onnx"

    def __init__(self, bundle: Path, manifest: dict, precision: str = "fp32"):
        import onnxruntime as ort
        graphs = manifest["precisions"][precision]["graphs"]
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.sessions = {g: ort.InferenceSession(str(bundle / path), opts, providers=["CPUExecutionProvider"])
                         for g, path in graphs.items()}
        self.outputs = {g: [o.name for o in s.get_outputs()] for g, s in self.sessions.items()}
        # input name -> the numpy dtype of a floating input (fp16 graphs take float16 where they declare it)
        self.inputs = {g: {i.name: _FLOAT_INPUTS.get(i.type) for i in s.get_inputs()} for g, s in self.sessions.items()}

    def _run(self, graph: str, feeds: dict) -> dict:
        """float32 in and out whatever the graph's precision: float feeds cast to the dtype the graph declares,
        float16 outputs to float32 (exact), the values the TypeScript worker reads (precision.ts)."""
        wanted = self.inputs[graph]
        feeds = {k: (v.astype(wanted[k]) if wanted[k] is not None and v.dtype.kind == "f" else v)
                 for k, v in feeds.items() if k in wanted}
        out = self.sessions[graph].run(None, feeds)
        return {k: (v.astype(np.float32) if v.dtype == np.float16 else v) for k, v in zip(self.outputs[graph], out)}

    def vision(self, pixel_values: np.ndarray) -> dict:
        return self._run("vision_encoder", {"pixel_values": pixel_values})

    def embed(self, input_ids: np.ndarray) -> np.ndarray:
        return self._run("embed_tokens", {"input_ids": input_ids})["inputs_embeds"]

    def decoder(self, inputs_embeds, attention_mask, position_ids, past: dict[str, np.ndarray]) -> dict:
        return self._run("decoder_model_merged", {"inputs_embeds": inputs_embeds, "attention_mask": attention_mask,
                                                  "position_ids": position_ids, **past})

    def perceive(self, vision: dict, text_embeds: np.ndarray, is_sentence: bool, per_hidden) -> dict:
        feeds = {**vision, "text_embeds": text_embeds, "is_sentence": np.array([is_sentence])}
        if per_hidden is not None:
            feeds["per_hidden"] = per_hidden
        return self._run("perception_decoder", feeds)


class TorchBackend:
    """The same four calls on the PyTorch module, with the graphs' input/output names (numpy in and out)."""

    name = "torch"

    def __init__(self, model):
        self.model = model.eval()

    @torch.no_grad()
    def vision(self, pixel_values):
        return {k: v.numpy() for k, v in self.model.encode_image(torch.from_numpy(pixel_values)).items()}

    @torch.no_grad()
    def embed(self, input_ids):
        return self.model.embed_tokens(torch.from_numpy(input_ids)).numpy()

    @torch.no_grad()
    def decoder(self, inputs_embeds, attention_mask, position_ids, past):
        n = self.model.config.phi.num_hidden_layers
        kv = [(torch.from_numpy(past[f"past_key_values.{i}.key"]), torch.from_numpy(past[f"past_key_values.{i}.value"]))
              for i in range(n)]
        out = self.model.llm(torch.from_numpy(inputs_embeds), torch.from_numpy(attention_mask),
                             torch.from_numpy(position_ids), kv)
        res = {k: out[k].numpy() for k in ("logits", "last_hidden_state", "mean_hidden_states")}
        for i, (k, v) in enumerate(out["present"]):
            res[f"present.{i}.key"], res[f"present.{i}.value"] = k.numpy(), v.numpy()
        return res

    @torch.no_grad()
    def perceive(self, vision, text_embeds, is_sentence, per_hidden):
        v = {k: torch.from_numpy(a) for k, a in vision.items()}
        out = self.model.perceive(v, torch.from_numpy(text_embeds), torch.tensor([is_sentence]),
                                  None if per_hidden is None else torch.from_numpy(per_hidden))
        return {k: out[k].numpy() for k in ("pred_logits", "pred_masks", "pred_boxes")}


def torch_backend_for(manifest: dict, checkpoint: str | None = None) -> TorchBackend:
    from .config import MVPLMConfig
    from .export import build_model
    w = manifest["weights"]
    if checkpoint is None and w["source"] == "checkpoint":
        raise ValueError(f"bundle weights come from checkpoint {w.get('checkpoint')!r}: pass --checkpoint")
    if checkpoint is None and w["source"] == "pretrained":
        raise ValueError(f"bundle weights include pretrained parts ({w.get('llm')}, {w.get('vision')}): the torch "
                         "backend cannot rebuild them; use the onnx backend")
    cfg = MVPLMConfig.from_dict(manifest["config"])
    return TorchBackend(build_model(cfg, w.get("seed", 0), checkpoint))


# ------------------------------------------------------------------------------------------------ preprocess
def load_image(path: str | Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def preprocess(rgb: np.ndarray, pre: dict) -> tuple[np.ndarray, Geometry]:
    """uint8 [h,w,3] → pixel_values f32 [1,3,S,S]: bilinear resize (longer side S), pad right/bottom with the raw
    pad value, normalise (x - mean) / std per channel on the 0–255 scale."""
    s = pre["image_size"]
    geom = geometry_for(rgb.shape[:2], s)
    vh, vw = geom.valid_hw
    resized = resize_bilinear(rgb.transpose(2, 0, 1)[None].astype(np.float32), (vh, vw))[0].numpy()
    canvas = np.full((3, s, s), pre["pad_value"], dtype=np.float32)
    canvas[:, :vh, :vw] = resized
    mean = np.asarray(pre["mean"], np.float32)[:, None, None]
    std = np.asarray(pre["std"], np.float32)[:, None, None]
    return ((canvas - mean) / std)[None], geom


# --------------------------------------------------------------------------------------------- language side
class Language:
    """Prefill / decode on one image with a KV cache, following BUNDLE.md "The language side"."""

    def __init__(self, backend, manifest: dict, image_embeds: np.ndarray):
        self.backend, self.image_embeds = backend, image_embeds
        d = manifest["dims"]
        self.layers, self.heads, self.head_dim = d["num_layers"], d["num_heads"], d["head_dim"]

    def prefill(self, prompt: Prompt) -> dict:
        embeds = self.backend.embed(np.asarray([prompt.input_ids], dtype=np.int64))
        spliced = splice_image(torch.from_numpy(embeds), torch.from_numpy(self.image_embeds),
                               prompt.image_index).numpy()
        empty = np.zeros((1, self.heads, 0, self.head_dim), dtype=np.float32)
        past = {f"past_key_values.{i}.{k}": empty for i in range(self.layers) for k in ("key", "value")}
        return self._step(spliced, past, 0)

    def feed(self, state: dict, ids: list[int]) -> dict:
        embeds = self.backend.embed(np.asarray([ids], dtype=np.int64))
        return self._step(embeds, state["past"], state["length"])

    def _step(self, embeds: np.ndarray, past: dict, past_len: int) -> dict:
        t = embeds.shape[1]
        out = self.backend.decoder(embeds, np.ones((1, past_len + t), dtype=np.int64),
                                   np.arange(past_len, past_len + t, dtype=np.int64)[None], past)
        new_past = {f"past_key_values.{i}.{k}": out[f"present.{i}.{k}"]
                    for i in range(self.layers) for k in ("key", "value")}
        return {**out, "past": new_past, "length": past_len + t}


def pool(hidden: np.ndarray, spans: list[tuple[int, int]]) -> np.ndarray:
    """[1,T,H] hidden states → [P,H] means over the spans."""
    return np.stack([hidden[0, a:b].mean(0) for a, b in spans]).astype(np.float32)


def generate(lang: Language, tok, spec: PromptSpec, state: dict, caption: bool, max_new_tokens: int) -> dict:
    """Paper variant response: greedy caption (or none), then <PER>; returns per_hidden and the ids."""
    generated: list[int] = []
    if caption:
        logits = state["logits"]
        stop = None
        while len(generated) < max_new_tokens:
            nxt = int(np.argmax(logits[0, -1]))
            if nxt in (spec.tokens["per"], spec.tokens["eos"]):
                stop = nxt
                break
            generated.append(nxt)
            state = lang.feed(state, [nxt])
            logits = state["logits"]
        tail = [spec.tokens["per"]] if stop == spec.tokens["per"] else response_tail_ids(tok, spec)
    else:
        tail = no_caption_ids(tok, spec)
    state = lang.feed(state, tail)
    return {"generated_ids": generated if caption else None, "fed_tail_ids": tail,
            "caption": caption_from_ids(tok, spec, generated) if caption else None,
            "per_hidden": state["last_hidden_state"][:, -1].astype(np.float32)}


# ------------------------------------------------------------------------------------------------ pipeline
def summary(a: np.ndarray, limit: int) -> dict:
    a = np.asarray(a)
    flat = a.astype(np.float64).reshape(-1)
    out = {"shape": list(a.shape), "sum": float(flat.sum()), "abs_mean": float(np.abs(flat).mean()),
           "min": float(flat.min()), "max": float(flat.max()), "head": [float(v) for v in flat[:16]]}
    if flat.size <= limit:
        out["values"] = a.tolist()
    return out


class Bundle:
    def __init__(self, path: str | Path, backend: str = "onnx", checkpoint: str | None = None, verify: bool = True,
                 precision: str = "fp32"):
        self.path = Path(path)
        self.manifest = json.loads((self.path / "manifest.json").read_text(encoding="utf-8"))
        if verify:
            verify_files(self.path, self.manifest)
        self.tok = load_tokenizer(self.path / self.manifest["tokenizer"]["file"])
        self.spec = PromptSpec.from_manifest(self.manifest)
        if precision not in self.manifest["precisions"]:
            raise ValueError(f"{self.path}: the bundle has no {precision} graphs (export with --fp16)")
        if backend != "onnx" and precision != "fp32":
            raise ValueError("the torch backend is float32; --precision fp16 needs the onnx backend")
        self.backend = (OnnxBackend(self.path, self.manifest, precision) if backend == "onnx"
                        else torch_backend_for(self.manifest, checkpoint))


def verify_files(path: Path, manifest: dict) -> None:
    """Every file the manifest lists exists with its recorded size and sha256."""
    from .export import file_entry
    for rel, entry in manifest["files"].items():
        f = path / rel
        if not f.is_file():
            raise ValueError(f"{path}/manifest.json: listed file {rel} is missing")
        if file_entry(f) != entry:
            raise ValueError(f"{path}/manifest.json: {rel} does not match its recorded size/sha256")


def run_case(bundle: Bundle, rgb: np.ndarray, tasks: list[dict], caption: bool, job_id: str = "case",
             full_array_limit: int = 65536) -> dict:
    """One image, its tasks → {"result": PerceptionResult dict, "trace": intermediates}."""
    m, spec, tok, be = bundle.manifest, bundle.spec, bundle.tok, bundle.backend
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = timings.get(stage, 0.0) + (now - clock) * 1000
        clock = now

    pixel_values, geom = preprocess(rgb, m["preprocess"])
    lap("preprocess")
    vision = be.vision(pixel_values)
    lap("vision")
    lim = full_array_limit
    trace = {"geometry": {"image_size": geom.image_size, "valid_hw": list(geom.valid_hw),
                          "orig_hw": list(geom.orig_hw)},
             "pixel_values": summary(pixel_values, 0),
             "vision": {k: summary(v, 0) for k, v in vision.items()}, "tasks": []}
    decoder_inputs = {k: v for k, v in vision.items() if k != "image_embeds"}
    lang = Language(be, m, vision["image_embeds"])
    paper = m["variant"] == "paper"
    gen = m["generation"]
    result_caption = None
    task_results = []
    for index, raw_task in enumerate(tasks):
        task = normalize_task(raw_task)
        words = task["type"] == "words"
        prompts = (build_word_prompts(tok, spec, [p["text"] for p in task["phrases"]], gen["vocab_chunk_size"])
                   if words else [build_prompt(tok, spec, sentence=task["sentence"])])
        pooled, response = [], None
        for chunk, prompt in enumerate(prompts):
            state = lang.prefill(prompt)
            hidden = state["last_hidden_state"] if paper else state["mean_hidden_states"]
            pooled.append(pool(hidden, prompt.phrase_spans))
            if paper and chunk == 0:
                response = generate(lang, tok, spec, state, caption, gen["max_new_tokens"])
        text_embeds = np.concatenate(pooled)[None]
        per_hidden = response["per_hidden"] if response else None
        if index == 0 and response is not None:
            result_caption = response["caption"]
        lap("language")
        raw = be.perceive(decoder_inputs, text_embeds, not words, per_hidden)
        lap("perception")
        one = {k: v[0] for k, v in raw.items()}
        task_results.append(postprocess_task(task, one, geom, m["postprocess"], m["dims"]["num_queries"], index))
        lap("postprocess")
        trace["tasks"].append({
            "prompts": [{"input_ids": p.input_ids, "image_index": p.image_index, "seq_len": p.seq_len,
                         "phrase_spans": [list(s) for s in p.phrase_spans], "phrases": p.phrases}
                        for p in prompts],
            "generated_ids": response["generated_ids"] if response else None,
            "fed_tail_ids": response["fed_tail_ids"] if response else None,
            "caption": response["caption"] if response else None,
            "text_embeds": summary(text_embeds, lim),
            "per_hidden": summary(per_hidden, lim) if per_hidden is not None else None,
            "raw": {k: summary(v, lim) for k, v in raw.items()},
        })
    h, w = geom.orig_hw
    result = {"schema_version": RESULT_SCHEMA_VERSION, "job_id": job_id,
              "model": {"name": m["name"], "version": m["version"], "variant": m["variant"]},
              "provider": "cpu", "image": {"width": int(w), "height": int(h)}, "caption": result_caption,
              "tasks": task_results, "timings_ms": {k: round(v, 3) for k, v in timings.items()}}
    return {"result": validate_result(result), "trace": trace}


def run_cases(bundle: Bundle, cases_path: Path, full_array_limit: int, log=print) -> dict:
    cases = json.loads(cases_path.read_text(encoding="utf-8"))
    if not isinstance(cases, list):
        raise ValueError(f"{cases_path}: expected a JSON list of cases")
    out = []
    for i, case in enumerate(cases):
        for key in ("image", "tasks"):
            if key not in case:
                raise ValueError(f"{cases_path}: case {i} has no {key!r}")
        case_id = case.get("id", f"case-{i}")
        log(f"[reference] {i + 1}/{len(cases)} {case_id}")
        rgb = load_image(cases_path.parent / case["image"])
        res = run_case(bundle, rgb, case["tasks"], bool(case.get("caption", True)), case_id, full_array_limit)
        out.append({"id": case_id, **res})
    m = bundle.manifest
    return {"bundle": {"name": m["name"], "version": m["version"], "variant": m["variant"]},
            "backend": bundle.backend.name, "cases": out}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mvp_lm.reference", description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--cases", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--backend", choices=["onnx", "torch"], default="onnx")
    ap.add_argument("--checkpoint", help="torch backend: weights of a bundle exported from a checkpoint")
    ap.add_argument("--precision", choices=["fp32", "fp16"], default="fp32", help="onnx backend: which graphs to run")
    ap.add_argument("--full-array-limit", type=int, default=65536,
                    help="trace arrays with at most this many elements are written in full")
    args = ap.parse_args(argv)
    bundle = Bundle(args.bundle, args.backend, args.checkpoint, precision=args.precision)
    doc = run_cases(bundle, Path(args.cases), args.full_array_limit, log=lambda s: print(s, flush=True))
    Path(args.out).write_text(json.dumps(doc) + "\n", encoding="utf-8")
    print(f"[reference] wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
