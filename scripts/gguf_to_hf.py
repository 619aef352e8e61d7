#!/usr/bin/env python3
"""Writes a GGUF Llama model as a Hugging Face checkpoint directory, for tests: config.json,
safetensors written by hand (no torch), q/k rows un-permuted to Hugging Face's rotate-half
layout, and tokenizer.json rebuilt with `tokenizers` (scripts/gguf_reference.py).

  gguf_to_hf.py MODEL.gguf OUT_DIR [--dtype F32|F16|BF16] [--shards N] [--arch LlamaForCausalLM]
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_reference  # noqa: E402

NAMES = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
         "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
         "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
         "ffn_down": "mlp.down_proj"}


def encode(a, dtype):
    a = np.ascontiguousarray(a, dtype=np.float32)
    if dtype == "F32":
        return a.tobytes()
    if dtype == "F16":
        return a.astype(np.float16).tobytes()
    bits = a.view(np.uint32)  # bfloat16, rounded to nearest even
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16).tobytes()


def write_safetensors(path, tensors, dtype):
    header, blobs, offset = {}, [], 0
    for name, a in tensors:
        b = encode(a, dtype)
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("gguf")
    p.add_argument("out")
    p.add_argument("--dtype", default="F32", choices=["F32", "F16", "BF16"])
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--arch", default="LlamaForCausalLM")
    a = p.parse_args()
    m = gguf_reference.GgufLlama(a.gguf)
    tensors = [("model.embed_tokens.weight", m.w["token_embd.weight"])]
    for l in range(m.layers):
        for short, hf in NAMES.items():
            w = m.w[f"blk.{l}.{short}.weight"]
            if short == "attn_q":
                w = m.unpermute(w, m.heads)
            elif short == "attn_k":
                w = m.unpermute(w, m.kv_heads)
            tensors.append((f"model.layers.{l}.{hf}.weight", w))
    tensors.append(("model.norm.weight", m.w["output_norm.weight"]))
    os.makedirs(a.out, exist_ok=True)
    if a.shards == 1:
        write_safetensors(os.path.join(a.out, "model.safetensors"), tensors, a.dtype)
    else:
        per = (len(tensors) + a.shards - 1) // a.shards
        weight_map = {}
        for s in range(a.shards):
            name = f"model-{s + 1:05d}-of-{a.shards:05d}.safetensors"
            part = tensors[s * per:(s + 1) * per]
            write_safetensors(os.path.join(a.out, name), part, a.dtype)
            weight_map.update({n: name for n, _ in part})
        with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f)
    config = {"architectures": [a.arch], "model_type": "llama", "hidden_size": m.dim,
              "intermediate_size": int(m.w["blk.0.ffn_gate.weight"].shape[0]),
              "num_hidden_layers": m.layers, "num_attention_heads": m.heads,
              "num_key_value_heads": m.kv_heads, "vocab_size": int(m.w["token_embd.weight"].shape[0]),
              "max_position_embeddings": 8192, "rope_theta": m.theta, "rms_norm_eps": m.eps,
              "hidden_act": "silu", "tie_word_embeddings": True, "torch_dtype": "float32"}
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    gguf_reference.hf_tokenizer(a.gguf).save(os.path.join(a.out, "tokenizer.json"))


if __name__ == "__main__":
    main()
