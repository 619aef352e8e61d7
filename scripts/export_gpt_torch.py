#!/usr/bin/env python3
"""Export a small seeded GPT-style causal LM from PyTorch with torch.onnx.export.

  /usr/bin/python3 scripts/export_gpt_torch.py OUT.onnx [--opset 14|17] [--seed N]

The model: token + learned position embeddings, 2 pre-LayerNorm blocks (multi-head causal
self-attention masked by a registered lower-triangular buffer, GELU MLP), final LayerNorm,
untied lm head. vocab 100, dim 64, 4 heads, max sequence 64. Input `input_ids` int64
[batch, seq] (both axes dynamic), output `logits` float32 [batch, seq, vocab]. No KV cache.
Weights are random but seeded (and scaled up a little so the graph is not near-trivial),
so the export is deterministic for a given torch version. Exporter-side graph constant
folding stays on (that is what real exports do); opset 14-16 decompose LayerNorm into
ReduceMean/Sub/Pow/Sqrt/Div, opset 17 emits LayerNormalization.
"""
import argparse
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB, DIM, HEADS, LAYERS, MAX_SEQ = 100, 64, 4, 2, 64


class CausalSelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.proj = nn.Linear(DIM, DIM)
        # A buffer, not an on-the-fly torch.tril(ones(T, T)): keeps the mask a constant.
        self.register_buffer("mask", torch.tril(torch.ones(MAX_SEQ, MAX_SEQ, dtype=torch.bool))
                             .view(1, 1, MAX_SEQ, MAX_SEQ))

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(DIM, dim=2)
        hd = DIM // HEADS
        q = q.view(b, t, HEADS, hd).transpose(1, 2)
        k = k.view(b, t, HEADS, hd).transpose(1, 2)
        v = v.view(b, t, HEADS, hd).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        att = att.masked_fill(~self.mask[:, :, :t, :t], float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, c)
        return self.proj(y)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(DIM)
        self.attn = CausalSelfAttention()
        self.ln2 = nn.LayerNorm(DIM)
        self.fc = nn.Linear(DIM, 4 * DIM)
        self.out = nn.Linear(4 * DIM, DIM)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class TinyGPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(VOCAB, DIM)
        self.pos = nn.Embedding(MAX_SEQ, DIM)
        self.blocks = nn.ModuleList([Block() for _ in range(LAYERS)])
        self.ln_f = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, VOCAB, bias=False)

    def forward(self, input_ids):
        t = input_ids.shape[1]
        pos = torch.arange(t, dtype=torch.long, device=input_ids.device).unsqueeze(0)
        x = self.tok(input_ids) + self.pos(pos)
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln_f(x))


def build(seed):
    torch.manual_seed(seed)
    model = TinyGPT()
    with torch.no_grad():
        # Non-default LayerNorm affine parameters so they are exercised too.
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
    return model.eval()


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("output")
    p.add_argument("--opset", type=int, default=17, choices=[14, 15, 16, 17])
    p.add_argument("--seed", type=int, default=1234)
    args = p.parse_args(argv)
    model = build(args.seed)
    example = torch.randint(0, VOCAB, (2, 7), generator=torch.Generator().manual_seed(args.seed))
    with torch.no_grad():
        torch.onnx.export(model, (example,), args.output, opset_version=args.opset,
                          input_names=["input_ids"], output_names=["logits"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                                        "logits": {0: "batch", 1: "seq"}},
                          do_constant_folding=True)
    print(f"wrote {args.output} (opset {args.opset}, seed {args.seed})")


if __name__ == "__main__":
    main(sys.argv[1:])
