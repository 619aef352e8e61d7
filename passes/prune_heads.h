// prune-heads: structured pruning of attention heads, whole KV groups at a time.
//
// Before:  attention with Hq query heads sharing Hkv key/value heads (GQA: Hq / Hkv per group)
// After:   the `ratio` least important groups of every layer gone: their Q/K/V projection
//          columns (and biases), their rows of the output projection, and every shape constant
//          that counts heads (the rotary Reshapes, the value Reshape, repeat_kv's Reshape, the
//          merge back to Hq*head) and the KV-cache inputs/outputs narrowed to match. A smaller
//          dense model with a smaller KV cache, which any runtime runs.
// Layout:  the attention the Llama importers write (llama2.c, GGUF, Hugging Face checkpoints:
//          formats/llama_graph.cpp; rotary, repeat_kv), the GPT-2 checkpoint importer's
//          (formats/hf_gpt2.cpp: one fused Q/K/V projection split by a sizes constant, which is
//          narrowed too) and PyTorch exports of GPT-style attention (torch.onnx.export: Reshape
//          targets built by Concat from Constant nodes and run-time sizes, no KV cache; the head
//          merge's width, read at run time from the attention input's shape, becomes the
//          narrowed constant). Followed from each output projection back through its ops, every
//          constant checked (read by nothing else) before anything changes; a graph whose
//          attention is laid out otherwise is refused with the op where the trail was lost.
// Importance: per group, the sum over its query heads' channels c of ||ctx_c||_2 * ||W_o[c, :]||_2,
//          ctx the output projection's input over the calibration tokens: what the group adds.
//          A whole group goes because its K/V head serves every query head in it.
#pragma once
#include "passes/pass.h"

namespace llmc {

class PruneHeads : public Pass {
 public:
  std::vector<OptionSpec> options() const override;
  bool needs_calibration() const override { return true; }
  Result<PassResult> run(Model& model, const PassOptions& options, PassContext& context) override;
};

}  // namespace llmc
