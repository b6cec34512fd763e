"""decoder_generate.onnx: greedy caption decoding inside one `session.run` (model/BUNDLE.md).

onnxruntime-node binds CUDA outputs to host memory only, so a KV cache that goes back into the step graph
(decoder_model_merged.onnx) every decode step crosses the host boundary twice per token. This graph keeps the loop
on the device: an ONNX `Loop` whose loop-carried state is the KV cache, built by graph surgery from the bundle's own
exported graphs (no PyTorch, no checkpoint needed):

    main graph:  done = input_ids in (<PER>, EOS); count = 0                  # per row, [B,1]
                 Loop(max_new_tokens, not all(done); token, done, count, mask, ids, past...)   # body below
                 tail_b = [<PER>] if row b stopped on <PER> else ids(response_marker) + [<PER>], right-padded
                 last_hidden_state = decoder(embed(tails), past)             # a second copy of the decoder nodes
                 per_hidden[b] = last_hidden_state[b, len(tail_b) - 1]       # GatherND
    Loop body:   live = not done; mask += [live]; position = position_ids + count
                 logits, present = decoder(embed(token), mask, position, past) # embed_tokens' Gather + decoder nodes
                 ids += [token if live else -1]; count += live
                 token = token if done else argmax(logits[:, -1]) (ties: lowest id)
                 done |= token in (<PER>, EOS); cond = not all(done)

A batch holds B sequences whose caches may have padding slots anywhere (attention_mask 0); a done row is still fed
(its stop token again, in a masked slot, at an unchanged position), so every row's ids and per_hidden are the ones it
gets alone. Per row the semantics are BUNDLE.md's `generate` exactly: the token cap is checked before the stop
test, the stop token is not part of the ids, EOS is never fed to a real slot. Both decoder copies and the embedding
read the same initializers of the main graph (outer-scope references), so the weights are stored once; tensors the
source graphs keep in external data files stay there (the new graph points at the decoder's `.data` file instead of
copying it). Only the nodes each copy needs are kept (the body computes no hidden-state means, the tail no logits).
Built-in ONNX ops only, opset of the source graphs (17).

    python -m mvp_lm.export --add-generation-graph --bundle DIR

adds the graph to an existing bundle (every precision it has) and rewrites the manifest's `precisions` and `files`;
no other file changes.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

GRAPH = "decoder_generate"
FILE = f"{GRAPH}.onnx"
# Embedded tensors beyond this go to `decoder_generate.onnx.data` (protobuf cannot hold 2 GB).
_EMBEDDED_LIMIT = 1536 << 20


def _producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    return {o: n for n in graph.node for o in n.output if o}


def _needed_nodes(graph: onnx.GraphProto, outputs: list[str]) -> list[onnx.NodeProto]:
    """The nodes `outputs` depend on, in the graph's (topological) order."""
    producers = _producers(graph)
    keep: set[int] = set()
    stack = list(outputs)
    while stack:
        node = producers.get(stack.pop())
        if node is None or id(node) in keep:
            continue
        keep.add(id(node))
        stack.extend(i for i in node.input if i)
    return [n for n in graph.node if id(n) in keep]


def _inline(graph: onnx.GraphProto, prefix: str, inputs: dict[str, str], outputs: dict[str, str],
            initializers: dict[str, str]) -> list[onnx.NodeProto]:
    """Copies of the nodes of `graph` that `outputs` need, every value renamed: graph inputs to `inputs[name]`,
    graph outputs to `outputs[name]`, initializers to `initializers[name]`, anything else to prefix + name."""
    def rename(v: str) -> str:
        if not v:
            return v
        for table in (inputs, outputs, initializers):
            if v in table:
                return table[v]
        return prefix + v

    missing = [i.name for i in graph.input if i.name not in inputs]
    if missing:
        raise ValueError(f"inlining {graph.name}: graph inputs {missing} have no value")
    nodes = []
    for node in _needed_nodes(graph, list(outputs)):
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            raise ValueError(f"inlining {graph.name}: node {node.name} ({node.op_type}) has a subgraph")
        n = copy.deepcopy(node)
        n.name = prefix + (node.name or node.output[0])
        n.input[:] = [rename(v) for v in node.input]
        n.output[:] = [rename(v) for v in node.output]
        nodes.append(n)
    produced = {o for n in nodes for o in n.output}
    for name, target in outputs.items():
        if target not in produced:
            raise ValueError(f"inlining {graph.name}: output {name} is not computed by its nodes")
    return nodes


