// prune-magnitude: unstructured (or N:M) magnitude pruning of MatMul/Gemm weights.
//
// Before:  Y = MatMul(X, W)
// After:   Y = MatMul(X, W ⊙ mask), the same graph; W keeps its shape and dtype, the smallest
//          |w| are exactly 0 (later passes keep them 0: int8 and fp16 map 0 to 0).
// Preconditions: none (no calibration). The LM head stays dense unless include names it.
// Math:    score |w|; per weight (scope=layer, default), per output row or across all pruned
//          weights; or N:M along the input dimension (see passes/prune_common.h).
#pragma once
#include "passes/pass.h"

namespace llmc {

class PruneMagnitude : public Pass {
 public:
  std::vector<OptionSpec> options() const override;
  Status check(const PassOptions& resolved) const override;
  Result<PassResult> run(Model& model, const PassOptions& options, PassContext& context) override;
};

}  // namespace llmc
