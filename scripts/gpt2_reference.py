"""A float64 numpy forward of a Hugging Face GPT2LMHeadModel checkpoint directory, for tests.

Reads config.json and model.safetensors (float32, float16 or bfloat16, widened exactly, so the
reference runs on the rounded weights the checkpoint holds; names with or without the
"transformer." prefix), then computes what transformers' GPT2LMHeadModel computes: token plus
position embeddings, pre-norm blocks (LayerNorm, causal attention over the KV cache, MLP with
gelu_new or exact gelu), final LayerNorm and the tied head.

  ref = Gpt2Reference(dir)
  logits, presents = ref.forward(ids, past)   # past: [(k, v)] per layer, [heads, past, head]
"""
import json
import math
import os

import numpy as np


def read_safetensors(path):
    """name -> float64 array."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = data[base + b:base + e]
        dt = info["dtype"]
        if dt == "F32":
            a = np.frombuffer(raw, dtype="<f4")
        elif dt == "F16":
            a = np.frombuffer(raw, dtype="<f2")
        elif dt == "BF16":
            a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(f"{path}: tensor {name!r} is {dt}")
        out[name] = a.astype(np.float64).reshape(info["shape"])
    return out


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu_new(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def gelu_exact(x):
    from math import erf
    return 0.5 * x * (1.0 + np.vectorize(erf)(x / math.sqrt(2.0)))


class Gpt2Reference:
    def __init__(self, directory):
        with open(os.path.join(directory, "config.json")) as f:
            c = json.load(f)
        self.dim, self.layers, self.heads = c["n_embd"], c["n_layer"], c["n_head"]
        self.head = self.dim // self.heads
        self.eps = c.get("layer_norm_epsilon", 1e-5)
        self.scale_by_layer = c.get("scale_attn_by_inverse_layer_idx", False)
        self.act = gelu_exact if c.get("activation_function", "gelu_new") == "gelu" else gelu_new
        w = read_safetensors(os.path.join(directory, "model.safetensors"))
        self.w = {k[len("transformer."):] if k.startswith("transformer.") else k: v for k, v in w.items()}

    def forward(self, ids, past=None):
        """ids: list of token ids (batch 1). Returns logits [seq, vocab] and presents [(k, v)]."""
        w, H, hd = self.w, self.heads, self.head
        past = past or [(np.zeros((H, 0, hd)), np.zeros((H, 0, hd)))] * self.layers
        p0, s = past[0][0].shape[1], len(ids)
        h = w["wte.weight"][ids] + w["wpe.weight"][p0:p0 + s]
        # key j is visible to the query at position p0 + i when j <= p0 + i
        mask = np.arange(p0 + s)[None, :] > (p0 + np.arange(s))[:, None]
        presents = []
        for l in range(self.layers):
            p = f"h.{l}."
            x = layer_norm(h, w[p + "ln_1.weight"], w[p + "ln_1.bias"], self.eps)
            qkv = x @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
            q, k, v = (t.reshape(s, H, hd).transpose(1, 0, 2) for t in np.split(qkv, 3, axis=-1))
            k = np.concatenate([past[l][0], k], axis=1)
            v = np.concatenate([past[l][1], v], axis=1)
            presents.append((k, v))
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
            if self.scale_by_layer:
                scores = scores / (l + 1)
            scores = np.where(mask[None], -np.inf, scores)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            probs = scores / scores.sum(-1, keepdims=True)
            ctx = (probs @ v).transpose(1, 0, 2).reshape(s, self.dim)
            h = h + ctx @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
            x = layer_norm(h, w[p + "ln_2.weight"], w[p + "ln_2.bias"], self.eps)
            m = self.act(x @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
            h = h + m @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
        x = layer_norm(h, w["ln_f.weight"], w["ln_f.bias"], self.eps)
        return x @ w["wte.weight"].T, presents
