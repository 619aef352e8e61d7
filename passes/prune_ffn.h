// prune-ffn: structured pruning of feed-forward neurons (LLM-Pruner / FLAP-style width pruning).
//
// Before:  Y = MatMul(f(MatMul(X, W_up1), MatMul(X, W_up2), ...), W_down)      (F neurons)
// After:   the same with F' = F - removed: the removed neurons' columns of every up weight (and
//          bias), and their rows of W_down, are gone; the result is a smaller dense model any
//          runtime runs faster, exact for the neurons kept.
// Blocks are found by dataflow, not by names: from each MatMul whose weight W_down [F, D] is a
//          float32 initializer, the activation input is traced back through element-wise ops
//          (SiLU/GELU/ReLU/tanh chains, SwiGLU's gate * up, per-neuron bias Adds, scalar
//          constants) to MatMuls with float32 weights [D', F]. Every value on the way must feed
//          only the block (no graph output, no other reader), so each neuron is independent: a
//          Llama SwiGLU MLP, a GPT-2 MLP with biases. Anything else is left alone with a reason.
// Importance: s_j = ||h_j||_2 * ||W_down[j, :]||_2, with h the down projection's input over the
//          calibration tokens (the statistics service): what removing neuron j takes from the
//          output, to first order. The `ratio` lowest of every block go (the same count per
//          layer), rounded so the kept count is a multiple of `multiple-of`.
#pragma once
#include "passes/pass.h"

namespace llmc {

class PruneFfn : public Pass {
 public:
  std::vector<OptionSpec> options() const override;
  bool needs_calibration() const override { return true; }
  Result<PassResult> run(Model& model, const PassOptions& options, PassContext& context) override;
};

}  // namespace llmc
