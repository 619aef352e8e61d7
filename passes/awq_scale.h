// awq-scale: AWQ (Lin et al. 2024, "AWQ: Activation-aware Weight Quantization for LLM
// Compression and Acceleration"): per-input-channel scales that protect the weights of the
// channels with large activations, and weight clipping, searched for the quantiser that follows
// (run quantize-int4 after it with the same bits, block-size and symmetric).
//
// Before:  Y_i = MatMul(X, W_i)                 the MatMuls reading one activation X
// After:   Y_i = MatMul(X / s, clip(diag(s) W_i))  the same function in float up to the clipping;
//          1/s folded into X's producer (norm scale, or the up projection's columns for a Llama
//          MLP's down projection), else an inserted Mul (passes/channel_scaling.h).
// Preconditions: calibration samples (mean |x| and XᵀX of every scaled input).
// Math:    s = mean|x|^α, normalised by sqrt(max s · min s); α on a grid of `grid` points in
//          [0, 1) (α = 0 is plain RTN, so the choice is never worse than RTN on the calibration
//          tokens), chosen per group by the output error Σ_i tr(ΔW_iᵀ H ΔW_i), H = XᵀX / rows,
//          ΔW_i = W_i − diag(1/s) Q(diag(s) W_i) with Q the block-wise RTN of the next pass
//          (measured on at most 512 evenly spaced output features per weight). Clipping: per
//          output feature and block, the threshold t = (1 − i/20)·max|v| (i < 10) of the scaled
//          block v minimising the block's own output error (δᵀ H_bb δ, the block's slice of H
//          for X / s) and v clamped to [−t, t].
#pragma once
#include "passes/pass.h"

namespace llmc {

class AwqScale : public Pass {
 public:
  std::vector<OptionSpec> options() const override;
  Status check(const PassOptions& resolved) const override;
  bool needs_calibration() const override { return true; }
  Result<PassResult> run(Model& model, const PassOptions& options, PassContext& context) override;
};

}  // namespace llmc