def _tensor_type(elem: int, shape: list) -> onnx.TypeProto:
    return helper.make_tensor_type_proto(elem, shape)


def _const(name: str, values, dtype=np.int64) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], name=name,
                            value=numpy_helper.from_array(np.asarray(values, dtype=dtype), name))


def _elem_type(graph: onnx.GraphProto, name: str) -> int:
    for v in graph.input:
        if v.name == name:
            return v.type.tensor_type.elem_type
    raise ValueError(f"{graph.name}: no input {name}")


def _stops(p: str, token: str, per: int, eos: int) -> list[onnx.NodeProto]:
    """`p + "stops"` = token in (<PER>, EOS), elementwise."""
    return [_const(p + "per", [[per]]), _const(p + "eos", [[eos]]),
            helper.make_node("Equal", [token, p + "per"], [p + "is_per"], name=p + "is_per"),
            helper.make_node("Equal", [token, p + "eos"], [p + "is_eos"], name=p + "is_eos"),
            helper.make_node("Or", [p + "is_per", p + "is_eos"], [p + "stops"], name=p + "stops")]


def _any_false(p: str, flags: str, out: str) -> list[onnx.NodeProto]:
    """`out`, a bool scalar: not every one of `flags` is true (ReduceMin has no bool kernel)."""
    return [helper.make_node("Cast", [flags], [p + "flags_i"], name=p + "flags_i", to=TensorProto.INT64),
            helper.make_node("ReduceMin", [p + "flags_i"], [p + "all_i"], name=p + "all_i", keepdims=0),
            helper.make_node("Cast", [p + "all_i"], [p + "all"], name=p + "all", to=TensorProto.BOOL),
            helper.make_node("Not", [p + "all"], [out], name=out)]


