#include "passes/lowrank_common.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <queue>
#include <set>

#include "ir/graph_rewrite.h"
#include "passes/pass_statistics.h"
#include "passes/prune_common.h"
#include "runtime/thread_pool.h"

namespace llmc {

namespace {

const char* method_name(LowRankMethod m) {
  switch (m) {
    case LowRankMethod::kSvd: return "svd";
    case LowRankMethod::kAsvd: return "asvd";
    case LowRankMethod::kSvdLlm: return "svd-llm";
  }
  return "?";
}

// The budget when none is given: a fifth of the selected layers' parameters go.
constexpr double kDefaultParamRatio = 0.8;

Result<RankBudget> parse_budget(const PassOptions& o) {
  std::vector<RankBudget> given;
  if (o.count("rank-ratio")) given.push_back({RankBudget::kRankRatio, option_double(o, "rank-ratio", 0)});
  if (o.count("energy")) given.push_back({RankBudget::kEnergy, option_double(o, "energy", 0)});
  if (o.count("param-ratio")) given.push_back({RankBudget::kParamRatio, option_double(o, "param-ratio", 0)});
  if (given.empty()) given.push_back({RankBudget::kParamRatio, kDefaultParamRatio});
  if (given.size() != 1)
    return invalid_input("give one of rank-ratio, energy or param-ratio, not ", given.size());
  given[0].uniform = option_string(o, "allocation", "error") == "uniform";
  given[0].multiple = option_int(o, "rank-multiple", 1);
  if (given[0].uniform && given[0].kind != RankBudget::kParamRatio)
    return invalid_input("allocation=uniform splits a param-ratio budget; rank-ratio and energy are per layer already");
  return given[0];
}

// Greedy purchase of components under a parameter budget (see the header).
struct Step {
  double value;  // relative error removed per parameter
  size_t layer;
  bool operator<(const Step& o) const { return value < o.value || (value == o.value && layer > o.layer); }
};

struct Factored {
  int64_t rank;
  std::vector<float> a, b;  // [K, r] and [r, N] row-major
};

// Replaces each node in `nodes` (reading one of `factored`'s weights as input 1) by its two
// products (the header's rewrite); returns how many were rewritten.
int64_t rewrite_pairs(Graph& g, const std::set<size_t>& nodes, const std::map<std::string, Factored>& factored) {
  GraphRewrite rewrite(g);
  std::map<std::string, std::pair<std::string, std::string>> names;  // weight -> (A, B) initializer names
  int64_t count = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& node = g.nodes[i];
    if (!nodes.count(i) || node.inputs.size() < 2 || !factored.count(node.inputs[1])) {
      rewrite.keep(node);
      continue;
    }
    const std::string& w = node.inputs[1];
    const Factored& f = factored.at(w);
    const bool trans = node.op_type == "Gemm" && node.attr_int("transB", 0) != 0;
    const Tensor* original = g.find_initializer(w);
    const int64_t K = trans ? original->dims()[1] : original->dims()[0];
    const int64_t N = trans ? original->dims()[0] : original->dims()[1];
    auto it = names.find(w);
    if (it == names.end()) {
      std::vector<float> b = f.b;
      if (trans)  // stored [N, r] for transB
        for (int64_t j = 0; j < f.rank; ++j)
          for (int64_t n = 0; n < N; ++n) b[size_t(n * f.rank + j)] = f.b[size_t(j * N + n)];
      const std::string a_name = rewrite.initializer(Tensor::from_vector(w + kLowRankASuffix, DType::kF32, {K, f.rank}, f.a));
      const std::string b_name = rewrite.initializer(Tensor::from_vector(
          w + kLowRankBSuffix, DType::kF32, trans ? std::vector<int64_t>{N, f.rank} : std::vector<int64_t>{f.rank, N}, b));
      it = names.emplace(w, std::make_pair(a_name, b_name)).first;
    }
    const std::string mid = rewrite.add_named("MatMul", node.name + kLowRankASuffix, {node.inputs[0], it->second.first},
                                              node.outputs[0] + ".lowrank");
    Node second = node;
    second.name = rewrite.unique_name(node.name + kLowRankBSuffix);
    second.inputs[0] = mid;
    second.inputs[1] = it->second.second;
    rewrite.keep(std::move(second));
    ++count;
  }
  rewrite.commit();
  return count;
}

// The selected weights that can be factorised: not empty, and read by no node that stays dense
// (an excluded node, another op type, a transposed read, a graph output): the dense weight
// would stay beside its factors. The others get a decision saying why.
std::vector<PruneTarget> factorisable(const Graph& g, std::vector<PruneTarget> selected, PassResult& result) {
  std::map<std::string, int64_t> reads;
  for (const auto& n : g.nodes)
    for (const auto& in : n.inputs) ++reads[in];
  for (const auto& o : g.outputs) ++reads[o.name];
  std::vector<PruneTarget> out;
  for (auto& t : selected) {
    const Node& n = g.nodes[t.node];
    std::string why;
    if (t.K <= 0 || t.N <= 0) why = "empty weight";
    else if (reads[t.weight] != int64_t(1 + t.sharers.size()))
      why = "its weight is also read by a node that stays dense (both would be kept)";
    if (why.empty()) {
      out.push_back(std::move(t));
      continue;
    }
    result.decisions.push_back({n.name, n.op_type, "skipped", why});
    for (size_t i : t.sharers)
      for (auto& d : result.decisions)
        if (d.node == g.nodes[i].name && d.action == "factorized") d.action = "skipped";
  }
  return out;
}
}  // namespace

