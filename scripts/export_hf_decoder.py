#!/usr/bin/env python3
"""Export a Hugging Face `transformers` causal LM the way users export one: the library's own
modelling code (eager attention: torch 1.13 has no SDPA) through torch.onnx.export, with the KV
cache as per-layer inputs and outputs. One graph of the exporter corpus (issue 17).

  .venv-torch/bin/python scripts/export_hf_decoder.py OUT.onnx --arch gpt2|llama|qwen2
      [--size tiny|100m] [--opset 14|17] [--no-past] [--no-mask] [--no-positions]
      [--weights HF_DIR] [--seed N]

Inputs: `input_ids` int64 [batch, seq]; `attention_mask` int64 [batch, past+seq] and
`position_ids` int64 [batch, seq] unless turned off; `past_key_values.{i}.key/.value` float32
[batch, kv_heads, past, head_dim] with --past (the default). Outputs: `logits` [batch, seq,
vocab] and `present.{i}.key/.value`. Weights: seeded random (the library's own initialisation)
or a real checkpoint with --weights (config.json + model.safetensors, e.g. from
scripts/gguf_to_hf.py). Sizes: tiny (a few hundred thousand parameters, for tests); 100m (GPT-2
small's shape, 124M; SmolLM2-135M's Llama shape with grouped-query attention 9/3; Qwen2-style
the same with q/k/v biases) for benchmarks. Needs transformers==4.40.2 over Debian's torch 1.13
(scripts/setup.sh makes .venv-torch).
"""
import argparse
import sys
import warnings

import torch
import transformers

SIZES = {
    ("gpt2", "tiny"): dict(vocab_size=512, n_positions=256, n_embd=64, n_layer=2, n_head=4),
    ("gpt2", "100m"): dict(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12),
    ("llama", "tiny"): dict(vocab_size=512, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256),
    ("llama", "100m"): dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                            num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048,
                            tie_word_embeddings=True, rope_theta=100000.0),
    ("qwen2", "tiny"): dict(vocab_size=512, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256),
    ("qwen2", "100m"): dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                            num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048,
                            tie_word_embeddings=True),
}
CONFIGS = {"gpt2": transformers.GPT2Config, "llama": transformers.LlamaConfig, "qwen2": transformers.Qwen2Config}


class WithFlatCache(torch.nn.Module):
    """Flat tensors in and out (what torch.onnx.export names), the legacy tuple cache inside."""

    def __init__(self, model, layers, mask, positions, past):
        super().__init__()
        self.model, self.layers, self.mask, self.positions, self.past = model, layers, mask, positions, past

    def forward(self, input_ids, *rest):
        rest = list(rest)
        kwargs = {"input_ids": input_ids, "use_cache": self.past, "return_dict": True}
        if self.mask:
            kwargs["attention_mask"] = rest.pop(0)
        if self.positions:
            kwargs["position_ids"] = rest.pop(0)
        if self.past:
            kwargs["past_key_values"] = tuple((rest[2 * i], rest[2 * i + 1]) for i in range(self.layers))
        out = self.model(**kwargs)
        flat = [out.logits]
        if self.past:
            for k, v in out.past_key_values:
                flat += [k, v]
        return tuple(flat)


def build(arch, size, weights, seed):
    if weights:
        model = transformers.AutoModelForCausalLM.from_pretrained(weights, torch_dtype=torch.float32,
                                                                  attn_implementation="eager")
    else:
        torch.manual_seed(seed)
        config = CONFIGS[arch](**SIZES[(arch, size)])
        config._attn_implementation = "eager"
        model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
        if size == "tiny":
            # The default 0.02 initialisation makes tiny models near-uniform; widen it so the
            # logits, softmax and norms are exercised away from their trivial regimes.
            with torch.no_grad():
                for p in model.parameters():
                    if p.dim() >= 2:
                        p.normal_(0.0, 0.15)
    return model.eval()


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("output")
    p.add_argument("--arch", choices=sorted(CONFIGS), required=True)
    p.add_argument("--size", choices=["tiny", "100m"], default="tiny")
    p.add_argument("--opset", type=int, default=17, choices=[14, 15, 16, 17])
    p.add_argument("--no-past", action="store_true")
    p.add_argument("--no-mask", action="store_true")
    p.add_argument("--no-positions", action="store_true")
    p.add_argument("--weights", help="a Hugging Face checkpoint directory instead of seeded weights")
    p.add_argument("--seed", type=int, default=1234)
    a = p.parse_args(argv)
    model = build(a.arch, a.size, a.weights, a.seed)
    cfg = model.config
    layers = cfg.num_hidden_layers
    heads = cfg.num_attention_heads
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    head_dim = cfg.hidden_size // heads
    past, mask, positions = not a.no_past, not a.no_mask, not a.no_positions
    past_len, seq = (3, 5) if past else (0, 5)
    g = torch.Generator().manual_seed(a.seed)
    inputs = [torch.randint(0, cfg.vocab_size, (1, seq), generator=g)]
    names, dyn = ["input_ids"], {"input_ids": {0: "batch", 1: "seq"}}
    if mask:
        inputs.append(torch.ones(1, past_len + seq, dtype=torch.int64))
        names.append("attention_mask")
        dyn["attention_mask"] = {0: "batch", 1: "total"}
    if positions:
        inputs.append(torch.arange(past_len, past_len + seq, dtype=torch.int64).unsqueeze(0))
        names.append("position_ids")
        dyn["position_ids"] = {0: "batch", 1: "seq"}
    outputs = ["logits"]
    dyn["logits"] = {0: "batch", 1: "seq"}
    if past:
        for i in range(layers):
            for kind in ("key", "value"):
                inputs.append(torch.randn(1, kv_heads, past_len, head_dim, generator=g))
                names.append(f"past_key_values.{i}.{kind}")
                dyn[names[-1]] = {0: "batch", 2: "past"}
                outputs.append(f"present.{i}.{kind}")
                dyn[outputs[-1]] = {0: "batch", 2: "total"}
    wrapper = WithFlatCache(model, layers, mask, positions, past)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, tuple(inputs), a.output, opset_version=a.opset, input_names=names,
                          output_names=outputs, dynamic_axes=dyn, do_constant_folding=True)
    source = f"weights of {a.weights}" if a.weights else f"{a.size}, seed {a.seed}"
    print(f"wrote {a.output} ({a.arch} {source}, opset {a.opset}, past={past}, mask={mask}, "
          f"positions={positions}, transformers {transformers.__version__}, torch {torch.__version__})")


if __name__ == "__main__":
    main(sys.argv[1:])
