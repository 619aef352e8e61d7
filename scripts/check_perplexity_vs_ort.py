#!/usr/bin/env python3
"""`llmcompress eval` perplexity against one computed independently with ONNX Runtime.

  check_perplexity_vs_ort.py LLMCOMPRESS_BIN [--tokens N]

Run with the repo's .venv python; needs $LLMC_DATA (skips with a message when it is unset,
fails when CI=true). Steps:
  1. convert $LLMC_DATA/llama2c/stories260K.bin (+ tok512.bin) to ONNX in a temp dir;
  2. `llmcompress tokenize MODEL --file $LLMC_DATA/corpora/tinystories_val_prefix.txt -o ids.npy`;
  3. ours: `llmcompress eval MODEL --tokens ids.npy --limit N --json` (window length left at
     the model's default, which must be its maximum sequence length, 512);
  4. reference: ONNX Runtime on the first N tokens, cut into non-overlapping windows of 512
     (the last one shorter), each run from an empty KV cache (past_key_values inputs of shape
     [1, n_kv_heads, 0, head_dim]); log-softmax in float64; every position after a window's
     first token is scored against the next token.
The two perplexities must agree to 4 significant digits (|ours - ref| / ref < 5e-5) and the
scored-token counts must be equal. Exit code 1 on disagreement.
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

REL_TOL = 5e-5
MODEL_CTX = 512  # stories260K's maximum sequence length


def run(args):
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"FAIL: {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def log_softmax64(logits):
    x = logits.astype(np.float64)
    x -= x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def ort_perplexity(model_path, tokens, ctx):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    ids_name, past = None, {}
    for i in sess.get_inputs():
        if i.name.startswith("past_key_values"):
            _, n_kv_heads, _, head_dim = i.shape  # [batch, n_kv_heads, past_len, head_dim]
            past[i.name] = np.zeros((1, n_kv_heads, 0, head_dim), np.float32)
        else:
            ids_name = i.name
    nll, scored, windows = 0.0, 0, 0
    for begin in range(0, len(tokens), ctx):
        window = tokens[begin:begin + ctx]
        if len(window) < 2:
            break
        logits = sess.run(["logits"], {ids_name: window[None, :].astype(np.int64), **past})[0][0]
        lp = log_softmax64(logits[:-1])  # row t predicts token t+1
        nll -= lp[np.arange(len(window) - 1), window[1:]].sum()
        scored += len(window) - 1
        windows += 1
    return float(np.exp(nll / scored)), nll, scored, windows


def main(argv):
    p = argparse.ArgumentParser(description="Compare `llmcompress eval` perplexity with ONNX Runtime.")
    p.add_argument("binary")
    p.add_argument("--tokens", type=int, default=20000, help="score only the first N tokens")
    args = p.parse_args(argv)
    data = os.environ.get("LLMC_DATA", "")
    if not data or not os.path.isdir(data):
        print("LLMC_DATA is not set or missing", file=sys.stderr)
        if os.environ.get("CI") == "true":
            return 1
        print("SKIPPED (set LLMC_DATA=../shared/data)")
        return 0
    corpus = os.path.join(data, "corpora", "tinystories_val_prefix.txt")
    with tempfile.TemporaryDirectory(prefix="ppl_vs_ort_") as tmp:
        model = os.path.join(tmp, "stories260K.onnx")
        ids_path = os.path.join(tmp, "ids.npy")
        run([args.binary, "convert", os.path.join(data, "llama2c", "stories260K.bin"),
             "--tokenizer", os.path.join(data, "llama2c", "tok512.bin"), "-o", model])
        run([args.binary, "tokenize", model, "--file", corpus, "-o", ids_path])
        ids = np.load(ids_path)
        if ids.dtype != np.int32 or ids.ndim != 1 or len(ids) < args.tokens:
            print(f"FAIL: {ids_path}: expected >= {args.tokens} int32 tokens in 1-D, got {ids.dtype} {ids.shape}")
            return 1

        t0 = time.monotonic()
        ours = json.loads(run([args.binary, "eval", model, "--tokens", ids_path,
                               "--limit", str(args.tokens), "--json"]))
        t_ours = time.monotonic() - t0
        t0 = time.monotonic()
        ref_ppl, ref_nll, ref_scored, ref_windows = ort_perplexity(model, ids[:args.tokens], MODEL_CTX)
        t_ref = time.monotonic() - t0

    res = ours["result"]
    ppl, scored = float(res["perplexity"]), int(res["scored_tokens"])
    rel = abs(ppl - ref_ppl) / ref_ppl
    print(f"ours: perplexity {ppl:.6f}, nll_sum {float(res['nll_sum']):.4f}, {scored} scored tokens, "
          f"ctx {ours.get('ctx')}, {res.get('windows')} windows ({t_ours:.1f} s)")
    print(f"ONNX Runtime: perplexity {ref_ppl:.6f}, nll_sum {ref_nll:.4f}, {ref_scored} scored tokens, "
          f"ctx {MODEL_CTX}, {ref_windows} windows ({t_ref:.1f} s)")
    failures = []
    if ours.get("ctx") != MODEL_CTX:
        failures.append(f"default window length is {ours.get('ctx')}, expected the model's {MODEL_CTX}")
    if scored != ref_scored:
        failures.append(f"scored tokens differ: ours {scored}, ONNX Runtime {ref_scored}")
    if not rel < REL_TOL:
        failures.append(f"perplexities differ: relative difference {rel:.3g} >= {REL_TOL:g}")
    for f in failures:
        print(f"FAIL: {f}")
    if not failures:
        print(f"PASS: relative difference {rel:.3g} < {REL_TOL:g}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
