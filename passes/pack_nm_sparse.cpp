#include "passes/pack_nm_sparse.h"

#include <algorithm>
#include <map>
#include <set>

#include "ir/graph_rewrite.h"
#include "ir/graph_utils.h"
#include "ir/nm_sparse.h"
#include "runtime/kernels/nm_sparse.h"

namespace llmc {

std::vector<OptionSpec> PackNMSparse::options() const {
  return {choice_option("pattern", "auto", {"auto", "2:4", "1:4"},
                        "kept weights per four along K: 1:4 where a weight allows it (auto), or always 2:4 / 1:4")};
}

std::unique_ptr<Pass> make_pack_nm_sparse() { return std::make_unique<PackNMSparse>(); }

namespace {

// One product to replace: the node whose output Y the packed op writes, its activation X, the
// weight, the int8 scales (or ""), and the nodes of the chain it makes redundant.
struct Plan {
  size_t at = 0, product = 0;  // the node replaced; the product node (decisions name it)
  std::string x, weight, scales;
  std::vector<size_t> drop;
  int dql = -1;  // the DynamicQuantizeLinear feeding the chain, removed when nothing else reads it
};

// A weight no feed can override (an initializer that is not also a graph input).
bool is_const_2d(const Graph& g, const std::string& name, DType t) {
  const Tensor* w = g.find_initializer(name);
  if (!w || w->dtype() != t || w->dims().size() != 2) return false;
  for (const auto& in : g.inputs)
    if (in.name == name) return false;
  return true;
}

// Per-tensor or per-column float32 weight scales that multiply Y the same way in the dense graph
// and in the packed op: rank 0 or 1, one value or N.
bool column_scales(const Graph& g, const std::string& name, int64_t N) {
  const Tensor* s = name.empty() ? nullptr : g.find_initializer(name);
  if (!s || s->dtype() != DType::kF32 || s->dims().size() > 1) return false;
  for (const auto& in : g.inputs)
    if (in.name == name) return false;
  return s->numel() == 1 || s->numel() == N;
}

// The sole node reading `value` (and no graph output reads it), or -1.
int sole_reader(const GraphIndex& ix, const std::string& value) {
  const auto& c = ix.consumers(value);
  return c.size() == 1 && !ix.is_graph_output(value) ? c[0] : -1;
}

// DQL → MatMulInteger → Cast(float) → Mul(·, Mul(DQL scale, s)) from the MatMulInteger at `i`;
// why not, otherwise.
std::string match_matmul_integer(const Graph& g, const GraphIndex& ix, size_t i, Plan& p) {
  const Node& mm = g.nodes[i];
  if (mm.inputs.size() > 3) return "MatMulInteger with a weight zero point (packing needs symmetric int8 weights)";
  if (mm.inputs.size() != 3 || mm.outputs.size() != 1) return "MatMulInteger without the activation zero point";
  if (!is_const_2d(g, mm.inputs[1], DType::kI8)) return "weight is not a constant 2-D int8 tensor";
  const int d = ix.producer(mm.inputs[0]);
  if (d < 0 || g.nodes[d].op_type != "DynamicQuantizeLinear" || g.nodes[d].outputs.size() < 3 ||
      g.nodes[d].outputs[0] != mm.inputs[0] || g.nodes[d].outputs[2] != mm.inputs[2])
    return "activation is not quantised by one DynamicQuantizeLinear";
  const Node& dql = g.nodes[d];
  if (dql.inputs.empty()) return "DynamicQuantizeLinear without an input";
  const int cast = sole_reader(ix, mm.outputs[0]);
  if (cast < 0 || g.nodes[cast].op_type != "Cast" || g.nodes[cast].outputs.size() != 1 ||
      g.nodes[cast].attr_int("to", 0) != static_cast<int64_t>(DType::kF32))
    return "the int32 product is not read by one Cast to float";
  const int mul = sole_reader(ix, g.nodes[cast].outputs[0]);
  if (mul < 0 || g.nodes[mul].op_type != "Mul" || g.nodes[mul].inputs.size() != 2 || g.nodes[mul].outputs.size() != 1)
    return "no scaling Mul after the Cast";
  const Node& m2 = g.nodes[mul];
  const std::string scale = m2.inputs[0] == g.nodes[cast].outputs[0] ? m2.inputs[1] : m2.inputs[0];
  const int m1 = ix.producer(scale);
  if (m1 < 0 || g.nodes[m1].op_type != "Mul" || g.nodes[m1].inputs.size() != 2 || sole_reader(ix, scale) != mul)
    return "the output scale is not Mul(activation scale, weight scale)";
  const Node& sm = g.nodes[m1];
  const std::string& ws = sm.inputs[0] == dql.outputs[1] ? sm.inputs[1] : sm.inputs[1] == dql.outputs[1] ? sm.inputs[0] : "";
  if (!column_scales(g, ws, g.find_initializer(mm.inputs[1])->dims()[1]))
    return "the weight scale is not a constant float32 per column or per tensor";
  p.at = static_cast<size_t>(mul);
  p.product = i;
  p.dql = d;
  p.x = dql.inputs[0];
  p.weight = mm.inputs[1];
  p.scales = ws;
  p.drop = {i, static_cast<size_t>(cast), static_cast<size_t>(m1)};
  return "";
}

std::string match_dynamic_quantize_matmul(const Graph& g, size_t i, Plan& p) {
  const Node& n = g.nodes[i];
  if (n.inputs.size() != 3 || n.outputs.size() != 1) return "DynamicQuantizeMatMul with a zero point or bias";
  if (!is_const_2d(g, n.inputs[1], DType::kI8)) return "weight is not a constant 2-D int8 tensor";
  if (!column_scales(g, n.inputs[2], g.find_initializer(n.inputs[1])->dims()[1]))
    return "the weight scale is not a constant float32 per column or per tensor";
  p.at = p.product = i;
  p.x = n.inputs[0];
  p.weight = n.inputs[1];
  p.scales = n.inputs[2];
  return "";
}

}  // namespace

Result<PassResult> PackNMSparse::run(Model& model, const PassOptions& options, PassContext&) {
  Graph& g = model.graph;
  const std::string pattern = options.at("pattern");
  PassResult result;
  result.bytes_before = initializer_bytes(model);
  const GraphIndex ix(g);
  std::vector<Plan> plans;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    Plan p;
    std::string why;
    if (n.domain.empty() && n.op_type == "MatMul" && n.inputs.size() == 2 && n.outputs.size() == 1) {
      const Tensor* w = g.find_initializer(n.inputs[1]);
      if (!w) continue;  // a product of two activations (attention), not a weight
      if (!is_const_2d(g, n.inputs[1], DType::kF32) && !is_const_2d(g, n.inputs[1], DType::kF16))
        why = "weight is not a constant 2-D float32 or float16 tensor";
      p.at = p.product = i;
      p.x = n.inputs[0];
      p.weight = n.inputs[1];
    } else if (n.domain.empty() && n.op_type == "MatMulInteger") {
      why = match_matmul_integer(g, ix, i, p);
    } else if (n.domain == "com.microsoft" && n.op_type == "DynamicQuantizeMatMul") {
      why = match_dynamic_quantize_matmul(g, i, p);
    } else if (n.domain.empty() && n.op_type == "Gemm" && n.inputs.size() > 1 && g.find_initializer(n.inputs[1])) {
      why = "Gemm is not packed (MatMul, MatMulInteger and DynamicQuantizeMatMul are)";
    } else {
      continue;
    }
    if (why.empty()) {
      plans.push_back(p);
    } else {
      result.decisions.push_back({n.name, n.op_type, "skipped", why});
    }
  }
  // Pack each weight once (a weight read by several products is shared), at the pattern asked.
  GraphRewrite rw(g);
  struct Packed {
    std::string values, indices;
    int n = 0;  // 0: not packed, for `why`
    size_t bytes = 0;
    std::string why;
  };
  std::map<std::string, Packed> packed;
  std::map<size_t, const Plan*> at;
  std::set<size_t> drop;
  std::set<std::string> chain_dqls;  // (first outputs of) DynamicQuantizeLinears of packed chains
  for (const Plan& p : plans) {
    const Node& n = g.nodes[p.product];
    const Tensor& w = *g.find_initializer(p.weight);
    if (!packed.count(p.weight)) {
      int keep = pattern == "1:4" ? 1 : 2;
      if (pattern == "auto" && check_nm_sparse(w, 1).is_ok()) keep = 1;
      auto t = pack_nm_sparse(w, keep, p.weight);
      std::string why = t.is_ok() ? "" : t.status().message();
      if (why.empty()) {  // what the runtime takes: see rt::nm_packable and its int8 depth
        auto shape = nm_sparse_shape(w.dims()[0], w.dims()[1], keep);  // valid: pack_nm_sparse succeeded
        if (!rt::nm_packable(w.dtype(), *shape))
          why = str_cat("[", w.dims()[0], ", ", w.dims()[1], "] is narrower than the runtime's panels");
        else if (w.dtype() == DType::kI8 && w.dims()[0] > rt::kNMInt8MaxDepth)
          why = str_cat("int8 K = ", w.dims()[0], " is over the ", rt::kNMInt8MaxDepth, " the runtime sums exactly");
      }
      if (!why.empty()) {
        packed[p.weight].why = why;
        result.decisions.push_back({n.name, n.op_type, "skipped", why});
        continue;
      }
      Packed pk;
      pk.n = keep;
      pk.bytes = t->values.nbytes() + t->indices.nbytes();
      pk.values = rw.initializer(std::move(t->values));
      pk.indices = rw.initializer(std::move(t->indices));
      packed[p.weight] = pk;
    }
    const Packed& pk = packed.at(p.weight);
    if (pk.n == 0) {  // a shared weight that did not pack: this reader is skipped too
      result.decisions.push_back({n.name, n.op_type, "skipped", pk.why});
      continue;
    }
    at[p.at] = &p;
    for (size_t d : p.drop) drop.insert(d);
    if (p.dql >= 0) chain_dqls.insert(g.nodes[p.dql].outputs[0]);
    result.decisions.push_back({n.name, n.op_type, "packed",
                                str_cat(pk.n, ":4, ", dtype_name(w.dtype()), ", ", w.nbytes(), " -> ", pk.bytes, " bytes")});
  }
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (drop.count(i)) continue;
    auto it = at.find(i);
    if (it == at.end()) {
      rw.keep(g.nodes[i]);
      continue;
    }
    const Plan& p = *it->second;
    const Packed& pk = packed.at(p.weight);
    Node node;
    node.name = g.nodes[i].name;
    node.op_type = kNMSparseMatMul;
    node.domain = kLlmcDomain;
    node.inputs = {p.x, pk.values, pk.indices};
    if (!p.scales.empty()) node.inputs.push_back(p.scales);
    node.outputs = {g.nodes[i].outputs[0]};
    node.attributes.push_back(Attribute::make_int("n", pk.n));
    rw.keep(std::move(node));
    ++result.rewrites;
  }
  if (result.rewrites > 0) {
    rw.commit();
    // DynamicQuantizeLinears whose every product was packed are read by nothing now.
    const GraphIndex after(g);
    auto unread = [&](const Node& n) {
      if (n.op_type != "DynamicQuantizeLinear" || n.outputs.empty() || !chain_dqls.count(n.outputs[0])) return false;
      for (const auto& o : n.outputs)
        if (!o.empty() && (!after.consumers(o).empty() || after.is_graph_output(o))) return false;
      return true;
    };
    g.nodes.erase(std::remove_if(g.nodes.begin(), g.nodes.end(), unread), g.nodes.end());
    if (model.opset(kLlmcDomain) < 1) model.set_opset(kLlmcDomain, 1);
  }
  finish_result(model, result);
  result.summary = str_cat(result.rewrites, " of ", result.decisions.size(), " weight products packed n:4, weights ",
                           result.bytes_before, " -> ", result.bytes_after, " bytes");
  return result;
}

}  // namespace llmc
