#include "passes/awq_scale.h"

#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

#include "passes/channel_scaling.h"
#include "passes/hessian.h"
#include "passes/nbits_common.h"
#include "passes/pass_statistics.h"
#include "runtime/kernels/sgemm.h"

namespace llmc {

namespace {

using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

constexpr int64_t kSearchColumns = 512;  // output features per weight the α search measures
constexpr int kClipSteps = 10;            // thresholds (1 - i/20)·max|v|, i < 10: down to 0.55

struct AwqOptions {
  NBitsOptions nbits;
  int64_t grid = 20;
  bool clip = true;
  bool fold_only = false;
};

Result<AwqOptions> parse_awq_options(const PassOptions& o) {
  AwqOptions p;
  LLMC_ASSIGN_OR_RETURN(p.nbits, parse_nbits_options(o));
  p.grid = option_int(o, "grid", 20);
  p.clip = option_flag(o, "clip");
  p.fold_only = option_flag(o, "fold-only");
  return p;
}

// One quantised reader of the group's activation: its weight as rows of output features.
struct Member {
  const NBitsTarget* target = nullptr;
  std::vector<float> rows;  // [N, K]
  MatF sample;              // [K, cols]: evenly spaced output features, for the α search
};

// dequantised Q(v) of one block of `count` scaled values (into `out`).
void quantize_block(const float* v, int64_t count, const NBitsFormat& f, float* out) {
  const BlockRange r = block_range(v, count, f);
  for (int64_t i = 0; i < count; ++i) out[i] = float(dequantize_code(quantize_code(v[i], r, f.max_code()), r));
}

// tr(Dᵀ H D), H·D through the runtime's sgemm (Eigen here is built for baseline x86-64: 5-10x slower).
double quad_form(const MatF& H, const MatF& D) {
  MatF HD(H.rows(), D.cols());
  rt::sgemm(H.rows(), D.cols(), H.rows(), H.data(), H.rows(), D.data(), D.cols(), HD.data(), D.cols(), false, nullptr);
  return double((D.array() * HD.array()).sum());
}

// Σ_i tr(ΔW_iᵀ H ΔW_i) over the members' sampled features, ΔW = W − diag(1/s) Q(diag(s) W).
double output_error(const std::vector<Member>& members, const std::vector<float>& s, const MatF& H) {
  const int64_t K = H.rows();
  double total = 0;
  std::vector<float> v, q;
  for (const Member& m : members) {
    const NBitsFormat& f = m.target->format;
    MatF D(K, m.sample.cols());
    v.resize(size_t(f.block));
    q.resize(size_t(f.block));
    for (int64_t c = 0; c < m.sample.cols(); ++c)
      for (int64_t k0 = 0; k0 < K; k0 += f.block) {
        const int64_t count = std::min(f.block, K - k0);
        for (int64_t i = 0; i < count; ++i) v[size_t(i)] = m.sample(k0 + i, c) * s[size_t(k0 + i)];
        quantize_block(v.data(), count, f, q.data());
        for (int64_t i = 0; i < count; ++i) D(k0 + i, c) = m.sample(k0 + i, c) - q[size_t(i)] / s[size_t(k0 + i)];
      }
    total += quad_form(H, D);
  }
  return total;
}

// s = max(mean|x|, 1e-4)^α, normalised by sqrt(max s · min s).
std::vector<float> scales_for(const std::vector<double>& mean_abs, double alpha) {
  std::vector<float> s(mean_abs.size());
  float lo = 1e30f, hi = 0;
  for (size_t k = 0; k < s.size(); ++k) {
    s[k] = float(std::pow(std::max(mean_abs[k], 1e-4), alpha));
    lo = std::min(lo, s[k]);
    hi = std::max(hi, s[k]);
  }
  const float norm = std::sqrt(hi * lo);
  for (float& x : s) x /= norm;
  return s;
}

// Per output feature and block of member `m`, the clip threshold of the scaled block with the
// least block output error; clamps the member's float weight (the graph's tensor, [K, N]) to it
// in the unscaled domain. Returns how many blocks were clipped.
int64_t clip_member(Model& model, const Member& m, const std::vector<float>& s, const MatF& H, rt::ThreadPool& pool) {
  const NBitsTarget& t = *m.target;
  const NBitsFormat& f = t.format;
  const int64_t K = t.K, N = t.N, blocks = f.blocks(K);
  std::vector<float> thresholds(size_t(N * blocks), INFINITY);  // in the scaled domain
  std::vector<int64_t> clipped(size_t(blocks), 0);
  // One block of every output feature at a time: the candidates' errors δᵀ H_bb δ of all N
  // features are one product [N, count] x [count, count] (the runtime's sgemm).
  pool.parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<float> v, c, d, hd, hbb, mx(static_cast<size_t>(N)), best(static_cast<size_t>(N));
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t k0 = b * f.block, count = std::min(f.block, K - k0);
      v.resize(size_t(N * count));
      c.resize(v.size());
      d.resize(v.size());
      hd.resize(v.size());
      hbb.resize(size_t(count * count));
      for (int64_t i = 0; i < count; ++i)
        for (int64_t j = 0; j < count; ++j) hbb[size_t(i * count + j)] = H(k0 + i, k0 + j);
      for (int64_t n = 0; n < N; ++n) {
        mx[size_t(n)] = 0;
        for (int64_t i = 0; i < count; ++i) {
          const float x = m.rows[size_t(n * K + k0 + i)] * s[size_t(k0 + i)];
          v[size_t(n * count + i)] = x;
          mx[size_t(n)] = std::max(mx[size_t(n)], std::fabs(x));
        }
        best[size_t(n)] = INFINITY;
      }
      for (int step = 0; step < kClipSteps; ++step) {
        const float shrink = 1.0f - float(step) / 20.0f;
        for (int64_t n = 0; n < N; ++n) {
          const float th = mx[size_t(n)] * shrink;
          float* cn = c.data() + n * count;
          const float* vn = v.data() + n * count;
          for (int64_t i = 0; i < count; ++i) cn[i] = std::clamp(vn[i], -th, th);
          quantize_block(cn, count, f, cn);
          // δ in the unscaled domain: with X / s, the scaled block's error is the same
          for (int64_t i = 0; i < count; ++i) d[size_t(n * count + i)] = (vn[i] - cn[i]) / s[size_t(k0 + i)];
        }
        rt::sgemm(N, count, count, d.data(), count, hbb.data(), count, hd.data(), count, false, nullptr);
        for (int64_t n = 0; n < N; ++n) {
          float e = 0;
          for (int64_t i = 0; i < count; ++i) e += d[size_t(n * count + i)] * hd[size_t(n * count + i)];
          if (e < best[size_t(n)] && mx[size_t(n)] > 0) {
            best[size_t(n)] = e;
            thresholds[size_t(n * blocks + b)] = step == 0 ? INFINITY : mx[size_t(n)] * shrink;
          }
        }
      }
      for (int64_t n = 0; n < N; ++n) clipped[size_t(b)] += std::isfinite(thresholds[size_t(n * blocks + b)]);
    }
  });
  int64_t total = 0;
  for (int64_t x : clipped) total += x;
  if (total == 0) return 0;
  float* w = reinterpret_cast<float*>(model.graph.find_initializer(t.weight)->mutable_data());  // copy-on-write
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) {
      const float th = thresholds[size_t(n * blocks + k / f.block)] / s[size_t(k)];
      if (std::isfinite(th)) w[k * N + n] = std::clamp(w[k * N + n], -th, th);
    }
  return total;
}

}  // namespace

