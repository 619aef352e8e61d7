#include "passes/quantize_int4_gptq.h"

#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <numeric>

#include "passes/nbits_common.h"
#include "passes/pass_statistics.h"

namespace llmc {

namespace {

using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Rows per job: fixed, so Eigen's product sees the same shapes whatever the thread count.
constexpr int64_t kRowChunk = 32;

// One chunk of rows: w [rows, K] in the original input order; codes and ranges written at
// `q` [rows, K] and `ranges` [rows, blocks].
void sweep_chunk(const double* w, int64_t rows, const PreparedHessian& h, const std::vector<int64_t>& order,
                 const std::vector<int64_t>& position, const NBitsFormat& f, int64_t lazy, uint8_t* q,
                 BlockRange* ranges) {
  const int64_t K = h.K, blocks = f.blocks(K);
  const Eigen::Map<const Mat> U(h.u.data(), K, K);
  Mat W(rows, K);  // in sweep order
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t p = 0; p < K; ++p) W(r, p) = w[r * K + order[size_t(p)]];
  for (int64_t p : h.dead) W.col(p).setZero();  // inputs never active: their weights do nothing
  std::vector<char> ranged(size_t(blocks), 0);
  std::vector<double> values(size_t(f.block));
  Mat err(rows, lazy);
  for (int64_t b0 = 0; b0 < K; b0 += lazy) {
    const int64_t b1 = std::min(K, b0 + lazy), B = b1 - b0;
    for (int64_t p = b0; p < b1; ++p) {
      const int64_t c = order[size_t(p)], blk = c / f.block;
      if (!ranged[size_t(blk)]) {  // the block's range, from its weights as updated so far
        ranged[size_t(blk)] = 1;
        const int64_t k0 = blk * f.block, count = std::min(f.block, K - k0);
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t i = 0; i < count; ++i) values[size_t(i)] = W(r, position[size_t(k0 + i)]);
          ranges[r * blocks + blk] = block_range(values.data(), count, f);
        }
      }
      const double* up = h.u.data() + p * K;
      for (int64_t r = 0; r < rows; ++r) {
        const BlockRange& range = ranges[r * blocks + blk];
        const double v = W(r, p);
        const int code = quantize_code(v, range, f.max_code());
        q[r * K + c] = uint8_t(code);
        const double e = (v - dequantize_code(code, range)) / up[p];
        err(r, p - b0) = e;
        double* row = &W(r, 0);
        for (int64_t j = p + 1; j < b1; ++j) row[j] -= e * up[j];
      }
    }
    // Lazy batch update: the inputs after the block receive the block's errors at once.
    if (b1 < K) W.rightCols(K - b1).noalias() -= err.leftCols(B) * U.block(b0, b1, B, K - b1);
  }
}

struct GptqOptions {
  NBitsOptions nbits;
  double damp = 0.01;
  int64_t lazy = 128;
  bool act_order = false;
};

Result<GptqOptions> parse_gptq_options(const PassOptions& o) {
  GptqOptions p;
  LLMC_ASSIGN_OR_RETURN(p.nbits, parse_nbits_options(o));
  p.damp = option_double(o, "damp", 0.01);
  p.lazy = option_int(o, "lazy-block", 128);
  p.act_order = option_flag(o, "act-order");
  return p;
}

// Inputs by decreasing H_kk (ties to the lower index), or in order.
std::vector<int64_t> sweep_order(const std::vector<double>& gram, int64_t K, bool act_order) {
  std::vector<int64_t> order(static_cast<size_t>(K));
  std::iota(order.begin(), order.end(), 0);
  if (act_order)
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return gram[size_t(a * K + a)] > gram[size_t(b * K + b)]; });
  return order;
}

}  // namespace

NBitsCodes gptq_codes(std::vector<double>& w, int64_t rows, const PreparedHessian& h, const std::vector<int64_t>& order,
                      const NBitsFormat& format, int64_t lazy_block, rt::ThreadPool* pool) {
  const int64_t K = h.K, blocks = format.blocks(K);
  NBitsCodes c;
  c.K = K;
  c.N = rows;
  c.format = format;
  c.q.resize(size_t(rows * K));
  c.ranges.resize(size_t(rows * blocks));
  std::vector<int64_t> position(static_cast<size_t>(K));
  for (int64_t p = 0; p < K; ++p) position[size_t(order[size_t(p)])] = p;
  const int64_t chunks = (rows + kRowChunk - 1) / kRowChunk;
  auto job = [&](int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ++ch) {
      const int64_t r0 = ch * kRowChunk, r1 = std::min(rows, r0 + kRowChunk);
      sweep_chunk(w.data() + r0 * K, r1 - r0, h, order, position, format, lazy_block, c.q.data() + r0 * K,
                  c.ranges.data() + r0 * blocks);
    }
  };
  if (pool) pool->parallel_for(chunks, 1, job);
  else job(0, chunks);
  return c;
}

