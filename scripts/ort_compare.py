#!/usr/bin/env python3
"""Compare our runtime (`llmcompress run`) with ONNX Runtime, output by output.

  ort_compare.py LLMCOMPRESS_BIN MODEL... [--require-claimed NAME...] [--jobs N] [--verbose]

Run with the repo's .venv python. For each MODEL:
  * inputs: an ONNX node-test directory's test_data_set_0/input_*.pb when the model sits in one,
    otherwise seeded values built from ONNX Runtime's input metadata. Symbolic dims get one value
    per dim_param name (a name containing "past" -> 3, "batch" -> 2, any other name -> 5; a dim
    without a name -> 4). Integer inputs are drawn from [0, 10), except names containing "mask"
    which are all 1; floats are standard normal; bools are random.
  * reference: ONNX Runtime, CPU, graph optimizations disabled (raw ONNX semantics), 1 thread.
    When ONNX Runtime cannot load a node test, the test's own expected outputs
    (test_data_set_0/output_*.pb, from the ONNX reference implementation) stand in.
  * ours: `LLMCOMPRESS_BIN run MODEL --input NAME=FILE.npy ... --output-dir DIR`. Exit code 2 with
    "no kernel" on stderr means the model is not claimed by our runtime: reported, and a failure
    only for models named by --require-claimed (always including gpt2_past.onnx and
    bert_toy_optimized.onnx). Any other failure of ours is a failure.
  * every graph output must match: same dtype and shape; integers and bools bit-equal; floats
    with max|ours - ref| / max(max|ref|, 1e-6) < 1e-4, NaN where the reference has NaN and the
    same infinities.
A model whose inputs cannot be written as .npy (int4, bfloat16, ...) is reported as untestable
(a failure only when it is required to be claimed and our runtime claims it).
--require-claimed NAME matches a model's file name, its parent directory's name, or its path.
Prints one line per model and a summary; exit code 1 on any failure, 2 on bad usage.
"""
import argparse
import concurrent.futures
import glob
import os
import re
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime as ort

ort.set_default_logger_severity(3)

ALWAYS_REQUIRED = ("gpt2_past.onnx", "bert_toy_optimized.onnx")
REL_TOL = 1e-4
OUR_TIMEOUT_S = 120

# ORT type strings -> numpy dtypes that .npy can carry (and our reader accepts).
NPY_TYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
    "tensor(int8)": np.int8, "tensor(int16)": np.int16, "tensor(int32)": np.int32,
    "tensor(int64)": np.int64, "tensor(uint8)": np.uint8, "tensor(uint16)": np.uint16,
    "tensor(uint32)": np.uint32, "tensor(uint64)": np.uint64, "tensor(bool)": np.bool_,
}
ONNX_NPY_TYPES = {
    onnx.TensorProto.FLOAT: np.float32, onnx.TensorProto.DOUBLE: np.float64,
    onnx.TensorProto.FLOAT16: np.float16, onnx.TensorProto.INT8: np.int8,
    onnx.TensorProto.INT16: np.int16, onnx.TensorProto.INT32: np.int32,
    onnx.TensorProto.INT64: np.int64, onnx.TensorProto.UINT8: np.uint8,
    onnx.TensorProto.UINT16: np.uint16, onnx.TensorProto.UINT32: np.uint32,
    onnx.TensorProto.UINT64: np.uint64, onnx.TensorProto.BOOL: np.bool_,
}


def safe_name(name):
    return name.replace("/", "_").replace(":", "_")


def dim_value(d, chosen):
    if isinstance(d, int) and d >= 0:
        return d
    if isinstance(d, str) and d:
        if d not in chosen:
            low = d.lower()
            chosen[d] = 3 if "past" in low else 2 if "batch" in low else 5
        return chosen[d]
    return 4


def seeded_inputs(model_path, session):
    """Inputs from ONNX Runtime's metadata, seeded by the model's file name."""
    rng = np.random.default_rng(zlib.crc32(os.path.basename(model_path).encode()))
    chosen, feeds = {}, {}
    for i in session.get_inputs():
        if i.type not in NPY_TYPES:
            raise Untestable(f"input '{i.name}' is {i.type}, which has no .npy form")
        dt = np.dtype(NPY_TYPES[i.type])
        shape = tuple(dim_value(d, chosen) for d in i.shape)
        if dt == np.bool_:
            v = rng.integers(0, 2, size=shape).astype(np.bool_)
        elif np.issubdtype(dt, np.integer):
            v = (np.ones(shape, dt) if "mask" in i.name.lower()
                 else rng.integers(0, 10, size=shape).astype(dt))
        else:
            v = rng.standard_normal(shape).astype(dt)
        feeds[i.name] = v
    return feeds


class Untestable(Exception):
    pass


