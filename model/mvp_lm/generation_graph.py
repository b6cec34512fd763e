"""decoder_generate.onnx: greedy caption decoding inside one `session.run` (model/BUNDLE.md).

onnxruntime-node binds CUDA outputs to host memory only, so a KV cache that goes back into the step graph
(decoder_model_merged.onnx) every decode step crosses the host boundary twice per token. This graph keeps the loop
on the device: an ONNX `Loop` whose loop-carried state is the KV cache, built by graph surgery from the bundle's own
exported graphs (no PyTorch, no checkpoint needed):

    main graph:  cond0 = max_new_tokens > 0 and input_ids not in (<PER>, EOS)
                 Loop(max_new_tokens, cond0; token, ids, past...)            # body below
                 tail = [<PER>] if it stopped on <PER> else ids(response_marker) + [<PER>]   (an If)
                 last_hidden_state = decoder(embed(tail), past)              # a second copy of the decoder nodes
                 per_hidden = last_hidden_state[:, -1]
    Loop body:   ids += [token]; logits, present = decoder(embed(token), past) # embed_tokens' Gather + decoder nodes
                 token = argmax(logits[:, -1]) (ties: lowest id); cond = token not in (<PER>, EOS)

The semantics are BUNDLE.md's `generate` exactly: the token cap is checked before the stop test, the stop token is
not part of the ids, EOS is never fed. Both decoder copies and the embedding read the same initializers of the main
graph (outer-scope references), so the weights are stored once; tensors the source graphs keep in external data
files stay there (the new graph points at the decoder's `.data` file instead of copying it). Only the nodes each copy
needs are kept (the body computes no hidden-state means, the tail no logits). Built-in ONNX ops only, opset of the
source graphs (17).

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
    kv_shape = [1, num_heads, None, head_dim]

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
    b = "body/"
    body_past = [b + "in/" + n for n in past_in]
    body_present = [b + "out/" + n for n in present]
    out_types = {o.name: o.type.tensor_type.elem_type for o in dec.output}
    body_present_raw = [p if out_types[n] == float_t else b + "raw/" + n for n, p in zip(present, body_present)]
    body_nodes = [
        *_inline(emb, b + "embed/", {embed_in: b + "token"}, {embed_out: b + "inputs_embeds"}, names["embed"]),
        helper.make_node("Shape", [body_past[0]], [b + "past_len"], name=b + "past_len", start=2, end=3),
        _const(b + "one", [1]),
        helper.make_node("Add", [b + "past_len", b + "one"], [b + "total"], name=b + "total"),
        helper.make_node("Concat", [b + "one", b + "total"], [b + "mask_shape"], name=b + "mask_shape", axis=0),
        helper.make_node("ConstantOfShape", [b + "mask_shape"], [b + "attention_mask"], name=b + "attention_mask",
                         value=numpy_helper.from_array(np.ones(1, np.int64))),
        _const(b + "pos_shape", [1, 1]),
        helper.make_node("Reshape", [b + "past_len", b + "pos_shape"], [b + "position_ids"], name=b + "position_ids"),
        *_inline(dec, b + "dec/",
                 {"inputs_embeds": b + "inputs_embeds", "attention_mask": b + "attention_mask",
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
                         name=b + "next", axis=-1, keepdims=0, select_last_index=0),  # [1,1]; ties: the lowest id
        helper.make_node("Concat", [b + "ids", b + "token"], [b + "ids_out"], name=b + "ids_out", axis=1),
        _const(b + "per", [[per]]),
        _const(b + "eos", [[eos]]),
        helper.make_node("Equal", [b + "next", b + "per"], [b + "is_per"], name=b + "is_per"),
        helper.make_node("Equal", [b + "next", b + "eos"], [b + "is_eos"], name=b + "is_eos"),
        helper.make_node("Or", [b + "is_per", b + "is_eos"], [b + "stop"], name=b + "stop"),
        helper.make_node("Not", [b + "stop"], [b + "go"], name=b + "go"),
        _const(b + "scalar", np.zeros(0)),
        helper.make_node("Reshape", [b + "go", b + "scalar"], [b + "cond_out"], name=b + "cond_out"),
    ]
    body = helper.make_graph(
        [n for n in body_nodes if n is not None], "greedy_step",
        [helper.make_value_info(b + "iter", _tensor_type(TensorProto.INT64, [])),
         helper.make_value_info(b + "cond_in", _tensor_type(TensorProto.BOOL, [])),
         helper.make_value_info(b + "token", _tensor_type(TensorProto.INT64, [1, 1])),
         helper.make_value_info(b + "ids", _tensor_type(TensorProto.INT64, [1, None])),
         *[helper.make_value_info(n, _tensor_type(float_t, kv_shape)) for n in body_past]],
        [helper.make_value_info(b + "cond_out", _tensor_type(TensorProto.BOOL, [])),
         helper.make_value_info(b + "next", _tensor_type(TensorProto.INT64, [1, 1])),
         helper.make_value_info(b + "ids_out", _tensor_type(TensorProto.INT64, [1, None])),
         *[helper.make_value_info(n, _tensor_type(float_t, kv_shape)) for n in body_present]])

    # ------------------------------------------------------------------------------------------ main graph
    loop_past = [f"loop/{n}" for n in present]
    then_g = helper.make_graph([_const("tail_per", [[per]])], "tail_stopped_on_per", [],
                               [helper.make_value_info("tail_per", _tensor_type(TensorProto.INT64, [1, None]))])
    else_g = helper.make_graph([_const("tail_marker", [tail_ids])], "tail_marker_then_per", [],
                               [helper.make_value_info("tail_marker", _tensor_type(TensorProto.INT64, [1, None]))])
    nodes = [
        _const("scalar", np.zeros(0)),
        helper.make_node("Reshape", ["max_new_tokens", "scalar"], ["trip_count"], name="trip_count"),
        _const("zero", 0),
        helper.make_node("Greater", ["trip_count", "zero"], ["has_room"], name="has_room"),
        _const("per", [[per]]),
        _const("eos", [[eos]]),
        helper.make_node("Equal", ["input_ids", "per"], ["first_is_per"], name="first_is_per"),
        helper.make_node("Equal", ["input_ids", "eos"], ["first_is_eos"], name="first_is_eos"),
        helper.make_node("Or", ["first_is_per", "first_is_eos"], ["first_stops"], name="first_stops"),
        helper.make_node("Not", ["first_stops"], ["first_goes"], name="first_goes"),
        helper.make_node("Reshape", ["first_goes", "scalar"], ["first_goes_scalar"], name="first_goes_scalar"),
        helper.make_node("And", ["has_room", "first_goes_scalar"], ["cond0"], name="cond0"),
        _const("no_ids", np.zeros((1, 0))),
        helper.make_node("Loop", ["trip_count", "cond0", "input_ids", "no_ids", *past_in],
                         ["last_token", "generated_ids", *loop_past], name="greedy_loop", body=body),
        # stopped on <PER>: the loop ended before the cap and its last choice is <PER>
        helper.make_node("Shape", ["generated_ids"], ["n_generated"], name="n_generated", start=1, end=2),
        _const("one_d", [1]),
        helper.make_node("Reshape", ["max_new_tokens", "one_d"], ["max_1d"], name="max_1d"),
        helper.make_node("Less", ["n_generated", "max_1d"], ["before_cap"], name="before_cap"),
        helper.make_node("Equal", ["last_token", "per"], ["last_is_per"], name="last_is_per"),
        helper.make_node("Reshape", ["last_is_per", "one_d"], ["last_is_per_1d"], name="last_is_per_1d"),
        helper.make_node("And", ["before_cap", "last_is_per_1d"], ["stopped_on_per_1d"], name="stopped_on_per_1d"),
        helper.make_node("Reshape", ["stopped_on_per_1d", "scalar"], ["stopped_on_per"], name="stopped_on_per"),
        helper.make_node("If", ["stopped_on_per"], ["tail_ids"], name="tail", then_branch=then_g, else_branch=else_g),
        *_inline(emb, "tail/embed/", {embed_in: "tail_ids"}, {embed_out: "tail/inputs_embeds"}, names["embed"]),
        helper.make_node("Shape", [loop_past[0]], ["tail/past_len"], name="tail/past_len", start=2, end=3),
        helper.make_node("Shape", ["tail_ids"], ["tail/len"], name="tail/len", start=1, end=2),
        helper.make_node("Add", ["tail/past_len", "tail/len"], ["tail/total"], name="tail/total"),
        helper.make_node("Concat", ["one_d", "tail/total"], ["tail/mask_shape"], name="tail/mask_shape", axis=0),
        helper.make_node("ConstantOfShape", ["tail/mask_shape"], ["tail/attention_mask"], name="tail/attention_mask",
                         value=numpy_helper.from_array(np.ones(1, np.int64))),
        helper.make_node("Reshape", ["tail/past_len", "scalar"], ["tail/start"], name="tail/start"),
        helper.make_node("Reshape", ["tail/total", "scalar"], ["tail/limit"], name="tail/limit"),
        _const("tail/step", 1),
        helper.make_node("Range", ["tail/start", "tail/limit", "tail/step"], ["tail/positions"], name="tail/positions"),
        _const("axis0", [0]),
        helper.make_node("Unsqueeze", ["tail/positions", "axis0"], ["tail/position_ids"], name="tail/position_ids"),
        *_inline(dec, "tail/dec/",
                 {"inputs_embeds": "tail/inputs_embeds", "attention_mask": "tail/attention_mask",
                  "position_ids": "tail/position_ids", **dict(zip(past_in, loop_past))},
                 {"last_hidden_state": "tail/last_hidden_state"}, names["decoder"]),
        _const("last", -1),
        helper.make_node("Gather", ["tail/last_hidden_state", "last"], ["per_hidden"], name="per_hidden", axis=1),
    ]
    hidden = next(o for o in dec.output if o.name == "last_hidden_state").type.tensor_type.shape.dim[2].dim_value
    graph = helper.make_graph(
        nodes, "mvp_lm_decoder_generate",
        [helper.make_value_info("input_ids", _tensor_type(TensorProto.INT64, [1, 1])),
         helper.make_value_info("max_new_tokens", _tensor_type(TensorProto.INT64, [1])),
         *[helper.make_value_info(n, _tensor_type(float_t, [1, num_heads, "past_length", head_dim]))
           for n in past_in]],
        [helper.make_value_info("generated_ids", _tensor_type(TensorProto.INT64, [1, "generated"])),
         helper.make_value_info("per_hidden", _tensor_type(float_t, [1, hidden]))],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=list(decoder.opset_import), producer_name="mvp_lm.export",
                              doc_string="greedy decoding to <PER>/EOS/cap in one run; model/BUNDLE.md")
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
    rewrites manifest.json (`precisions.*.graphs.decoder_generate`, `files`); returns the new manifest."""
    from .export import _check_loads, check_graph, file_entry
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
    _validate(manifest)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
