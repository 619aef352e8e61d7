"""Float64 reference of a BertModel's last_hidden_state, for scripts/check_bert_import.py.

read_safetensors reads a model.safetensors (F32, F16, BF16) with numpy alone (no torch) into
float64 arrays; forward(cfg, weights, ids, mask, types) is transformers' BertModel in float64:
embeddings (word + token type + position) and LayerNorm, then per layer self-attention with the
additive mask (1 - mask) * min, residual + LayerNorm, exact-erf GELU feed-forward, residual +
LayerNorm. Weights may carry task models' "bert." prefix.
"""
import json
import math
import struct

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "BF16": np.uint16}


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
        if info["dtype"] == "BF16":  # the high half of a float32
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name.removeprefix("bert.")] = a.astype(np.float64) if a.dtype != np.int64 else a
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
