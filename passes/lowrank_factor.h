// The numerical core of the low-rank passes: one weight W [K, N] (y = x W) decomposed once,
// truncated at any rank. Three ways to choose what the truncation keeps, one algorithm:
// decompose M = T·W, keep the top r singular triplets of M, and undo T in the left factor:
//
//   svd      T = I               keeps what minimises the weight error ‖W − AB‖ (Eckart–Young)
//   asvd     T = diag(s), s_k = mean|x_k|^α   (ASVD, Yuan et al. 2023): inputs that carry large
//            activations weigh more, so their weights are reproduced better
//   svd-llm  T = Lᵀ with XᵀX = L Lᵀ (SVD-LLM, Wang et al. 2024, truncation-aware whitening):
//            X L⁻ᵀ has orthonormal columns, so ‖X W − X A B‖ = ‖M − M_r‖, the output error on
//            the calibration tokens is exactly the discarded singular values of M
//
// With M = U Σ Vᵀ: A = T⁻¹ U_r Σ_r^½ [K, r], B = Σ_r^½ V_rᵀ [r, N] (the square root split
// evenly, so neither factor holds the whole dynamic range: int8 quantisation of both after
// this pass loses less). The output error of truncating at r is additive over the dropped
// components: ‖X(W − A B)‖² = Σ_{i≥r} σ_i² ‖X T⁻¹ u_i‖² (the v_i are orthonormal), which is
// what rank allocation by budget reads (gains below) without forming X.
//
// The SVD goes through the eigendecomposition of the smaller of M Mᵀ and Mᵀ M in float64
// (K³ rather than K²N work for the iterations); singular values below 1e-7·σ_max lose
// relative precision that way, and only components well above that are ever kept.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ir/status.h"

namespace llmc {

enum class LowRankMethod { kSvd, kAsvd, kSvdLlm };

struct LowRankInputs {
  const float* w = nullptr;  // [K, N] row-major, or [N, K] when `transposed`
  bool transposed = false;
  int64_t K = 0, N = 0;
  LowRankMethod method = LowRankMethod::kSvd;
  // Σ x xᵀ over `rows` calibration rows [K, K] (svd-llm: required; otherwise optional, for
  // output-error gains; without it gains are weight errors).
  const std::vector<double>* gram = nullptr;
  int64_t rows = 0;
  const std::vector<double>* mean_abs = nullptr;  // asvd: mean |x_k| [K]
  double alpha = 0.5;                             // asvd exponent
  int64_t max_rank = 0;  // components kept available (0: min(K, N))
  // svd/asvd with XᵀX: also compute best_gains() (a whitening and an eigenvalue solve). Off for
  // a second decomposition of a layer already ranked (ASVD's alpha search): the spectrum does
  // not depend on the method's scaling, and nothing would read it.
  bool best_gains = true;
  std::string what;  // names the layer in messages
};

class LowRankDecomposition {
 public:
  static Result<LowRankDecomposition> compute(const LowRankInputs& in);

  int64_t K() const { return K_; }
  int64_t N() const { return N_; }
  int64_t available() const { return int64_t(sigma_.size()); }  // components held (≤ max_rank)
  // Singular values of M, descending; all min(K, N) of them (energy criteria read the tail).
  const std::vector<double>& sigma() const { return all_sigma_; }
  // gain(i): squared error removed by keeping component i (output error when XᵀX was given,
  // else weight error), for i < available().
  const std::vector<double>& gains() const { return gains_; }
  // Squared error at rank 0: ‖X W‖² (or ‖W‖²). error(r) = total − Σ_{i<r} gain(i).
  double total() const { return total_; }
  // The least output error any rank-r factorisation can leave, as gains: the whitened σ_i² (what
  // svd-llm keeps) whenever XᵀX was given, else gains(). Rank allocation reads these, so every
  // method gets the same ranks for a layer, set by how compressible the layer is, and methods
  // differ only in what they keep at those ranks.
  const std::vector<double>& best_gains() const { return best_gains_.empty() ? gains_ : best_gains_; }
  double error_at(int64_t r) const;
  // svd-llm: damping added to XᵀX/rows before the Cholesky factor (0 when none was needed),
  // and how many times it was raised.
  double lambda() const { return lambda_; }
  int raises() const { return raises_; }

  // A [K, r] and B [r, N], row-major float32, r ≤ available().
  void factors(int64_t r, std::vector<float>& a, std::vector<float>& b) const;

 private:
  int64_t K_ = 0, N_ = 0;
  LowRankMethod method_ = LowRankMethod::kSvd;
  std::vector<double> all_sigma_, sigma_, gains_, best_gains_;
  std::vector<double> left_;   // T⁻¹ U for the kept components, [K, available] row-major
  std::vector<double> right_;  // V, [N, available] row-major
  double total_ = 0, lambda_ = 0;
  int raises_ = 0;
};

// The least rank whose kept σ² reach `energy` of Σσ² (energy in (0, 1]).
int64_t rank_for_energy(const std::vector<double>& sigma, double energy);

}  // namespace llmc
