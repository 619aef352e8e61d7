// Shared by factorize-svd, factorize-asvd and factorize-svd-llm: the options (one budget of
// three), which MatMul/Gemm weights are factorised, the rank of each, the graph rewrite and the
// report. A pass supplies only its method (passes/lowrank_factor.h).
//
// Budgets (one; param-ratio 0.8 when none is given):
//   rank-ratio r   every layer keeps ceil(r · min(K, N)) components
//   energy e       every layer keeps the fewest components holding e of its σ² (of M = T·W)
//   param-ratio p  the factorised layers together keep at most p of their parameters; ranks are
//                  bought greedily, one component at a time, where it removes the most relative
//                  output error per parameter (the least output error any factorisation of that
//                  rank leaves on the calibration tokens, the whitened spectrum, when there are
//                  any; the weight error otherwise), the same ranks for every method; every
//                  layer keeps at least rank 1;
//                  allocation=uniform: every layer keeps p of its own parameters instead
// rank-multiple m makes every rank a multiple of m (the greedy buys m components at a time).
// A layer is factorised only where r·(K + N) < K·N; otherwise it stays dense, and says so.
//
// Rewrite (names keep the layer's, so reports and --exclude still find it):
//   Y = MatMul(X, W)  →  T = MatMul(X, W.lowrank_a)  named <node>.lowrank_a
//                        Y = MatMul(T, W.lowrank_b)  named <node>.lowrank_b
// Gemm keeps its bias, alpha, beta and transB on the second product.
#pragma once
#include <string>
#include <vector>

#include "passes/lowrank_factor.h"
#include "passes/pass.h"
#include "passes/quant_utils.h"  // kLowRankASuffix, kLowRankBSuffix

namespace llmc {

struct RankBudget {
  enum Kind { kRankRatio, kEnergy, kParamRatio } kind = kRankRatio;
  double value = 0;
  bool uniform = false;  // param-ratio: every layer keeps the same fraction instead of the greedy split
  int64_t multiple = 1;  // every rank a multiple of this (rank-ratio and energy round up, budgets down)
  std::string describe() const;  // "param-ratio 0.6"
};

// One layer as rank allocation sees it: its size and the error a rank leaves.
struct RankCandidate {
  int64_t K = 0, N = 0;
  std::vector<double> gains;  // error removed by each component, in keeping order
  double total = 0;           // error at rank 0
  std::vector<double> sigma;  // all singular values (energy)
};

// The largest rank that still saves parameters: r·(K + N) < K·N.
int64_t max_useful_rank(int64_t K, int64_t N);

// The rank of every layer; 0 means "stays dense" (no rank below its max useful one meets the
// budget). param-ratio fails (invalid_input) when rank 1 everywhere already exceeds it.
Result<std::vector<int64_t>> allocate_ranks(const std::vector<RankCandidate>& layers, const RankBudget& budget);

class LowRankPass : public Pass {
 public:
  LowRankPass(LowRankMethod method, std::string name) : method_(method), name_(std::move(name)) {}
  std::vector<OptionSpec> options() const override;
  Status check(const PassOptions& resolved) const override;
  bool needs_calibration() const override { return method_ != LowRankMethod::kSvd; }
  bool uses_calibration(const PassOptions& resolved) const override;
  bool compute_bound() const override { return true; }  // a float64 SVD per layer, calibration or not
  Result<PassResult> run(Model& model, const PassOptions& options, PassContext& context) override;

 private:
  LowRankMethod method_;
  std::string name_;
};

}  // namespace llmc
