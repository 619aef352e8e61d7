// smooth-quant: SmoothQuant (Xiao et al. 2023). Migrates activation outliers into the weights
// so that per-tensor int8 activations lose less; run it before quantize-int8-static/-dynamic.
//
// Before:  Y_i = MatMul(X, W_i)                  for every MatMul/Gemm i reading X with a constant weight
// After:   Y_i = MatMul(X / s, diag(s) W_i)      the same function, up to float rounding, where
//          X / s is folded into X's producer when X has no other readers:
//            X = Mul(gamma, y) or Mul(y, gamma), gamma a 1-D [K] initializer  -> gamma / s
//            X = LayerNormalization / SimplifiedLayerNormalization / RMSNormalization(y, scale[, bias])
//                                                                          -> scale / s, bias / s
//          and is otherwise a new Mul(X, 1/s) feeding the group (unless fold-only).
// Preconditions: calibration samples in PassContext::calibration ("smooth-quant needs --calib DATA").
// Math:    per input channel j (last axis of X, row j of a [K, N] weight; column of a transB one):
//          s_j = max|X_j|^alpha / (max_i max_n |W_i[j, n]|)^(1 - alpha), clamped to [1e-5, 1e5],
//          s_j = 1 where either maximum is 0. max|X_j| over the calibration samples.
//          A weight or norm scale also read outside the group is copied, never changed in place.
// Options: alpha=0.5 (in [0, 1]), exclude=NAME|REGEX,..., op-types=MatMul,Gemm (default MatMul),
//          fold-only (skip groups whose 1/s would need an inserted Mul).
#pragma once
#include "passes/pass.h"

namespace llmc {

class SmoothQuant : public Pass {
 public:
  std::vector<OptionSpec> options() const override;
  bool needs_calibration() const override { return true; }
  Result<PassResult> run(Model& model, const PassOptions& options, PassContext& context) override;
};

}  // namespace llmc
