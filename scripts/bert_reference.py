#!/usr/bin/env python3
"""Float64 reference of a BertModel's last_hidden_state (tests/formats/hf_bert_test.cpp).

Reads MODEL_DIR's config.json and model.safetensors with json + numpy alone (no torch), tokenizes
the SENTENCES (one per line of SENTENCES_FILE) with `tokenizers` from its tokenizer.json, padded
to the longest so attention_mask matters, and writes into OUT_DIR:

  input_ids.npy, attention_mask.npy, token_type_ids.npy   int64 [batch, seq] (type ids all 0)
  last_hidden_state.npy                                   float64 [batch, seq, hidden]

The forward pass is transformers' BertModel in float64: embeddings (word + token type +
position) and LayerNorm, then per layer self-attention with the additive mask (1 - mask) * min,
residual + LayerNorm, exact-erf GELU feed-forward, residual + LayerNorm. As a check of the mask,
each sentence run alone (no padding) must give the same values at its own positions.

Usage: bert_reference.py MODEL_DIR SENTENCES_FILE OUT_DIR
"""
import json
import math
import os
import struct
import sys

import numpy as np
from tokenizers import Tokenizer

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        a = np.frombuffer(data[begin:end], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
        out[name] = a.astype(np.float64) if a.dtype != np.int64 else a
    return out


def erf(x):
    return np.vectorize(math.erf)(x)


def layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def forward(cfg, w, ids, mask, types):
    heads, hidden = cfg["num_attention_heads"], cfg["hidden_size"]
    hd = hidden // heads
    eps = cfg.get("layer_norm_eps", 1e-12)
    batch, seq = ids.shape
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][types]
    x = x + w["embeddings.position_embeddings.weight"][np.arange(seq)][None]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    additive = (1.0 - mask.astype(np.float64))[:, None, None, :] * np.finfo(np.float64).min

    def linear(name, v):
        return v @ w[name + ".weight"].T + w[name + ".bias"]

    def split(v):
        return v.reshape(batch, seq, heads, hd).transpose(0, 2, 1, 3)

    for l in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{l}."
        q, k, v = (split(linear(p + "attention.self." + n, x)) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd) + additive
        scores = scores - scores.max(-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)
        x = layer_norm(linear(p + "attention.output.dense", ctx) + x, w[p + "attention.output.LayerNorm.weight"],
                       w[p + "attention.output.LayerNorm.bias"], eps)
        up = linear(p + "intermediate.dense", x)
        act = 0.5 * up * (1.0 + erf(up / math.sqrt(2.0)))
        x = layer_norm(linear(p + "output.dense", act) + x, w[p + "output.LayerNorm.weight"],
                       w[p + "output.LayerNorm.bias"], eps)
    return x


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: bert_reference.py MODEL_DIR SENTENCES_FILE OUT_DIR")
    model_dir, sentences_file, out_dir = sys.argv[1:]
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    with open(sentences_file, encoding="utf-8") as f:
        sentences = [line.rstrip("\n") for line in f if line.strip()]
    w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_truncation()
    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest
    enc = tok.encode_batch(sentences)
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    types = np.zeros_like(ids)
    out = forward(cfg, w, ids, mask, types)
    for i in range(len(sentences)):
        n = int(mask[i].sum())
        alone = forward(cfg, w, ids[i:i + 1, :n], mask[i:i + 1, :n], types[i:i + 1, :n])
        gap = float(np.abs(alone[0] - out[i, :n]).max())
        if gap > 1e-9:
            sys.exit(f"bert_reference.py: sentence {i} padded differs from alone by {gap}")
    os.makedirs(out_dir, exist_ok=True)
    for name, a in (("input_ids", ids), ("attention_mask", mask), ("token_type_ids", types),
                    ("last_hidden_state", out)):
        np.save(os.path.join(out_dir, name + ".npy"), a)


if __name__ == "__main__":
    main()
