"""decoder_generate.onnx (batched greedy decoding in one run, mvp_lm/generation_graph.py) equals the step graph run
token by token in Python onnxruntime, and PyTorch, on both variants, for each row alone and in a right-padded batch
of prompts of different lengths; stop rules (<PER>, EOS, cap checked first, rows stopping at different steps in one
batch); the --add-generation-graph command on an existing bundle; the trained demo model."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from mvp_lm import generation_graph as gg
from mvp_lm.export import GRAPHS, OPSET, _all_nodes, export_bundle, file_entry
from mvp_lm.prompt import build_prompt, build_word_prompts, response_tail_ids
from mvp_lm.reference import Bundle, Language, generate, load_image, preprocess, verify_files

MODEL = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((MODEL / "manifest.schema.json").read_text())
DEMO = MODEL.parent / "models" / "demo"


@pytest.fixture(scope="module", params=["paper", "released-code"])
def bundle(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"gen-{request.param}")
    export_bundle("tiny", request.param, out, seed=0, log=lambda _: None)
    return out


def _session(model_or_path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    src = model_or_path.SerializeToString() if isinstance(model_or_path, onnx.ModelProto) else str(model_or_path)
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


def _prompts(b: Bundle):
    """The states after the parity-style prompts on one synthetic image: a word prompt, a chunked vocabulary's first
    chunk, a sentence."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (90, 140, 3), dtype=np.uint8)
    pixel_values, _ = preprocess(rgb, b.manifest["preprocess"])
    lang = Language(b.backend, b.manifest, b.backend.vision(pixel_values)["image_embeds"])
    things = ["red square", "blue circle", "dog", "person", "car", "tree", "cup", "chair", "bird", "cat", "boat",
              "kite", "bench", "bus", "truck", "horse", "sheep", "cow", "clock", "vase"]
    chunk = b.manifest["generation"]["vocab_chunk_size"]
    prompts = [build_prompt(b.tok, b.spec, phrases=["red square", "blue circle", "sky", "grass"]),
               build_word_prompts(b.tok, b.spec, things, chunk)[0],
               build_prompt(b.tok, b.spec, sentence="the red square on the left")]
    return lang, [lang.prefill(p) for p in prompts]


def _step_loop(lang: Language, state: dict, per: int, eos: int, marker_tail: list[int], max_new: int):
    """BUNDLE.md's `generate` with the step graph, for any stop tokens: (ids, fed tail, per_hidden)."""
    generated, stop, logits = [], None, state["logits"]
    while len(generated) < max_new:
        t = int(np.argmax(logits[0, -1]))
        if t in (per, eos):
            stop = t
            break
        generated.append(t)
        state = lang.feed(state, [t])
        logits = state["logits"]
    tail = [per] if stop == per else marker_tail
    state = lang.feed(state, tail)
    return generated, tail, state["last_hidden_state"][:, -1]


def batch_feeds(states: list[dict]) -> dict:
    """decoder_generate's inputs (but max_new_tokens) for the rows `states` (batch-1 Language states): each row's
    greedy choice, its cache right-padded to the longest with attention mask 0, its own next position."""
    lengths = [s["length"] for s in states]
    total = max(lengths)
    past = {}
    for name, first in states[0]["past"].items():
        padded = np.zeros((len(states), first.shape[1], total, first.shape[3]), first.dtype)
        for row, s in enumerate(states):
            padded[row, :, :s["length"]] = s["past"][name][0]
        past[name] = padded
    return {"input_ids": np.array([[int(np.argmax(s["logits"][0, -1]))] for s in states], np.int64),
            "attention_mask": (np.arange(total)[None] < np.array(lengths)[:, None]).astype(np.int64),
            "position_ids": np.array(lengths, np.int64)[:, None], **past}


def _run_graph(sess: ort.InferenceSession, states: list[dict], max_new: int) -> list[tuple[list[int], np.ndarray]]:
    """(ids, per_hidden [1,H]) of each row of one run on the batch `states`; checks the -1 padding of the ids."""
    ids, counts, per_hidden = sess.run(["generated_ids", "num_generated", "per_hidden"],
                                       {**batch_feeds(states), "max_new_tokens": np.array([max_new], np.int64)})
    assert ids.shape == (len(states), max(counts)) and counts.shape == (len(states),)
    for row, n in zip(ids, counts):
        assert (row[:n] >= 0).all() and (row[n:] == -1).all(), (row, n)
    return [(row[:n].tolist(), per_hidden[i:i + 1]) for i, (row, n) in enumerate(zip(ids, counts))]


