"""Export the `full` preset (random weights) and time each bundle graph with onnxruntime on this CPU.

    .venv/bin/python model/scripts/bench_full.py --out .data/bundles/full-paper [--variant paper] [--skip-export]
        [--threads 2] [--prompt-tokens 350] [--phrases 134] [--decode-steps 8] [--runs 2]

Each graph runs in its own subprocess, so the printed peak RSS is that stage's alone (session + inputs + outputs).
Shapes: vision at S×S batch 1; embed and a decoder prefill of --prompt-tokens tokens (≈350 for a short referring
sentence, ≈990 for the 133 COCO phrases); --decode-steps single-token decode steps on that cache; the perception
decoder with --phrases phrases (word) and with one (sentence). Inputs are random; latency does not depend on values.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(fn, runs: int) -> tuple[float, list[float]]:
    fn()  # warm-up (first run allocates the arena)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return min(times), times


def run_stage(bundle: Path, graph: str, args) -> dict:
    import onnxruntime as ort
    m = json.loads((bundle / "manifest.json").read_text())
    d = m["dims"]
    rng = np.random.default_rng(0)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    t0 = time.perf_counter()
    sess = ort.InferenceSession(str(bundle / m["precisions"]["fp32"]["graphs"][graph]), opts,
                                providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - t0) * 1000
    f32 = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    res = {"graph": graph, "load_ms": round(load_ms, 1)}
    if graph == "vision_encoder":
        feeds = {"pixel_values": f32(1, 3, d["image_size"], d["image_size"])}
        res["run_ms"], _ = _timed(lambda: sess.run(None, feeds), args.runs)
    elif graph == "embed_tokens":
        feeds = {"input_ids": rng.integers(0, d["vocab_size"], (1, args.prompt_tokens), dtype=np.int64)}
        res["run_ms"], _ = _timed(lambda: sess.run(None, feeds), args.runs)
    elif graph == "decoder_model_merged":
        t, layers = args.prompt_tokens, d["num_layers"]
        names = [f"past_key_values.{i}.{k}" for i in range(layers) for k in ("key", "value")]
        empty = np.zeros((1, d["num_heads"], 0, d["head_dim"]), np.float32)
        prefill = {"inputs_embeds": f32(1, t, d["hidden_size"]), "attention_mask": np.ones((1, t), np.int64),
                   "position_ids": np.arange(t, dtype=np.int64)[None], **{n: empty for n in names}}
        outs = [o.name for o in sess.get_outputs()]
        res["prefill_ms"], _ = _timed(lambda: sess.run(None, prefill), args.runs)
        present = dict(zip(outs, sess.run(None, prefill)))
        past = {n: present[n.replace("past_key_values", "present")] for n in names}
        steps = []
        for s in range(args.decode_steps):
            feeds = {"inputs_embeds": f32(1, 1, d["hidden_size"]), "attention_mask": np.ones((1, t + s + 1), np.int64),
                     "position_ids": np.array([[t + s]], np.int64), **past}
            t0 = time.perf_counter()
            out = dict(zip(outs, sess.run(None, feeds)))
            steps.append((time.perf_counter() - t0) * 1000)
            past = {n: out[n.replace("past_key_values", "present")] for n in names}
        res["decode_step_ms_median"] = float(np.median(steps))
    elif graph == "perception_decoder":
        n, dm, mm = d["num_memory_tokens"], d["d_model"], d["mask_size"]
        base = {"memory": f32(1, n, dm), "output_memory": f32(1, n, dm), "output_proposals": f32(1, n, 4),
                "proposal_valid": np.ones((1, n), np.float32), "mask_features": f32(1, dm, mm, mm)}
        if m["variant"] == "paper":
            base["per_hidden"] = f32(1, d["hidden_size"])
        words = {**base, "text_embeds": f32(1, args.phrases, d["hidden_size"]), "is_sentence": np.array([False])}
        sentence = {**base, "text_embeds": f32(1, 1, d["hidden_size"]), "is_sentence": np.array([True])}
        res["words_ms"], _ = _timed(lambda: sess.run(None, words), args.runs)
        res["sentence_ms"], _ = _timed(lambda: sess.run(None, sentence), args.runs)
    res["peak_rss_mib"] = round(_peak_rss_mib(), 1)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="bundle directory")
    ap.add_argument("--variant", default="paper", choices=["paper", "released-code"])
    ap.add_argument("--skip-export", action="store_true", help="reuse the bundle in --out")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=350)
    ap.add_argument("--phrases", type=int, default=134)
    ap.add_argument("--decode-steps", type=int, default=8)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--stage", help=argparse.SUPPRESS)  # internal: run one graph in this process
    args = ap.parse_args()
    out = Path(args.out)
    if args.stage:
        print(json.dumps(run_stage(out, args.stage, args)), flush=True)
        return 0
    if not args.skip_export:
        t0 = time.perf_counter()
        # its own process, so that the export's memory is gone before the stages are timed
        subprocess.run([sys.executable, "-m", "mvp_lm.export", "--preset", "full", "--variant", args.variant,
                        "--seed", "0", "--out", str(out)], check=True)
        print(f"[bench] export: {time.perf_counter() - t0:.0f}s", flush=True)
    manifest = json.loads((out / "manifest.json").read_text())
    total = sum(f["bytes"] for f in manifest["files"].values())
    print(f"[bench] bundle {manifest['name']}: {total / 2**30:.2f} GiB, threads={args.threads}", flush=True)
    results = []
    for graph in ("vision_encoder", "embed_tokens", "decoder_model_merged", "perception_decoder"):
        print(f"[bench] running {graph} ...", flush=True)
        cmd = [sys.executable, __file__, "--out", str(out), "--stage", graph, "--threads", str(args.threads),
               "--prompt-tokens", str(args.prompt_tokens), "--phrases", str(args.phrases),
               "--decode-steps", str(args.decode_steps), "--runs", str(args.runs)]
        line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        results.append(json.loads(line))
        print(f"[bench]   {line}", flush=True)
    print("[bench] summary (ms, MiB):")
    for r in results:
        print("  " + ", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
