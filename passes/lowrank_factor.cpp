#include "passes/lowrank_factor.h"

#include <Eigen/Cholesky>
#include <Eigen/Dense>
#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>

namespace llmc {

namespace {

using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ColMat = Eigen::MatrixXd;

constexpr int kMaxRaises = 12;
constexpr double kMinRelativePivot = 1e-10;  // L_kk² against max diag(XᵀX/rows), as passes/hessian.cpp
constexpr double kFirstDamp = 1e-8;          // first λ, as a fraction of mean diag(XᵀX/rows)

// The lower Cholesky factor of H (+ λI when H alone is numerically singular).
Result<Mat> whitening_factor(const Mat& H, const std::string& what, double& lambda, int& raises) {
  const double mean_diag = H.diagonal().mean(), max_diag = H.diagonal().maxCoeff();
  if (!(max_diag > 0)) return invalid_input(what, ": the input is zero on every calibration token (XᵀX = 0)");
  lambda = 0;
  for (raises = 0;; ++raises) {
    Mat Hd = H;
    Hd.diagonal().array() += lambda;
    Eigen::LLT<Mat> llt(Hd);
    if (llt.info() == Eigen::Success) {
      Mat L = llt.matrixL();
      const double min_pivot = L.diagonal().cwiseAbs2().minCoeff();
      if (std::isfinite(min_pivot) && min_pivot >= kMinRelativePivot * max_diag) return L;
    }
    if (raises == kMaxRaises)
      return invalid_input(what, ": XᵀX stays singular with damping raised to λ = ", lambda);
    lambda = lambda == 0 ? kFirstDamp * mean_diag : lambda * 10.0;
  }
}

}  // namespace

Result<LowRankDecomposition> LowRankDecomposition::compute(const LowRankInputs& in) {
  const int64_t K = in.K, N = in.N;
  if (K <= 0 || N <= 0) return invalid_input(in.what, ": empty weight");
  LowRankDecomposition d;
  d.K_ = K;
  d.N_ = N;
  d.method_ = in.method;
  Mat W(K, N);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) W(k, n) = in.w[in.transposed ? n * K + k : k * N + n];
  if (!W.allFinite()) return invalid_input(in.what, ": the weight holds a NaN or Inf");

  Mat G;  // XᵀX / rows
  if (in.gram) {
    if (in.rows <= 0) return invalid_input(in.what, ": no calibration rows reach this layer's input");
    if (int64_t(in.gram->size()) != K * K)
      return invalid_input(in.what, ": XᵀX has ", in.gram->size(), " entries, expected ", K, " x ", K);
    G = Eigen::Map<const Mat>(in.gram->data(), K, K) / double(in.rows);
    if (!G.allFinite()) return invalid_input(in.what, ": XᵀX holds a NaN or Inf");
  }

  // M = T W, and how to undo T on a left singular vector.
  Mat M;
  Eigen::VectorXd scale;  // asvd
  Mat L;                  // svd-llm
  switch (in.method) {
    case LowRankMethod::kSvd:
      M = W;
      break;
    case LowRankMethod::kAsvd: {
      if (!in.mean_abs || int64_t(in.mean_abs->size()) != K)
        return invalid_input(in.what, ": asvd needs the mean |x| of each of the ", K, " inputs");
      scale.resize(K);
      double smallest = 0;
      for (int64_t k = 0; k < K; ++k) {
        scale[k] = std::pow((*in.mean_abs)[k], in.alpha);
        if (scale[k] > 0 && (smallest == 0 || scale[k] < smallest)) smallest = scale[k];
      }
      // An input never active on the calibration tokens keeps the least weight seen, not 0
      // (which could not be undone).
      for (int64_t k = 0; k < K; ++k)
        if (!(scale[k] > 0) || !std::isfinite(scale[k])) scale[k] = smallest > 0 ? smallest : 1.0;
      M = scale.asDiagonal() * W;
      break;
    }
    case LowRankMethod::kSvdLlm: {
      if (!in.gram) return invalid_input(in.what, ": svd-llm needs XᵀX of the layer's input");
      LLMC_ASSIGN_OR_RETURN(L, whitening_factor(G, in.what, d.lambda_, d.raises_));
      M = L.transpose() * W;
      break;
    }
  }

  const int64_t small = std::min(K, N);
  const bool left_side = K <= N;
  const int64_t R = in.max_rank > 0 ? std::min(in.max_rank, small) : small;
  auto gram_of = [&](const Mat& m) { return left_side ? ColMat(m * m.transpose()) : ColMat(m.transpose() * m); };
  // ‖X W‖² = tr(Wᵀ G W) = Σ of every whitened σ² (the whitening is exact when λ = 0).
  double whitened_total = -1;
  if (in.gram && in.method != LowRankMethod::kSvdLlm && in.best_gains) {  // the whitened spectrum, for best_gains()
    double lambda = 0;
    int raises = 0;
    // Only a ranking aid: where XᵀX cannot be factored (an input never active), the method's
    // own gains rank the layer instead.
    if (auto Lw = whitening_factor(G, in.what, lambda, raises); Lw.is_ok()) {
      Eigen::SelfAdjointEigenSolver<ColMat> white(gram_of(Lw.value().transpose() * W), Eigen::EigenvaluesOnly);
      if (white.info() == Eigen::Success) {
        d.best_gains_.resize(size_t(R));
        for (int64_t i = 0; i < R; ++i) d.best_gains_[size_t(i)] = std::max(0.0, white.eigenvalues()[small - 1 - i]);
        if (lambda == 0) whitened_total = white.eigenvalues().sum();
      }
    }
  }

