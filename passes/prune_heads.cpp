#include "passes/prune_heads.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <numeric>
#include <set>

#include "ir/graph_utils.h"
#include "passes/pass_statistics.h"
#include "passes/weight_slices.h"

namespace llmc {

namespace {

// A shape constant that counts heads: entry `index` is `per_head` * heads.
struct HeadConstant {
  std::string name;
  size_t index = 0;
  int64_t per_head = 1;
  bool query = true;  // counts query heads (else KV heads)
};

struct Projection {
  int node = -1;
  std::string bias;  // "" when none
};

struct AttentionBlock {
  int o = -1;
  Projection q, k, v;
  // GPT-2's fused projection: Split(x W_qkv + b, [Dq, Dkv, Dkv]) feeds Q, K and V (q, k, v unused).
  Projection fused;
  int split = -1;
  std::string split_sizes;
  // A PyTorch export's head merge Reshape([B, S, x.size(-1)]): the width is read at run time
  // from the projection input's shape; pruning puts a constant there (input `merge_piece` of
  // Concat node `merge_concat`).
  int merge_concat = -1;
  size_t merge_piece = 0;
  std::vector<HeadConstant> constants;
  std::string past_key, past_value, present_key, present_value;
  int64_t Hq = 0, Hkv = 0, hs = 0, D = 0;
};

constexpr int64_t kRunTime = INT64_MIN;  // a Reshape target entry computed at run time

// A 1-D (or with `scalar`, 0-D) int64 constant: an initializer, or the value of the Constant
// node producing `name`.
const Tensor* int_constant(const Graph& g, const GraphIndex& index, const std::string& name, bool scalar = false) {
  const Tensor* t = g.find_initializer(name);
  if (!t) {
    const int p = index.producer(name);
    if (p < 0 || g.nodes[p].op_type != "Constant" || !g.nodes[p].domain.empty()) return nullptr;
    const Attribute* v = g.nodes[p].find_attr("value");
    t = v && v->tensors.size() == 1 ? &v->tensors[0] : nullptr;
  }
  return t && t->dtype() == DType::kI64 && (t->dims().size() == 1 || (scalar && t->dims().empty())) ? t : nullptr;
}

// The same constant, writable (an initializer copied on write, or the Constant node's value).
int64_t* int_constant_data(Graph& g, const GraphIndex& index, const std::string& name) {
  if (Tensor* t = g.find_initializer(name)) return reinterpret_cast<int64_t*>(t->mutable_data());
  Node& n = g.nodes[index.producer(name)];
  for (Attribute& a : n.attributes)
    if (a.name == "value") return reinterpret_cast<int64_t*>(a.tensors[0].mutable_data());
  return nullptr;
}

class Follower {
 public:
  Follower(const Graph& g, const GraphIndex& index) : g_(g), index_(index) {}

