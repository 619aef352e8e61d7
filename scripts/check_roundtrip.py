#!/usr/bin/env python3
"""Judges `llmcompress convert` round trips with tools that are not ours.

For each ORIGINAL=WRITTEN pair: the written model must hold the same graph (nodes as a
multiset, inputs, outputs, value_info, opsets, metadata), bit-identical weights, pass
onnx.checker, and load in ONNX Runtime whenever the original does.

Usage: check_roundtrip.py ORIGINAL=WRITTEN ... (run with the repo's .venv python)
A pair with an empty ORIGINAL (=WRITTEN) is a model we generated: checker (full, with
shape inference) and ONNX Runtime load only.
Exit code 1 when any pair fails; prints one line per failure and a summary.
"""
import sys

import numpy as np
import onnx
import onnx.checker
import onnx.numpy_helper
import onnxruntime as ort

ort.set_default_logger_severity(3)


def tensor_key(t):
    arr = onnx.numpy_helper.to_array(t) if t.data_location != onnx.TensorProto.EXTERNAL else None
    return (t.name, t.data_type, tuple(t.dims))


def tensor_bytes(t, base_dir):
    if t.data_location == onnx.TensorProto.EXTERNAL:
        onnx.external_data_helper.load_external_data_for_tensor(t, base_dir)
    arr = onnx.numpy_helper.to_array(t)
    return arr.dtype.str, arr.shape, np.ascontiguousarray(arr).view(np.uint8).tobytes() if arr.dtype != object else repr(arr.tolist())


def attribute_key(a, base_dir):
    if a.type == onnx.AttributeProto.TENSOR:
        return (a.name, a.type, tensor_bytes(a.t, base_dir), a.t.name)
    if a.type == onnx.AttributeProto.TENSORS:
        return (a.name, a.type, tuple(tensor_bytes(t, base_dir) for t in a.tensors))
    return (a.name, a.SerializeToString(deterministic=True))


def node_key(n, base_dir):
    return (n.name, n.op_type, n.domain, tuple(n.input), tuple(n.output),
            tuple(attribute_key(a, base_dir) for a in n.attribute), n.doc_string)


def drop_shadowed_constants(graph):
    """ONNX Runtime keeps the last Constant among duplicate definitions; so does our reader."""
    last = {}
    for i, n in enumerate(graph.node):
        if n.op_type == "Constant" and n.domain == "" and len(n.output) == 1:
            last[n.output[0]] = i
    count = {}
    for t in graph.initializer:
        count[t.name] = count.get(t.name, 0) + 1
    for n in graph.node:
        for o in n.output:
            count[o] = count.get(o, 0) + 1
    nodes = [n for i, n in enumerate(graph.node)
             if not (n.op_type == "Constant" and n.domain == "" and len(n.output) == 1
                     and last[n.output[0]] != i and count[n.output[0]] > 1)]
    inits = [t for t in graph.initializer if t.name not in last]
    return nodes, inits


def is_topological(graph):
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    defined |= {t.values.name for t in graph.sparse_initializer}
    for n in graph.node:
        for i in n.input:
            if i and i not in defined:
                # Subgraph attributes may read outer names; explicit inputs must be defined.
                return False, f"node '{n.name}' reads '{i}' before it is defined"
        defined.update(n.output)
    return True, ""


def compare(orig_path, new_path):
    problems = []
    a = onnx.load(orig_path, load_external_data=False)
    b = onnx.load(new_path, load_external_data=False)
    import os
    a_dir, b_dir = os.path.dirname(orig_path), os.path.dirname(new_path)
    for field in ("ir_version", "producer_name", "producer_version", "domain", "model_version",
                  "doc_string"):
        if getattr(a, field) != getattr(b, field):
            problems.append(f"{field} differs: {getattr(a, field)!r} vs {getattr(b, field)!r}")
    if [(o.domain, o.version) for o in a.opset_import] != [(o.domain, o.version) for o in b.opset_import]:
        problems.append("opset_import differs")
    if [(p.key, p.value) for p in a.metadata_props] != [(p.key, p.value) for p in b.metadata_props]:
        problems.append("metadata_props differ")
    ga, gb = a.graph, b.graph
    for field in ("input", "output", "value_info"):
        if [v.SerializeToString(deterministic=True) for v in getattr(ga, field)] != \
           [v.SerializeToString(deterministic=True) for v in getattr(gb, field)]:
            problems.append(f"graph {field} differs")
    nodes_a, inits_a = drop_shadowed_constants(ga)
    ka = sorted(map(repr, (node_key(n, a_dir) for n in nodes_a)))
    kb = sorted(map(repr, (node_key(n, b_dir) for n in gb.node)))
    if ka != kb:
        problems.append(f"nodes differ ({len(ka)} vs {len(kb)})")
    wa = {t.name: tensor_bytes(t, a_dir) for t in inits_a}
    wb = {t.name: tensor_bytes(t, b_dir) for t in gb.initializer}
    if wa.keys() != wb.keys():
        problems.append(f"initializer names differ: {sorted(set(wa) ^ set(wb))[:5]}")
    else:
        diff = [k for k in wa if wa[k] != wb[k]]
        if diff:
            problems.append(f"initializers not bit-identical: {diff[:5]}")
    ok, why = is_topological(gb)
    if not ok:
        problems.append("written graph is not topologically sorted: " + why)
    try:
        onnx.checker.check_model(new_path)
    except Exception as e:  # noqa: BLE001 - any checker complaint is a failure
        problems.append("onnx.checker rejects the written model: " + str(e).splitlines()[0][:200])
    try:
        ort.InferenceSession(orig_path, providers=["CPUExecutionProvider"])
        original_loads = True
    except Exception:  # noqa: BLE001
        original_loads = False
    if original_loads:
        try:
            ort.InferenceSession(new_path, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001
            problems.append("ONNX Runtime cannot load the written model: " + str(e).splitlines()[0][:200])
    return problems, original_loads


def check_only(path):
    """A model we generated (no original to compare with): checker and ONNX Runtime only."""
    problems = []
    try:
        onnx.checker.check_model(path, full_check=True)
    except Exception as e:  # noqa: BLE001
        problems.append("onnx.checker rejects it: " + str(e).splitlines()[0][:200])
    try:
        ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001
        problems.append("ONNX Runtime cannot load it: " + str(e).splitlines()[0][:200])
    return problems, True


def main(argv):
    failures = 0
    ort_loaded = 0
    for pair in argv:
        orig, new = pair.split("=", 1)
        problems, loads = compare(orig, new) if orig else check_only(new)
        ort_loaded += loads
        for p in problems:
            print(f"FAIL {orig}: {p}")
        failures += bool(problems)
    print(f"round trip: {len(argv) - failures}/{len(argv)} models identical and accepted by "
          f"onnx.checker; {ort_loaded} loaded in ONNX Runtime {ort.__version__} before and after")
    return 1 if failures or not argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
