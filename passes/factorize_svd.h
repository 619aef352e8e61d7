// factorize-svd: plain truncated SVD of each MatMul/Gemm weight.
//
// Before:  Y = MatMul(X, W),  W [K, N]
// After:   Y = MatMul(MatMul(X, A), B),  A [K, r], B [r, N], only where r·(K + N) < K·N
//          (names, budgets and the Gemm form: passes/lowrank_common.h).
// Preconditions: none; with calibration samples, param-ratio allocates ranks by output error.
// Math:    W = U Σ Vᵀ, A = U_r Σ_r^½, B = Σ_r^½ V_rᵀ: the best rank-r approximation of W in
//          Frobenius norm, ‖W − AB‖² = Σ_{i≥r} σ_i² (Eckart–Young), blind to which inputs matter.
#pragma once
#include "passes/lowrank_common.h"

namespace llmc {

class FactorizeSvd : public LowRankPass {
 public:
  FactorizeSvd() : LowRankPass(LowRankMethod::kSvd, "factorize-svd") {}
};

}  // namespace llmc
