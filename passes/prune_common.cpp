#include "passes/prune_common.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>

#include "ir/graph_utils.h"
#include "passes/quant_utils.h"
#include "runtime/thread_pool.h"

namespace llmc {

namespace {

// Parses "N:M" with 0 < N < M.
Status parse_pattern(const std::string& s, int& n, int& m) {
  const size_t colon = s.find(':');
  auto bad = [&] { return invalid_input("pattern must be N:M with 0 < N < M (e.g. 2:4), got '", s, "'"); };
  if (colon == std::string::npos) return bad();
  auto num = [](const std::string& t, int& v) {
    auto r = std::from_chars(t.data(), t.data() + t.size(), v);
    return !t.empty() && r.ec == std::errc() && r.ptr == t.data() + t.size();
  };
  if (!num(s.substr(0, colon), n) || !num(s.substr(colon + 1), m) || n <= 0 || m > 1024) return bad();
  if (n >= m) return invalid_input("pattern ", s, ": N must be smaller than M (N:M keeps N of every M weights)");
  return Status::ok();
}

// Indices of the `zeros` lowest scores among `idx` (ties to the lower index).
void lowest(std::vector<int64_t>& idx, const double* score, size_t zeros) {
  auto less = [&](int64_t a, int64_t b) { return score[a] < score[b] || (score[a] == score[b] && a < b); };
  if (zeros < idx.size()) std::nth_element(idx.begin(), idx.begin() + zeros, idx.end(), less);
  idx.resize(std::min(zeros, idx.size()));
}

// The flat indices zeroed in one target: N:M groups along K within each output row, the
// lowest of each output row, or the lowest of the whole weight (layer). Rows are read 16 at a
// time into a contiguous block: a [K, N] weight's output row is a column, and walking it
// touched a new page per element.
std::vector<int64_t> target_mask(const PruneTarget& t, const std::vector<double>& scores, const PruneOptions& options) {
  auto flat = [&](int64_t k, int64_t n) { return t.trans ? n * t.K + k : k * t.N + n; };
  std::vector<int64_t> zeroed, idx;
  if (options.m == 0 && options.scope != "row") {  // layer
    zeroed.resize(scores.size());
    std::iota(zeroed.begin(), zeroed.end(), 0);
    lowest(zeroed, scores.data(), static_cast<size_t>(std::floor(options.sparsity * double(zeroed.size()))));
    return zeroed;
  }
  constexpr int64_t kRows = 16;
  std::vector<double> block(static_cast<size_t>(kRows * t.K));
  const size_t row_zeros = static_cast<size_t>(std::floor(options.sparsity * double(t.K)));
  for (int64_t n0 = 0; n0 < t.N; n0 += kRows) {
    const int64_t rows = std::min(kRows, t.N - n0);
    for (int64_t k = 0; k < t.K; ++k)
      for (int64_t j = 0; j < rows; ++j) block[j * t.K + k] = scores[flat(k, n0 + j)];
    for (int64_t j = 0; j < rows; ++j) {
      const double* row = block.data() + j * t.K;  // ties go to the lower k: the lower flat index
      if (options.m > 0) {
        for (int64_t k0 = 0; k0 < t.K; k0 += options.m) {
          idx.clear();
          for (int64_t k = k0; k < k0 + options.m; ++k) idx.push_back(k);
          lowest(idx, row, static_cast<size_t>(options.m - options.n));
          for (int64_t k : idx) zeroed.push_back(flat(k, n0 + j));
        }
      } else {
        idx.resize(static_cast<size_t>(t.K));
        std::iota(idx.begin(), idx.end(), 0);
        lowest(idx, row, row_zeros);
        for (int64_t k : idx) zeroed.push_back(flat(k, n0 + j));
      }
    }
  }
  return zeroed;
}

}  // namespace

std::vector<OptionSpec> prune_option_specs(const std::string& scope_default) {
  return {
      float_option("sparsity", "", 0, 1, "fraction of weights zeroed (default 0.5; not with pattern)", true, true),
      string_option("pattern", "", "N:M: keep at most N nonzeros in every M weights along the input dimension"),
      choice_option("scope", scope_default, {"row", "layer", "global"},
                    "where scores are compared: per output row, per weight, or across all pruned weights"),
      list_option("op-types", "MatMul", {"MatMul", "Gemm"}, "op types whose constant weights are pruned"),
      string_option("include", "", "only these nodes/weights (names or regular expressions, comma-separated)"),
      string_option("exclude", "", "nodes/weights left dense (names or regular expressions, comma-separated)"),
  };
}

Result<PruneOptions> parse_prune_options(const PassOptions& o) {
  PruneOptions p;
  const std::string pattern = option_string(o, "pattern", "");
  if (!pattern.empty()) {
    if (o.count("sparsity")) return invalid_input("give sparsity or pattern, not both (N:M fixes the sparsity at 1 - N/M)");
    LLMC_RETURN_IF_ERROR(parse_pattern(pattern, p.n, p.m));
    p.sparsity = 1.0 - double(p.n) / p.m;
  } else {
    p.sparsity = option_double(o, "sparsity", 0.5);
  }
  p.scope = option_string(o, "scope", "layer");
  if (p.m > 0 && p.scope == "global") return invalid_input("scope=global does not apply to an N:M pattern");
  for (const auto& t : split_list(option_string(o, "op-types", "MatMul"))) p.op_types.push_back(t);
  p.include = option_string(o, "include", "");
  p.exclude = option_string(o, "exclude", "");
  return p;
}

Result<std::vector<PruneTarget>> select_prune_targets(const Model& model, const PruneOptions& options,
                                                      PassResult& result, const std::string& action) {
  const Graph& g = model.graph;
  const GraphIndex idx(g);
  LLMC_ASSIGN_OR_RETURN(NodeFilter include, NodeFilter::parse(options.include));
  LLMC_ASSIGN_OR_RETURN(NodeFilter exclude, NodeFilter::parse(options.exclude));
  std::vector<PruneTarget> targets;
  std::map<std::string, size_t> first_use;  // weight -> target index
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (!n.domain.empty() || (n.op_type != "MatMul" && n.op_type != "Gemm")) continue;
    auto skip = [&](const std::string& why) { result.decisions.push_back({n.name, n.op_type, "skipped", why}); };
    if (std::find(options.op_types.begin(), options.op_types.end(), n.op_type) == options.op_types.end()) {
      skip("op type not selected (op-types)");
      continue;
    }
    const Tensor* w = nullptr;
    if (n.inputs.size() < 2 || n.outputs.empty()) continue;
    if (std::string why = weight_unsuitable(g, n, 1, &w); !why.empty()) {
      skip(why);
      continue;
    }
    const bool named = !options.include.empty() && include.excluded(n.name, n.inputs[1]);
    if (!options.include.empty() && !named) {
      skip("not named by include");
      continue;
    }
    if (exclude.excluded(n.name, n.inputs[1])) {
      skip("excluded by exclude");
      continue;
    }
    if (!named && idx.is_graph_output(n.outputs[0])) {
      skip("LM head (writes a graph output) stays dense unless include names it");
      continue;
    }
    if (n.op_type == "Gemm" && n.attr_int("transA", 0) != 0) {
      skip("Gemm with transA=1");
      continue;
    }
    PruneTarget t;
    t.node = i;
    t.weight = n.inputs[1];
    t.trans = n.op_type == "Gemm" && n.attr_int("transB", 0) != 0;
    t.K = w->dims()[t.trans ? 1 : 0];
    t.N = w->dims()[t.trans ? 0 : 1];
    auto seen = first_use.find(t.weight);
    if (seen != first_use.end()) {
      if (targets[seen->second].trans != t.trans) {
        skip("its weight is also read transposed by '" + g.nodes[targets[seen->second].node].name + "'");
        continue;
      }
      result.decisions.push_back({n.name, n.op_type, action, "shares its weight with '" +
                                                                 g.nodes[targets[seen->second].node].name + "'"});
      targets[seen->second].sharers.push_back(i);
      continue;
    }
    if (options.m > 0 && t.K % options.m != 0)
      return invalid_input("node '", n.name, "': input dimension ", t.K, " of weight '", t.weight,
                           "' is not divisible by M = ", options.m, " of pattern ", options.n, ":", options.m);
    first_use[t.weight] = targets.size();
    targets.push_back(t);
  }
  for (const auto& p : exclude.unmatched()) result.warnings.push_back("exclude '" + p + "' matched no node or weight");
  for (const auto& p : include.unmatched()) result.warnings.push_back("include '" + p + "' matched no node or weight");
  return targets;
}