  // The node producing `value` when it is `op` with the inputs the layout reads (a hostile node
  // may have fewer: arity is only checked when a kernel runs), else nullptr (the trail's end noted).
  const Node* producer(const std::string& value, const std::string& op) {
    const int p = index_.producer(value);
    const size_t arity = op == "Where" ? 3 : op == "Reshape" || op == "MatMul" || op == "Sub" || op == "Mul" ? 2 : 1;
    if (p < 0 || g_.nodes[p].op_type != op || !g_.nodes[p].domain.empty() || g_.nodes[p].inputs.size() < arity) {
      if (lost_.empty())
        lost_ = "expected " + op + " producing '" + value + "', found " +
                (p < 0 ? "none" : g_.nodes[p].op_type + " with " + std::to_string(g_.nodes[p].inputs.size()) + " inputs");
      return nullptr;
    }
    return &g_.nodes[p];
  }
  int index_of(const Node* n) const { return static_cast<int>(n - g_.nodes.data()); }
  // A 1-D int64 constant's values (an initializer, or a Constant node's as PyTorch exports
  // them); empty when `name` is neither.
  std::vector<int64_t> ints(const std::string& name) const {
    const Tensor* t = int_constant(g_, index_, name);
    if (!t) return {};
    return {t->data_as<int64_t>(), t->data_as<int64_t>() + t->numel()};
  }
  // A Reshape target: a constant, or (PyTorch exports) a Concat of one-element pieces, run-time
  // ones (Unsqueeze of a Shape's Gather) as kRunTime. Empty when it is neither.
  std::vector<int64_t> shape(const std::string& name) const {
    if (int_constant(g_, index_, name)) return ints(name);
    const int p = index_.producer(name);
    if (p < 0 || g_.nodes[p].op_type != "Concat" || g_.nodes[p].attr_int("axis", -1) != 0) return {};
    std::vector<int64_t> out;
    for (const std::string& piece : g_.nodes[p].inputs) {
      const std::vector<int64_t> v = ints(piece);
      if (v.size() == 1) out.push_back(v[0]);
      else if (produced_by(piece, "Unsqueeze")) out.push_back(kRunTime);
      else return {};
    }
    return out;
  }
  // `piece` = Unsqueeze(Gather(Shape(v), last axis of a rank-3 v)): v, else "".
  std::string runtime_width(const std::string& piece) const {
    const int u = index_.producer(piece);
    if (u < 0 || g_.nodes[u].op_type != "Unsqueeze" || g_.nodes[u].inputs.empty()) return "";
    const int ga = index_.producer(g_.nodes[u].inputs[0]);
    if (ga < 0 || g_.nodes[ga].op_type != "Gather" || g_.nodes[ga].inputs.size() != 2) return "";
    const Tensor* i = int_constant(g_, index_, g_.nodes[ga].inputs[1], /*scalar=*/true);
    if (!i || i->numel() != 1 || (i->data_as<int64_t>()[0] != 2 && i->data_as<int64_t>()[0] != -1)) return "";
    const int sh = index_.producer(g_.nodes[ga].inputs[0]);
    if (sh < 0 || g_.nodes[sh].op_type != "Shape" || g_.nodes[sh].inputs.size() != 1 || g_.nodes[sh].find_attr("start") ||
        g_.nodes[sh].find_attr("end"))
      return "";
    return g_.nodes[sh].inputs[0];
  }
  // Where entry `index` of Reshape target `name` lives: (constant, entry), that constant read by
  // nothing else; false otherwise.
  bool entry(const std::string& name, size_t index, std::string& constant, size_t& at) const {
    if (int_constant(g_, index_, name)) {
      constant = name;
      at = index;
    } else {  // a Concat (shape() said so) read only by this Reshape, and its piece only by it
      const int p = index_.producer(name);
      if (p < 0 || index >= g_.nodes[p].inputs.size() || index_.consumers(name).size() != 1) return false;
      constant = g_.nodes[p].inputs[index];
      at = 0;
      if (!int_constant(g_, index_, constant)) return false;
    }
    return index_.consumers(constant).size() == 1;
  }
  // A Reshape's target entry `index`, recorded when it is per_head * heads in a constant of its own.
  bool head_constant(const Node* reshape, size_t index, int64_t per_head, int64_t heads, bool query,
                     std::vector<HeadConstant>& out) {
    const std::vector<int64_t> s = reshape ? shape(reshape->inputs[1]) : std::vector<int64_t>{};
    HeadConstant c;
    c.per_head = per_head;
    c.query = query;
    if (s.size() <= index || s[index] != per_head * heads || !entry(reshape->inputs[1], index, c.name, c.index)) {
      if (lost_.empty()) lost_ = "shape constant of '" + (reshape ? reshape->name : std::string("?")) + "' does not count heads as expected";
      return false;
    }
    out.push_back(c);
    return true;
  }
  bool perm(const Node* transpose, std::vector<int64_t> want) {
    if (!transpose) return false;
    const Attribute* a = transpose->find_attr("perm");
    if (a && a->ints == want) return true;
    if (lost_.empty()) lost_ = "'" + transpose->name + "' is not the expected transpose";
    return false;
  }
  // x W (+ b) with W a float32 [D, cols] initializer read only here.
  bool projection(const std::string& value, int64_t cols, Projection& p) {
    std::string x = value;
    const int a = index_.producer(x);
    if (a >= 0 && g_.nodes[a].op_type == "Add" && g_.nodes[a].inputs.size() == 2) {
      for (int side = 0; side < 2; ++side) {
        const Tensor* b = g_.find_initializer(g_.nodes[a].inputs[side]);
        if (b && b->dtype() == DType::kF32 && b->numel() == cols && index_.consumers(b->name()).size() == 1) {
          p.bias = b->name();
          x = g_.nodes[a].inputs[1 - side];
        }
      }
    }
    const Node* mm = producer(x, "MatMul");
    const Tensor* w = mm ? g_.find_initializer(mm->inputs[1]) : nullptr;
    if (!w || w->dtype() != DType::kF32 || w->dims().size() != 2 || w->dims()[1] != cols ||
        index_.consumers(mm->inputs[1]).size() != 1) {
      if (lost_.empty()) lost_ = "projection producing '" + value + "' has no float32 [D, " + std::to_string(cols) + "] weight of its own";
      return false;
    }
    p.node = index_of(mm);
    return true;
  }
  // llama_graph's rope: Reshape(Concat(Sub(Mul(Split(Reshape(x, [0,0,H,half,2])), cos), ...)), [0,0,H,hs]).
  bool rope(const std::string& value, int64_t heads, int64_t hs, bool query, AttentionBlock& b, std::string& x) {
    const Node* r4 = producer(value, "Reshape");
    if (!head_constant(r4, 2, 1, heads, query, b.constants)) return false;
    const Node* cat = producer(r4->inputs[0], "Concat");
    const Node* sub = cat ? producer(cat->inputs[0], "Sub") : nullptr;
    const Node* mul = sub ? producer(sub->inputs[0], "Mul") : nullptr;
    const Node* split = mul ? producer(mul->inputs[0], "Split") : nullptr;
    const Node* r5 = split ? producer(split->inputs[0], "Reshape") : nullptr;
    if (!r5 || !head_constant(r5, 2, 1, heads, query, b.constants)) return false;
    const std::vector<int64_t> s5 = ints(r5->inputs[1]);
    if (s5.size() != 5 || s5[3] * s5[4] != hs) return lost("rotary reshape of '" + r5->name + "' does not split the head");
    x = r5->inputs[0];
    return true;
  }
  // The op producing `value` when it is `op` (no trail noted otherwise).
  bool produced_by(const std::string& value, const std::string& op) const {
    const int p = index_.producer(value);
    return p >= 0 && g_.nodes[p].op_type == op && g_.nodes[p].domain.empty();
  }
  // Heads Reshape `value` = Reshape(x, [0, 0, heads, hs]) of a projection (GPT-2), or the
  // rotary chain of llama_graph: x, the projection's output, with the shape constants noted.
  bool heads(const std::string& value, int64_t heads, int64_t hs, bool query, AttentionBlock& b, std::string& x) {
    const Node* r = producer(value, "Reshape");
    if (r && produced_by(r->inputs[0], "Concat")) return rope(value, heads, hs, query, b, x);
    if (!r || !head_constant(r, 2, 1, heads, query, b.constants)) return false;
    x = r->inputs[0];
    return true;
  }
  // Output `slot` (0 Q, 1 K, 2 V) of `cols` channels: a projection of its own, or one output of
  // the Split of a fused projection (the same Split for all three).
  bool qkv(const std::string& x, int slot, int64_t cols, AttentionBlock& b, Projection& own) {
    if (!produced_by(x, "Split")) return projection(x, cols, own);
    const Node* s = producer(x, "Split");
    const int si = index_of(s);
    const int64_t axis = s->attr_int("axis", 0);
    if (s->outputs.size() != 3 || s->outputs[slot] != x || s->inputs.size() != 2 || (axis != -1 && axis != 2))
      return lost("'" + s->name + "' is not a Q/K/V split of the last axis by a sizes input");
    const std::vector<int64_t> sizes = ints(s->inputs[1]);
    if (sizes.size() != 3 || sizes[slot] != cols || index_.consumers(s->inputs[1]).size() != 1)
      return lost("split sizes of '" + s->name + "' are not [Dq, Dkv, Dkv] of its own");
    if (b.split >= 0 && b.split != si) return lost("Q, K and V come from different splits");
    if (b.split < 0) {
      b.split = si;
      b.split_sizes = s->inputs[1];
      if (!projection(s->inputs[0], sizes[0] + sizes[1] + sizes[2], b.fused)) return false;
    }
    return true;
  }
  // repeat_kv(present) or present itself; present = Concat(past input, new), axis 2.
  bool kv(const std::string& value, AttentionBlock& b, bool& repeated, std::string& present, std::string& past,
          std::string& fresh) {
    std::string x = value;
    const int p = index_.producer(x);
    repeated = p >= 0 && g_.nodes[p].op_type == "Reshape";
    if (repeated) {  // repeat_kv: Reshape(Expand(Unsqueeze(present)), [0, Hq, -1, hs])
      const Node* r = producer(x, "Reshape");
      if (!r || !head_constant(r, 1, 1, b.Hq, true, b.constants)) return false;
      const Node* e = producer(r->inputs[0], "Expand");
      const Node* u = e ? producer(e->inputs[0], "Unsqueeze") : nullptr;
      if (!u) return false;
      x = u->inputs[0];
    }
    if (!produced_by(x, "Concat")) {  // no KV cache (a PyTorch export without past inputs)
      fresh = x;
      return true;
    }
    const Node* cat = producer(x, "Concat");
    if (!cat || cat->inputs.size() != 2 || !g_.is_graph_input(cat->inputs[0]) || !index_.is_graph_output(x))
      return lost("'" + x + "' is not a KV cache (Concat of a past input, a present output)");
    present = x;
    past = cat->inputs[0];
    fresh = cat->inputs[1];
    return true;
  }
  bool lost(const std::string& why) {
    if (lost_.empty()) lost_ = why;
    return false;
  }
  const std::string& why() const { return lost_; }

