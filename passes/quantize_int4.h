// quantize-int4: weight-only round-to-nearest (RTN), 4 or 8 bits, block-wise along K.
//
// Before:  Y = MatMul(X, W), W [K, N] constant float32
// After:   Y = MatMulNBits(X, W_Q4, W_scales[, W_zero_points]) (com.microsoft; ONNX Runtime runs it)
//          (selection, mixed precision and the rewrite: passes/nbits_common.h)
// Preconditions: none (no calibration).
// Math:    each block of `block-size` inputs of one output feature gets its own range (ONNX
//          Runtime's choice, passes/nbits_quant.h) and every weight its nearest code: the same
//          codes as ONNX Runtime's MatMulNBitsQuantizer in its default (RTN) mode.
#pragma once
#include "passes/pass.h"

namespace llmc {

class QuantizeInt4 : public Pass {
 public:
  std::vector<OptionSpec> options() const override;
  Status check(const PassOptions& resolved) const override;
  Result<PassResult> run(Model& model, const PassOptions& options, PassContext& context) override;
};

}  // namespace llmc
