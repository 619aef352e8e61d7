#include "passes/smooth_quant.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>

#include "calibration/activation_statistics.h"
#include "ir/graph_rewrite.h"
#include "ir/graph_utils.h"
#include "passes/pass_statistics.h"
#include "passes/quant_utils.h"

namespace llmc {

namespace {

struct Options {
  double alpha = 0.5;
  std::set<std::string> op_types{"MatMul"};
  std::string exclude;
  bool fold_only = false;
};

Options parse(const PassOptions& o) {
  Options p;
  p.alpha = option_double(o, "alpha", 0.5);
  p.op_types = split_list(option_string(o, "op-types", "MatMul"));
  p.exclude = option_string(o, "exclude", "");
  p.fold_only = option_flag(o, "fold-only");
  return p;
}

// A MatMul / Gemm (transA = 0) reading X with a constant 2-D float32 weight: its input channel
// count, or a reason it cannot be smoothed.
std::string unsuitable(const Graph& g, const Node& n, bool* trans, int64_t* channels) {
  if (n.inputs.size() < 2 || n.inputs[0].empty()) return "has no activation or weight input";
  if (g.find_initializer(n.inputs[0]) && !g.is_graph_input(n.inputs[0])) return "activation input is a constant";
  const Tensor* w = nullptr;
  if (std::string why = weight_unsuitable(g, n, 1, &w); !why.empty()) return why;
  if (n.op_type == "Gemm" && n.attr_int("transA", 0) != 0) return "Gemm with transA=1";
  *trans = n.op_type == "Gemm" && n.attr_int("transB", 0) != 0;
  *channels = w->dims()[*trans ? 1 : 0];
  return "";
}

struct Member {
  int node;
  bool trans;  // weight is [N, K] (Gemm transB=1)
};

struct Group {
  std::string x;
  int64_t channels = 0;
  std::vector<Member> members;
};

// Where 1/s goes: the producer's input slots holding 1-D [K] initializers to divide.
struct Fold {
  int producer = -1;
  std::vector<size_t> slots;
};

bool is_channel_vector(const Graph& g, const std::string& name, int64_t k) {
  const Tensor* t = g.find_initializer(name);
  return t && !g.is_graph_input(name) && t->dtype() == DType::kF32 && t->dims() == std::vector<int64_t>{k};
}

Fold plan_fold(const Graph& g, const GraphIndex& idx, const Group& grp) {
  if (idx.is_graph_output(grp.x)) return {};
  std::set<int> members;
  for (const auto& m : grp.members) members.insert(m.node);
  for (int c : idx.consumers(grp.x))
    if (!members.count(c)) return {};
  const int p = idx.producer(grp.x);
  if (p < 0) return {};
  const Node& n = g.nodes[p];
  const int64_t k = grp.channels;
  if (n.domain.empty() && n.op_type == "Mul" && n.inputs.size() == 2 && n.outputs[0] == grp.x) {
    for (size_t i = 0; i < 2; ++i)
      if (is_channel_vector(g, n.inputs[i], k)) return {p, {i}};
    return {};
  }
  const bool norm = (n.domain.empty() || n.domain == "com.microsoft") &&
                    (n.op_type == "LayerNormalization" || n.op_type == "SimplifiedLayerNormalization" ||
                     n.op_type == "RMSNormalization");
  if (!norm || n.outputs.empty() || n.outputs[0] != grp.x || n.inputs.size() < 2) return {};
  Fold f{p, {1}};
  if (!is_channel_vector(g, n.inputs[1], k)) return {};
  if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
    if (!is_channel_vector(g, n.inputs[2], k)) return {};
    f.slots.push_back(2);
  }
  return f;
}

std::string fmt(double v) { return str_cat(static_cast<float>(v)); }

}  // namespace

std::vector<OptionSpec> SmoothQuant::options() const {
  return {
      float_option("alpha", "0.5", 0, 1, "migration strength: 0 keeps activations, 1 moves all of their range into weights"),
      list_option("op-types", "MatMul", {"MatMul", "Gemm"}, "op types whose inputs are smoothed"),
      string_option("exclude", "", "node or weight names / regular expressions left alone, comma-separated"),
      bool_option("fold-only", false, "skip groups whose scale cannot fold into the producer (no inserted Mul)"),
  };
}

std::unique_ptr<Pass> make_smooth_quant() { return std::make_unique<SmoothQuant>(); }

