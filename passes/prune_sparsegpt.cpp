#include "passes/prune_sparsegpt.h"

#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "passes/pass_statistics.h"
#include "passes/prune_common.h"

namespace llmc {

namespace {

using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Rows per job: fixed, so Eigen's product sees the same shapes whatever the thread count.
constexpr int64_t kRowChunk = 32;

Result<PruneOptions> parse_sparsegpt_options(const PassOptions& o) {
  LLMC_ASSIGN_OR_RETURN(PruneOptions p, parse_prune_options(o));
  p.scope = "row";  // the sweep is per output row; scope is not an option of this pass
  const int64_t block = option_int(o, "block-size", 128);
  if (p.m > 0 && block % p.m != 0)
    return invalid_input("block-size ", block, " must be a multiple of M = ", p.m, " of pattern ", p.n, ":", p.m,
                         " (an M-group is chosen from weights already updated by the block's earlier inputs)");
  return p;
}

// Marks in `mask` (one row's) the `zeros` lowest w_k² / U_kk² in [b0, b1) (ties to the lower index).
void choose_mask(const double* w, const double* udiag, int64_t b0, int64_t b1, int64_t zeros, char* mask,
                 std::vector<int64_t>& idx, std::vector<double>& score) {
  idx.resize(size_t(b1 - b0));
  std::iota(idx.begin(), idx.end(), b0);
  for (int64_t k = b0; k < b1; ++k) score[k - b0] = w[k] * w[k] / (udiag[k] * udiag[k]);
  auto less = [&](int64_t a, int64_t b) {
    return score[a - b0] < score[b - b0] || (score[a - b0] == score[b - b0] && a < b);
  };
  if (zeros < int64_t(idx.size())) std::nth_element(idx.begin(), idx.begin() + zeros, idx.end(), less);
  for (int64_t j = 0; j < zeros && j < int64_t(idx.size()); ++j) mask[idx[j]] = 1;
}

// The sweep over one chunk of rows (row-major [rows, K]).
void prune_chunk(double* w, int64_t rows, const PreparedHessian& h, double sparsity, int n, int m, int64_t block) {
  const int64_t K = h.K;
  const Eigen::Map<const Mat> U(h.u.data(), K, K);
  Eigen::Map<Mat> W(w, rows, K);
  std::vector<double> udiag(K);
  for (int64_t k = 0; k < K; ++k) udiag[k] = U(k, k);
  for (int64_t k : h.dead) W.col(k).setZero();  // inputs never active: their weights do nothing
  std::vector<char> mask(size_t(rows * K), 0);
  std::vector<int64_t> idx;
  std::vector<double> score(size_t(std::max<int64_t>(block, m)));
  Mat err(rows, block);
  for (int64_t b0 = 0; b0 < K; b0 += block) {
    const int64_t b1 = std::min(K, b0 + block), B = b1 - b0;
    if (m == 0) {
      const int64_t zeros = int64_t(std::floor(sparsity * double(b1))) - int64_t(std::floor(sparsity * double(b0)));
      for (int64_t r = 0; r < rows; ++r) choose_mask(w + r * K, udiag.data(), b0, b1, zeros, mask.data() + r * K, idx, score);
    }
    for (int64_t k = b0; k < b1; ++k) {
      // N:M groups are chosen when the sweep reaches them, from the weights updated so far.
      if (m > 0 && (k - b0) % m == 0)
        for (int64_t r = 0; r < rows; ++r)
          choose_mask(w + r * K, udiag.data(), k, k + m, m - n, mask.data() + r * K, idx, score);
      for (int64_t r = 0; r < rows; ++r) {
        double* row = w + r * K;
        if (!mask[size_t(r * K + k)]) {
          err(r, k - b0) = 0.0;
          continue;
        }
        const double e = row[k] / udiag[k];
        err(r, k - b0) = e;
        row[k] = 0.0;
        const double* uk = h.u.data() + k * K;
        for (int64_t j = k + 1; j < b1; ++j) row[j] -= e * uk[j];
      }
    }
    // Lazy batch update: the inputs after the block receive the block's errors at once.
    if (b1 < K) W.rightCols(K - b1).noalias() -= err.leftCols(B) * U.block(b0, b1, B, K - b1);
  }
  // Masked weights are exactly zero (the updates after a weight was zeroed never touch it).
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < K; ++k)
      if (mask[size_t(r * K + k)]) w[r * K + k] = 0.0;
}

}  // namespace

void sparsegpt_prune_rows(double* w, int64_t rows, const PreparedHessian& h, double sparsity, int n, int m,
                          int64_t block, rt::ThreadPool* pool) {
  const int64_t chunks = (rows + kRowChunk - 1) / kRowChunk;
  auto job = [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t r0 = c * kRowChunk, r1 = std::min(rows, r0 + kRowChunk);
      prune_chunk(w + r0 * h.K, r1 - r0, h, sparsity, n, m, block);
    }
  };
  if (pool) pool->parallel_for(chunks, 1, job);
  else job(0, chunks);
}

