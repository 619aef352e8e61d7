// The low-rank core against closed forms, in float64: on a matrix with a known spectrum the
// truncation error is exactly the discarded singular values (Eckart–Young); on correlated
// inputs SVD-LLM's output error equals its discarded whitened singular values and is below
// plain SVD's; the error predicted per component (the gains rank allocation reads) is the error
// measured; rank allocation by budget.
#include <Eigen/Dense>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "passes/lowrank_common.h"
#include "passes/lowrank_factor.h"

using namespace llmc;

namespace {

using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

Mat gaussian(int64_t r, int64_t c, std::mt19937& rng) {
  std::normal_distribution<double> nd;
  Mat m(r, c);
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) m(i, j) = nd(rng);
  return m;
}

Mat orthonormal(int64_t r, int64_t c, std::mt19937& rng) {
  Eigen::MatrixXd q = Eigen::HouseholderQR<Eigen::MatrixXd>(gaussian(r, c, rng)).householderQ();
  return q.leftCols(c);
}

std::vector<float> to_float(const Mat& m) {
  std::vector<float> v(size_t(m.size()));
  for (int64_t i = 0; i < m.rows(); ++i)
    for (int64_t j = 0; j < m.cols(); ++j) v[size_t(i * m.cols() + j)] = float(m(i, j));
  return v;
}

// A·B from the float32 factors, in float64.
Mat product(const LowRankDecomposition& d, int64_t r) {
  std::vector<float> a, b;
  d.factors(r, a, b);
  Mat A(d.K(), r), B(r, d.N());
  for (int64_t i = 0; i < A.size(); ++i) A.data()[i] = a[size_t(i)];
  for (int64_t i = 0; i < B.size(); ++i) B.data()[i] = b[size_t(i)];
  return A * B;
}

}  // namespace

TEST_CASE("lowrank svd: Frobenius error equals the discarded singular values (Eckart-Young)", "[passes][lowrank]") {
  std::mt19937 rng(7);
  for (auto [K, N] : {std::pair<int64_t, int64_t>{48, 80}, {96, 40}}) {
    const int64_t R = std::min(K, N);
    std::vector<double> s(static_cast<size_t>(R));
    for (int64_t i = 0; i < R; ++i) s[size_t(i)] = 10.0 * std::pow(0.85, double(i));  // known, decaying spectrum
    const Mat W = orthonormal(K, R, rng) * Eigen::Map<Eigen::VectorXd>(s.data(), R).asDiagonal() *
                  orthonormal(N, R, rng).transpose();
    // Stored as float32: the spectrum of the stored matrix is s to ~1e-7 relative.
    const std::vector<float> w = to_float(W);
    Mat Wf(K, N);
    for (int64_t i = 0; i < Wf.size(); ++i) Wf.data()[i] = w[size_t(i)];
    LowRankInputs in;
    in.w = w.data();
    in.K = K;
    in.N = N;
    in.what = "test";
    auto d = LowRankDecomposition::compute(in);
    REQUIRE(d.is_ok());
    REQUIRE(d->sigma().size() == size_t(R));
    for (int64_t i = 0; i < 20; ++i) CHECK(d->sigma()[size_t(i)] == Approx(s[size_t(i)]).epsilon(1e-5));
    for (int64_t r : {1, 5, 12, 20}) {
      INFO("K " << K << " N " << N << " rank " << r);
      double discarded = 0;
      for (int64_t i = r; i < R; ++i) discarded += s[size_t(i)] * s[size_t(i)];
      const double err = (Wf - product(*d, r)).norm();
      CHECK(err == Approx(std::sqrt(discarded)).epsilon(1e-4));
      CHECK(d->error_at(r) == Approx(discarded).epsilon(1e-4));  // what rank allocation reads
    }
  }
}

TEST_CASE("lowrank svd-llm: whitened truncation has less output error than svd, equal to its discarded values",
          "[passes][lowrank]") {
  std::mt19937 rng(11);
  const int64_t K = 64, N = 96, T = 2000;
  // Correlated inputs with very unequal channel scales (as transformer activations are).
  Mat mix = gaussian(K, K, rng);
  for (int64_t k = 0; k < K; ++k) mix.row(k) *= std::pow(0.9, double(k));
  const Mat X = gaussian(T, K, rng) * mix;
  const Mat W = gaussian(K, N, rng);
  const std::vector<float> w = to_float(W);
  Mat Wf(K, N);
  for (int64_t i = 0; i < Wf.size(); ++i) Wf.data()[i] = w[size_t(i)];
  Mat G = X.transpose() * X;
  std::vector<double> gram(G.data(), G.data() + G.size());
  std::vector<double> mean_abs(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) mean_abs[size_t(k)] = X.col(k).cwiseAbs().mean();

  auto decompose = [&](LowRankMethod m) {
    LowRankInputs in;
    in.w = w.data();
    in.K = K;
    in.N = N;
    in.method = m;
    in.gram = &gram;
    in.rows = T;
    in.mean_abs = &mean_abs;
    in.what = "test";
    auto d = LowRankDecomposition::compute(in);
    REQUIRE(d.is_ok());
    return std::move(d).value();
  };
  const LowRankDecomposition svd = decompose(LowRankMethod::kSvd), asvd = decompose(LowRankMethod::kAsvd),
                             llm = decompose(LowRankMethod::kSvdLlm);
  CHECK(llm.raises() == 0);
  for (int64_t r : {4, 16, 32}) {
    INFO("rank " << r);
    auto out_err2 = [&](const LowRankDecomposition& d) { return (X * (Wf - product(d, r))).squaredNorm() / double(T); };
    const double e_svd = out_err2(svd), e_asvd = out_err2(asvd), e_llm = out_err2(llm);
    double discarded = 0;
    for (size_t i = size_t(r); i < llm.sigma().size(); ++i) discarded += llm.sigma()[i] * llm.sigma()[i];
    std::printf("rank %2lld: output error² svd %.4f, asvd %.4f, svd-llm %.4f (discarded whitened σ² %.4f)\n",
                (long long)r, e_svd, e_asvd, e_llm, discarded);
    CHECK(e_llm == Approx(discarded).epsilon(1e-4));
    CHECK(e_llm < e_svd);
    CHECK(e_llm <= e_asvd);
    // The per-component prediction is the measured error, for every method.
    CHECK(svd.error_at(r) == Approx(e_svd).epsilon(1e-4));
    CHECK(asvd.error_at(r) == Approx(e_asvd).epsilon(1e-4));
    CHECK(llm.error_at(r) == Approx(e_llm).epsilon(1e-4));
  }
}

