#!/usr/bin/env python3
"""Our `llmcompress quantize` against ONNX Runtime's own quantizer on the same model.

  compare_quantize_peer.py LLMCOMPRESS_BIN [--model MODEL.onnx] [--tokens N] [--check]

Default model: stories260K from $LLMC_DATA (converted with its tokenizer). Two comparisons:
  int8-dynamic: ours (`quantize --mode int8-dynamic`) vs `onnxruntime.quantization.quantize_dynamic`
    (QInt8 weights, per_channel=True, the peer's most accurate setting);
  int8-static, per calibration method (minmax, entropy, percentile): ours (`quantize --mode
    int8-static --method M`) vs `quantize_static` (QDQ, per-channel QInt8 weights, QUInt8
    activations, CalibrationMethod M), both calibrated on the SAME 16 windows of 128 tokens
    taken after the first N tokens (so calibration and evaluation do not overlap), and the
    peer restricted to the nodes ours quantises with QDQ on their inputs only, as ours does.
All perplexities are computed by ONE evaluator, ONNX Runtime, on the first N tokens of the
TinyStories text (non-overlapping 512-token windows, empty KV cache, float64 log-softmax), so
the comparison is about the artifacts, not the runtimes. Quantize times are wall-clock of each
tool (static: including its calibration run).
--check: exit 1 unless int8-dynamic is within +1% of float32 and no worse than the peer, our
runtime's perplexity of our int8 artifacts equals ONNX Runtime's (2e-4), and
for every static method ours is no worse than the peer's same method (0.05% slack: float32
range noise, see the check). Quantize times are reported, not gated (wall clocks of sub-second
runs on a shared machine; speed is for the benchmark scripts).
"""
import argparse
import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_dynamic, quantize_static)

ort.set_default_logger_severity(3)
logging.getLogger().setLevel(logging.ERROR)  # quantize_static's "consider pre-processing" warnings

CALIB_SAMPLES, CALIB_LEN = 16, 128
PERCENTILE = 99.99  # ours' default; given to both tools (ORT's own default is 99.999)
STATIC_METHODS = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                  "percentile": CalibrationMethod.Percentile}


def run(args):
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"FAIL: {' '.join(args)}: {p.stderr.strip()}")
    return p.stdout


def empty_past(sess):
    """Empty KV-cache feeds [1, heads, 0, head_dim], as ours makes for token calibration data."""
    return {i.name: np.zeros((1, i.shape[1], 0, i.shape[3]), np.float32)
            for i in sess.get_inputs() if i.name.startswith("past_key_values")}


def perplexity(model_path, tokens, ctx=512):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    past = empty_past(sess)
    nll, scored = 0.0, 0
    for begin in range(0, len(tokens), ctx):
        w = tokens[begin:begin + ctx]
        if len(w) < 2:
            break
        feeds = {"input_ids": np.asarray(w, np.int64)[None, :]}
        feeds.update(past)
        logits = sess.run(["logits"], feeds)[0][0].astype(np.float64)
        logits -= logits.max(-1, keepdims=True)
        lp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        nll -= lp[np.arange(len(w) - 1), np.asarray(w[1:])].sum()
        scored += len(w) - 1
    return float(np.exp(nll / scored))


class Reader(CalibrationDataReader):
    """The samples of our calibration .npz, one feed dict each, plus the empty KV cache."""

    def __init__(self, model_path, windows):
        past = empty_past(ort.InferenceSession(model_path, providers=["CPUExecutionProvider"]))
        self.feeds = iter([{"input_ids": w, **past} for w in windows])

    def get_next(self):
        return next(self.feeds, None)


def quantized_matmuls(path):
    """MatMul nodes whose inputs all come from DequantizeLinear (counted the same way for both tools)."""
    g = onnx.load(path).graph
    dq = {o for n in g.node if n.op_type == "DequantizeLinear" for o in n.output}
    return sum(n.op_type == "MatMul" and all(i in dq for i in n.input) for n in g.node)