std::string RankBudget::describe() const {
  const char* names[] = {"rank-ratio", "energy", "param-ratio"};
  return str_cat(names[kind], " ", value);
}

int64_t max_useful_rank(int64_t K, int64_t N) {
  if (K <= 0 || N <= 0) return 0;
  // r·(K + N) < K·N  ⇔  r < K·N / (K + N)
  const int64_t r = (K * N) / (K + N);
  return r * (K + N) < K * N ? r : r - 1;
}

Result<std::vector<int64_t>> allocate_ranks(const std::vector<RankCandidate>& layers, const RankBudget& budget) {
  const int64_t m = std::max<int64_t>(1, budget.multiple);
  auto up = [&](int64_t r) { return (r + m - 1) / m * m; };
  std::vector<int64_t> rank(layers.size(), 0);
  if (budget.kind != RankBudget::kParamRatio) {
    for (size_t l = 0; l < layers.size(); ++l) {
      const RankCandidate& c = layers[l];
      const int64_t r = up(budget.kind == RankBudget::kRankRatio
                               ? std::max<int64_t>(1, int64_t(std::ceil(budget.value * double(std::min(c.K, c.N)) - 1e-9)))
                               : rank_for_energy(c.sigma, budget.value));
      rank[l] = r <= max_useful_rank(c.K, c.N) ? r : 0;
    }
    return rank;
  }
  // Every layer starts at rank m (dense when even that saves nothing).
  double dense = 0, used = 0;
  std::vector<int64_t> r(layers.size(), m);
  std::vector<bool> dense_layer(layers.size(), false);
  for (size_t l = 0; l < layers.size(); ++l) {
    const RankCandidate& c = layers[l];
    dense += double(c.K) * double(c.N);
    dense_layer[l] = max_useful_rank(c.K, c.N) < m;
    used += dense_layer[l] ? double(c.K) * double(c.N) : double(m * (c.K + c.N));
  }
  if (budget.uniform) {
    for (size_t l = 0; l < layers.size(); ++l) {
      const RankCandidate& c = layers[l];
      const int64_t fit = int64_t(std::floor(budget.value * double(c.K * c.N) / double(c.K + c.N))) / m * m;
      rank[l] = dense_layer[l] || fit > max_useful_rank(c.K, c.N) ? 0 : std::max(m, fit);
    }
    double kept = 0;
    for (size_t l = 0; l < layers.size(); ++l)
      kept += rank[l] > 0 ? double(rank[l] * (layers[l].K + layers[l].N)) : double(layers[l].K) * double(layers[l].N);
    if (kept > budget.value * dense)
      return invalid_input("param-ratio ", budget.value, " split uniformly allows ", int64_t(budget.value * dense),
                           " parameters in the ", layers.size(), " selected layers, but rank ", m,
                           " where a layer's share is smaller keeps ", int64_t(kept));
    return rank;
  }
  const double allowed = budget.value * dense;
  if (used > allowed)
    return invalid_input("param-ratio ", budget.value, " allows ", int64_t(allowed), " parameters in the ", layers.size(),
                         " selected layers, but rank ", m, " in each already needs ", int64_t(used));
  // The relative error a layer's next step (m more components) removes, per parameter it costs.
  // A layer that cannot grow by m has one step left: back to dense (its remaining error, at the
  // rest of K·N).
  auto grows = [&](size_t l) {
    const RankCandidate& c = layers[l];
    return r[l] + m <= max_useful_rank(c.K, c.N) && r[l] + m <= int64_t(c.gains.size());
  };
  auto next = [&](size_t l) -> double {
    const RankCandidate& c = layers[l];
    const double rel = c.total > 0 ? 1.0 / c.total : 0.0;
    if (grows(l)) {
      double gain = 0;
      for (int64_t i = r[l]; i < r[l] + m; ++i) gain += c.gains[size_t(i)];
      return gain * rel / double(m * (c.K + c.N));
    }
    double rest = c.total;
    for (int64_t i = 0; i < r[l] && i < int64_t(c.gains.size()); ++i) rest -= c.gains[size_t(i)];
    return std::max(0.0, rest) * rel / (double(c.K * c.N) - double(r[l] * (c.K + c.N)));
  };
  auto cost = [&](size_t l) {
    const RankCandidate& c = layers[l];
    return grows(l) ? double(m * (c.K + c.N)) : double(c.K * c.N) - double(r[l] * (c.K + c.N));
  };
  std::priority_queue<Step> heap;
  for (size_t l = 0; l < layers.size(); ++l)
    if (!dense_layer[l]) heap.push({next(l), l});
  while (!heap.empty()) {
    const size_t l = heap.top().layer;
    heap.pop();
    if (used + cost(l) > allowed) continue;  // this layer's next step does not fit: it stops here
    used += cost(l);
    if (grows(l)) {
      r[l] += m;
      heap.push({next(l), l});
    } else {
      dense_layer[l] = true;
    }
  }
  for (size_t l = 0; l < layers.size(); ++l) rank[l] = dense_layer[l] ? 0 : r[l];
  return rank;
}