def read_pb_tensor(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return t


def node_test_data(model_path):
    """(inputs, expected outputs) of an ONNX node-test directory, or None."""
    ds = os.path.join(os.path.dirname(model_path), "test_data_set_0")
    in_files = sorted(glob.glob(os.path.join(ds, "input_*.pb")),
                      key=lambda p: int(re.findall(r"\d+", os.path.basename(p))[0]))
    out_files = sorted(glob.glob(os.path.join(ds, "output_*.pb")),
                       key=lambda p: int(re.findall(r"\d+", os.path.basename(p))[0]))
    if not os.path.isdir(ds):
        return None
    model = onnx.load(model_path, load_external_data=False)
    inits = {t.name for t in model.graph.initializer}
    graph_inputs = [v for v in model.graph.input if v.name not in inits]
    graph_outputs = list(model.graph.output)

    def load(files, infos, what):
        out = {}
        for k, p in enumerate(files):
            if k >= len(infos):
                raise Untestable(f"{os.path.basename(p)} has no matching graph {what}")
            info = infos[k]
            if info.type.WhichOneof("value") != "tensor_type":
                raise Untestable(f"{what} '{info.name}' is not a tensor")
            elem = info.type.tensor_type.elem_type
            if elem not in ONNX_NPY_TYPES:
                raise Untestable(f"{what} '{info.name}' is {onnx.TensorProto.DataType.Name(elem)}, "
                                 "which has no .npy form")
            t = read_pb_tensor(p)
            out[t.name or info.name] = onnx.numpy_helper.to_array(t).astype(ONNX_NPY_TYPES[elem], copy=False)
        return out

    inputs = load(in_files, graph_inputs, "input")
    try:
        expected = load(out_files, graph_outputs, "output")
    except Untestable:
        expected = None
    return inputs, expected


def ort_session(model_path):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])


def compare(name, ours, ref):
    """(ok, relative error or None, message)."""
    if ours.dtype != ref.dtype:
        return False, None, f"output '{name}': dtype {ours.dtype}, reference {ref.dtype}"
    if ours.shape != ref.shape:
        return False, None, f"output '{name}': shape {ours.shape}, reference {ref.shape}"
    if ours.size == 0:
        return True, 0.0, ""
    if not np.issubdtype(ref.dtype, np.floating):
        bad = np.count_nonzero(ours != ref)
        if bad:
            idx = tuple(int(i) for i in np.argwhere(ours != ref)[0])
            return False, None, (f"output '{name}': {bad} of {ref.size} elements differ "
                                 f"(first at {idx}: {ours[idx].item()} vs {ref[idx].item()})")
        return True, 0.0, ""
    o, r = ours.astype(np.float64), ref.astype(np.float64)
    nan_r, nan_o = np.isnan(r), np.isnan(o)
    if np.any(nan_r != nan_o):
        return False, float("inf"), (f"output '{name}': NaN in {np.count_nonzero(nan_o)} places, "
                                     f"reference in {np.count_nonzero(nan_r)}")
    inf_r = np.isinf(r)
    if np.any(inf_r != np.isinf(o)) or np.any(r[inf_r] != o[inf_r]):
        return False, float("inf"), f"output '{name}': infinities differ from the reference"
    fin = ~(nan_r | inf_r)
    if not np.any(fin):
        return True, 0.0, ""
    diff = np.abs(o[fin] - r[fin])
    rel = float(diff.max() / max(float(np.abs(r[fin]).max()), 1e-6))
    if not rel < REL_TOL:
        where = tuple(int(i) for i in np.argwhere(fin)[int(diff.argmax())])
        return False, rel, (f"output '{name}': relative error {rel:.3g} >= {REL_TOL:g} (max abs diff "
                            f"{diff.max():.3g} at {where}: {o[where]:.9g} vs {r[where]:.9g})")
    return True, rel, ""


class Outcome:
    def __init__(self, model, status, detail="", rel=None, ref="ort", seconds=0.0):
        self.model, self.status, self.detail, self.rel, self.ref = model, status, detail, rel, ref
        self.seconds = seconds


def check_model(binary, model_path, required):
    t0 = time.monotonic()
    res = _check_model(binary, model_path, required)
    res.seconds = time.monotonic() - t0
    return res