def _alone_and_together(sess: ort.InferenceSession, states: list[dict], max_new: int):
    """Each row run alone at batch 1 and all rows in one batch: [(alone, together)] per row."""
    return list(zip([_run_graph(sess, [s], max_new)[0] for s in states], _run_graph(sess, states, max_new)))


def _graph_with(bundle_dir: Path, manifest: dict, **stops) -> ort.InferenceSession:
    d = manifest["dims"]
    model = gg.build(onnx.load(str(bundle_dir / "decoder_model_merged.onnx")),
                     onnx.load(str(bundle_dir / "embed_tokens.onnx")),
                     num_layers=d["num_layers"], num_heads=d["num_heads"], head_dim=d["head_dim"], **stops)
    return _session(model)


def test_manifest_lists_the_graph_built_from_default_ops_with_weights_once(bundle):
    m = json.loads((bundle / "manifest.json").read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(m)
    assert set(m["precisions"]["fp32"]["graphs"]) == {*GRAPHS, gg.GRAPH}
    assert m["precisions"]["fp32"]["graphs"][gg.GRAPH] == gg.FILE
    assert file_entry(bundle / gg.FILE) == m["files"][gg.FILE]
    assert m["batching"] == {"max_batch": 8}  # the export checked every graph at batch 8
    proto = onnx.load(str(bundle / gg.FILE))
    nodes = list(_all_nodes(proto.graph))
    assert {n.domain for n in nodes} <= {"", "ai.onnx"} and not proto.functions
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [OPSET]
    assert [n.op_type for n in proto.graph.node].count("Loop") == 1
    sources = [onnx.load(str(bundle / f"{g}.onnx")) for g in ("embed_tokens", "decoder_model_merged")]
    assert len(proto.graph.initializer) == sum(len(s.graph.initializer) for s in sources)  # shared by both copies
    past = [f"past_key_values.{i}.{k}" for i in range(m["dims"]["num_layers"]) for k in ("key", "value")]
    assert [i.name for i in proto.graph.input] == ["input_ids", "max_new_tokens", "attention_mask", "position_ids",
                                                   *past]
    assert [o.name for o in proto.graph.output] == ["generated_ids", "num_generated", "per_hidden"]
    batch = {v.name: v.type.tensor_type.shape.dim[0].dim_param for v in [*proto.graph.input, *proto.graph.output]
             if v.name != "max_new_tokens"}
    assert set(batch.values()) == {"batch"}, batch


def test_graph_equals_the_step_loop_in_onnxruntime_alone_and_in_a_batch(bundle):
    """The three prompts (68 to 118 positions) one by one and as one right-padded batch."""
    b = Bundle(bundle, "onnx")
    sess = b.backend.sessions[gg.GRAPH]
    lang, states = _prompts(b)
    assert len({s["length"] for s in states}) == 3
    per, eos = b.spec.tokens["per"], b.spec.tokens["eos"]
    tail = response_tail_ids(b.tok, b.spec)
    cap = b.manifest["generation"]["max_new_tokens"]
    for max_new in (0, 1, 7, cap):
        for i, (state, runs) in enumerate(zip(states, _alone_and_together(sess, states, max_new))):
            want, _, want_h = _step_loop(lang, state, per, eos, tail, max_new)
            for how, (got, got_h) in zip(("alone", "in the batch"), runs):
                assert got == want, f"prompt {i} {how}, max {max_new}"
                assert np.abs(got_h - want_h).max() <= 1e-5, f"prompt {i} {how}, max {max_new}: per_hidden"


def test_stop_rules_on_per_and_eos_and_the_cap_first(bundle):
    """Random weights rarely choose <PER> or EOS, so graphs are built with stop tokens taken from the free run."""
    b = Bundle(bundle, "onnx")
    lang, states = _prompts(b)
    state = states[0]
    cap = b.manifest["generation"]["max_new_tokens"]
    marker = response_tail_ids(b.tok, b.spec)[:-1]
    free, _, _ = _step_loop(lang, state, -1, -2, marker + [b.spec.tokens["per"]], cap)  # no stop token: the cap
    distinct = list(dict.fromkeys(free))
    assert len(distinct) >= 4, free
    per, eos = distinct[2], distinct[3]
    absent = next(t for t in range(b.manifest["dims"]["vocab_size"]) if t not in free)
    cases = [("stop on <PER>", per, absent, cap, free.index(per), [per]),
             ("stop on EOS", absent, eos, cap, free.index(eos), marker + [absent]),
             ("the cap before <PER>", per, absent, free.index(per), free.index(per), marker + [per]),
             ("<PER> first", free[0], absent, cap, 0, [free[0]])]
    for what, p, e, max_new, n, tail in cases:
        sess = _graph_with(bundle, b.manifest, per=p, eos=e, tail_ids=marker + [p])
        want, want_tail, want_h = _step_loop(lang, state, p, e, marker + [p], max_new)
        assert len(want) == n and want_tail == tail, what
        [(got, got_h)] = _run_graph(sess, [state], max_new)
        assert got == want == free[:n], what
        assert np.abs(got_h - want_h).max() <= 1e-5, what


def _first(run: list[int], token: int) -> int:
    return run.index(token) if token in run else len(run)


def _stops_apart(free: list[list[int]]) -> tuple[int, int]:
    """Stop tokens (per, eos) for three free runs: run 0 meets per first, run 1 eos first, at different steps (not
    the first), run 2 neither."""
    for p in dict.fromkeys(free[0]):
        for e in dict.fromkeys(free[1]):
            if (p != e and 0 < _first(free[0], p) < _first(free[0], e) and 0 < _first(free[1], e) < _first(free[1], p)
                    and _first(free[0], p) != _first(free[1], e) and p not in free[2] and e not in free[2]):
                return p, e
    raise AssertionError(f"no such stop tokens in {free}")


def _fed(lang: Language, state: dict, ids: list[int]) -> dict:
    for t in ids:  # one by one, as the step loop feeds them
        state = lang.feed(state, [t])
    return state


def test_rows_that_stop_differently_in_one_batch_are_each_row_alone(bundle):
    """One batch of five rows, with stop tokens taken from the free runs: row 0 stops on <PER>, row 1 on EOS (a
    step apart from row 0), row 2 runs to the cap, rows 3 and 4 choose <PER> and EOS first (they generate
    nothing). Each row equals itself alone and the step loop; a second run caps row 0 just before its <PER>."""
    b = Bundle(bundle, "onnx")
    lang, states = _prompts(b)
    cap = b.manifest["generation"]["max_new_tokens"]
    marker = response_tail_ids(b.tok, b.spec)[:-1]
    free = [_step_loop(lang, s, -1, -2, marker + [b.spec.tokens["per"]], cap)[0] for s in states]
    per, eos = _stops_apart(free)
    at_per, at_eos = _first(free[0], per), _first(free[1], eos)
    rows = [*states, _fed(lang, states[0], free[0][:at_per]), _fed(lang, states[1], free[1][:at_eos])]
    tail = marker + [per]
    sess = _graph_with(bundle, b.manifest, per=per, eos=eos, tail_ids=tail)
    expected = {cap: [(at_per, [per]), (at_eos, tail), (cap, tail), (0, [per]), (0, tail)],
                at_per: [(at_per, tail), (min(at_eos, at_per), tail), (at_per, tail),
                         (0, [per]), (0, tail)]}
    for max_new, outcomes in expected.items():
        for i, (row, runs, (n, fed)) in enumerate(zip(rows, _alone_and_together(sess, rows, max_new), outcomes)):
            want, want_tail, want_h = _step_loop(lang, row, per, eos, tail, max_new)
            assert (len(want), want_tail) == (n, fed), f"row {i}, max {max_new}"
            for how, (got, got_h) in zip(("alone", "in the batch"), runs):
                assert got == want, f"row {i} {how}, max {max_new}"
                assert np.abs(got_h - want_h).max() <= 1e-5, f"row {i} {how}, max {max_new}: per_hidden"


def test_graph_equals_pytorch_alone_and_in_a_batch(bundle):
    onnx_b, torch_b = Bundle(bundle, "onnx"), Bundle(bundle, "torch")
    sess = onnx_b.backend.sessions[gg.GRAPH]
    _, states = _prompts(onnx_b)
    torch_lang, torch_states = _prompts(torch_b)
    cap = onnx_b.manifest["generation"]["max_new_tokens"]
    for i, (torch_state, runs) in enumerate(zip(torch_states, _alone_and_together(sess, states, cap))):
        want = generate(torch_lang, torch_b.tok, torch_b.spec, torch_state, True, cap)
        for how, (got, got_h) in zip(("alone", "in the batch"), runs):
            assert got == want["generated_ids"], f"prompt {i} {how}"
            assert np.abs(got_h - want["per_hidden"]).max() <= 1e-4, f"prompt {i} {how}: per_hidden"


def test_added_to_an_existing_bundle_it_is_what_the_export_writes(bundle, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(bundle, old)
    exported = json.loads((bundle / "manifest.json").read_text())
    m = json.loads((old / "manifest.json").read_text())
    del m["precisions"]["fp32"]["graphs"][gg.GRAPH], m["files"][gg.FILE]
    (old / gg.FILE).unlink()
    (old / "manifest.json").write_text(json.dumps(m, indent=2) + "\n")
    before = {p.name: file_entry(p) for p in old.iterdir() if p.name != "manifest.json"}
    subprocess.run([sys.executable, "-m", "mvp_lm.export", "--add-generation-graph", "--bundle", str(old)],
                   cwd=MODEL, check=True, capture_output=True)
    after = {p.name: file_entry(p) for p in old.iterdir() if p.name != "manifest.json"}
    assert after == {**before, gg.FILE: file_entry(bundle / gg.FILE)}  # the others untouched, the graph identical
    assert (old / "manifest.json").read_text() == (bundle / "manifest.json").read_text()
    assert json.loads((old / "manifest.json").read_text()) == exported
    verify_files(old, exported)


def test_demo_bundle_graph_equals_the_step_loop_and_stops_on_per():
    """The trained demo model, four captions in one batch and alone; the graph is built from the demo's step graph
    (what --add-generation-graph writes), whichever form the shipped decoder_generate.onnx has."""
    m = json.loads((DEMO / "manifest.json").read_text())
    assert m["precisions"]["fp32"]["graphs"].get(gg.GRAPH) == gg.FILE
    b = Bundle(DEMO, "onnx")  # verifies every listed file
    sess = _graph_with(DEMO, m, **gg.stop_tokens(b.spec, b.tok))
    cases = [c for c in json.loads((DEMO / "ci-slice" / "cases.json").read_text()) if c["caption"]][:4]
    per, eos = b.spec.tokens["per"], b.spec.tokens["eos"]
    tail = response_tail_ids(b.tok, b.spec)
    cap = m["generation"]["max_new_tokens"]
    langs, states = [], []
    for c in cases:
        pixel_values, _ = preprocess(load_image(DEMO / "ci-slice" / c["image"]), m["preprocess"])
        langs.append(Language(b.backend, m, b.backend.vision(pixel_values)["image_embeds"]))
        phrases = [p["text"] for p in c["tasks"][0]["phrases"]]
        states.append(langs[-1].prefill(build_word_prompts(b.tok, b.spec, phrases,
                                                           m["generation"]["vocab_chunk_size"])[0]))
    stopped_on_per = 0
    for c, lang, state, runs in zip(cases, langs, states, _alone_and_together(sess, states, cap)):
        want, want_tail, want_h = _step_loop(lang, state, per, eos, tail, cap)
        for how, (got, got_h) in zip(("alone", "in the batch"), runs):
            assert got == want, f"{c['id']} {how}"
            assert np.abs(got_h - want_h).max() <= 1e-5, f"{c['id']} {how}"
        stopped_on_per += want_tail == [per]
    assert stopped_on_per > 0  # the trained model writes <PER> itself


def test_a_decoder_in_external_data_is_referenced_not_copied(bundle, tmp_path, monkeypatch):
    """Full-size decoders (> 2 GB) keep their tensors in decoder_model_merged.onnx.data: the generation graph points
    at that file; embedded tensors over the protobuf limit go to decoder_generate.onnx.data. Same results."""
    m = json.loads((bundle / "manifest.json").read_text())
    onnx.save_model(onnx.load(str(bundle / "decoder_model_merged.onnx")), str(tmp_path / "decoder_model_merged.onnx"),
                    save_as_external_data=True, all_tensors_to_one_file=True,
                    location="decoder_model_merged.onnx.data", size_threshold=0)
    shutil.copy(bundle / "embed_tokens.onnx", tmp_path)
    b = Bundle(bundle, "onnx")
    stops = gg.stop_tokens(b.spec, b.tok)
    files = gg.write(tmp_path, m["dims"], stops)
    assert files == [tmp_path / gg.FILE]
    inits = onnx.load(str(files[0]), load_external_data=False).graph.initializer
    decoder_inits = [t for t in inits if t.name.startswith("decoder/")]
    assert decoder_inits and all(t.data_location == onnx.TensorProto.EXTERNAL and t.external_data[0].value ==
                                 "decoder_model_merged.onnx.data" for t in decoder_inits)
    monkeypatch.setattr(gg, "_EMBEDDED_LIMIT", 0)
    (tmp_path / "spilled").mkdir()
    for f in ("decoder_model_merged.onnx", "decoder_model_merged.onnx.data", "embed_tokens.onnx"):
        shutil.copy(tmp_path / f, tmp_path / "spilled")
    spilled = gg.write(tmp_path / "spilled", m["dims"], stops)
    assert [f.name for f in spilled] == [gg.FILE, gg.FILE + ".data"]
    _, states = _prompts(b)
    want = _run_graph(b.backend.sessions[gg.GRAPH], states, 12)
    for f in (files[0], spilled[0]):
        for (got, got_h), (want_ids, want_h) in zip(_run_graph(_session(f), states, 12), want, strict=True):
            assert got == want_ids and np.abs(got_h - want_h).max() == 0, f