std::vector<OptionSpec> LowRankPass::options() const {
  std::vector<OptionSpec> specs = {
      float_option("rank-ratio", "", 0, 1, "every layer keeps this fraction of its full rank min(K, N)", true, false),
      float_option("energy", "", 0, 1, "every layer keeps the fewest components holding this fraction of its σ²", true,
                   false),
      float_option("param-ratio", "", 0, 1,
                   "the factorised layers together keep at most this fraction of their parameters, ranks allocated "
                   "by measured output error per parameter (0.8 when no budget is given)",
                   true, false),
      choice_option("allocation", "error", {"error", "uniform"},
                    "param-ratio: ranks bought where they remove the most error per parameter, or the same "
                    "fraction of every layer"),
      int_option("rank-multiple", 1, 1, 1024,
                 "every rank a multiple of this (32: whole packed panels of the runtime's float kernels, "
                 "a little faster decode)"),
      list_option("op-types", "MatMul,Gemm", {"MatMul", "Gemm"}, "op types whose constant weights are factorised"),
      string_option("include", "", "only these nodes/weights (names or regular expressions, comma-separated)"),
      string_option("exclude", "", "nodes/weights left dense (names or regular expressions, comma-separated)"),
  };
  if (method_ == LowRankMethod::kAsvd)
    specs.push_back(float_option("alpha", "", 0, 4,
                                 "input scale exponent, s_k = mean|x_k|^alpha (default: chosen per layer among 0.25, "
                                 "0.5, 0.75 and 1 by output error on the calibration tokens at the layer's rank)",
                                 false, false));
  return specs;
}

Status LowRankPass::check(const PassOptions& resolved) const { return parse_budget(resolved).status(); }

bool LowRankPass::uses_calibration(const PassOptions& resolved) const {
  auto budget = parse_budget(resolved);
  return needs_calibration() || (budget.is_ok() && budget->kind == RankBudget::kParamRatio && !budget->uniform);
}

