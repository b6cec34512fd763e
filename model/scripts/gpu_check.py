"""The GPU check's Python side (scripts/gpu-check.sh): a bundle's graphs with Python onnxruntime on CUDA when this
onnxruntime has the CUDA provider (onnxruntime-gpu) and it loads, else on CPU; says which.

    python model/scripts/gpu_check.py [--bundle models/demo] [--provider auto|cuda|cpu] [--runs 5] [--threads N]
                                      [--json OUT]

Needs onnxruntime and numpy only (no torch, no tokenizers, no model package), so it runs on a machine with neither
network nor this project's virtual environment. Inputs are synthetic (random pixels, fixed token ids): latencies and
bytes do not depend on the values, the number of generated tokens does (a trained bundle stops on <PER>).
Measures: session creation per graph and the provider each really runs on; per-stage latency (vision encoder, the
prefix + image prefill, a prompt prefill, the caption by decoder_generate.onnx and by the step loop, the perception
decoder); decode tokens/s of both; bytes crossing the session boundary (feeds + fetches) per generated token of both.
Not a test: prints a table (and writes it as JSON).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[2]


def nbytes(arrays) -> int:
    return int(sum(a.nbytes for a in arrays))


class Graphs:
    def __init__(self, bundle: Path, manifest: dict, providers: list[str], threads: int = 0):
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.intra_op_num_threads = threads
        self.sessions, self.load_ms, self.active = {}, {}, {}
        for name, rel in manifest["precisions"]["fp32"]["graphs"].items():
            t0 = time.perf_counter()
            s = ort.InferenceSession(str(bundle / rel), opts, providers=providers)
            self.load_ms[name] = (time.perf_counter() - t0) * 1000
            self.active[name] = s.get_providers()[0]
            self.sessions[name] = s
        self.outputs = {g: [o.name for o in s.get_outputs()] for g, s in self.sessions.items()}
        self.inputs = {g: {i.name for i in s.get_inputs()} for g, s in self.sessions.items()}
        self.bytes = 0

    def run(self, graph: str, feeds: dict) -> dict:
        feeds = {k: v for k, v in feeds.items() if k in self.inputs[graph]}
        out = dict(zip(self.outputs[graph], self.sessions[graph].run(None, feeds)))
        self.bytes += nbytes(feeds.values()) + nbytes(out.values())
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", default=str(ROOT / "models" / "demo"))
    ap.add_argument("--provider", choices=["auto", "cuda", "cpu"], default="auto")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (default: onnxruntime's choice)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    bundle = Path(args.bundle)
    m = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    d, tokens = m["dims"], m["tokens"]
    available = ort.get_available_providers()
    rows: list[tuple[str, str]] = []
    row = lambda what, value: (rows.append((what, value)), print(f"| {what:<48} | {value}", flush=True))  # noqa: E731
    row("python onnxruntime", f"{ort.__version__}, providers built in: {', '.join(available)}")
    cuda = args.provider != "cpu" and "CUDAExecutionProvider" in available
    if args.provider == "cuda" and not cuda:
        row("CUDA provider", "NOT in this onnxruntime (install onnxruntime-gpu): measuring on CPU")
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda else ["CPUExecutionProvider"]
    g = Graphs(bundle, m, providers, args.threads)
    for name in g.sessions:
        row(f"load {name}", f"{g.load_ms[name]:.0f} ms on {g.active[name]}")
    if cuda and any(p != "CUDAExecutionProvider" for p in g.active.values()):
        row("CUDA provider", "asked for but did not load (missing CUDA/cuDNN libraries?): those graphs run on CPU")
    has_graph = "decoder_generate" in g.sessions
    if not has_graph:
        row("decoder_generate.onnx", "absent from this bundle: step loop only")

    rng = np.random.default_rng(0)
    s, h, layers, heads, hd = d["image_size"], d["hidden_size"], d["num_layers"], d["num_heads"], d["head_dim"]
    vocab = m["tokenizer"]["vocab_size"]
    ids = lambda n, start: np.asarray([[(start + i) % (vocab - 10) + 10 for i in range(n)]], np.int64)  # noqa: E731
    empty = {f"past_key_values.{i}.{k}": np.zeros((1, heads, 0, hd), np.float32)
             for i in range(layers) for k in ("key", "value")}

    def dec(embeds, past, plen):
        t = embeds.shape[1]
        out = g.run("decoder_model_merged", {"inputs_embeds": embeds, "attention_mask": np.ones((1, plen + t), np.int64),
                                             "position_ids": np.arange(plen, plen + t, dtype=np.int64)[None], **past})
        return out, {f"past_key_values.{k[8:]}": v for k, v in out.items() if k.startswith("present.")}, plen + t

    def timed(fn):
        fn()  # warm-up
        ms = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            result = fn()
            ms.append((time.perf_counter() - t0) * 1000)
        return statistics.median(ms), result

    pixel_values = rng.standard_normal((1, 3, s, s)).astype(np.float32)
    ms, vision = timed(lambda: g.run("vision_encoder", {"pixel_values": pixel_values}))
    row("stage vision_encoder", f"{ms:.2f} ms")

    def prefix():
        e = np.concatenate([g.run("embed_tokens", {"input_ids": ids(30, 0)})["inputs_embeds"], vision["image_embeds"]], 1)
        return dec(e, empty, 0)
    ms, (_, image_past, image_len) = timed(prefix)
    row("stage prefill prefix + image", f"{ms:.2f} ms ({image_len} positions)")
    ms, (state, past, plen) = timed(lambda: dec(g.run("embed_tokens", {"input_ids": ids(40, 100)})["inputs_embeds"],
                                                image_past, image_len))
    row("stage prefill prompt", f"{ms:.2f} ms (40 tokens)")
    cap = m["generation"]["max_new_tokens"]
    per, eos = tokens["per"], tokens["eos"]
    first = int(np.argmax(state["logits"][0, -1]))

    def step_loop(cap=cap):
        g.bytes = 0
        nxt, gen, p, n, stop = first, [], past, plen, None
        while len(gen) < cap:
            if nxt in (per, eos):
                stop = nxt
                break
            gen.append(nxt)
            out, p, n = dec(g.run("embed_tokens", {"input_ids": np.array([[nxt]], np.int64)})["inputs_embeds"], p, n)
            nxt = int(np.argmax(out["logits"][0, -1]))
        tail = [per]  # after the cap the marker's ids come first; they need the tokenizer: one run either way
        out, _, _ = dec(g.run("embed_tokens", {"input_ids": np.array([tail], np.int64)})["inputs_embeds"], p, n)
        return gen, g.bytes

    results = {}
    ms_step, (step_ids, step_bytes) = timed(step_loop)
    results["step"] = (ms_step, step_ids, step_bytes)
    if has_graph:
        def in_graph(cap=cap):
            g.bytes = 0
            out = g.run("decoder_generate", {"input_ids": np.array([[first]], np.int64),
                                             "max_new_tokens": np.array([cap], np.int64),
                                             "attention_mask": np.ones((1, plen), np.int64),
                                             "position_ids": np.array([[plen]], np.int64), **past})
            return out["generated_ids"][0].tolist(), g.bytes, out["per_hidden"]
        ms_graph, (graph_ids, graph_bytes, per_hidden) = timed(in_graph)
        results["graph"] = (ms_graph, graph_ids, graph_bytes)
        same = graph_ids == step_ids
        row("caption ids graph = step loop", "yes" if same else f"NO: {graph_ids} vs {step_ids}")
    else:
        per_hidden = rng.standard_normal((1, h)).astype(np.float32)
    n = len(step_ids)
    row("caption tokens generated", f"{n} ({'the cap' if n == cap else 'stopped on a stop token'})")
    one = {"step": lambda: step_loop(1)[1], "graph": lambda: in_graph(1)[1]}
    for key, label in (("graph", "decoder_generate.onnx (one run)"), ("step", "step loop (one run per token)")):
        if key in results:
            ms, _, b = results[key]
            rate = n / (ms / 1000) if ms > 0 else float("nan")
            further = f", each further token {(b - one[key]()) / (n - 1):.0f} B" if n > 1 else ""
            row(f"caption, {label}", f"{ms:.2f} ms, {rate:.1f} tokens/s, {b / max(n, 1) / 1024:.1f} KiB/token over "
                                     f"the caption ({b / 2**20:.2f} MiB across the boundary){further}")
    if "graph" in results:
        row("ratio decode tokens/s graph / step loop", f"{results['step'][0] / results['graph'][0]:.2f}x")
        row("ratio bytes/token step loop / graph", f"{results['step'][2] / max(results['graph'][2], 1):.1f}x")
    text = rng.standard_normal((1, 5, h)).astype(np.float32)
    feeds = {**{k: v for k, v in vision.items() if k != "image_embeds"}, "text_embeds": text,
             "is_sentence": np.array([False]), "per_hidden": per_hidden.astype(np.float32)}
    ms, _ = timed(lambda: g.run("perception_decoder", feeds))
    row("stage perception_decoder", f"{ms:.2f} ms (5 phrases)")
    if args.json:
        Path(args.json).write_text(json.dumps({"bundle": str(bundle), "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