def build(decoder: onnx.ModelProto, embed: onnx.ModelProto, *, num_layers: int, num_heads: int, head_dim: int,
          per: int, eos: int, tail_ids: list[int]) -> onnx.ModelProto:
    """The generation graph from the step graph `decoder` (decoder_model_merged.onnx) and `embed`
    (embed_tokens.onnx), both loaded without their external data. `tail_ids`: ids fed when decoding stopped
    without <PER> (the response marker's ids, then <PER>)."""
    if not tail_ids or tail_ids[-1] != per:
        raise ValueError(f"tail_ids {tail_ids} must end with <PER> ({per})")
    dec, emb = decoder.graph, embed.graph
    past_in = [f"past_key_values.{i}.{k}" for i in range(num_layers) for k in ("key", "value")]
    present = [f"present.{i}.{k}" for i in range(num_layers) for k in ("key", "value")]
    float_t = _elem_type(dec, past_in[0])
    kv_shape = [None, num_heads, None, head_dim]

    inits: list[onnx.TensorProto] = []
    names: dict[str, dict[str, str]] = {}
    for tag, g in (("embed", emb), ("decoder", dec)):
        names[tag] = {}
        for t in g.initializer:
            t2 = copy.deepcopy(t)
            t2.name = f"{tag}/{t.name}"
            names[tag][t.name] = t2.name
            inits.append(t2)
    (embed_in,), (embed_out,) = [i.name for i in emb.input], [o.name for o in emb.output]

    # ------------------------------------------------------------------------------------------ Loop body
    # Per row: `done` once it chose a stop token; a done row is still fed (its stop token again) but its new cache
    # slot is masked, its position (position_ids + count) stays and its ids are -1.
    b = "body/"
    body_past = [b + "in/" + n for n in past_in]
    body_present = [b + "out/" + n for n in present]
    out_types = {o.name: o.type.tensor_type.elem_type for o in dec.output}
    body_present_raw = [p if out_types[n] == float_t else b + "raw/" + n for n, p in zip(present, body_present)]
    body_nodes = [
        *_inline(emb, b + "embed/", {embed_in: b + "token"}, {embed_out: b + "inputs_embeds"}, names["embed"]),
        helper.make_node("Not", [b + "done"], [b + "live"], name=b + "live"),
        helper.make_node("Cast", [b + "live"], [b + "live_i"], name=b + "live_i", to=TensorProto.INT64),
        helper.make_node("Concat", [b + "mask", b + "live_i"], [b + "mask_out"], name=b + "mask_out", axis=1),
        helper.make_node("Add", ["position_ids", b + "count"], [b + "position_ids"], name=b + "position_ids"),
        *_inline(dec, b + "dec/",
                 {"inputs_embeds": b + "inputs_embeds", "attention_mask": b + "mask_out",
                  "position_ids": b + "position_ids", **dict(zip(past_in, body_past))},
                 {"logits": b + "logits", **dict(zip(present, body_present_raw))}, names["decoder"]),
        # the fp16 step graph returns present.*.key in float32 (its rotary embedding is computed in float32) but
        # takes float16 past keys: the loop stores the cache in the past's type, as a caller feeding it back must
        *[helper.make_node("Cast", [raw], [out], name=out, to=float_t) if out != raw else None
          for raw, out in zip(body_present_raw, body_present)],
        # float16 logits are widened first (exact; ONNX Runtime's CPU ArgMax has no float16 kernel)
        *([helper.make_node("Cast", [b + "logits"], [b + "logits32"], name=b + "logits32", to=TensorProto.FLOAT)]
          if float_t != TensorProto.FLOAT else []),
        helper.make_node("ArgMax", [b + ("logits32" if float_t != TensorProto.FLOAT else "logits")], [b + "next"],
                         name=b + "next", axis=-1, keepdims=0, select_last_index=0),  # [B,1]; ties: the lowest id
        _const(b + "no_id", [[-1]]),
        helper.make_node("Where", [b + "done", b + "no_id", b + "token"], [b + "emitted"], name=b + "emitted"),
        helper.make_node("Concat", [b + "ids", b + "emitted"], [b + "ids_out"], name=b + "ids_out", axis=1),
        helper.make_node("Add", [b + "count", b + "live_i"], [b + "count_out"], name=b + "count_out"),
        helper.make_node("Where", [b + "done", b + "token", b + "next"], [b + "token_out"], name=b + "token_out"),
        *_stops(b, b + "next", per, eos),
        helper.make_node("Or", [b + "done", b + "stops"], [b + "done_out"], name=b + "done_out"),
        *_any_false(b, b + "done_out", b + "cond_out"),  # the loop ends when every row is done
    ]
    column, flags, matrix = (_tensor_type(TensorProto.INT64, [None, 1]), _tensor_type(TensorProto.BOOL, [None, 1]),
                             _tensor_type(TensorProto.INT64, [None, None]))
    body = helper.make_graph(
        [n for n in body_nodes if n is not None], "greedy_step",
        [helper.make_value_info(b + "iter", _tensor_type(TensorProto.INT64, [])),
         helper.make_value_info(b + "cond_in", _tensor_type(TensorProto.BOOL, [])),
         helper.make_value_info(b + "token", column),
         helper.make_value_info(b + "done", flags),
         helper.make_value_info(b + "count", column),
         helper.make_value_info(b + "mask", matrix),
         helper.make_value_info(b + "ids", matrix),
         *[helper.make_value_info(n, _tensor_type(float_t, kv_shape)) for n in body_past]],
        [helper.make_value_info(b + "cond_out", _tensor_type(TensorProto.BOOL, [])),
         helper.make_value_info(b + "token_out", column),
         helper.make_value_info(b + "done_out", flags),
         helper.make_value_info(b + "count_out", column),
         helper.make_value_info(b + "mask_out", matrix),
         helper.make_value_info(b + "ids_out", matrix),
         *[helper.make_value_info(n, _tensor_type(float_t, kv_shape)) for n in body_present]])

    # ------------------------------------------------------------------------------------------ main graph
    loop_past = [f"loop/{n}" for n in present]
    n_tail = len(tail_ids)
    nodes = [
        _const("scalar", np.zeros(0)),
        helper.make_node("Reshape", ["max_new_tokens", "scalar"], ["trip_count"], name="trip_count"),
        _const("zero", 0),
        helper.make_node("Greater", ["trip_count", "zero"], ["has_room"], name="has_room"),
        *_stops("first/", "input_ids", per, eos),  # a row whose first choice is a stop token generates nothing
        *_any_false("first/", "first/stops", "first/any_live"),
        helper.make_node("And", ["has_room", "first/any_live"], ["cond0"], name="cond0"),
        _const("zero_1d", [0]),
        helper.make_node("Shape", ["input_ids"], ["rows"], name="rows"),
        helper.make_node("ConstantOfShape", ["rows"], ["count0"], name="count0",
                         value=numpy_helper.from_array(np.zeros(1, np.int64))),
        helper.make_node("Shape", ["input_ids"], ["batch"], name="batch", start=0, end=1),
        helper.make_node("Concat", ["batch", "zero_1d"], ["no_ids_shape"], name="no_ids_shape", axis=0),
        helper.make_node("ConstantOfShape", ["no_ids_shape"], ["no_ids"], name="no_ids",
                         value=numpy_helper.from_array(np.zeros(1, np.int64))),
        helper.make_node("Loop", ["trip_count", "cond0", "input_ids", "first/stops", "count0", "attention_mask",
                                  "no_ids", *past_in],
                         ["last_token", "loop/done", "loop/count", "loop/mask", "generated_ids", *loop_past],
                         name="greedy_loop", body=body),
        _const("flat", [-1]),
        helper.make_node("Reshape", ["loop/count", "flat"], ["num_generated"], name="num_generated"),
        # a row stopped on <PER> when it has fewer ids than the cap and its last choice (kept once done) is <PER>
        helper.make_node("Less", ["loop/count", "max_new_tokens"], ["before_cap"], name="before_cap"),
        helper.make_node("Equal", ["last_token", "first/per"], ["last_is_per"], name="last_is_per"),
        helper.make_node("And", ["before_cap", "last_is_per"], ["stopped_on_per"], name="stopped_on_per"),
        # row b's tail, right-padded (with EOS, masked) to the longest: [<PER>] or the marker's ids + <PER>
        _const("tail/per_row", [[per] + [eos] * (n_tail - 1)]),
        _const("tail/marker_row", [tail_ids]),
        helper.make_node("Where", ["stopped_on_per", "tail/per_row", "tail/marker_row"], ["tail/padded"],
                         name="tail/padded"),
        _const("tail/one", [[1]]),
        _const("tail/full", [[n_tail]]),
        helper.make_node("Where", ["stopped_on_per", "tail/one", "tail/full"], ["tail/lens"], name="tail/lens"),
        helper.make_node("ReduceMax", ["tail/lens"], ["tail/len"], name="tail/len", keepdims=0),
        helper.make_node("Reshape", ["tail/len", "flat"], ["tail/len_1d"], name="tail/len_1d"),
        _const("one_d", [1]),
        helper.make_node("Slice", ["tail/padded", "zero_1d", "tail/len_1d", "one_d"], ["tail_ids"], name="tail_ids"),
        *_inline(emb, "tail/embed/", {embed_in: "tail_ids"}, {embed_out: "tail/inputs_embeds"}, names["embed"]),
        _const("tail/step", 1),
        helper.make_node("Range", ["zero", "tail/len", "tail/step"], ["tail/offsets"], name="tail/offsets"),
        _const("axis0", [0]),
        helper.make_node("Unsqueeze", ["tail/offsets", "axis0"], ["tail/offsets_row"], name="tail/offsets_row"),
        helper.make_node("Add", ["position_ids", "loop/count"], ["tail/start"], name="tail/start"),
        helper.make_node("Add", ["tail/start", "tail/offsets_row"], ["tail/position_ids"], name="tail/position_ids"),
        helper.make_node("Less", ["tail/offsets_row", "tail/lens"], ["tail/real"], name="tail/real"),
        helper.make_node("Cast", ["tail/real"], ["tail/real_i"], name="tail/real_i", to=TensorProto.INT64),
        helper.make_node("Concat", ["loop/mask", "tail/real_i"], ["tail/attention_mask"], name="tail/attention_mask",
                         axis=1),
        *_inline(dec, "tail/dec/",
                 {"inputs_embeds": "tail/inputs_embeds", "attention_mask": "tail/attention_mask",
                  "position_ids": "tail/position_ids", **dict(zip(past_in, loop_past))},
                 {"last_hidden_state": "tail/last_hidden_state"}, names["decoder"]),
        # row b's <PER> is the last of its own tail
        helper.make_node("Sub", ["tail/lens", "tail/one"], ["tail/per_index"], name="tail/per_index"),
        helper.make_node("GatherND", ["tail/last_hidden_state", "tail/per_index"], ["per_hidden"], name="per_hidden",
                         batch_dims=1),
    ]
    hidden = next(o for o in dec.output if o.name == "last_hidden_state").type.tensor_type.shape.dim[2].dim_value
    graph = helper.make_graph(
        nodes, "mvp_lm_decoder_generate",
        [helper.make_value_info("input_ids", _tensor_type(TensorProto.INT64, ["batch", 1])),
         helper.make_value_info("max_new_tokens", _tensor_type(TensorProto.INT64, [1])),
         helper.make_value_info("attention_mask", _tensor_type(TensorProto.INT64, ["batch", "past_length"])),
         helper.make_value_info("position_ids", _tensor_type(TensorProto.INT64, ["batch", 1])),
         *[helper.make_value_info(n, _tensor_type(float_t, ["batch", num_heads, "past_length", head_dim]))
           for n in past_in]],
        [helper.make_value_info("generated_ids", _tensor_type(TensorProto.INT64, ["batch", "generated"])),
         helper.make_value_info("num_generated", _tensor_type(TensorProto.INT64, ["batch"])),
         helper.make_value_info("per_hidden", _tensor_type(float_t, ["batch", hidden]))],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=list(decoder.opset_import), producer_name="mvp_lm.export",
                              doc_string="batched greedy decoding to <PER>/EOS/cap in one run; model/BUNDLE.md")
    model.ir_version = decoder.ir_version
    return model


