// prune-sparsegpt: SparseGPT (Frantar & Alistarh 2023, "SparseGPT: Massive Language Models Can
// Be Accurately Pruned in One-Shot").
//
// Before:  Y = MatMul(X, W)
// After:   Y = MatMul(X, Ŵ): Ŵ has exactly the requested zeros (per output row: floor(s·K), or
//          N of every M along the input dimension kept), and its kept weights are moved to
//          compensate, so that X Ŵ stays close to X W on the calibration tokens.
// Preconditions: calibration samples with at least K tokens for every pruned weight with K
//          inputs (the float64 XᵀX of each input, from the activation-statistics service). The
//          LM head stays dense unless include names it. All Hessians come from the dense
//          model in one calibration pass (not re-measured layer by layer after pruning).
// Math:    per output row w ∈ R^K, with H = XᵀX/rows + λI (passes/hessian.h) and H⁻¹ = UᵀU,
//          sweep the inputs in blocks of B: at each block start (or each M-group) the mask takes
//          the lowest w_k² / U_kk² of the block (the OBS error of removing w_k given the inputs
//          still free); for each input k: err = (w_k − q_k) / U_kk with q_k = 0 if masked, else
//          w_k; w_j −= err · U_kj for j > k in the block, and after the block the inputs past
//          it get Σ err · U (one matrix product: the lazy batch update).
#pragma once
#include <cstdint>

#include "passes/hessian.h"
#include "passes/pass.h"
#include "runtime/thread_pool.h"

namespace llmc {

class PruneSparseGpt : public Pass {
 public:
  std::vector<OptionSpec> options() const override;
  Status check(const PassOptions& resolved) const override;
  bool needs_calibration() const override { return true; }
  Result<PassResult> run(Model& model, const PassOptions& options, PassContext& context) override;
};

// The sweep on `rows` rows of w (row-major [rows, h.K], float64, in place): masked weights end
// exactly 0. Unstructured (m == 0): each block [b0, b1) zeroes floor(s·b1) − floor(s·b0) per
// row, so every row ends with floor(s·K) zeros. N:M: block % m == 0. Rows are processed in
// fixed chunks, so the result does not depend on the pool's thread count. `pool` may be null.
void sparsegpt_prune_rows(double* w, int64_t rows, const PreparedHessian& h, double sparsity, int n, int m,
                          int64_t block, rt::ThreadPool* pool);

}  // namespace llmc