Status apply_pruning(Model& model, const std::vector<PruneTarget>& targets, const PruneOptions& options,
                     const PruneScore& score, const std::string& method, PassResult& result, int threads) {
  Graph& g = model.graph;
  rt::ThreadPool pool(threads);
  auto flat = [](const PruneTarget& t, int64_t k, int64_t n) { return t.trans ? n * t.K + k : k * t.N + n; };
  // Scores of every target, by flat index into its weight.
  std::vector<std::vector<double>> scores(targets.size());
  pool.parallel_for(static_cast<int64_t>(targets.size()), 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const PruneTarget& t = targets[i];
      scores[i].assign(static_cast<size_t>(t.K * t.N), 0.0);
      for (int64_t k = 0; k < t.K; ++k)
        for (int64_t n = 0; n < t.N; ++n) scores[i][flat(t, k, n)] = score(static_cast<size_t>(i), k, n);
    }
  });
  // Masked (zeroed) flat indices per target.
  std::vector<std::vector<int64_t>> zeroed(targets.size());
  if (options.scope == "global" && options.m == 0) {
    std::vector<std::pair<size_t, int64_t>> all;
    for (size_t i = 0; i < targets.size(); ++i)
      for (int64_t j = 0; j < int64_t(scores[i].size()); ++j) all.push_back({i, j});
    const size_t zeros = static_cast<size_t>(std::floor(options.sparsity * double(all.size())));
    auto less = [&](const auto& a, const auto& b) {
      const double sa = scores[a.first][a.second], sb = scores[b.first][b.second];
      return sa < sb || (sa == sb && a < b);
    };
    if (zeros < all.size()) std::nth_element(all.begin(), all.begin() + zeros, all.end(), less);
    for (size_t z = 0; z < zeros && z < all.size(); ++z) zeroed[all[z].first].push_back(all[z].second);
  } else {
    pool.parallel_for(static_cast<int64_t>(targets.size()), 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) zeroed[i] = target_mask(targets[i], scores[i], options);
    });
  }
  std::vector<int64_t> masked(targets.size());
  // Copy-on-write and zeroing per weight, in parallel (each target owns its weight).
  pool.parallel_for(static_cast<int64_t>(targets.size()), 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      float* p = reinterpret_cast<float*>(g.find_initializer(targets[i].weight)->mutable_data());
      for (int64_t j : zeroed[i]) p[j] = 0.f;
      masked[i] = int64_t(zeroed[i].size());
    }
  });
  report_pruning(model, targets, options, masked, std::vector<std::string>(targets.size()), method, result);
  return Status::ok();
}