def _embedded_bytes(model: onnx.ModelProto) -> int:
    return sum(len(t.raw_data) for t in model.graph.initializer if t.data_location != TensorProto.EXTERNAL)


def _externalise(model: onnx.ModelProto, data: Path) -> None:
    """Moves the embedded initializers into `data` (page-aligned); external ones keep their own file."""
    offset = 0
    with data.open("wb") as out:
        for t in model.graph.initializer:
            if t.data_location == TensorProto.EXTERNAL or not t.raw_data:
                continue
            pad = -offset % 4096
            out.write(b"\0" * pad)
            offset += pad
            blob = t.raw_data
            out.write(blob)
            t.ClearField("raw_data")
            t.data_location = TensorProto.EXTERNAL
            for key, value in (("location", data.name), ("offset", str(offset)), ("length", str(len(blob)))):
                t.external_data.add(key=key, value=value)
            offset += len(blob)


def stop_tokens(spec, tokenizer) -> dict:
    """`per`, `eos` and `tail_ids` of `build` from a PromptSpec (prompt.py) and the bundle's tokenizer."""
    from .prompt import response_tail_ids
    return {"per": spec.tokens["per"], "eos": spec.tokens["eos"], "tail_ids": response_tail_ids(tokenizer, spec)}


def write(folder: Path, dims: dict, stops: dict, *, decoder_file: str = "decoder_model_merged.onnx",
          embed_file: str = "embed_tokens.onnx") -> list[Path]:
    """Builds the graph from the step graph and embedding in `folder` and writes `folder/decoder_generate.onnx`
    (+ `.data` when its own tensors exceed the protobuf limit); returns the files written. `dims`: the manifest's;
    `stops`: `stop_tokens(...)` (tests pass other stop tokens)."""
    model = build(onnx.load(str(folder / decoder_file), load_external_data=False),
                  onnx.load(str(folder / embed_file), load_external_data=False),
                  num_layers=dims["num_layers"], num_heads=dims["num_heads"], head_dim=dims["head_dim"], **stops)
    path = folder / FILE
    files = [path]
    data = path.with_name(path.name + ".data")
    if _embedded_bytes(model) > _EMBEDDED_LIMIT:
        _externalise(model, data)
        files.append(data)
    elif data.exists():
        data.unlink()
    onnx.save_model(model, str(path))
    return files


