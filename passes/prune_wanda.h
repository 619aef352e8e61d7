// prune-wanda: Wanda (Sun et al. 2023, "A Simple and Effective Pruning Approach for LLMs").
//
// Before:  Y = MatMul(X, W)
// After:   Y = MatMul(X, W ⊙ mask): the weights with the smallest |W_kn| · ‖X_k‖₂ are exactly 0,
//          compared within each output row by default (Wanda's group), or per weight,
//          globally, or N:M along the input dimension (passes/prune_common.h).
// Preconditions: calibration samples (the L2 norm of each input channel k of X over every
//          calibration token, from the activation-statistics service). The LM head stays dense
//          unless include names it.
// Math:    score_kn = |W_kn| · sqrt(Σ_t x_tk²); no weight update (SparseGPT's job).
#pragma once
#include "passes/pass.h"

namespace llmc {

class PruneWanda : public Pass {
 public:
  std::vector<OptionSpec> options() const override;
  Status check(const PassOptions& resolved) const override;
  bool needs_calibration() const override { return true; }
  Result<PassResult> run(Model& model, const PassOptions& options, PassContext& context) override;
};

}  // namespace llmc