Result<PassResult> SmoothQuant::run(Model& model, const PassOptions& options, PassContext& context) {
  const Options opt = parse(options);
  LLMC_ASSIGN_OR_RETURN(NodeFilter filter, NodeFilter::parse(opt.exclude));
  PassStatistics statistics(context);
  if (statistics.samples() == 0)
    return invalid_input(context.model_path, ": smooth-quant needs --calib DATA (calibration samples to measure ",
                         "per-channel activation maxima), and ",
                         context.calibration || context.statistics ? "the calibration set is empty" : "none was given");
  Graph& g = model.graph;
  PassResult result;
  result.bytes_before = initializer_bytes(model);

  // 1. Groups: the smoothable MatMuls reading each activation, in graph order.
  std::vector<Group> groups;
  std::map<std::string, size_t> group_of;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (!n.domain.empty() || (n.op_type != "MatMul" && n.op_type != "Gemm")) continue;
    bool trans = false;
    int64_t channels = 0;
    std::string why = opt.op_types.count(n.op_type) ? unsuitable(g, n, &trans, &channels) : "op type not selected (--op-types)";
    if (why.empty() && filter.excluded(n.name, n.inputs[1])) why = "excluded by --exclude";
    auto it = group_of.find(n.inputs[0]);
    if (why.empty() && it != group_of.end() && groups[it->second].channels != channels)
      why = str_cat("weight has ", channels, " input channels, other readers of its activation ", groups[it->second].channels);
    if (!why.empty()) {
      result.decisions.push_back({n.name, n.op_type, "skipped", why});
      continue;
    }
    if (it == group_of.end()) {
      it = group_of.emplace(n.inputs[0], groups.size()).first;
      groups.push_back({n.inputs[0], channels, {}});
    }
    groups[it->second].members.push_back({static_cast<int>(i), trans});
  }
  for (const auto& p : filter.unmatched()) result.warnings.push_back("--exclude '" + p + "' matched no node or weight");
  if (groups.empty()) {
    result.bytes_after = result.bytes_before;
    result.summary = str_cat("no MatMul/Gemm to smooth (", result.decisions.size(), " skipped)");
    return result;
  }

  // 2. Per-channel max |X| over the calibration samples (copied out: the rewrite below makes a
  // shared service's cache stale).
  std::map<std::string, std::vector<double>> channel_absmax;
  {
    calib::StatisticsRequest request;
    for (const auto& grp : groups) request.values.push_back(grp.x);
    request.kinds = calib::kAbsMax;
    auto measured = statistics.get(model, request);
    if (!measured.is_ok())
      return measured.status().with_context(context.model_path + ": calibrating activations for smooth-quant");
    for (const auto& [name, s] : *measured) channel_absmax[name] = s->absmax;
  }

  // 3. Scales, weights, and where 1/s goes.
  const GraphIndex idx(g);
  GraphRewrite rw(g);
  std::map<int, std::vector<Node>> insert_before;  // node index -> new Muls
  int64_t folded = 0, inserted = 0;
  // Scales `name` in place, or a copy of it when a node outside `readers` also reads it; returns
  // the name to read. f(data) does the scaling.
  auto rescale = [&](const std::string& name, const std::set<int>& readers, const std::function<void(float*)>& f) {
    bool shared = idx.is_graph_output(name);
    for (int c : idx.consumers(name)) shared |= !readers.count(c);
    if (!shared) {
      f(reinterpret_cast<float*>(g.find_initializer(name)->mutable_data()));  // copy-on-write
      return name;
    }
    Tensor copy = *g.find_initializer(name);
    copy.set_name(name + "_smoothed");
    f(reinterpret_cast<float*>(copy.mutable_data()));
    return rw.initializer(std::move(copy));
  };
  for (const Group& grp : groups) {
    const int64_t K = grp.channels;
    auto skip_all = [&](const std::string& why) {
      for (const auto& m : grp.members)
        result.decisions.push_back({g.nodes[m.node].name, g.nodes[m.node].op_type, "skipped", why});
    };
    const auto& absmax = channel_absmax.at(grp.x);
    if (static_cast<int64_t>(absmax.size()) != K) {
      skip_all(str_cat("activation '", grp.x, "' has ", absmax.size(), " channels on its last axis, the weight ", K, " rows"));
      continue;
    }
    const Fold fold = plan_fold(g, idx, grp);
    if (fold.producer < 0 && opt.fold_only) {
      skip_all("1/s cannot be folded into the producer of '" + grp.x + "' (fold-only)");
      continue;
    }
    std::vector<double> wmax(K, 0.0);
    for (const auto& m : grp.members) {
      const Tensor* w = g.find_initializer(g.nodes[m.node].inputs[1]);
      const float* p = w->data_as<float>();
      const int64_t rows = w->dims()[0], cols = w->dims()[1];
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
          double& slot = wmax[m.trans ? c : r];
          slot = std::max(slot, static_cast<double>(std::fabs(p[r * cols + c])));
        }
    }
    std::vector<float> s(K, 1.f);
    float lo = 1e30f, hi = 0.f;
    for (int64_t j = 0; j < K; ++j) {
      double v = 1.0;
      if (absmax[j] > 0 && wmax[j] > 0) v = std::pow(double(absmax[j]), opt.alpha) / std::pow(wmax[j], 1.0 - opt.alpha);
      s[j] = static_cast<float>(std::clamp(v, 1e-5, 1e5));
      lo = std::min(lo, s[j]);
      hi = std::max(hi, s[j]);
    }
    // Weights: row j (column j of a [N, K] weight) times s_j.
    std::set<int> readers;
    for (const auto& m : grp.members) readers.insert(m.node);
    std::map<std::pair<std::string, bool>, std::string> scaled;
    for (const auto& m : grp.members) {
      Node& n = g.nodes[m.node];
      const auto key = std::make_pair(n.inputs[1], m.trans);
      if (!scaled.count(key)) {
        const std::vector<int64_t> dims = g.find_initializer(n.inputs[1])->dims();
        std::set<int> same_layout;  // in place only when every reader scales it the same way
        for (const auto& o : grp.members)
          if (g.nodes[o.node].inputs[1] == n.inputs[1] && o.trans == m.trans) same_layout.insert(o.node);
        scaled[key] = rescale(n.inputs[1], same_layout, [&](float* p) {
          for (int64_t r = 0; r < dims[0]; ++r)
            for (int64_t c = 0; c < dims[1]; ++c) p[r * dims[1] + c] *= s[m.trans ? c : r];
        });
      }
      n.inputs[1] = scaled.at(key);
    }
    std::string where;
    if (fold.producer >= 0) {
      Node& p = g.nodes[fold.producer];
      for (size_t slot : fold.slots)
        p.inputs[slot] = rescale(p.inputs[slot], {fold.producer}, [&](float* v) {
          for (int64_t j = 0; j < K; ++j) v[j] /= s[j];
        });
      where = str_cat("1/s folded into ", p.op_type, " '", p.name, "'");
      ++folded;
    } else {
      std::vector<float> inv(K);
      for (int64_t j = 0; j < K; ++j) inv[j] = 1.f / s[j];
      const std::string inv_name = rw.initializer(Tensor::from_vector(grp.x + "_smooth_scale_inv", DType::kF32, {K}, inv));
      Node mul;
      mul.name = rw.unique_name(g.nodes[grp.members[0].node].name + "_smooth_Mul");
      mul.op_type = "Mul";
      mul.inputs = {grp.x, inv_name};
      mul.outputs = {rw.unique_name(grp.x + "_smoothed")};
      for (const auto& m : grp.members) g.nodes[m.node].inputs[0] = mul.outputs[0];
      where = "1/s applied by an inserted Mul '" + mul.name + "'";
      insert_before[grp.members[0].node].push_back(std::move(mul));
      ++inserted;
    }
    for (const auto& m : grp.members)
      result.decisions.push_back({g.nodes[m.node].name, g.nodes[m.node].op_type, "smoothed",
                                  str_cat("alpha ", opt.alpha, ", s in [", fmt(lo), ", ", fmt(hi), "], ", where)});
    result.rewrites += static_cast<int64_t>(grp.members.size());
  }
  if (!insert_before.empty()) {
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      auto it = insert_before.find(static_cast<int>(i));
      if (it != insert_before.end())
        for (auto& n : it->second) rw.keep(std::move(n));
      rw.keep(std::move(g.nodes[i]));
    }
  }
  rw.commit();
  finish_result(model, result);
  result.summary = str_cat(result.rewrites, " MatMuls in ", folded + inserted, " groups smoothed (alpha ", opt.alpha, "; ",
                           folded, " folded into their producer, ", inserted, " with an inserted Mul) from ",
                           statistics.samples(), " samples");
  return result;
}

}  // namespace llmc
