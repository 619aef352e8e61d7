// factorize-svd-llm: SVD-LLM's truncation-aware whitening (Wang et al. 2024, "SVD-LLM:
// Truncation-aware Singular Value Decomposition for Large Language Model Compression").
//
// Before:  Y = MatMul(X, W),  W [K, N]
// After:   Y = MatMul(MatMul(X, A), B), as factorize-svd (passes/lowrank_common.h).
// Preconditions: calibration samples with at least K tokens reaching each factorised input
//          (the float64 XᵀX, from the activation-statistics service).
// Math:    XᵀX/rows = L Lᵀ (Cholesky; when numerically singular, λI is added, raised 10× until
//          it factors, and reported), Lᵀ W = U Σ Vᵀ, A = L⁻ᵀ U_r Σ_r^½, B = Σ_r^½ V_rᵀ. Since
//          X L⁻ᵀ has orthonormal columns, ‖X W − X A B‖² / rows = Σ_{i≥r} σ_i²: each discarded
//          singular value is exactly the output error it costs, so truncation minimises the
//          output error on the calibration tokens rather than the weight error.
#pragma once
#include "passes/lowrank_common.h"

namespace llmc {

class FactorizeSvdLlm : public LowRankPass {
 public:
  FactorizeSvdLlm() : LowRankPass(LowRankMethod::kSvdLlm, "factorize-svd-llm") {}
};

}  // namespace llmc
