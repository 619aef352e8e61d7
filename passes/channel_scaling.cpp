#include "passes/channel_scaling.h"

namespace llmc {

namespace {

// A MatMul / Gemm (transA = 0) reading X with a constant 2-D float32 weight: its input channel
// count, or a reason it cannot be scaled.
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

bool is_channel_vector(const Graph& g, const std::string& name, int64_t k) {
  const Tensor* t = g.find_initializer(name);
  return t && !g.is_graph_input(name) && t->dtype() == DType::kF32 && t->dims() == std::vector<int64_t>{k};
}

}  // namespace

std::vector<ScaleGroup> scale_groups(const Graph& g, const std::set<std::string>& op_types, NodeFilter& filter,
                                     PassResult& result) {
  std::vector<ScaleGroup> groups;
  std::map<std::string, size_t> group_of;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (!n.domain.empty() || (n.op_type != "MatMul" && n.op_type != "Gemm")) continue;
    bool trans = false;
    int64_t channels = 0;
    std::string why = op_types.count(n.op_type) ? unsuitable(g, n, &trans, &channels) : "op type not selected (--op-types)";
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
  return groups;
}

ChannelScaler::ChannelScaler(Graph& g, bool fold_into_matmul)
    : g_(g), fold_into_matmul_(fold_into_matmul), idx_(g), rw_(g) {}

ChannelScaler::Fold ChannelScaler::plan_fold(const ScaleGroup& grp) const {
  if (idx_.is_graph_output(grp.x)) return {};
  std::set<int> members;
  for (const auto& m : grp.members) members.insert(m.node);
  for (int c : idx_.consumers(grp.x))
    if (!members.count(c)) return {};
  const int p = idx_.producer(grp.x);
  if (p < 0) return {};
  const Node& n = g_.nodes[p];
  const int64_t k = grp.channels;
  if (n.domain.empty() && n.op_type == "Mul" && n.inputs.size() == 2 && n.outputs[0] == grp.x) {
    for (size_t i = 0; i < 2; ++i)
      if (is_channel_vector(g_, n.inputs[i], k)) return {p, {i}};
    // Mul(b, b) would take the scale twice.
    if (!fold_into_matmul_ || n.inputs[0] == n.inputs[1]) return {};
    for (size_t i = 0; i < 2; ++i) {  // X = a · MatMul(z, V): V's columns carry the scale
      const std::string& b = n.inputs[i];
      const int q = idx_.producer(b);
      if (q < 0 || idx_.is_graph_output(b) || idx_.consumers(b).size() != 1) continue;
      const Node& mm = g_.nodes[q];
      if (!mm.domain.empty() || mm.op_type != "MatMul" || mm.inputs.size() != 2 || mm.outputs[0] != b) continue;
      const Tensor* v = g_.find_initializer(mm.inputs[1]);
      if (v && !g_.is_graph_input(mm.inputs[1]) && v->dtype() == DType::kF32 && v->dims().size() == 2 && v->dims()[1] == k)
        return {q, {1}, true};
    }
    return {};
  }
  const bool norm = (n.domain.empty() || n.domain == "com.microsoft") &&
                    (n.op_type == "LayerNormalization" || n.op_type == "SimplifiedLayerNormalization" ||
                     n.op_type == "RMSNormalization");
  if (!norm || n.outputs.empty() || n.outputs[0] != grp.x || n.inputs.size() < 2) return {};
  Fold f{p, {1}};
  if (!is_channel_vector(g_, n.inputs[1], k)) return {};
  if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
    if (!is_channel_vector(g_, n.inputs[2], k)) return {};
    f.slots.push_back(2);
  }
  return f;
}

bool ChannelScaler::foldable(const ScaleGroup& grp) const { return plan_fold(grp).producer >= 0; }

// Scales `name` in place, or a copy of it when a node outside `readers` also reads it; returns
// the name to read. f(data) does the scaling.
std::string ChannelScaler::rescale(const std::string& name, const std::set<int>& readers,
                                   const std::function<void(float*)>& f) {
  bool shared = idx_.is_graph_output(name);
  for (int c : idx_.consumers(name)) shared |= !readers.count(c);
  if (!shared) {
    f(reinterpret_cast<float*>(g_.find_initializer(name)->mutable_data()));  // copy-on-write
    return name;
  }
  Tensor copy = *g_.find_initializer(name);
  copy.set_name(name + "_smoothed");
  f(reinterpret_cast<float*>(copy.mutable_data()));
  return rw_.initializer(std::move(copy));
}

std::string ChannelScaler::apply(const ScaleGroup& grp, const std::vector<float>& s) {
  const int64_t K = grp.channels;
  const Fold fold = plan_fold(grp);
  // Weights: row j (column j of a [N, K] weight) times s_j.
  std::map<std::pair<std::string, bool>, std::string> scaled;
  for (const auto& m : grp.members) {
    Node& n = g_.nodes[m.node];
    const auto key = std::make_pair(n.inputs[1], m.trans);
    if (!scaled.count(key)) {
      const std::vector<int64_t> dims = g_.find_initializer(n.inputs[1])->dims();
      std::set<int> same_layout;  // in place only when every reader scales it the same way
      for (const auto& o : grp.members)
        if (g_.nodes[o.node].inputs[1] == n.inputs[1] && o.trans == m.trans) same_layout.insert(o.node);
      scaled[key] = rescale(n.inputs[1], same_layout, [&](float* p) {
        for (int64_t r = 0; r < dims[0]; ++r)
          for (int64_t c = 0; c < dims[1]; ++c) p[r * dims[1] + c] *= s[m.trans ? c : r];
      });
    }
    n.inputs[1] = scaled.at(key);
  }
  if (fold.producer >= 0) {
    Node& p = g_.nodes[fold.producer];
    for (size_t slot : fold.slots) {
      const std::vector<int64_t> dims = g_.find_initializer(p.inputs[slot])->dims();
      p.inputs[slot] = rescale(p.inputs[slot], {fold.producer}, [&](float* v) {
        const int64_t rows = fold.matmul_columns ? dims[0] : 1;
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t j = 0; j < K; ++j) v[r * K + j] /= s[j];
      });
    }
    ++folded_;
    return str_cat("1/s folded into ", p.op_type, " '", p.name, "'", fold.matmul_columns ? " (weight columns)" : "");
  }
  std::vector<float> inv(K);
  for (int64_t j = 0; j < K; ++j) inv[j] = 1.f / s[j];
  const std::string inv_name = rw_.initializer(Tensor::from_vector(grp.x + "_smooth_scale_inv", DType::kF32, {K}, inv));
  Node mul;
  mul.name = rw_.unique_name(g_.nodes[grp.members[0].node].name + "_smooth_Mul");
  mul.op_type = "Mul";
  mul.inputs = {grp.x, inv_name};
  mul.outputs = {rw_.unique_name(grp.x + "_smoothed")};
  for (const auto& m : grp.members) g_.nodes[m.node].inputs[0] = mul.outputs[0];
  const std::string where = "1/s applied by an inserted Mul '" + mul.name + "'";
  insert_before_[grp.members[0].node].push_back(std::move(mul));
  ++inserted_;
  return where;
}

void ChannelScaler::commit() {
  if (!insert_before_.empty()) {
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      auto it = insert_before_.find(static_cast<int>(i));
      if (it != insert_before_.end())
        for (auto& n : it->second) rw_.keep(std::move(n));
      rw_.keep(std::move(g_.nodes[i]));
    }
  }
  rw_.commit();
}

}  // namespace llmc