 private:
  const Graph& g_;
  const GraphIndex& index_;
  std::string lost_;
};

// Follows the attention feeding output projection `o`; "" when it is the expected layout.
std::string follow_attention(const Graph& g, const GraphIndex& index, int o, AttentionBlock& b) {
  Follower f(g, index);
  const Node& out = g.nodes[o];
  const Tensor* wo = g.find_initializer(out.inputs[1]);
  b.o = o;
  b.D = wo->dims()[1];
  const int64_t merged = wo->dims()[0];
  // ctx = Reshape(Transpose(MatMul(probs, values), [0,2,1,3]), [0, 0, Hq*hs])
  const Node* merge = f.producer(out.inputs[0], "Reshape");
  const std::vector<int64_t> ms = merge ? f.shape(merge->inputs[1]) : std::vector<int64_t>{};
  if (ms.size() != 3 || (ms[2] != merged && ms[2] != kRunTime)) return f.why().empty() ? "no head merge Reshape before it" : f.why();
  const Node* tc = f.producer(merge->inputs[0], "Transpose");
  if (!f.perm(tc, {0, 2, 1, 3})) return f.why();
  const Node* pv = f.producer(tc->inputs[0], "MatMul");
  if (!pv) return f.why();
  // probs = Softmax(Where(mask, min, Mul(MatMul(q, Transpose(keys)), scale))), the Mul absent
  // when the scale is 1 (GPT-2 checkpoints with scale_attn_weights false).
  const Node* sm = f.producer(pv->inputs[0], "Softmax");
  const Node* wh = sm ? f.producer(sm->inputs[0], "Where") : nullptr;
  const bool scaled = wh && !f.produced_by(wh->inputs[2], "MatMul");
  const Node* sc = wh && scaled ? f.producer(wh->inputs[2], "Mul") : nullptr;
  const Node* qk = !wh ? nullptr : scaled ? (sc ? f.producer(sc->inputs[0], "MatMul") : nullptr) : f.producer(wh->inputs[2], "MatMul");
  // Keys: Transpose(present, [0,1,3,2]) of the cache, or (no cache, a PyTorch export)
  // Transpose(heads Reshape, [0,2,3,1]) straight from the projection.
  const Node* kt = qk ? f.producer(qk->inputs[1], "Transpose") : nullptr;
  const Attribute* kperm = kt ? kt->find_attr("perm") : nullptr;
  const bool direct_k = kperm && kperm->ints == std::vector<int64_t>{0, 2, 3, 1};
  if (!direct_k && !f.perm(kt, {0, 1, 3, 2})) return f.why();
  const Node* tq = f.producer(qk->inputs[0], "Transpose");
  if (!f.perm(tq, {0, 2, 1, 3})) return f.why();
  // Head counts from the query rotary Reshape [0, 0, Hq, hs] and the value Reshape [0, 0, Hkv, hs].
  const Node* rq = f.producer(tq->inputs[0], "Reshape");
  const std::vector<int64_t> qs = rq ? f.shape(rq->inputs[1]) : std::vector<int64_t>{};
  if (qs.size() != 4 || qs[2] <= 0 || qs[3] <= 0 || qs[2] * qs[3] != merged)
    return f.why().empty() ? "query heads Reshape does not split " + std::to_string(merged) + " channels" : f.why();
  b.Hq = qs[2];
  b.hs = qs[3];
  HeadConstant mc;
  mc.per_head = b.hs;
  std::string width_of;  // the value whose width a run-time merge entry reads
  const int concat = index.producer(merge->inputs[1]);
  const bool runtime_width = !f.ints(merge->inputs[1]).size() && concat >= 0 && g.nodes[concat].op_type == "Concat" &&
                             g.nodes[concat].inputs.size() == 3 && ms[2] == kRunTime;
  if (runtime_width) {
    if (index.consumers(merge->inputs[1]).size() != 1) return "the head merge shape is shared";
    b.merge_concat = concat;
    b.merge_piece = 2;
    width_of = f.runtime_width(g.nodes[b.merge_concat].inputs[2]);
    if (width_of.empty()) return "the head merge width is computed in a way not followed";
  } else if (ms[2] != merged) {
    return "the head merge Reshape does not make " + std::to_string(merged) + " channels";
  } else if (!f.entry(merge->inputs[1], 2, mc.name, mc.index)) {
    return "the head merge shape constant is shared";
  } else {
    b.constants.push_back(mc);
  }
  std::string fresh_v, fresh_k;
  bool repeat_v = false, repeat_k = false;
  if (!f.kv(pv->inputs[1], b, repeat_v, b.present_value, b.past_value, fresh_v)) return f.why();
  const Node* tv = f.producer(fresh_v, "Transpose");
  if (!f.perm(tv, {0, 2, 1, 3})) return f.why();
  const Node* rv = f.producer(tv->inputs[0], "Reshape");
  const std::vector<int64_t> vs = rv ? f.shape(rv->inputs[1]) : std::vector<int64_t>{};
  if (vs.size() != 4 || vs[3] != b.hs || vs[2] <= 0 || b.Hq % vs[2] != 0)
    return f.why().empty() ? "value heads Reshape not understood" : f.why();
  b.Hkv = vs[2];
  if (b.Hkv != b.Hq && !repeat_v) return "grouped-query attention without the repeat_kv Reshape";
  if (!f.head_constant(rv, 2, 1, b.Hkv, false, b.constants)) return f.why();
  if (!f.qkv(rv->inputs[0], 2, b.Hkv * b.hs, b, b.v)) return f.why();
  std::string xq, xk;
  if (!f.heads(tq->inputs[0], b.Hq, b.hs, true, b, xq) || !f.qkv(xq, 0, b.Hq * b.hs, b, b.q)) return f.why();
  std::string k_heads = kt->inputs[0];
  if (!direct_k) {
    if (!f.kv(kt->inputs[0], b, repeat_k, b.present_key, b.past_key, fresh_k)) return f.why();
    const Node* tk = f.producer(fresh_k, "Transpose");
    if (!f.perm(tk, {0, 2, 1, 3})) return f.why();
    k_heads = tk->inputs[0];
  }
  if (repeat_k != repeat_v) return "keys and values are repeated differently";
  if (!f.heads(k_heads, b.Hkv, b.hs, false, b, xk) || !f.qkv(xk, 1, b.Hkv * b.hs, b, b.k)) return f.why();
  if (b.split >= 0 ? (b.q.node >= 0 || b.k.node >= 0 || b.v.node >= 0) : (b.q.node < 0 || b.k.node < 0 || b.v.node < 0))
    return "Q, K and V do not all come from one fused projection or all from their own";
  if (!width_of.empty()) {  // x.size(-1) is the merged width only when it is the projections' input
    const Node& proj = g.nodes[b.split >= 0 ? b.fused.node : b.q.node];
    if (proj.inputs[0] != width_of || g.find_initializer(proj.inputs[1])->dims()[0] != merged)
      return "the head merge width is read from '" + width_of + "', not the attention input of width " + std::to_string(merged);
  }
  return "";
}

// Channels [h * hs, (h + 1) * hs) of each head h in `heads`.
std::vector<int64_t> channels_of(const std::vector<int64_t>& heads, int64_t hs) {
  std::vector<int64_t> c;
  for (int64_t h : heads)
    for (int64_t i = 0; i < hs; ++i) c.push_back(h * hs + i);
  return c;
}

void set_head_dim(std::vector<ValueInfo>& list, const std::string& name, int64_t heads) {
  for (ValueInfo& vi : list)
    if (vi.name == name && vi.type.has_shape && vi.type.dims.size() == 4) vi.type.dims[1].value = heads;
}

// Removes the nodes that computed `values` (and what only they read), as far as nothing else
// reads them: a replaced run-time width's Unsqueeze, Gather, Shape and index constants.
void remove_unread_chains(Graph& g, const std::vector<std::string>& values) {
  std::set<std::string> candidates(values.begin(), values.end());
  for (bool removed = true; removed && !candidates.empty();) {
    removed = false;
    const GraphIndex index(g);
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      const Node& n = g.nodes[i];
      if (n.outputs.size() != 1 || !candidates.count(n.outputs[0]) || !index.consumers(n.outputs[0]).empty() ||
          index.is_graph_output(n.outputs[0]))
        continue;
      candidates.erase(n.outputs[0]);
      for (const std::string& in : n.inputs)
        if (!in.empty() && index.producer(in) >= 0) candidates.insert(in);
      g.nodes.erase(g.nodes.begin() + static_cast<long>(i));
      removed = true;
      break;
    }
  }
}

}  // namespace

