#!/usr/bin/env python3
"""Run any ONNX model in ONNX Runtime, the independent judge our own runtime is compared to.

  ort_run.py MODEL --input NAME=FILE.npy ... --output-dir DIR [--threads N] [--no-optimize]
  ort_run.py MODEL --list

Writes every graph output as DIR/<name>.npy ('/' and ':' in names become '_'). Bad arguments
or unreadable files exit with code 2 and one line on stderr, so C++ tests can assert on it.
"""
import argparse
import os
import sys


def fail(message):
    print(f"ort_run.py: error: {message}", file=sys.stderr)
    sys.exit(2)


class Parser(argparse.ArgumentParser):
    # argparse's default prints usage too; keep it to the promised single line.
    def error(self, message):
        fail(message)


def safe_name(name):
    return name.replace("/", "_").replace(":", "_")


def parse_args(argv):
    p = Parser(description="Run an ONNX model in ONNX Runtime.")
    p.add_argument("model")
    p.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy")
    p.add_argument("--output-dir")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (0 = ORT default)")
    p.add_argument("--no-optimize", action="store_true",
                   help="graph_optimization_level = ORT_DISABLE_ALL")
    p.add_argument("--list", action="store_true", help="print inputs/outputs and exit")
    args = p.parse_args(argv)
    if args.threads < 0:
        fail(f"--threads must be >= 0, got {args.threads}")
    if not os.path.isfile(args.model):
        fail(f"{args.model}: no such model file")
    if not args.list and not args.output_dir:
        fail("--output-dir is required unless --list is given")
    return args


def make_session(args):
    import onnxruntime as ort  # imported late so argument errors stay fast

    # Warnings (e.g. duplicate initializers in old exports) would bury our one-line errors.
    ort.set_default_logger_severity(3)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_DISABLE_ALL if args.no_optimize
                                     else ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    if args.threads:
        opts.intra_op_num_threads = args.threads
    try:
        return ort.InferenceSession(args.model, sess_options=opts,
                                    providers=["CPUExecutionProvider"])
    except Exception as e:  # ORT raises several exception types for bad models
        fail(f"{args.model}: onnxruntime cannot load it: {str(e).splitlines()[0] if str(e) else e}")


def load_inputs(args, session):
    import numpy as np

    declared = {i.name for i in session.get_inputs()}
    feeds = {}
    for spec in args.input:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            fail(f"--input expects NAME=FILE.npy, got '{spec}'")
        if name not in declared:
            fail(f"model has no input '{name}' (inputs: {', '.join(sorted(declared))})")
        if name in feeds:
            fail(f"input '{name}' given twice")
        try:
            feeds[name] = np.load(path, allow_pickle=False)
        except Exception as e:
            fail(f"{path}: cannot read .npy: {e}")
    missing = sorted(declared - feeds.keys())
    if missing:
        fail(f"missing --input for: {', '.join(missing)}")
    return feeds


def main(argv):
    args = parse_args(argv)
    session = make_session(args)
    if args.list:
        for kind, values in (("input", session.get_inputs()), ("output", session.get_outputs())):
            for v in values:
                print(f"{kind} {v.name} {v.type} {v.shape}")
        return 0
    feeds = load_inputs(args, session)
    try:
        os.makedirs(args.output_dir, exist_ok=True)
    except OSError as e:
        fail(f"{args.output_dir}: cannot create output directory: {e.strerror}")
    names = [o.name for o in session.get_outputs()]
    try:
        results = session.run(names, feeds)
    except Exception as e:
        fail(f"{args.model}: onnxruntime run failed: {str(e).splitlines()[0] if str(e) else e}")
    import numpy as np

    for name, value in zip(names, results):
        path = os.path.join(args.output_dir, safe_name(name) + ".npy")
        try:
            np.save(path, np.asarray(value), allow_pickle=False)
        except (OSError, ValueError) as e:  # ValueError: non-tensor (sequence/map) output
            fail(f"{path}: cannot write: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
