// The layer Hessian that SparseGPT (and GPTQ) compensate their errors with: H = XᵀX / rows of a
// weight's input over the calibration tokens, damped, and the upper Cholesky factor U of H⁻¹
// (H⁻¹ = UᵀU). Row k of U, divided by U_kk, is how the weights after input k must move when
// weight k changes while inputs 0..k-1 are already fixed (the OBS update restricted to the
// inputs not processed yet), so one factor serves every column of the sweep.
//
// Preparation (as SparseGPT / GPTQ do it):
//   dead inputs (H_kk = 0: the channel is zero on every calibration token) get H_kk = 1 and
//   the caller zeroes their weights: they never contribute to the output, and the 1 keeps H
//   invertible without touching the other inputs;
//   λ = damp · mean(diag H) is added to the diagonal; when the Cholesky factor fails or has a
//   pivot below 1e-10 · max(diag H) (XᵀX numerically singular: collinear channels, too few
//   distinct tokens), λ is raised 10× and the factorisation retried, up to 10 times.
// Everything is float64 (Eigen). Deterministic: no threads, fixed order.
#pragma once
#include <cstdint>
#include <vector>

#include "ir/status.h"

namespace llmc {

struct PreparedHessian {
  int64_t K = 0;
  std::vector<double> u;      // row-major [K, K], upper triangular: H⁻¹ = UᵀU, H damped
  std::vector<int64_t> dead;  // inputs that were zero on every token: zero their weights
  double lambda = 0;          // damping added to the diagonal in the end
  double lambda_initial = 0;  // damp · mean(diag H): what λ started at
  int raises = 0;             // times λ was multiplied by 10 (0: XᵀX was well enough conditioned)
};

// The checks on a weight's input statistics that a pass compensating by XᵀX (SparseGPT, GPTQ,
// AWQ's search) makes before any weight changes: `channels` (the input's last axis) equals the
// weight's K, and at least K tokens reached it: fewer leave XᵀX of rank < K, and the fit would
// follow the few tokens seen, not the layer, so that is refused rather than hidden by damping.
Status check_gram_input(const std::string& node, const std::string& input, int64_t channels, int64_t rows, int64_t K,
                        const std::string& pass);

// `gram` is the full symmetric Σ x xᵀ [K, K] over `rows` rows (calibration/activation_statistics.h).
// Errors (rows == 0, not finite, singular even after raising λ) are invalid_input naming `what`.
Result<PreparedHessian> prepare_hessian(const std::vector<double>& gram, int64_t K, int64_t rows, double damp,
                                        const std::string& what);

}  // namespace llmc