std::vector<OptionSpec> PruneHeads::options() const {
  return {float_option("ratio", "0.25", 0, 1, "fraction of every layer's KV head groups removed (with their query heads)",
                       true, true)};
}

std::unique_ptr<Pass> make_prune_heads() { return std::make_unique<PruneHeads>(); }

Result<PassResult> PruneHeads::run(Model& model, const PassOptions& options, PassContext& context) {
  const double ratio = option_double(options, "ratio", 0.25);
  PassResult result;
  result.bytes_before = initializer_bytes(model);
  Graph& g = model.graph;
  const GraphIndex index(g);
  std::vector<AttentionBlock> blocks;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (n.op_type != "MatMul" || !n.domain.empty() || n.inputs.size() != 2) continue;
    const Tensor* w = g.find_initializer(n.inputs[1]);
    if (!w || w->dtype() != DType::kF32 || w->dims().size() != 2) continue;
    const int p = index.producer(n.inputs[0]);
    if (p < 0 || g.nodes[p].op_type != "Reshape") continue;  // only a head merge can feed an output projection
    AttentionBlock b;
    const std::string why = follow_attention(g, index, static_cast<int>(i), b);
    if (!why.empty())
      return invalid_input(context.model_path, ": prune-heads cannot follow the attention before '", n.name, "': ", why,
                           " (the layouts of the Llama and GPT-2 importers are supported)");
    blocks.push_back(std::move(b));
  }
  if (blocks.empty())
    return invalid_input(context.model_path, ": prune-heads found no attention block (an output projection fed by a head merge)");
  for (const AttentionBlock& b : blocks) {
    // ratio < 1 and floor() always leave a group; the refusal is a ratio too small to remove one.
    if (std::floor(ratio * double(b.Hkv)) == 0)
      return invalid_input("ratio ", ratio, " removes no KV head group of ", b.Hkv, " in '", g.nodes[b.o].name,
                           "' (whole groups go: the smallest ratio here is ", 1.0 / b.Hkv, ")");
  }
  PassStatistics stats(context);
  calib::StatisticsRequest request;
  request.kinds = calib::kL2Norm;
  for (const AttentionBlock& b : blocks) request.values.push_back(g.nodes[b.o].inputs[0]);
  UniqueNames names(g);
  std::vector<std::string> width_chains;  // replaced run-time widths: their Shape chains may be unread now
  LLMC_ASSIGN_OR_RETURN(auto measured, stats.require(model, request, "prune-heads", "each head's output norm"));
  for (const AttentionBlock& b : blocks) {
    const Node& o = g.nodes[b.o];
    const calib::ChannelStatistics* s = measured.at(o.inputs[0]);
    const float* wo = g.find_initializer(o.inputs[1])->data_as<float>();
    const int64_t rep = b.Hq / b.Hkv;
    std::vector<double> score(static_cast<size_t>(b.Hkv), 0.0);
    for (int64_t c = 0; c < b.Hq * b.hs; ++c) {
      double row = 0;
      for (int64_t j = 0; j < b.D; ++j) row += double(wo[c * b.D + j]) * wo[c * b.D + j];
      score[c / b.hs / rep] += s->l2_norm[c] * std::sqrt(row);
    }
    std::vector<int64_t> order(static_cast<size_t>(b.Hkv));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return score[x] > score[y]; });
    const int64_t kept_kv = b.Hkv - static_cast<int64_t>(std::floor(ratio * double(b.Hkv)));
    std::vector<int64_t> kv_keep(order.begin(), order.begin() + kept_kv), q_keep;
    std::sort(kv_keep.begin(), kv_keep.end());
    for (int64_t kvh : kv_keep)
      for (int64_t r = 0; r < rep; ++r) q_keep.push_back(kvh * rep + r);
    const auto qc = channels_of(q_keep, b.hs), kc = channels_of(kv_keep, b.hs);
    const int64_t kept_q = static_cast<int64_t>(q_keep.size());
    int64_t D_in = 0;
    bool biased = false;
    if (b.split >= 0) {  // one fused weight: columns [Q | K | V], and the split sizes
      std::vector<int64_t> cols = qc;
      for (int64_t base : {b.Hq * b.hs, b.Hq * b.hs + b.Hkv * b.hs})
        for (int64_t c : kc) cols.push_back(base + c);
      D_in = g.find_initializer(g.nodes[b.fused.node].inputs[1])->dims()[0];
      keep_slices(g, g.nodes[b.fused.node].inputs[1], cols, 1);
      if (!b.fused.bias.empty()) keep_slices(g, b.fused.bias, cols, 0);
      biased = !b.fused.bias.empty();
      int64_t* sizes = int_constant_data(g, index, b.split_sizes);
      sizes[0] = kept_q * b.hs;
      sizes[1] = sizes[2] = kept_kv * b.hs;
    } else {
      D_in = g.find_initializer(g.nodes[b.q.node].inputs[1])->dims()[0];
      keep_slices(g, g.nodes[b.q.node].inputs[1], qc, 1);
      keep_slices(g, g.nodes[b.k.node].inputs[1], kc, 1);
      keep_slices(g, g.nodes[b.v.node].inputs[1], kc, 1);
      if (!b.q.bias.empty()) keep_slices(g, b.q.bias, qc, 0);
      if (!b.k.bias.empty()) keep_slices(g, b.k.bias, kc, 0);
      if (!b.v.bias.empty()) keep_slices(g, b.v.bias, kc, 0);
      biased = !b.q.bias.empty();
    }
    keep_slices(g, o.inputs[1], qc, 0);
    for (const HeadConstant& c : b.constants)
      int_constant_data(g, index, c.name)[c.index] = c.per_head * (c.query ? kept_q : kept_kv);
    if (b.merge_concat >= 0) {  // the run-time width becomes the narrowed constant
      const std::string name = names.make(g.nodes[b.o].name + "/merged_width");
      g.initializers.push_back(Tensor::from_vector<int64_t>(name, DType::kI64, {1}, {kept_q * b.hs}));
      width_chains.push_back(g.nodes[b.merge_concat].inputs[b.merge_piece]);
      g.nodes[b.merge_concat].inputs[b.merge_piece] = name;
    }
    for (const std::string& name : {b.past_key, b.past_value}) set_head_dim(g.inputs, name, kept_kv);
    for (const std::string& name : {b.present_key, b.present_value}) set_head_dim(g.outputs, name, kept_kv);
    const int64_t removed_params = (b.Hq - kept_q) * b.hs * (D_in + b.D + (biased ? 1 : 0)) +
                                   2 * (b.Hkv - kept_kv) * b.hs * (D_in + (biased ? 1 : 0));
    result.decisions.push_back({o.name, o.op_type, "pruned",
                                str_cat("kept ", kept_q, " of ", b.Hq, " query heads, ", kept_kv, " of ", b.Hkv,
                                        " KV heads; ", removed_params, " parameters removed")});
    ++result.rewrites;
  }
  remove_unread_chains(g, width_chains);
  finish_result(model, result);
  result.summary = str_cat("prune-heads: ", result.rewrites, " attention blocks narrowed by ratio ", ratio, " from ",
                           stats.samples(), " calibration samples");
  return result;
}

}  // namespace llmc
