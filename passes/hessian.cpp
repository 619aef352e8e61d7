#include "passes/hessian.h"

#include <Eigen/Cholesky>
#include <Eigen/Dense>
#include <cmath>

namespace llmc {

namespace {
constexpr int kMaxRaises = 10;
constexpr double kMinRelativePivot = 1e-10;
}  // namespace

Status check_gram_input(const std::string& node, const std::string& input, int64_t channels, int64_t rows, int64_t K,
                        const std::string& pass) {
  if (channels != K)
    return invalid_input("node '", node, "': activation '", input, "' has ", channels, " channels, the weight ", K, " inputs");
  if (rows < K)
    return invalid_input("node '", node, "': calibration too short for ", pass, ": ", rows, " tokens reach input '", input,
                         "', fewer than its ", K, " channels (XᵀX would be singular); give at least ", K, " tokens");
  return Status::ok();
}

Result<PreparedHessian> prepare_hessian(const std::vector<double>& gram, int64_t K, int64_t rows, double damp,
                                        const std::string& what) {
  if (rows <= 0) return invalid_input(what, ": no calibration rows to build XᵀX from");
  if (K <= 0 || int64_t(gram.size()) != K * K)
    return invalid_input(what, ": XᵀX has ", gram.size(), " entries, expected ", K, " x ", K);
  using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Mat H = Eigen::Map<const Mat>(gram.data(), K, K) / double(rows);
  if (!H.allFinite()) return invalid_input(what, ": XᵀX holds a NaN or Inf");
  PreparedHessian p;
  p.K = K;
  for (int64_t k = 0; k < K; ++k)
    if (H(k, k) == 0.0) {
      p.dead.push_back(k);
      H(k, k) = 1.0;  // its row and column are 0 already (H is a Gram matrix)
    }
  const double max_diag = H.diagonal().maxCoeff();
  p.lambda_initial = p.lambda = damp * H.diagonal().mean();
  // Upper factor of H⁻¹ without forming H⁻¹: with P the reversal permutation, the lower
  // Cholesky factor L of P H P gives H = V Vᵀ with V = P L P upper triangular, so
  // H⁻¹ = V⁻ᵀ V⁻¹ = UᵀU with U = V⁻¹ (one factorisation and one triangular inverse).
  for (;; ++p.raises) {
    Mat Hd = H;
    Hd.diagonal().array() += p.lambda;
    Eigen::LLT<Mat> llt(Hd.reverse());
    bool ok = llt.info() == Eigen::Success;
    Mat L;
    if (ok) {
      L = llt.matrixL();
      const double min_pivot = L.diagonal().cwiseAbs2().minCoeff();
      ok = std::isfinite(min_pivot) && min_pivot >= kMinRelativePivot * max_diag;
    }
    if (ok) {
      const Mat V = L.reverse();
      Mat U = V.triangularView<Eigen::Upper>().solve(Mat::Identity(K, K));
      U.triangularView<Eigen::StrictlyLower>().setZero();
      if (U.allFinite()) {
        p.u.assign(U.data(), U.data() + K * K);
        return p;
      }
    }
    if (p.raises == kMaxRaises)
      return invalid_input(what, ": XᵀX stays singular with damping raised to λ = ", p.lambda, " (", kMaxRaises,
                           " times 10x from ", p.lambda_initial, ")");
    p.lambda *= 10.0;
  }
}

}  // namespace llmc