def _validate(manifest: dict) -> None:
    schema = Path(__file__).resolve().parents[1] / "manifest.schema.json"
    if schema.exists():  # beside the package in the repository (model/manifest.schema.json)
        import jsonschema
        jsonschema.Draft202012Validator(json.loads(schema.read_text(encoding="utf-8"))).validate(manifest)


def add_to_bundle(bundle: str | Path, log=print) -> dict:
    """Adds decoder_generate.onnx to every precision of an existing bundle (checked against its manifest first) and
    rewrites manifest.json (`precisions.*.graphs.decoder_generate`, `files`); returns the new manifest. A manifest
    that records `batching.max_batch` has its fp32 graphs checked at that batch again."""
    from .export import _check_loads, check_batching, check_graph, file_entry
    from .reference import verify_files
    from .prompt import PromptSpec
    from .tokenizer import load_tokenizer
    bundle = Path(bundle)
    manifest_path = bundle / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    verify_files(bundle, manifest)
    stops = stop_tokens(PromptSpec.from_manifest(manifest), load_tokenizer(bundle / manifest["tokenizer"]["file"]))
    for precision, entry in manifest["precisions"].items():
        graphs = entry["graphs"]
        dec, emb = bundle / graphs["decoder_model_merged"], bundle / graphs["embed_tokens"]
        if dec.parent != emb.parent:
            raise ValueError(f"{bundle}: {precision} decoder and embed_tokens graphs are in different folders")
        old = graphs.get(GRAPH)
        if old is not None:  # replaced: drop the old files from the list
            for rel in (old, old + ".data"):
                manifest["files"].pop(rel, None)
        files = write(dec.parent, manifest["dims"], stops, decoder_file=dec.name, embed_file=emb.name)
        check_graph(files[0])
        _check_loads(files[0])
        graphs[GRAPH] = str(files[0].relative_to(bundle))
        for f in files:
            manifest["files"][str(f.relative_to(bundle))] = file_entry(f)
        log(f"[export] {precision} {graphs[GRAPH]}: {sum(f.stat().st_size for f in files) / 2**20:.1f} MiB")
    max_batch = manifest.get("batching", {}).get("max_batch", 1)
    if max_batch > 1:
        check_batching(bundle, manifest["precisions"]["fp32"]["graphs"], manifest["dims"], max_batch)
        log(f"[export] fp32 graphs at batch {max_batch} = each item alone")
    _validate(manifest)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