def _check_model(binary, model_path, required):
    # Reference side: ORT session (or the node test's expected outputs when ORT refuses it).
    ref_kind, session, ort_error = "ort", None, None
    try:
        session = ort_session(model_path)
    except Exception as e:  # noqa: BLE001 - any ORT load failure
        ort_error = str(e).splitlines()[0][:200]
    try:
        for o in onnx.load(model_path, load_external_data=False).graph.output:
            elem = o.type.tensor_type.elem_type if o.type.HasField("tensor_type") else None
            if elem not in ONNX_NPY_TYPES:
                what = onnx.TensorProto.DataType.Name(elem) if elem is not None else "not a tensor"
                raise Untestable(f"output '{o.name}' is {what}, which has no .npy form")
        data = node_test_data(model_path)
        if data is not None:
            feeds, expected = data
        elif session is not None:
            feeds, expected = seeded_inputs(model_path, session), None
        else:
            feeds, expected = None, None
    except Untestable as e:
        return untestable(binary, model_path, required, str(e))
    if session is None:
        if expected is None:
            return untestable(binary, model_path, required, f"ONNX Runtime cannot load it ({ort_error})")
        ref_kind, reference = "onnx-ref", expected
    else:
        try:
            names = [o.name for o in session.get_outputs()]
            reference = dict(zip(names, session.run(names, feeds)))
        except Exception as e:  # noqa: BLE001
            return untestable(binary, model_path, required,
                              f"ONNX Runtime rejects the inputs: {str(e).splitlines()[0][:200]}")

    with tempfile.TemporaryDirectory(prefix="ort_compare_") as tmp:
        args = [binary, "run", model_path, "--output-dir", os.path.join(tmp, "out")]
        for k, (name, arr) in enumerate(feeds.items()):
            p = os.path.join(tmp, f"in{k}.npy")
            np.save(p, arr)  # (not np.ascontiguousarray: it turns 0-d arrays into 1-d ones)
            args += ["--input", f"{name}={p}"]
        proc = run_ours(args)
        if proc is None:
            return Outcome(model_path, "FAIL", f"ours timed out after {OUR_TIMEOUT_S} s")
        err = proc.stderr.strip().replace("\n", " | ")
        if proc.returncode == 2 and "no kernel" in proc.stderr:
            return Outcome(model_path, "FAIL" if required else "UNCLAIMED", err[:300])
        if proc.returncode != 0:
            return Outcome(model_path, "FAIL", f"ours exited {proc.returncode}: {err[:300]}")

        worst, problems = 0.0, []
        for name, ref in reference.items():
            ref = np.asarray(ref)
            p = os.path.join(tmp, "out", safe_name(name) + ".npy")
            if not os.path.isfile(p):
                problems.append(f"output '{name}' not written")
                continue
            ok, rel, msg = compare(name, np.load(p), ref)
            if rel is not None:
                worst = max(worst, rel)
            if not ok:
                problems.append(msg)
        if problems:
            return Outcome(model_path, "FAIL", "; ".join(problems), worst, ref_kind)
        return Outcome(model_path, "PASS", f"{len(reference)} outputs", worst, ref_kind)


def run_ours(args):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=OUR_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None


def untestable(binary, model_path, required, why):
    """Inputs or reference unavailable: only ask whether our runtime claims the model.

    `run` plans the session (and reports missing kernels) before it reads any input, so a
    placeholder input is enough to ask."""
    with tempfile.TemporaryDirectory(prefix="ort_compare_") as tmp:
        probe = os.path.join(tmp, "probe.npy")
        np.save(probe, np.zeros(1, np.float32))
        proc = run_ours([binary, "run", model_path, "--input", f"__probe__={probe}",
                         "--output-dir", os.path.join(tmp, "out")])
    if proc is not None and proc.returncode == 2 and "no kernel" in proc.stderr:
        return Outcome(model_path, "FAIL" if required else "UNCLAIMED",
                       proc.stderr.strip().replace("\n", " | ")[:300])
    return Outcome(model_path, "FAIL" if required else "UNTESTABLE", why)


def is_required(model_path, names):
    base = os.path.basename(model_path)
    parent = os.path.basename(os.path.dirname(os.path.abspath(model_path)))
    return any(n in (base, parent, model_path, os.path.abspath(model_path)) for n in names)


def main(argv):
    p = argparse.ArgumentParser(description="Compare llmcompress run with ONNX Runtime.")
    p.add_argument("binary")
    p.add_argument("models", nargs="+")
    p.add_argument("--require-claimed", nargs="+", default=[], metavar="NAME")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--verbose", action="store_true", help="also print passing models' timings")
    args = p.parse_args(argv)
    if not os.access(args.binary, os.X_OK):
        p.error(f"{args.binary} is not executable")
    for m in args.models:
        if not os.path.isfile(m):
            p.error(f"{m}: no such model file")
    required_names = list(args.require_claimed) + list(ALWAYS_REQUIRED)
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(check_model, args.binary, m, is_required(m, required_names))
                   for m in args.models]
        outcomes = [f.result() for f in futures]
    seen_required = {n: False for n in args.require_claimed}
    for o in outcomes:
        for n in seen_required:
            if is_required(o.model, [n]):
                seen_required[n] = True
        rel = "" if o.rel is None else f" max_rel={o.rel:.3g}"
        ref = "" if o.ref == "ort" else f" (reference: {o.ref})"
        timing = f" [{o.seconds:.2f}s]" if args.verbose else ""
        print(f"{o.status:10s} {o.model}{rel}{ref}{timing}" + (f": {o.detail}" if o.detail else ""))
    missing = [n for n, seen in seen_required.items() if not seen]
    for n in missing:
        print(f"FAIL       --require-claimed {n}: no such model among the arguments")
    counts = {s: sum(o.status == s for o in outcomes) for s in ("PASS", "FAIL", "UNCLAIMED", "UNTESTABLE")}
    claimed = counts["PASS"] + sum(o.status == "FAIL" and "no kernel" not in o.detail for o in outcomes)
    print(f"summary: {len(outcomes)} models, {claimed} claimed by our runtime, {counts['PASS']} passed, "
          f"{counts['FAIL'] + len(missing)} failed, {counts['UNCLAIMED']} not claimed, "
          f"{counts['UNTESTABLE']} untestable ({time.monotonic() - t0:.1f} s)")
    return 1 if counts["FAIL"] or missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
