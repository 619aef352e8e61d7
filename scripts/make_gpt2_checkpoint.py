#!/usr/bin/env python3
"""Writes a small Hugging Face GPT2LMHeadModel checkpoint with seeded random weights, for tests
(no real GPT-2 is available offline): config.json, model.safetensors written by hand
(scripts/gguf_to_hf.py's writer) and a byte-level BPE tokenizer.json trained with `tokenizers`
on a built-in text (pre-tokenizer ByteLevel(add_prefix_space=False), GPT-2's).

  make_gpt2_checkpoint.py OUT_DIR [--dtype F32|F16|BF16] [--seed N] [--layers N]
                          [--activation gelu_new|gelu] [--no-prefix] [--no-tokenizer]
                          [--scale-by-layer]   (scale_attn_by_inverse_layer_idx)

Weights have the scale of a trained model rather than of an initialisation, so attention is
not uniform and logits spread over several units: embeddings N(0, 0.3) (positions 0.1),
projections N(0, 1/sqrt(fan_in)) (outputs into the residual half that), biases N(0, 0.05),
LayerNorm weights 1 + N(0, 0.1). --no-prefix writes the original checkpoints' names ("h.0...",
no "transformer.") with their attn.bias / attn.masked_bias buffers, which importers ignore.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_to_hf import write_safetensors  # noqa: E402

DIM, HEADS, POSITIONS, VOCAB_NO_TOKENIZER = 64, 4, 128, 300

TEXT = """Once upon a time there was a little robot who lived in a quiet town by the sea.
Every morning the robot walked to the harbour, counted the boats and said hello to the fishermen.
One day a storm came, the boats were lost, and the robot went out on the water to find them.
It found 3 boats, then 7, then all 12, and the town held a party that lasted until midnight!
"What a brave little robot," said the children. "We will never forget you."
"""


def make_tokenizer(vocab_size):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([TEXT] * 4, trainer)
    return tok


def make_weights(rng, layers, vocab):
    d, inner = DIM, 4 * DIM

    def normal(shape, std):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    t = [("wte.weight", normal((vocab, d), 0.3)), ("wpe.weight", normal((POSITIONS, d), 0.1))]
    for l in range(layers):
        p = f"h.{l}."
        t += [(p + "ln_1.weight", 1 + normal((d,), 0.1)), (p + "ln_1.bias", normal((d,), 0.05)),
              (p + "attn.c_attn.weight", normal((d, 3 * d), d ** -0.5)), (p + "attn.c_attn.bias", normal((3 * d,), 0.05)),
              (p + "attn.c_proj.weight", normal((d, d), 0.5 * d ** -0.5)), (p + "attn.c_proj.bias", normal((d,), 0.05)),
              (p + "ln_2.weight", 1 + normal((d,), 0.1)), (p + "ln_2.bias", normal((d,), 0.05)),
              (p + "mlp.c_fc.weight", normal((d, inner), d ** -0.5)), (p + "mlp.c_fc.bias", normal((inner,), 0.05)),
              (p + "mlp.c_proj.weight", normal((inner, d), 0.5 * inner ** -0.5)), (p + "mlp.c_proj.bias", normal((d,), 0.05))]
    t += [("ln_f.weight", 1 + normal((d,), 0.1)), ("ln_f.bias", normal((d,), 0.05))]
    return t


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--dtype", default="F32", choices=["F32", "F16", "BF16"])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--activation", default="gelu_new", choices=["gelu_new", "gelu"])
    p.add_argument("--no-prefix", action="store_true")
    p.add_argument("--no-tokenizer", action="store_true")
    p.add_argument("--scale-by-layer", action="store_true")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    vocab = VOCAB_NO_TOKENIZER
    if not a.no_tokenizer:
        tok = make_tokenizer(VOCAB_NO_TOKENIZER)
        vocab = tok.get_vocab_size()
        tok.save(os.path.join(a.out, "tokenizer.json"))
    tensors = make_weights(np.random.default_rng(a.seed), a.layers, vocab)
    if a.no_prefix:
        causal = np.tril(np.ones((POSITIONS, POSITIONS), dtype=np.float32))[None, None]
        for l in range(a.layers):
            tensors += [(f"h.{l}.attn.bias", causal), (f"h.{l}.attn.masked_bias", np.array(-1e4, dtype=np.float32))]
    else:
        tensors = [("transformer." + n, t) for n, t in tensors]
    write_safetensors(os.path.join(a.out, "model.safetensors"), tensors, a.dtype)
    config = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": DIM, "n_layer": a.layers,
              "n_head": HEADS, "n_positions": POSITIONS, "n_ctx": POSITIONS, "vocab_size": vocab,
              "layer_norm_epsilon": 1e-5, "activation_function": a.activation, "scale_attn_weights": True,
              "scale_attn_by_inverse_layer_idx": a.scale_by_layer,
              "bos_token_id": 0, "eos_token_id": 0, "tie_word_embeddings": True,
              "torch_dtype": {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[a.dtype]}
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


if __name__ == "__main__":
    main()