std::vector<OptionSpec> QuantizeInt4Gptq::options() const {
  std::vector<OptionSpec> specs = nbits_option_specs();
  specs.push_back(float_option("damp", "0.01", 0, 1, "damping: λ = damp x mean(diag XᵀX/rows), raised 10x while XᵀX is singular",
                               true, false));
  specs.push_back(int_option("lazy-block", 128, 1, 4096, "inputs swept per lazy block before the batch update"));
  specs.push_back(bool_option("act-order", false, "sweep inputs by decreasing XᵀX diagonal (most active first)"));
  return specs;
}

Status QuantizeInt4Gptq::check(const PassOptions& resolved) const { return parse_gptq_options(resolved).status(); }

std::unique_ptr<Pass> make_quantize_int4_gptq() { return std::make_unique<QuantizeInt4Gptq>(); }

Result<PassResult> QuantizeInt4Gptq::run(Model& model, const PassOptions& options, PassContext& context) {
  LLMC_ASSIGN_OR_RETURN(GptqOptions opt, parse_gptq_options(options));
  PassResult result;
  result.bytes_before = initializer_bytes(model);
  LLMC_ASSIGN_OR_RETURN(auto targets, select_nbits_targets(model, opt.nbits, result));
  auto input_of = [&](const NBitsTarget& t) -> const std::string& { return model.graph.nodes[t.nodes[0]].inputs[0]; };
  PassStatistics stats(context);
  calib::StatisticsRequest request;
  request.kinds = calib::kGram;
  for (const auto& t : targets) request.values.push_back(input_of(t));
  const auto start = std::chrono::steady_clock::now();
  LLMC_ASSIGN_OR_RETURN(auto measured,
                        stats.require(model, request, "quantize-int4-gptq", "XᵀX of every quantised weight's input"));
  const auto measured_at = std::chrono::steady_clock::now();
  for (const auto& t : targets) {  // every check before any weight is read
    const Node& node = model.graph.nodes[t.nodes[0]];
    const calib::ChannelStatistics* s = measured.at(input_of(t));
    LLMC_RETURN_IF_ERROR(check_gram_input(node.name, input_of(t), s->channels, s->rows, t.K, "quantize-int4-gptq"));
  }
  rt::ThreadPool pool(context.threads);
  std::vector<NBitsTensors> packed;
  std::vector<std::string> notes;
  // q/k/v (and gate/up) read one input one after another: its factor is kept for the next
  // target only, so at most one K x K factor is alive.
  std::string last_input;
  PreparedHessian h;
  std::vector<int64_t> order;
  for (const auto& t : targets) {
    const Node& node = model.graph.nodes[t.nodes[0]];
    const calib::ChannelStatistics* s = measured.at(input_of(t));
    if (last_input != input_of(t) || h.K != t.K) {
      order = sweep_order(s->gram, t.K, opt.act_order);
      std::vector<double> permuted;  // XᵀX in sweep order (act-order only; else the measured one)
      if (opt.act_order) {
        permuted.resize(s->gram.size());
        for (int64_t i = 0; i < t.K; ++i)
          for (int64_t j = 0; j < t.K; ++j) permuted[size_t(i * t.K + j)] = s->gram[size_t(order[i] * t.K + order[j])];
      }
      auto prepared = prepare_hessian(opt.act_order ? permuted : s->gram, t.K, s->rows, opt.damp,
                                      "node '" + node.name + "' input '" + input_of(t) + "'");
      if (!prepared.is_ok()) return prepared.status();
      h = std::move(prepared).value();
      last_input = input_of(t);
    }
    if (h.raises > 0)
      result.warnings.push_back(str_cat("node '", node.name, "': XᵀX of '", input_of(t), "' is singular; damping raised ",
                                        h.raises, "x10 from ", h.lambda_initial, " to lambda = ", h.lambda));
    if (!h.dead.empty())
      result.warnings.push_back(str_cat("node '", node.name, "': ", h.dead.size(), " of ", t.K, " inputs of '",
                                        input_of(t), "' are 0 on every calibration token; their weights are zeroed"));
    const std::vector<float> rows = weight_rows(model, t, &pool);
    std::vector<double> w(rows.begin(), rows.end());
    const NBitsCodes codes = gptq_codes(w, t.N, h, order, t.format, opt.lazy, &pool);
    auto p = pack_nbits(codes, t.weight, &pool);
    if (!p.is_ok()) return p.status().with_context(context.model_path);
    packed.push_back(std::move(p).value());
    notes.push_back(str_cat(", lambda ", h.lambda, h.dead.empty() ? "" : str_cat(", ", h.dead.size(), " dead inputs")));
  }
  rewrite_nbits(model, targets, std::move(packed), opt.nbits, opt.act_order ? "gptq, act-order" : "gptq", notes, result);
  result.summary += str_cat(" from ", stats.samples(), " calibration samples");
  const auto seconds = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  result.notes.push_back(str_cat("XᵀX ", seconds(start, measured_at), " s, factor and sweep ",
                                 seconds(measured_at, std::chrono::steady_clock::now()), " s"));
  return result;
}

}  // namespace llmc