  // SVD of M through the eigenvectors of its smaller Gram matrix; the other side's vectors in
  // one product, M·V = U·Σ.
  Eigen::SelfAdjointEigenSolver<ColMat> eig(gram_of(M));
  if (eig.info() != Eigen::Success) return invalid_input(in.what, ": the eigendecomposition did not converge");
  const Eigen::VectorXd& ev = eig.eigenvalues();  // ascending
  d.all_sigma_.resize(size_t(small));
  for (int64_t i = 0; i < small; ++i) d.all_sigma_[size_t(i)] = std::sqrt(std::max(0.0, ev[small - 1 - i]));
  d.sigma_.assign(d.all_sigma_.begin(), d.all_sigma_.begin() + R);
  const ColMat E = eig.eigenvectors().rightCols(R).rowwise().reverse();  // descending σ
  const double tiny = 1e-300 + (d.all_sigma_.empty() ? 0.0 : d.all_sigma_[0] * 1e-12);
  Eigen::VectorXd inv(R);
  for (int64_t i = 0; i < R; ++i) inv[i] = d.sigma_[size_t(i)] > tiny ? 1.0 / d.sigma_[size_t(i)] : 0.0;
  ColMat U, V;
  if (left_side) {
    U = E;
    V = (M.transpose() * E) * inv.asDiagonal();
  } else {
    V = E;
    U = (M * E) * inv.asDiagonal();
  }

  // left = T⁻¹ U.
  ColMat left;
  switch (in.method) {
    case LowRankMethod::kSvd: left = U; break;
    case LowRankMethod::kAsvd: left = scale.cwiseInverse().asDiagonal() * U; break;
    case LowRankMethod::kSvdLlm: left = L.transpose().triangularView<Eigen::Upper>().solve(U); break;
  }
  if (!left.allFinite() || !V.allFinite()) return invalid_input(in.what, ": the factors are not finite");

  // Gains: σ_i² · a_iᵀ G a_i (G = I without calibration: the weight error). SVD-LLM without
  // damping has a_iᵀ G a_i = u_iᵀ L⁻¹ L Lᵀ L⁻ᵀ u_i = 1.
  d.gains_.resize(size_t(R));
  const bool exact_whitening = in.method == LowRankMethod::kSvdLlm && d.lambda_ == 0;
  if (exact_whitening) {
    for (int64_t i = 0; i < R; ++i) d.gains_[size_t(i)] = d.sigma_[size_t(i)] * d.sigma_[size_t(i)];
    d.total_ = 0;
    for (double sg : d.all_sigma_) d.total_ += sg * sg;
  } else if (in.gram) {
    const ColMat GL = G * left;
    for (int64_t i = 0; i < R; ++i)
      d.gains_[size_t(i)] = d.sigma_[size_t(i)] * d.sigma_[size_t(i)] * left.col(i).dot(GL.col(i));
    d.total_ = whitened_total >= 0 ? whitened_total : (G * W).cwiseProduct(W).sum();
  } else {
    for (int64_t i = 0; i < R; ++i) d.gains_[size_t(i)] = d.sigma_[size_t(i)] * d.sigma_[size_t(i)] * left.col(i).squaredNorm();
    d.total_ = W.squaredNorm();
  }
  d.left_.resize(size_t(K * R));
  d.right_.resize(size_t(N * R));
  Eigen::Map<Mat>(d.left_.data(), K, R) = left;
  Eigen::Map<Mat>(d.right_.data(), N, R) = V;
  return d;
}

double LowRankDecomposition::error_at(int64_t r) const {
  double kept = 0;
  for (int64_t i = 0; i < std::min<int64_t>(r, int64_t(gains_.size())); ++i) kept += gains_[size_t(i)];
  return std::max(0.0, total_ - kept);
}

void LowRankDecomposition::factors(int64_t r, std::vector<float>& a, std::vector<float>& b) const {
  const int64_t R = available();
  r = std::min(r, R);
  a.assign(size_t(K_ * r), 0.f);
  b.assign(size_t(r * N_), 0.f);
  for (int64_t j = 0; j < r; ++j) {
    const double h = std::sqrt(sigma_[size_t(j)]);
    for (int64_t k = 0; k < K_; ++k) a[size_t(k * r + j)] = float(left_[size_t(k * R + j)] * h);
    for (int64_t n = 0; n < N_; ++n) b[size_t(j * N_ + n)] = float(right_[size_t(n * R + j)] * h);
  }
}

int64_t rank_for_energy(const std::vector<double>& sigma, double energy) {
  double total = 0;
  for (double s : sigma) total += s * s;
  const double want = energy * total * (1.0 - 1e-12);
  double kept = 0;
  for (size_t i = 0; i < sigma.size(); ++i) {
    kept += sigma[i] * sigma[i];
    if (kept >= want) return int64_t(i + 1);
  }
  return int64_t(sigma.size());
}

}  // namespace llmc