Result<PassResult> LowRankPass::run(Model& model, const PassOptions& options, PassContext& context) {
  LLMC_ASSIGN_OR_RETURN(const RankBudget budget, parse_budget(options));
  const char* method = method_name(method_);
  PruneOptions select;
  for (const auto& t : split_list(option_string(options, "op-types", "MatMul,Gemm"))) select.op_types.push_back(t);
  select.include = option_string(options, "include", "");
  select.exclude = option_string(options, "exclude", "");
  PassResult result;
  result.bytes_before = initializer_bytes(model);
  LLMC_ASSIGN_OR_RETURN(auto selected, select_prune_targets(model, select, result, "factorized"));
  const std::vector<PruneTarget> targets = factorisable(model.graph, std::move(selected), result);
  if (targets.empty()) {
    result.summary = str_cat("no weight factorised by ", method, ": no MatMul/Gemm weight selected");
    finish_result(model, result);
    return result;
  }
  Graph& g = model.graph;
  // Activation statistics: svd-llm whitens with XᵀX; asvd scales by mean |x|; the greedy budget
  // ranks by output error (XᵀX) whenever calibration data is there.
  PassStatistics stats(context);
  calib::StatisticsRequest request;
  request.kinds = 0;
  if (method_ == LowRankMethod::kSvdLlm || (budget.kind == RankBudget::kParamRatio && !budget.uniform && stats.samples() > 0))
    request.kinds |= calib::kGram;
  // asvd without a given alpha searches it per layer by output error: XᵀX too.
  const bool search_alpha = method_ == LowRankMethod::kAsvd && !options.count("alpha");
  if (method_ == LowRankMethod::kAsvd) request.kinds |= calib::kMeanAbs | (search_alpha ? calib::kGram : 0u);
  std::map<std::string, const calib::ChannelStatistics*> measured;
  const auto start = std::chrono::steady_clock::now();
  if (request.kinds != 0) {
    for (const auto& t : targets) request.values.push_back(g.nodes[t.node].inputs[0]);
    const std::string what = method_ == LowRankMethod::kAsvd ? "the mean |x| of every factorised weight's input"
                                                             : "XᵀX of every factorised weight's input";
    LLMC_ASSIGN_OR_RETURN(measured, stats.require(model, request, name_, what));
    for (const auto& t : targets) {
      const Node& node = g.nodes[t.node];
      const calib::ChannelStatistics* s = measured.at(node.inputs[0]);
      if (s->channels != t.K)
        return invalid_input("node '", node.name, "': activation '", node.inputs[0], "' has ", s->channels,
                             " channels, the weight ", t.K, " inputs");
      // Fewer tokens than inputs: XᵀX has rank < K, and whitening would fit those few tokens.
      if (method_ == LowRankMethod::kSvdLlm && s->rows < t.K)
        return invalid_input("node '", node.name, "': calibration too short for ", name_, ": ", s->rows,
                             " tokens reach input '", node.inputs[0], "', fewer than its ", t.K,
                             " channels (XᵀX would be singular); give at least ", t.K, " tokens");
    }
  }
  const bool output_error = (request.kinds & calib::kGram) != 0;
  const auto measured_at = std::chrono::steady_clock::now();

  // Decompose every target (in parallel; each decomposition is single-threaded float64).
  auto decompose = [&](size_t i, double alpha, bool best_gains) {
    const PruneTarget& t = targets[i];
    const Node& node = g.nodes[t.node];
    LowRankInputs in;
    in.w = g.find_initializer(t.weight)->data_as<float>();
    in.transposed = t.trans;
    in.K = t.K;
    in.N = t.N;
    in.method = method_;
    if (output_error) {
      in.gram = &measured.at(node.inputs[0])->gram;
      in.rows = measured.at(node.inputs[0])->rows;
    }
    if (method_ == LowRankMethod::kAsvd) in.mean_abs = &measured.at(node.inputs[0])->mean_abs;
    in.alpha = alpha;
    in.max_rank = std::max<int64_t>(1, max_useful_rank(t.K, t.N));
    in.best_gains = best_gains;
    in.what = str_cat(context.model_path, ": node '", node.name, "' weight '", t.weight, "'");
    return LowRankDecomposition::compute(in);
  };
  std::vector<double> alphas(targets.size(), option_double(options, "alpha", 0.5));
  std::vector<Result<LowRankDecomposition>> decomposed(targets.size(), invalid_input("not computed"));
  rt::ThreadPool pool(context.threads);
  pool.parallel_for(int64_t(targets.size()), 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) decomposed[size_t(i)] = decompose(size_t(i), alphas[size_t(i)], /*best_gains=*/true);
  });
  std::vector<RankCandidate> candidates;
  for (size_t i = 0; i < targets.size(); ++i) {
    if (!decomposed[i].is_ok()) return decomposed[i].status();
    const LowRankDecomposition& d = decomposed[i].value();
    candidates.push_back({d.K(), d.N(), d.best_gains(), d.total(), d.sigma()});
  }
  LLMC_ASSIGN_OR_RETURN(const std::vector<int64_t> ranks, allocate_ranks(candidates, budget));
  // Ranks come from the method-independent best_gains(), so the exponent can be chosen at the
  // rank each layer got: the one leaving the least output error there.
  if (search_alpha)
    pool.parallel_for(int64_t(targets.size()), 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        if (ranks[size_t(i)] == 0) continue;
        for (double alpha : {0.25, 0.75, 1.0}) {
          auto d = decompose(size_t(i), alpha, /*best_gains=*/false);  // ranks are set already
          if (d.is_ok() && d->error_at(ranks[size_t(i)]) < decomposed[size_t(i)]->error_at(ranks[size_t(i)])) {
            decomposed[size_t(i)] = std::move(d);
            alphas[size_t(i)] = alpha;
          }
        }
      }
    });

  // Decisions and factors.
  std::map<std::string, Factored> factored;  // weight -> factors
  std::map<std::string, std::string> detail;
  int64_t params_before = 0, params_after = 0;
  const char* error_kind = output_error ? "relative output error" : "relative weight error";
  for (size_t i = 0; i < targets.size(); ++i) {
    const PruneTarget& t = targets[i];
    const Node& node = g.nodes[t.node];
    const LowRankDecomposition& d = decomposed[i].value();
    const int64_t dense = t.K * t.N;
    params_before += dense;
    if (ranks[i] == 0) {
      params_after += dense;
      // The rank the per-layer budget asked for (allocate_ranks' rule), to say why it was refused.
      const int64_t m = std::max<int64_t>(1, budget.multiple);
      const int64_t raw = budget.kind == RankBudget::kEnergy
                              ? rank_for_energy(d.sigma(), budget.value)
                              : std::max<int64_t>(1, int64_t(std::ceil(budget.value * double(std::min(t.K, t.N)) - 1e-9)));
      result.decisions.push_back(
          {node.name, node.op_type, "skipped",
           budget.kind == RankBudget::kParamRatio
               ? str_cat("stays dense: the ", budget.describe(), " budget gives it every parameter back")
               : str_cat("stays dense: rank ", (raw + m - 1) / m * m, " of ", std::min(t.K, t.N),
                         " would not save parameters (needs r·(K+N) < K·N, r < ", max_useful_rank(t.K, t.N) + 1, ")")});
      continue;
    }
    Factored f;
    f.rank = ranks[i];
    d.factors(f.rank, f.a, f.b);
    const int64_t after = f.rank * (t.K + t.N);
    params_after += after;
    const double rel = d.total() > 0 ? std::sqrt(d.error_at(f.rank) / d.total()) : 0.0;
    detail[t.weight] = str_cat(method, " rank ", f.rank, " of ", std::min(t.K, t.N), ": ", dense, " -> ", after,
                               " parameters (", dense * 4, " -> ", after * 4, " bytes), ", error_kind, " ", rel,
                               method_ == LowRankMethod::kAsvd ? str_cat(", alpha ", alphas[i]) : "",
                               d.raises() > 0 ? str_cat(", XᵀX damped by lambda = ", d.lambda()) : "");
    result.decisions.push_back({node.name, node.op_type, "factorized", detail[t.weight]});
    if (d.raises() > 0)
      result.warnings.push_back(str_cat("node '", node.name, "': XᵀX of '", node.inputs[0],
                                        "' is singular; whitened with lambda = ", d.lambda(), " added to its diagonal"));
    factored.emplace(t.weight, std::move(f));
  }
  for (auto& dd : result.decisions)
    if (dd.action == "factorized" && dd.reason.rfind("shares its weight", 0) == 0)
      for (const auto& n : g.nodes)
        if (n.name == dd.node && n.inputs.size() > 1) {
          if (detail.count(n.inputs[1])) dd.reason += "; " + detail[n.inputs[1]];
          else dd.action = "skipped";  // the weight it shares stays dense
        }
  if (factored.empty())
    return invalid_input(context.model_path, ": ", name_, " with ", budget.describe(), " factorises no layer: each of the ",
                         targets.size(), " selected weights would need at least as many parameters as it has (r·(K+N) ≥ K·N)");

  // Rewrite the selected nodes (targets and the nodes sharing their weights): a node left out
  // (excluded, another op type, reading the weight transposed) keeps the dense weight.
  std::set<size_t> rewritten;
  for (const auto& t : targets)
    if (factored.count(t.weight)) {
      rewritten.insert(t.node);
      rewritten.insert(t.sharers.begin(), t.sharers.end());
    }
  result.rewrites = rewrite_pairs(g, rewritten, factored);
  finish_result(model, result);
  const auto seconds = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  result.summary = str_cat(factored.size(), " of ", targets.size(), " weights factorised by ", method, " (",
                           budget.describe(), "): ", params_before, " -> ", params_after, " parameters in the selected layers (",
                           double(params_after) / double(params_before), ")",
                           stats.samples() > 0 && request.kinds != 0 ? str_cat(", from ", stats.samples(), " calibration samples") : "");
  result.notes.push_back(str_cat("statistics ", seconds(start, measured_at), " s, decompositions and rewrite ",
                                 seconds(measured_at, std::chrono::steady_clock::now()), " s"));
  return result;
}

}  // namespace llmc
