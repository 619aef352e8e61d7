// factorize-asvd: activation-aware SVD (Yuan et al. 2023, "ASVD: Activation-aware Singular
// Value Decomposition for Compressing Large Language Models").
//
// Before:  Y = MatMul(X, W),  W [K, N]
// After:   Y = MatMul(MatMul(X, A), B), as factorize-svd (passes/lowrank_common.h).
// Preconditions: calibration samples (mean |x_k| of each input channel; XᵀX too for a
//          param-ratio budget, which allocates ranks by output error).
// Math:    S = diag(mean|x_k|^α) (α = 0.5 by default), S W = U Σ Vᵀ, A = S⁻¹ U_r Σ_r^½,
//          B = Σ_r^½ V_rᵀ: the weights of inputs that carry large activations are kept more
//          exactly. Inputs never active get the smallest scale seen (S stays invertible).
#pragma once
#include "passes/lowrank_common.h"

namespace llmc {

class FactorizeAsvd : public LowRankPass {
 public:
  FactorizeAsvd() : LowRankPass(LowRankMethod::kAsvd, "factorize-asvd") {}
};

}  // namespace llmc
