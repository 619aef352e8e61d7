#!/usr/bin/env python3
"""GPT2LMHeadModel checkpoints imported by `llmcompress convert`, judged against float64.

  check_gpt2_import.py LLMCOMPRESS_BIN [--tokens N] [--limit L]

Three seeded checkpoints from scripts/make_gpt2_checkpoint.py cover the import's variants:
float32 with "transformer." names and gelu_new (3 layers); float16 with the original
checkpoints' names and attn.bias buffers, scores also divided by layer + 1; bfloat16 with exact gelu. Each is converted to ONNX
and run by our runtime (`llmcompress run`) and ONNX Runtime: a prefill of N-1 tokens, then one
KV-cache step feeding the presents back, and a batch of two sequences. scripts/gpt2_reference.py's
float64 forward of the same (rounded) weights is the reference for the logits and the presents. Exit 1 unless every
max |ours - float64| and max |ORT - float64| is below L (default 1e-4). Prints the errors.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gpt2_reference  # noqa: E402
from llmc_script import fail, run_outputs  # noqa: E402

VARIANTS = [("f32", ["--dtype", "F32", "--layers", "3", "--seed", "1"]),
            ("f16_no_prefix_scale_by_layer", ["--dtype", "F16", "--no-prefix", "--scale-by-layer", "--seed", "2"]),
            ("bf16_exact_gelu", ["--dtype", "BF16", "--activation", "gelu", "--seed", "3"])]


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


def check(bin_path, tmp, tag, make_args, n_tokens):
    ckpt = os.path.join(tmp, tag)
    run([sys.executable, os.path.join(HERE, "make_gpt2_checkpoint.py"), ckpt, *make_args])
    model = os.path.join(tmp, tag + ".onnx")
    run([bin_path, "convert", ckpt, "-o", model])
    ref = gpt2_reference.Gpt2Reference(ckpt)
    vocab = ref.w["wte.weight"].shape[0]
    ids = [int(i) for i in np.random.default_rng(7).integers(0, vocab, n_tokens)]
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    empty = np.zeros((1, ref.heads, 0, ref.head), dtype=np.float32)
    past = {f"past_key_values.{l}.{kv}": empty for l in range(ref.layers) for kv in ("key", "value")}
    ort_past = our_past = past
    ref_past = None
    worst = {"ours": 0.0, "ort": 0.0, "ours_kv": 0.0, "ort_kv": 0.0}
    span = 0.0
    for step, chunk in enumerate([ids[:-1], ids[-1:]]):
        want, ref_past = ref.forward(chunk, ref_past)
        span = max(span, float(np.abs(want).max()))
        ort_out = dict(zip(names, sess.run(None, {"input_ids": np.array([chunk], dtype=np.int64), **ort_past})))
        our_out = run_outputs(bin_path, model, {"input_ids": np.array([chunk], dtype=np.int64), **our_past}, tmp,
                           f"{tag}.step{step}")
        for who, out in (("ours", our_out), ("ort", ort_out)):
            if out["logits"].shape != (1, len(chunk), vocab):
                fail(f"{tag}: {who} logits have shape {out['logits'].shape}")
            worst[who] = max(worst[who], float(np.abs(out["logits"][0] - want).max()))
            for l, (k, v) in enumerate(ref_past):
                for kv, ref_t in (("key", k), ("value", v)):
                    got = out[f"present.{l}.{kv}"]
                    if got.shape != (1,) + ref_t.shape:
                        fail(f"{tag}: {who} present.{l}.{kv} has shape {got.shape}, expected {(1,) + ref_t.shape}")
                    worst[who + "_kv"] = max(worst[who + "_kv"], float(np.abs(got[0] - ref_t).max()))
        ort_past = {n: ort_out[n.replace("past_key_values.", "present.")] for n in past}
        our_past = {n: our_out[n.replace("past_key_values.", "present.")] for n in past}
    # A batch of two different sequences: each row as it would be alone.
    rows = [ids[:-1], ids[-2::-1]]
    batch = {"input_ids": np.array(rows, dtype=np.int64), **{n: np.zeros((2,) + empty.shape[1:], np.float32) for n in past}}
    ort_logits = sess.run(["logits"], batch)[0]
    our_logits = run_outputs(bin_path, model, batch, tmp, f"{tag}.batch")["logits"]
    for b, row in enumerate(rows):
        want = ref.forward(row)[0]
        worst["ours"] = max(worst["ours"], float(np.abs(our_logits[b] - want).max()))
        worst["ort"] = max(worst["ort"], float(np.abs(ort_logits[b] - want).max()))
    return worst, span, len(ids)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bin")
    p.add_argument("--tokens", type=int, default=20)
    p.add_argument("--limit", type=float, default=1e-4)
    a = p.parse_args()
    bad = []
    with tempfile.TemporaryDirectory() as tmp:
        for tag, make_args in VARIANTS:
            worst, span, n = check(a.bin, tmp, tag, make_args, a.tokens)
            print(f"{tag}: {n} tokens (prefill {n - 1}, one KV-cache step; batch of 2), float64 |logits| up to {span:.2f}")
            print(f"  max |ours - float64| logits {worst['ours']:.2e}, presents {worst['ours_kv']:.2e}")
            print(f"  max |ORT  - float64| logits {worst['ort']:.2e}, presents {worst['ort_kv']:.2e}")
            bad += [f"{tag} {k} {v:.2e}" for k, v in worst.items() if not v < a.limit]
    if bad:
        fail(f"errors at or above {a.limit:g}: {', '.join(bad)}")


if __name__ == "__main__":
    main()