def cpu_has_vnni():
    """ONNX Runtime's u8 x s8 kernels without VNNI (AVX2, AVX-512F) add byte products in pairs into
    saturating int16: full-range int8 weights then give wrong results in ONNX Runtime, so both
    tools quantise with reduce_range (7-bit weights) there, as ONNX Runtime advises."""
    with open("/proc/cpuinfo") as f:
        flags = f.read()
    return "avx512_vnni" in flags or "avx_vnni" in flags


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin")
    ap.add_argument("--model")
    ap.add_argument("--tokens", type=int, default=20000)
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    data = os.environ.get("LLMC_DATA")
    if not data or not os.path.isdir(data):
        msg = "LLMC_DATA is not set or missing"
        if os.environ.get("CI") == "true":
            sys.exit("FAIL: " + msg)
        print("SKIPPED: " + msg)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = a.model or os.path.join(tmp, "stories260K.onnx")
        if not a.model:
            run([a.bin, "convert", f"{data}/llama2c/stories260K.bin", "--tokenizer",
                 f"{data}/llama2c/tok512.bin", "-o", fp32])
        ids = os.path.join(tmp, "ids.npy")
        run([a.bin, "tokenize", fp32, "--file", f"{data}/corpora/tinystories_val_prefix.txt", "-o", ids])
        all_tokens = np.load(ids)
        tokens = all_tokens[: a.tokens].tolist()

        reduce = not cpu_has_vnni()
        ours_rr = ["--reduce-range"] if reduce else []
        print(f"CPU {'without' if reduce else 'with'} VNNI: weights {'7-bit (reduce_range) for both tools' if reduce else 'full int8 range'}")
        ours = os.path.join(tmp, "ours.int8.onnx")
        t0 = time.perf_counter()
        summary = json.loads(run([a.bin, "quantize", fp32, "-o", ours, "--mode", "int8-dynamic", "--json"] + ours_rr))
        t_ours = time.perf_counter() - t0
        peer = os.path.join(tmp, "ort.int8.onnx")
        t0 = time.perf_counter()
        quantize_dynamic(fp32, peer, weight_type=QuantType.QInt8, per_channel=True, reduce_range=reduce)
        t_peer = time.perf_counter() - t0

        # int8-static. Identical calibration data: WE pick the windows (evenly spaced over the
        # tokens after the evaluation ones) and write them as input_ids [N, 1, L] to an .npz; ours
        # reads it as N tensor samples and adds the empty past_key_values itself
        # (calibration/calibration_data.h), the peer's Reader feeds the same arrays plus the same
        # empty past. ORT's calibrator runs fine on the length-0 past tensors.
        rest = all_tokens[a.tokens:].astype(np.int64)
        starts = np.linspace(0, len(rest) - CALIB_LEN, CALIB_SAMPLES).astype(np.int64)
        windows = np.stack([rest[b:b + CALIB_LEN] for b in starts])[:, None, :]
        calib = os.path.join(tmp, "calib.npz")
        np.savez(calib, input_ids=windows)
        static = {}  # method -> (ours path, ours s, ours nodes, peer path, peer s)
        for method, peer_method in STATIC_METHODS.items():
            o = os.path.join(tmp, f"ours.{method}.qdq.onnx")
            t0 = time.perf_counter()
            js = json.loads(run([a.bin, "quantize", fp32, "-o", o, "--mode", "int8-static", "--calib", calib,
                                 "--calib-samples", str(CALIB_SAMPLES), "--method", method, "--json"] + ours_rr
                                + (["--percentile", str(PERCENTILE)] if method == "percentile" else [])))
            t_o = time.perf_counter() - t0
            # Same nodes as ours (ours skips the activation x activation attention MatMuls, which
            # op_types_to_quantize=["MatMul"] alone would quantise too), and QDQ on the MatMul
            # inputs only: by default ORT also quantises every MatMul output.
            nodes = [n["node"] for n in js["steps"][-1]["nodes"] if n["action"] == "quantized"]
            p = os.path.join(tmp, f"ort.{method}.qdq.onnx")
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # histogram calibrators print progress
                # Caveat: quantize_static forwards no num_bins, so Entropy keeps num_bins = 128 =
                # num_quantized_bins, and its threshold search then returns the min/max range.
                quantize_static(fp32, p, Reader(fp32, windows), quant_format=QuantFormat.QDQ, per_channel=True,
                                reduce_range=reduce,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                calibrate_method=peer_method, op_types_to_quantize=["MatMul"], nodes_to_quantize=nodes,
                                extra_options={"OpTypesToExcludeOutputQuantization": ["MatMul"],
                                               "CalibPercentile": PERCENTILE})
            static[method] = (o, t_o, len(nodes), p, time.perf_counter() - t0)

        rows = [("float32", fp32, None), ("llmcompress int8-dynamic", ours, t_ours),
                ("ORT quantize_dynamic", peer, t_peer)]
        for method, (o, t_o, _, p, t_p) in static.items():
            rows += [(f"llmcompress int8-static {method}", o, t_o), (f"ORT quantize_static {method}", p, t_p)]
        ppl = {}
        print(f"{'artifact':<34}{'bytes':>12}{'size ratio':>12}{'perplexity':>12}{'vs fp32':>10}{'quantize s':>12}")
        base_size = os.path.getsize(fp32)
        for name, path, t in rows:
            ppl[name] = perplexity(path, tokens)
            size = os.path.getsize(path)
            print(f"{name:<34}{size:>12}{size / base_size:>12.3f}{ppl[name]:>12.4f}"
                  f"{100 * (ppl[name] / ppl['float32'] - 1):>+9.2f}%{'' if t is None else f'{t:>12.3f}'}")
        # Our runtime must run our artifacts as ONNX Runtime does: the same perplexity from
        # `llmcompress eval` (same windows) as from ORT's logits. Int8 amplifies any 1-ulp
        # difference before a dynamic quantisation (an inexact fused RMSNorm once moved it 0.1%).
        runtime_gap = {}
        for name in ("llmcompress int8-dynamic", "llmcompress int8-static minmax"):
            path = dict((n, p) for n, p, _ in rows)[name]
            ev = json.loads(run([a.bin, "eval", path, "--tokens", ids, "--limit", str(len(tokens)), "--ctx", "512",
                                 "--json"]))
            runtime_gap[name] = ev["result"]["perplexity"] / ppl[name] - 1
            print(f"{name}: our runtime's perplexity {ev['result']['perplexity']:.6f} vs ONNX Runtime's "
                  f"{ppl[name]:.6f} ({runtime_gap[name]:+.2e})")
        print(f"int8-dynamic: nodes quantized by ours: {sum(n['action'] == 'quantized' for n in summary['steps'][-1]['nodes'])}, skipped: {sum(n['action'] != 'quantized' for n in summary['steps'][-1]['nodes'])}; "
              f"quantize time ours/peer = {t_ours / t_peer:.2f}")
        print(f"int8-static: {CALIB_SAMPLES} windows of {CALIB_LEN} tokens after the first {a.tokens}; "
              f"percentile {PERCENTILE}")
        for method, (o, t_o, n, p, t_p) in static.items():
            print(f"  {method:<10} MatMuls quantized ours {quantized_matmuls(o)} (summary {n}), "
                  f"ORT {quantized_matmuls(p)}; quantize time ours/peer = {t_o / t_p:.2f}")
        if a.check:
            fails = []
            ok = ppl["llmcompress int8-dynamic"] <= ppl["float32"] * 1.01
            ok &= ppl["llmcompress int8-dynamic"] <= ppl["ORT quantize_dynamic"] * (1 + 1e-4)
            if not ok:
                fails.append("int8-dynamic perplexity must be within +1% of float32 and no worse than ONNX Runtime's")
            # 2e-4: the float32 parts of the two runtimes differ by ulps, and every re-quantisation
            # after them turns a few of those into whole int8 steps (measured 2.6e-5 dynamic,
            # 8.5e-5 static); the inexact fused RMSNorm this guards against was 1e-3.
            for name, gap in runtime_gap.items():
                if abs(gap) > 2e-4:
                    fails.append(f"{name}: our runtime's perplexity differs from ONNX Runtime's by {gap:+.2e} (limit 2e-4)")
            # Quantize times are printed above, not gated: under ctest -j2 another test shares the
            # two cores and sub-second wall clocks swing by 2x (speed is the benchmarks' job).
            for method in static:
                mine, theirs = ppl[f"llmcompress int8-static {method}"], ppl[f"ORT quantize_static {method}"]
                # Slack 5e-4: with the same algorithm (minmax) the two artifacts differ only in the
                # activation scales, by 1e-7..1e-6 relative, because each tool measured the ranges
                # with its own float32 runtime; that moves perplexity by ~1e-4 either way (copying
                # ORT's scales into ours gives ORT's perplexity exactly). A real difference in a
                # method (percentile of x vs of |x| was 0.6%) is far above it.
                if mine > theirs * (1 + 5e-4):
                    fails.append(f"int8-static {method}: perplexity {mine:.4f} is worse than ONNX Runtime's {theirs:.4f}")
            for f in fails:
                print("FAIL: " + f)
            if fails:
                return 1
            print("OK: int8-dynamic within +1% of float32 and no worse than ONNX Runtime's quantize_dynamic; "
                  f"int8-static ({', '.join(static)}) no worse than ONNX Runtime's quantize_static; "
                  "our runtime's perplexities equal ONNX Runtime's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