std::vector<OptionSpec> PruneSparseGpt::options() const {
  std::vector<OptionSpec> specs;
  for (auto& s : prune_option_specs("row"))
    if (s.name != "scope") specs.push_back(std::move(s));  // SparseGPT's mask is per output row, by construction
  specs.push_back(int_option("block-size", 128, 1, 4096, "inputs swept per block before the lazy update (N:M: a multiple of M)"));
  specs.push_back(float_option("damp", "0.01", 0, 1, "damping: λ = damp x mean(diag XᵀX/rows), raised 10x while XᵀX is singular",
                               true, false));
  return specs;
}

Status PruneSparseGpt::check(const PassOptions& resolved) const { return parse_sparsegpt_options(resolved).status(); }

std::unique_ptr<Pass> make_prune_sparsegpt() { return std::make_unique<PruneSparseGpt>(); }

Result<PassResult> PruneSparseGpt::run(Model& model, const PassOptions& options, PassContext& context) {
  LLMC_ASSIGN_OR_RETURN(PruneOptions opt, parse_sparsegpt_options(options));
  const int64_t block = option_int(options, "block-size", 128);
  const double damp = option_double(options, "damp", 0.01);
  PassResult result;
  result.bytes_before = initializer_bytes(model);
  LLMC_ASSIGN_OR_RETURN(auto targets, select_prune_targets(model, opt, result));
  PassStatistics stats(context);
  calib::StatisticsRequest request;
  request.kinds = calib::kGram;
  for (const auto& t : targets) request.values.push_back(model.graph.nodes[t.node].inputs[0]);
  const auto start = std::chrono::steady_clock::now();
  LLMC_ASSIGN_OR_RETURN(auto measured,
                        stats.require(model, request, "prune-sparsegpt", "XᵀX of every pruned weight's input"));
  const auto measured_at = std::chrono::steady_clock::now();
  // Checks on every target before any weight changes (a Hessian that cannot be factored can
  // still fail later, with earlier targets already pruned: the pipeline then writes nothing).
  for (const auto& t : targets) {
    const Node& node = model.graph.nodes[t.node];
    const calib::ChannelStatistics* s = measured.at(node.inputs[0]);
    LLMC_RETURN_IF_ERROR(check_gram_input(node.name, node.inputs[0], s->channels, s->rows, t.K, "prune-sparsegpt"));
  }
  rt::ThreadPool pool(context.threads);
  std::vector<int64_t> masked;
  std::vector<std::string> notes;
  // q/k/v (and gate/up) read one input one after another: its factor is kept for the next
  // target only, so at most one K x K factor is alive.
  std::string last_input;
  PreparedHessian last;
  for (const auto& t : targets) {
    const Node& node = model.graph.nodes[t.node];
    const calib::ChannelStatistics* s = measured.at(node.inputs[0]);
    if (last_input != node.inputs[0] || last.K != t.K) {
      auto prepared = prepare_hessian(s->gram, t.K, s->rows, damp, "node '" + node.name + "' input '" + node.inputs[0] + "'");
      if (!prepared.is_ok()) return prepared.status();
      last = std::move(prepared).value();
      last_input = node.inputs[0];
    }
    const PreparedHessian* h = &last;
    if (h->raises > 0)
      result.warnings.push_back(str_cat("node '", node.name, "': XᵀX of '", node.inputs[0], "' is singular; damping raised ",
                                        h->raises, "x10 from ", h->lambda_initial, " to lambda = ", h->lambda));
    if (!h->dead.empty())
      result.warnings.push_back(str_cat("node '", node.name, "': ", h->dead.size(), " of ", t.K, " inputs of '",
                                        node.inputs[0], "' are 0 on every calibration token; their weights are zeroed"));
    // The sweep's rows are output rows: W as [N, K] in float64 whichever layout it is stored in.
    Tensor* tensor = model.graph.find_initializer(t.weight);
    const float* src = tensor->data_as<float>();
    std::vector<double> w(size_t(t.N * t.K));
    for (int64_t nn = 0; nn < t.N; ++nn)
      for (int64_t k = 0; k < t.K; ++k) w[nn * t.K + k] = src[t.trans ? nn * t.K + k : k * t.N + nn];
    sparsegpt_prune_rows(w.data(), t.N, *h, opt.sparsity, opt.n, opt.m, block, &pool);
    float* dst = reinterpret_cast<float*>(tensor->mutable_data());  // copy-on-write: never the mapped input
    for (int64_t nn = 0; nn < t.N; ++nn)
      for (int64_t k = 0; k < t.K; ++k) dst[t.trans ? nn * t.K + k : k * t.N + nn] = float(w[nn * t.K + k]);
    masked.push_back(opt.m > 0 ? t.N * (t.K / opt.m) * (opt.m - opt.n)
                               : t.N * int64_t(std::floor(opt.sparsity * double(t.K))));
    notes.push_back(str_cat(", lambda ", h->lambda, h->dead.empty() ? "" : str_cat(", ", h->dead.size(), " dead inputs")));
  }
  report_pruning(model, targets, opt, masked, notes, "sparsegpt", result);
  // Where the time goes (XᵀX streaming vs factor and sweep) is the first question on big models.
  const auto seconds = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  result.summary += str_cat(" from ", stats.samples(), " calibration samples");
  result.notes.push_back(str_cat("XᵀX ", seconds(start, measured_at), " s, factor and sweep ",
                                 seconds(measured_at, std::chrono::steady_clock::now()), " s"));
  return result;
}

}  // namespace llmc