TEST_CASE("lowrank svd-llm: singular XᵀX is damped and reported, dead inputs stay finite", "[passes][lowrank]") {
  std::mt19937 rng(3);
  const int64_t K = 32, N = 24, T = 10;  // fewer tokens than inputs: rank(XᵀX) = 10
  Mat X = gaussian(T, K, rng);
  X.col(5).setZero();  // an input never active
  const std::vector<float> w = to_float(gaussian(K, N, rng));
  Mat G = X.transpose() * X;
  std::vector<double> gram(G.data(), G.data() + G.size());
  LowRankInputs in;
  in.w = w.data();
  in.K = K;
  in.N = N;
  in.method = LowRankMethod::kSvdLlm;
  in.gram = &gram;
  in.rows = T;
  in.what = "test";
  auto d = LowRankDecomposition::compute(in);
  REQUIRE(d.is_ok());
  CHECK(d->raises() > 0);
  CHECK(d->lambda() > 0);
  std::vector<float> a, b;
  d->factors(8, a, b);
  for (float v : a) REQUIRE(std::isfinite(v));
  std::vector<double> zeros(size_t(K * K), 0.0);
  in.gram = &zeros;
  auto dead = LowRankDecomposition::compute(in);
  REQUIRE_FALSE(dead.is_ok());
  CHECK_THAT(dead.status().message(), Catch::Contains("zero on every calibration token"));
}

TEST_CASE("lowrank rank allocation: ratio, energy and a parameter budget bought by error per parameter",
          "[passes][lowrank]") {
  CHECK(max_useful_rank(64, 64) == 31);  // 32·128 = 64·64 saves nothing
  CHECK(max_useful_rank(64, 172) == 46);
  // Two layers of equal shape: one with a fast-decaying spectrum, one flat.
  RankCandidate fast, flat;
  fast.K = flat.K = 64;
  fast.N = flat.N = 64;
  for (int i = 0; i < 31; ++i) {
    fast.gains.push_back(std::pow(0.5, i));
    flat.gains.push_back(1.0);
  }
  fast.total = 2.0;
  flat.total = 64.0;
  for (int i = 0; i < 64; ++i) {
    fast.sigma.push_back(std::pow(0.5, i / 2.0));
    flat.sigma.push_back(1.0);
  }
  auto ratio = allocate_ranks({fast, flat}, {RankBudget::kRankRatio, 0.25});
  REQUIRE(ratio.is_ok());
  CHECK(ratio.value() == std::vector<int64_t>{16, 16});
  auto too_big = allocate_ranks({fast, flat}, {RankBudget::kRankRatio, 0.5});  // rank 32 saves nothing
  REQUIRE(too_big.is_ok());
  CHECK(too_big.value() == std::vector<int64_t>{0, 0});
  auto energy = allocate_ranks({fast, flat}, {RankBudget::kEnergy, 0.99});
  REQUIRE(energy.is_ok());
  CHECK(energy.value()[0] == 7);  // Σ_{i<7} 0.5^i / Σ 0.5^i ≥ 0.99
  CHECK(energy.value()[1] == 0);  // the flat one needs 64 components: stays dense
  // 25% of 2·4096 parameters = 2048 = 16 components of 128: the flat layer's components each
  // remove 1/64 of its error, the fast one's beyond the first few almost nothing.
  auto budget = allocate_ranks({fast, flat}, {RankBudget::kParamRatio, 0.25});
  REQUIRE(budget.is_ok());
  CHECK(budget.value()[0] + budget.value()[1] == 16);
  CHECK(budget.value()[0] < 8);
  CHECK(budget.value()[1] > 8);
  // Whole groups of 8 components: ranks multiples of 8, the budget still held.
  RankBudget by8{RankBudget::kParamRatio, 0.375};  // 24 components of 128 parameters
  by8.multiple = 8;
  auto grouped = allocate_ranks({fast, flat}, by8);
  REQUIRE(grouped.is_ok());
  for (int64_t r : grouped.value()) CHECK(r % 8 == 0);
  CHECK((grouped.value()[0] + grouped.value()[1]) * 128 <= 3072);
  CHECK(grouped.value()[1] > grouped.value()[0]);
  RankBudget ratio8{RankBudget::kRankRatio, 0.2};  // ceil(12.8) = 13 -> 16
  ratio8.multiple = 8;
  CHECK(allocate_ranks({fast, flat}, ratio8).value() == std::vector<int64_t>{16, 16});
  auto impossible = allocate_ranks({fast, flat}, {RankBudget::kParamRatio, 0.01});
  REQUIRE_FALSE(impossible.is_ok());
  CHECK_THAT(impossible.status().message(), Catch::Contains("rank 1 in each already needs 256"));
}