void report_pruning(const Model& model, const std::vector<PruneTarget>& targets, const PruneOptions& options,
                    const std::vector<int64_t>& masked, const std::vector<std::string>& notes, const std::string& method,
                    PassResult& result) {
  const Graph& g = model.graph;
  std::map<std::string, std::string> detail;  // weight -> report line
  int64_t total = 0, total_zero = 0;
  for (size_t i = 0; i < targets.size(); ++i) {
    const PruneTarget& t = targets[i];
    const float* p = g.find_initializer(t.weight)->data_as<float>();
    int64_t zeros = 0;
    for (int64_t j = 0; j < t.K * t.N; ++j) zeros += p[j] == 0.f;
    total += t.K * t.N;
    total_zero += zeros;
    const std::string how = options.m > 0 ? str_cat(options.n, ":", options.m) : options.scope;
    detail[t.weight] = str_cat(method, " ", how, ", ", masked[i], " of ", t.K * t.N, " weights zeroed, sparsity ",
                               double(zeros) / double(t.K * t.N), notes[i]);
    result.decisions.push_back({g.nodes[t.node].name, g.nodes[t.node].op_type, "pruned", detail[t.weight]});
    result.rewrites += masked[i] > 0;  // a mask that zeroed nothing changed nothing
  }
  // Nodes sharing a pruned weight were reported when selected; give them the same detail.
  for (auto& d : result.decisions)
    if (d.action == "pruned" && d.reason.rfind("shares its weight", 0) == 0)
      for (const auto& n : g.nodes)
        if (n.name == d.node && n.inputs.size() > 1 && detail.count(n.inputs[1])) d.reason += "; " + detail[n.inputs[1]];
  finish_result(model, result);
  result.summary = str_cat(result.rewrites, " weights pruned by ", method, " (", options.m > 0 ? str_cat(options.n, ":", options.m)
                                                                                             : options.scope + " scope",
                           "), ", total_zero, " of ", total, " weights now zero (", total ? double(total_zero) / total : 0.0,
                           ")");
}

}  // namespace llmc
