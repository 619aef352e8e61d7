#!/usr/bin/env python3
"""Our `llmcompress quantize` against ONNX Runtime's own quantizer on the same model.

  compare_quantize_peer.py LLMCOMPRESS_BIN [--model MODEL.onnx] [--tokens N] [--check]

Default model: stories260K from $LLMC_DATA (converted with its tokenizer). For int8-dynamic:
ours (`quantize --mode int8-dynamic`) vs `onnxruntime.quantization.quantize_dynamic`
(QInt8 weights, per_channel=True, the peer's most accurate setting). All perplexities are
computed by ONE evaluator, ONNX Runtime, on the first N tokens of the TinyStories text
(non-overlapping 512-token windows, empty KV cache, float64 log-softmax), so the comparison
is about the artifacts, not the runtimes. Quantize times are wall-clock of each tool.
--check: exit 1 unless ours is within +1% of float32 and no worse than the peer.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic

ort.set_default_logger_severity(3)


def run(args):
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"FAIL: {' '.join(args)}: {p.stderr.strip()}")
    return p.stdout


def perplexity(model_path, tokens, ctx=512):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    past = {i.name: np.zeros((1, i.shape[1], 0, i.shape[3]), np.float32)
            for i in sess.get_inputs() if i.name.startswith("past_key_values")}
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
        tokens = np.load(ids)[: a.tokens].tolist()

        ours = os.path.join(tmp, "ours.int8.onnx")
        t0 = time.perf_counter()
        summary = json.loads(run([a.bin, "quantize", fp32, "-o", ours, "--mode", "int8-dynamic", "--json"]))
        t_ours = time.perf_counter() - t0
        peer = os.path.join(tmp, "ort.int8.onnx")
        t0 = time.perf_counter()
        quantize_dynamic(fp32, peer, weight_type=QuantType.QInt8, per_channel=True)
        t_peer = time.perf_counter() - t0

        rows = [("float32", fp32, None), ("llmcompress int8-dynamic", ours, t_ours),
                ("ORT quantize_dynamic", peer, t_peer)]
        ppl = {}
        print(f"{'artifact':<28}{'bytes':>12}{'size ratio':>12}{'perplexity':>12}{'vs fp32':>10}{'quantize s':>12}")
        base_size = os.path.getsize(fp32)
        for name, path, t in rows:
            ppl[name] = perplexity(path, tokens)
            size = os.path.getsize(path)
            print(f"{name:<28}{size:>12}{size / base_size:>12.3f}{ppl[name]:>12.4f}"
                  f"{100 * (ppl[name] / ppl['float32'] - 1):>+9.2f}%{'' if t is None else f'{t:>12.3f}'}")
        print(f"nodes quantized by ours: {summary['nodes_quantized']}, skipped: {summary['nodes_skipped']}; "
              f"quantize time ours/peer = {t_ours / t_peer:.2f}")
        if a.check:
            ok = ppl["llmcompress int8-dynamic"] <= ppl["float32"] * 1.01
            ok &= ppl["llmcompress int8-dynamic"] <= ppl["ORT quantize_dynamic"] * (1 + 1e-4)
            if not ok:
                print("FAIL: int8-dynamic perplexity must be within +1% of float32 and no worse than ONNX Runtime's")
                return 1
            print("OK: within +1% of float32 and no worse than ONNX Runtime's quantize_dynamic")
    return 0


if __name__ == "__main__":
    sys.exit(main())
