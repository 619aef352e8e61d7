// quantize-int4-gptq: GPTQ (Frantar et al. 2023, "GPTQ: Accurate Post-Training Quantization for
// Generative Pre-trained Transformers"), written as MatMulNBits like quantize-int4.
//
// Before:  Y = MatMul(X, W), W [K, N] constant float32
// After:   Y = MatMulNBits(X, ...) (passes/nbits_common.h): codes chosen so that X·Ŵ stays close
//          to X·W on the calibration tokens, not just Ŵ close to W.
// Preconditions: calibration samples with at least K tokens for every quantised weight with K
//          inputs (the float64 XᵀX of each input, from the activation-statistics service); all
//          Hessians come from the float model in one calibration pass.
// Math:    per output row w ∈ R^K, with H = XᵀX/rows + λI (passes/hessian.h: λ = damp · mean
//          diag, raised 10x while the Cholesky factor fails, and reported) and H⁻¹ = UᵀU, sweep
//          the inputs in lazy blocks of `lazy-block`: when the sweep reaches the first input of
//          a quantisation block, that block's range is chosen from the weights as updated so
//          far; each input k is quantised, err = (w_k − q_k) / U_kk, w_j −= err · U_kj for the
//          later inputs of the lazy block, and the inputs past it get Σ err · U at once.
//          act-order sweeps the inputs by decreasing H_kk (the ones that matter most are
//          quantised while the most freedom is left to compensate them); quantisation blocks
//          stay contiguous in the original order (a block's range is chosen when the sweep
//          first reaches any of its inputs), so no g_idx is written and every runtime reads it.
#pragma once
#include <cstdint>

#include "passes/hessian.h"
#include "passes/nbits_quant.h"
#include "passes/pass.h"
#include "runtime/thread_pool.h"

namespace llmc {

class QuantizeInt4Gptq : public Pass {
 public:
  std::vector<OptionSpec> options() const override;
  Status check(const PassOptions& resolved) const override;
  bool needs_calibration() const override { return true; }
  Result<PassResult> run(Model& model, const PassOptions& options, PassContext& context) override;
};

// The sweep on `rows` output rows of w (row-major [rows, K], float64, updated in place) with the
// factor `h` of the inputs in sweep order `order` (h.K entries; the Hessian was permuted alike):
// the codes and ranges of those rows. Rows split across `pool` (results do not depend on it).
NBitsCodes gptq_codes(std::vector<double>& w, int64_t rows, const PreparedHessian& h, const std::vector<int64_t>& order,
                      const NBitsFormat& format, int64_t lazy_block, rt::ThreadPool* pool);

}  // namespace llmc