std::vector<OptionSpec> AwqScale::options() const {
  std::vector<OptionSpec> specs;
  for (auto& s : nbits_option_specs())
    if (s.name != "accuracy-level") specs.push_back(std::move(s));  // the quantiser's attribute, not the search's
  specs.push_back(int_option("grid", 20, 2, 200, "points of the α grid in [0, 1)"));
  specs.push_back(bool_option("clip", true, "search a clipping threshold per output feature and block"));
  specs.push_back(bool_option("fold-only", false, "skip groups whose 1/s cannot fold into the producer (no inserted Mul)"));
  return specs;
}

Status AwqScale::check(const PassOptions& resolved) const { return parse_awq_options(resolved).status(); }

std::unique_ptr<Pass> make_awq_scale() { return std::make_unique<AwqScale>(); }

Result<PassResult> AwqScale::run(Model& model, const PassOptions& options, PassContext& context) {
  LLMC_ASSIGN_OR_RETURN(AwqOptions opt, parse_awq_options(options));
  Graph& g = model.graph;
  PassResult result;
  result.bytes_before = initializer_bytes(model);
  // Which readers the next pass quantises, at which bits (its own selection, decisions dropped).
  PassResult scratch;
  LLMC_ASSIGN_OR_RETURN(const auto targets, select_nbits_targets(model, opt.nbits, scratch));
  std::map<int, const NBitsTarget*> target_of;
  for (const auto& t : targets)
    for (size_t n : t.nodes) target_of[int(n)] = &t;
  LLMC_ASSIGN_OR_RETURN(NodeFilter filter, NodeFilter::parse(opt.nbits.exclude));
  std::vector<ScaleGroup> groups;
  for (ScaleGroup& grp : scale_groups(g, {"MatMul"}, filter, result)) {
    bool any = false;
    for (const auto& m : grp.members) any |= target_of.count(m.node) > 0;
    if (any) groups.push_back(std::move(grp));
  }
  PassStatistics stats(context);
  calib::StatisticsRequest request;
  request.kinds = calib::kMeanAbs | calib::kGram;
  for (const auto& grp : groups) request.values.push_back(grp.x);
  const auto start = std::chrono::steady_clock::now();
  LLMC_ASSIGN_OR_RETURN(auto measured, stats.require(model, request, "awq-scale", "mean |x| and XᵀX of every quantised input"));
  const auto measured_at = std::chrono::steady_clock::now();
  double clip_seconds = 0;
  for (const auto& grp : groups) {
    const calib::ChannelStatistics* st = measured.at(grp.x);
    const Node& node = g.nodes[grp.members[0].node];
    LLMC_RETURN_IF_ERROR(check_gram_input(node.name, grp.x, st->channels, st->rows, grp.channels, "awq-scale"));
  }
  rt::ThreadPool pool(context.threads);
  ChannelScaler scaler(g, /*fold_into_matmul=*/true);
  const GraphIndex idx(g);
  int64_t clipped_total = 0, blocks_total = 0;
  for (const ScaleGroup& grp : groups) {
    const calib::ChannelStatistics* st = measured.at(grp.x);
    const int64_t K = grp.channels;
    if (opt.fold_only && !scaler.foldable(grp)) {
      for (const auto& m : grp.members)
        result.decisions.push_back({g.nodes[m.node].name, "MatMul", "skipped", "1/s cannot be folded (fold-only)"});
      continue;
    }
    MatF H(K, K);
    for (int64_t i = 0; i < K * K; ++i) H.data()[i] = float(st->gram[size_t(i)] / double(st->rows));
    std::vector<Member> members;
    std::set<std::string> seen;
    for (const auto& gm : grp.members) {
      auto it = target_of.find(gm.node);
      if (it == target_of.end() || !seen.insert(it->second->weight).second) continue;
      Member m;
      m.target = it->second;
      m.rows = weight_rows(model, *m.target, &pool);
      const int64_t N = m.target->N, cols = std::min(N, kSearchColumns);
      m.sample.resize(K, cols);
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t n = c * N / cols;
        for (int64_t k = 0; k < K; ++k) m.sample(k, c) = m.rows[size_t(n * K + k)];
      }
      members.push_back(std::move(m));
    }
    // The α grid, in parallel (α = 0: s = 1, plain RTN).
    std::vector<double> errors(size_t(opt.grid));
    pool.parallel_for(opt.grid, 1, [&](int64_t a0, int64_t a1) {
      for (int64_t a = a0; a < a1; ++a)
        errors[size_t(a)] = output_error(members, scales_for(st->mean_abs, double(a) / double(opt.grid)), H);
    });
    const int64_t best = std::min_element(errors.begin(), errors.end()) - errors.begin();
    const double alpha = double(best) / double(opt.grid);
    const std::vector<float> s = scales_for(st->mean_abs, alpha);
    double reference = 0;  // tr(Wᵀ H W) over the sampled features: errors relative to it
    for (const Member& m : members) reference += quad_form(H, m.sample);
    std::string clip_note;
    if (opt.clip) {
      std::set<int> readers;
      for (const auto& gm : grp.members) readers.insert(gm.node);
      const auto clip_start = std::chrono::steady_clock::now();
      int64_t clipped = 0, blocks = 0;
      for (const Member& m : members) {
        // Clipped in place only when every reader is in this group: a reader of another
        // activation (a weight shared across layers) would get this group's clipping.
        bool private_weight = !idx.is_graph_output(m.target->weight);
        for (int c : idx.consumers(m.target->weight)) private_weight &= readers.count(c) > 0;
        blocks += m.target->N * m.target->format.blocks(K);
        if (private_weight) clipped += clip_member(model, m, s, H, pool);
      }
      clipped_total += clipped;
      blocks_total += blocks;
      clip_note = str_cat(", ", clipped, " of ", blocks, " blocks clipped");
      clip_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - clip_start).count();
    }
    const std::string where = scaler.apply(grp, s);
    for (const auto& m : grp.members)
      result.decisions.push_back(
          {g.nodes[m.node].name, "MatMul", "scaled",
           str_cat("awq alpha ", alpha, ", relative output error ", float(errors[0] / reference), " (rtn) -> ",
                   float(errors[size_t(best)] / reference), clip_note, ", ", where)});
    result.rewrites += int64_t(grp.members.size());
  }
  scaler.commit();
  finish_result(model, result);
  result.summary = str_cat(result.rewrites, " MatMuls in ", scaler.folded() + scaler.inserted(), " groups scaled for ",
                           opt.nbits.format.describe(), " (", scaler.folded(), " folded into their producer, ",
                           scaler.inserted(), " with an inserted Mul)",
                           opt.clip ? str_cat(", ", clipped_total, " of ", blocks_total, " blocks clipped") : "",
                           " from ", stats.samples(), " samples");
  const auto seconds = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  result.notes.push_back(str_cat("statistics ", seconds(start, measured_at), " s, scale search ",
                                 seconds(measured_at, std::chrono::steady_clock::now()) - clip_seconds, " s, clipping ",
                                 clip_seconds, " s"));
  return result;
}

}  // namespace llmc
