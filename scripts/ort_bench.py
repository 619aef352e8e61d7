#!/usr/bin/env python3
"""Prefill and KV-cache decode latency of a causal LM export in ONNX Runtime, measured the way
`llmcompress bench` measures ours: random prompt (seeded; attention_mask of ones and position_ids
when the model has them), warm-up excluded, prefill median of
--repeats runs, decode p50/p90 over --tokens greedy steps feeding present.* back as past.*.

Usage: ort_bench.py MODEL [--threads N] [--prompt-len 128] [--tokens 32] [--repeats 3] (JSON out)
"""
import argparse
import json
import time

import numpy as np
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    a = ap.parse_args()
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
    past = [i for i in sess.get_inputs() if i.name.startswith("past_key_values.")]
    outs = ["logits"] + ["present." + i.name[len("past_key_values."):] for i in past]
    vocab = sess.get_outputs()[0].shape[-1]
    rng = np.random.default_rng(0)
    prompt = rng.integers(0, vocab, size=(1, a.prompt_len), dtype=np.int64)

    def empty():  # the KV cache in the dtype the model declares (float16 for fp16 artifacts)
        return {i.name: np.zeros((1, i.shape[1], 0, i.shape[3]),
                                 np.float16 if i.type == "tensor(float16)" else np.float32) for i in past}

    names = {i.name for i in sess.get_inputs()}

    def run(ids, cache):
        feeds = {"input_ids": ids}
        past_len = next(iter(cache.values())).shape[2] if cache else 0
        total = past_len + ids.shape[1]
        if "attention_mask" in names:  # Hugging Face exports: all positions attended
            feeds["attention_mask"] = np.ones((1, total), np.int64)
        if "position_ids" in names:
            feeds["position_ids"] = np.arange(past_len, total, dtype=np.int64)[None, :]
        feeds.update(cache)
        res = sess.run(outs, feeds)
        return res[0], {p.name: r for p, r in zip(past, res[1:])}

    def decode(steps, times):
        logits, cache = run(prompt, empty())
        nxt = int(np.argmax(logits[0, -1]))
        for _ in range(steps):
            t0 = time.perf_counter()
            logits, cache = run(np.array([[nxt]], np.int64), cache)
            if times is not None:
                times.append((time.perf_counter() - t0) * 1e3)
            nxt = int(np.argmax(logits[0, -1]))

    for _ in range(a.warmup):
        decode(min(4, a.tokens), None)
    prefill = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        run(prompt, empty())
        prefill.append((time.perf_counter() - t0) * 1e3)
    times = []
    decode(a.tokens, times)
    print(json.dumps({"prefill_ms": float(np.median(prefill)),
                      "decode_ms_p50": float(np.percentile(times, 50)),
                      "decode_ms_p90": float(np.percentile(times, 90)),
                      "threads": a.threads, "ort_version": ort.__version__}))


if __name__ == "__main__":
    main()
