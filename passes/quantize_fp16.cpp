#include "passes/quantize_fp16.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>
#include <unordered_map>

#include "ir/graph_utils.h"
#include "passes/quant_utils.h"
#include "runtime/thread_pool.h"

namespace llmc {

namespace {

constexpr DType F32 = DType::kF32, F16 = DType::kF16, NONE = DType::kUndefined;

// ORT's DEFAULT_OP_BLOCK_LIST, then the transformer additions explained in the header.
const char* const kDefaultBlock[] = {
    "ArrayFeatureExtractor", "Binarizer", "CastMap", "CategoryMapper", "DictVectorizer",
    "FeatureVectorizer", "Imputer", "LabelEncoder", "LinearClassifier", "LinearRegressor", "Normalizer",
    "OneHotEncoder", "RandomUniformLike", "SVMClassifier", "SVMRegressor", "Scaler",
    "TreeEnsembleClassifier", "TreeEnsembleRegressor", "ZipMap", "NonMaxSuppression", "TopK", "RoiAlign",
    "Resize", "Range", "CumSum", "Min", "Max", "Upsample",
    "Softmax", "LayerNormalization", "SimplifiedLayerNormalization", "RMSNormalization",
    "SkipLayerNormalization", "SkipSimplifiedLayerNormalization", "Pow", "ReduceMean", "Sqrt", "Reciprocal",
    "RandomNormal", "RandomNormalLike", "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear",
    "DynamicQuantizeMatMul"};

struct Options {
  bool keep_io = true;
  bool keep_kv = false;  // KV cache IO (past_key_values.* / present.*) float32 too
  std::set<std::string> ops, nodes;
  float min_positive = 5.96e-8f, max_finite = 65504.f;
};

Result<Options> parse(const PassOptions& o) {
  Options p;
  p.keep_io = option_flag(o, "keep-io-types");
  p.keep_kv = option_flag(o, "keep-kv-types");
  for (const auto& op : split_list(option_string(o, "op-block-list", "default")))
    if (op != "default") p.ops.insert(op);
    else p.ops.insert(std::begin(kDefaultBlock), std::end(kDefaultBlock));
  p.nodes = split_list(option_string(o, "node-block-list", ""));
  p.min_positive = static_cast<float>(option_double(o, "min-positive-val", p.min_positive));
  p.max_finite = static_cast<float>(option_double(o, "max-finite-val", p.max_finite));
  if (p.min_positive >= p.max_finite)
    return invalid_input("need 0 < min-positive-val < max-finite-val <= 65504 (largest float16), got ",
                         p.min_positive, " and ", p.max_finite);
  return p;
}

using Types = std::unordered_map<std::string, DType>;

DType attr_dtype(const Node& n, const char* name, DType fallback) {
  const Attribute* a = n.find_attr(name);
  return a && a->i != 0 ? static_cast<DType>(a->i) : fallback;
}

// Output element types of one node from its input types (standard ops; others follow input 0).
std::vector<DType> infer_outputs(const Node& n, const Types& t) {
  auto in = [&](size_t i) {
    auto it = i < n.inputs.size() ? t.find(n.inputs[i]) : t.end();
    return it == t.end() ? NONE : it->second;
  };
  std::vector<DType> r(n.outputs.size(), NONE);
  auto all = [&](DType d) {
    std::fill(r.begin(), r.end(), d);
    return r;
  };
  const std::string& op = n.op_type;
  static const std::set<std::string> i64{"Shape", "Size", "NonZero", "ArgMax", "ArgMin", "NonMaxSuppression"};
  static const std::set<std::string> boolean{"Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Not",
                                             "And", "Or", "Xor", "IsNaN", "IsInf"};
  if (n.domain == "com.microsoft" && (op == "DynamicQuantizeMatMul" || op == "MatMulIntegerToFloat")) return all(F32);
  if (!n.domain.empty() && n.domain != "ai.onnx") return all(in(0));
  if (op == "Cast") return all(attr_dtype(n, "to", NONE));
  if (op == "CastLike" || op == "Where") return all(in(1));
  if (i64.count(op)) return all(DType::kI64);
  if (boolean.count(op)) return all(DType::kBool);
  if (op == "Constant" || op == "ConstantOfShape") {
    if (const Attribute* a = n.find_attr("value"); a && !a->tensors.empty()) return all(a->tensors[0].dtype());
    if (op == "ConstantOfShape" || n.find_attr("value_float") || n.find_attr("value_floats")) return all(F32);
    return all(n.find_attr("value_int") || n.find_attr("value_ints") ? DType::kI64 : NONE);
  }
  if (op == "RandomNormal" || op == "RandomUniform") return all(attr_dtype(n, "dtype", F32));
  if (op == "RandomNormalLike" || op == "RandomUniformLike" || op == "EyeLike" || op == "Bernoulli")
    return all(attr_dtype(n, "dtype", in(0)));
  if (op == "Multinomial") return all(attr_dtype(n, "dtype", DType::kI32));
  if (op == "DynamicQuantizeLinear") return {DType::kU8, F32, DType::kU8};
  if (op == "QuantizeLinear") return all(attr_dtype(n, "output_dtype", in(2) == NONE ? DType::kU8 : in(2)));
  if (op == "DequantizeLinear") return all(in(1));
  if (op == "MatMulInteger" || op == "ConvInteger") return all(DType::kI32);
  if (op == "QLinearMatMul" || op == "QLinearConv") return all(in(7));
  if (op == "OneHot") return all(in(2));
  if (op == "TopK" || op == "Unique" || op == "LayerNormalization") {
    all(op == "LayerNormalization" ? F32 : DType::kI64);
    if (!r.empty()) r[0] = in(0);
    return r;
  }
  for (size_t i = 0; i < n.inputs.size(); ++i)
    if (in(i) != NONE) return all(in(i));
  return r;
}

// Element type of every tensor value: declared types (value_info, graph IO) win over inference.
Types infer_types(const Graph& g) {
  Types declared, t;
  auto declare = [&](const ValueInfo& v) {
    if (v.type.kind == ValueType::Kind::kTensor && v.type.elem != NONE) declared[v.name] = v.type.elem;
  };
  for (const auto& v : g.value_info) declare(v);
  for (const auto& v : g.outputs) declare(v);
  for (const auto& v : g.inputs) declare(v), t[v.name] = declared[v.name];
  for (const auto& init : g.initializers) t[init.name()] = init.dtype();
  for (const auto& n : g.nodes) {
    const auto out = infer_outputs(n, t);
    for (size_t o = 0; o < n.outputs.size(); ++o) {
      if (n.outputs[o].empty()) continue;
      auto d = declared.find(n.outputs[o]);
      t[n.outputs[o]] = d != declared.end() ? d->second : out[o];
    }
  }
  return t;
}

// Float inputs that stay float32 even on float16 nodes (ORT's ALWAYS_FLOAT_INPUTS).
bool always_float(const Node& n, size_t k) {
  if (n.op_type == "Resize") return k == 2;
  if (n.op_type == "GroupNorm" || n.op_type == "SkipGroupNorm") return k == 1 || k == 2;
  return false;
}
// Ops that read float inputs of any type as they are (no Cast in front).
bool reads_any_float(const Node& n) {
  return n.domain.empty() && (n.op_type == "Cast" || n.op_type == "Shape" || n.op_type == "Size");
}

struct Home {  // where a value lives now (renamed when a graph output needs a Cast), and its type
  std::string name;
  DType type;
};

class Converter {
 public:
  Converter(Graph& g, const Options& o, rt::ThreadPool& pool)
      : g_(g), o_(o), pool_(pool), names_(g), idx_(g), types_(infer_types(g)) {}
  Result<PassResult> run(size_t bytes_before);

 private:
  bool f32(const std::string& v) const {
    auto it = v.empty() ? types_.end() : types_.find(v);
    return it != types_.end() && it->second == F32;
  }
  bool is_constant(const std::string& v) const {
    const int p = idx_.producer(v);
    return p >= 0 ? g_.nodes[p].op_type == "Constant" : g_.find_initializer(v) && !g_.is_graph_input(v);
  }
  DType want(int node, size_t k) const {
    const Node& n = g_.nodes[node];
    if (reads_any_float(n)) return NONE;
    return prec_[node] == 2 || always_float(n, k) ? F32 : F16;
  }
  // Graph IO that stays float32. The KV cache is model state the decoder feeds back, not user
  // IO: it stays float16 unless keep-kv-types, so decoding does not convert the whole cache
  // twice per token.
  bool keep(const std::string& v) const {
    const bool kv = v.rfind("past_key_values.", 0) == 0 || v.rfind("present.", 0) == 0;
    return o_.keep_io && (!kv || o_.keep_kv);
  }
  bool wants_f16(const std::string& v) const {
    if (gout_.count(v) && !keep(v)) return true;
    for (int c : idx_.consumers(v))
      for (size_t k = 0; k < g_.nodes[c].inputs.size(); ++k)
        if (g_.nodes[c].inputs[k] == v && want(c, k) == F16) return true;
    return false;
  }
  void classify();
  std::string value_in(const std::string& v, DType w);
  std::string add_cast(const std::string& src, DType to, std::string out = "");
  Tensor to_fp16(const Tensor& t, const std::string& label);
  void convert_attributes(Node& n, const std::string& label);

  Graph& g_;
  const Options& o_;
  rt::ThreadPool& pool_;
  UniqueNames names_;
  GraphIndex idx_;
  Types types_;
  std::set<std::string> gout_;      // float32 graph outputs
  std::vector<int> prec_;           // per node: 0 no float32 tensors, 1 float16, 2 kept float32
  std::vector<std::string> why_;
  std::unordered_map<std::string, Home> home_;
  std::unordered_map<std::string, std::string> cache_;  // value + "|16" / "|32" -> name holding it
  std::unordered_map<std::string, Tensor> originals_;   // float32 originals of converted constants
  std::vector<Node> out_;
  std::vector<Tensor> new_inits_;
  std::vector<std::pair<int64_t, std::string>> large_, small_;  // clamped values per tensor
  int64_t casts_ = 0;
};

void Converter::classify() {
  const int N = static_cast<int>(g_.nodes.size());
  prec_.assign(N, 0);
  why_.assign(N, "");
  for (int i = 0; i < N; ++i) {
    const Node& n = g_.nodes[i];
    const bool fin = std::any_of(n.inputs.begin(), n.inputs.end(), [&](auto& v) { return f32(v); }) ||
                     std::any_of(n.implicit_inputs.begin(), n.implicit_inputs.end(), [&](auto& v) { return f32(v); });
    const bool fout = std::any_of(n.outputs.begin(), n.outputs.end(), [&](auto& v) { return f32(v); });
    if (!fin && !fout) continue;
    const bool subgraphs = std::any_of(n.attributes.begin(), n.attributes.end(), [](const Attribute& a) {
      return a.kind == AttrKind::kGraph || a.kind == AttrKind::kGraphs;
    });
    const bool to_output =
        std::any_of(n.outputs.begin(), n.outputs.end(), [&](auto& v) { return gout_.count(v) > 0 && keep(v); });
    prec_[i] = 2;
    if (o_.nodes.count(n.name)) why_[i] = "node in node-block-list";
    else if (o_.ops.count(n.op_type)) why_[i] = "op type in op-block-list";
    else if (subgraphs) why_[i] = "has subgraphs (not converted)";
    else if (n.op_type == "Cast" && to_output) why_[i] = "Cast writing a float32 graph output (keep-io-types)";
    else prec_[i] = 1;
  }
  // A node wedged between float32 nodes stays float32 (no Cast pair around it): every float
  // input constant or from a float32 node (any, for Cast), every reader blocked.
  const std::vector<int> blocked = prec_;
  for (int i = 0; i < N; ++i) {
    const Node& n = g_.nodes[i];
    if (prec_[i] != 1 || n.op_type == "Constant") continue;
    bool outs = false, ok = true, from_f32 = false;
    for (const auto& v : n.outputs) {
      if (!f32(v)) continue;
      outs = true;
      ok = ok && !gout_.count(v) && !idx_.consumers(v).empty();
      for (int c : idx_.consumers(v)) ok = ok && blocked[c] == 2;
    }
    if (n.op_type != "Cast") {
      for (const auto& v : n.inputs) {
        if (!f32(v)) continue;
        const int p = idx_.producer(v);
        const bool f32_node = p >= 0 && prec_[p] == 2;
        from_f32 = from_f32 || f32_node;
        ok = ok && (f32_node || is_constant(v));
      }
      ok = ok && from_f32;
    }
    if (outs && ok) {
      prec_[i] = 2;
      why_[i] = n.op_type == "Cast" ? "Cast feeding only float32 nodes" : "between float32 nodes";
    }
  }
  for (int i = 0; i < N; ++i)  // constants nobody reads as float16 stay float32
    if (prec_[i] == 1 && g_.nodes[i].op_type == "Constant" && !wants_f16(g_.nodes[i].outputs[0])) {
      prec_[i] = 2;
      why_[i] = "read only by float32 nodes";
    }
}

Tensor Converter::to_fp16(const Tensor& t, const std::string& label) {
  int64_t large = 0, small = 0;
  Tensor r = convert_weight_fp16(t, o_.max_finite, o_.min_positive, &pool_, &large, &small);
  if (large) large_.push_back({large, label});
  if (small) small_.push_back({small, label});
  return r;
}

std::string Converter::add_cast(const std::string& src, DType to, std::string out) {
  const char* suffix = to == F16 ? "_fp16" : "_fp32";
  if (out.empty()) out = names_.make(src + suffix);
  out_.push_back(Node{names_.make(src + "/Cast" + suffix), "Cast", "", {src}, {out},
                      {Attribute::make_int("to", static_cast<int64_t>(to))}, "", "", {}});
  ++casts_;
  return out;
}

// `v` (a float32 value of the original graph) as type `w`, adding at most one Cast: a Cast
// output is re-cast from its source, a converted constant gets a float32 copy.
std::string Converter::value_in(const std::string& v, DType w) {
  auto h = home_.find(v);
  if (h == home_.end() || h->second.type == w) return h == home_.end() ? v : h->second.name;
  const std::string key = v + (w == F16 ? "|16" : "|32");
  if (auto c = cache_.find(key); c != cache_.end()) return c->second;
  std::string r;
  const int p = idx_.producer(v);
  const Node* pn = p >= 0 ? &g_.nodes[p] : nullptr;
  if (pn && pn->domain.empty() && pn->op_type == "Cast") {
    const std::string& src = pn->inputs[0];
    auto st = types_.find(src);
    r = f32(src) ? value_in(src, w) : st != types_.end() && st->second == w ? src : add_cast(src, w);
  } else if (w == F32 && originals_.count(v)) {
    Tensor t = originals_.at(v);
    t.set_name(names_.make(v + "_fp32"));
    if (pn)  // a Constant node: a second Constant holding the float32 tensor
      out_.push_back(Node{names_.make(pn->name + "_fp32"), "Constant", "", {}, {t.name()},
                          {Attribute::make_tensor("value", t)}, "", "", {}});
    else
      new_inits_.push_back(t);
    r = t.name();
  } else {
    r = add_cast(h->second.name, w);
  }
  cache_[key] = r;
  return r;
}

void Converter::convert_attributes(Node& n, const std::string& label) {
  const std::string& op = n.op_type;
  if (op == "Cast" && n.attr_int("to", 0) == static_cast<int64_t>(F32)) {
    for (auto& a : n.attributes)
      if (a.name == "to") a.i = static_cast<int64_t>(F16);
  } else if (op == "Constant" || op == "ConstantOfShape") {  // value tensor to float16 (a float32 copy kept)
    Tensor t = op == "ConstantOfShape" ? Tensor::zeros(label, F32, {1}) : Tensor();
    for (const auto& a : n.attributes) {
      if (a.name == "value" && !a.tensors.empty()) t = a.tensors[0];
      if (a.name == "value_float") t = Tensor::from_vector(label, F32, {}, std::vector<float>{a.f});
      if (a.name == "value_floats") t = Tensor::from_vector(label, F32, {int64_t(a.floats.size())}, a.floats);
    }
    if (t.dtype() != F32) return;
    if (op == "Constant") originals_[n.outputs[0]] = t;
    std::erase_if(n.attributes, [](const Attribute& x) { return x.name.rfind("value", 0) == 0; });
    n.attributes.push_back(Attribute::make_tensor("value", to_fp16(t, label)));
  } else if (op == "RandomNormal" || op == "RandomUniform" || op == "RandomNormalLike" || op == "RandomUniformLike" ||
             op == "EyeLike" || op == "Bernoulli") {
    if (attr_dtype(n, "dtype", F32) != F32) return;
    std::erase_if(n.attributes, [](const Attribute& x) { return x.name == "dtype"; });
    n.attributes.push_back(Attribute::make_int("dtype", static_cast<int64_t>(F16)));
  }
}

Result<PassResult> Converter::run(size_t bytes_before) {
  PassResult result;
  result.bytes_before = bytes_before;
  for (const auto& o : g_.outputs)
    if (f32(o.name)) gout_.insert(o.name);
  classify();
  bool io_changed = false;
  for (auto& in : g_.inputs) {
    if (!f32(in.name)) continue;
    home_[in.name] = {in.name, keep(in.name) ? F32 : F16};
    if (keep(in.name)) continue;
    in.type.elem = F16, io_changed = true;
    if (Tensor* t = g_.find_initializer(in.name)) originals_[in.name] = *t, *t = to_fp16(*t, in.name);
  }
  int64_t converted_inits = 0;
  for (auto& t : g_.initializers) {
    if (t.dtype() != F32 || g_.is_graph_input(t.name())) continue;
    // A float32 graph output (keep-io-types) stays float32; float16 readers get a Cast.
    const bool to16 = wants_f16(t.name()) && !(keep(t.name()) && gout_.count(t.name()));
    home_[t.name()] = {t.name(), to16 ? F16 : F32};
    if (!to16) continue;
    originals_[t.name()] = t;
    t = to_fp16(t, t.name());
    ++converted_inits;
  }
  int64_t kept = 0;
  for (size_t i = 0; i < g_.nodes.size(); ++i) {
    Node n = g_.nodes[i];
    const int prec = prec_[i];
    if (prec == 0) {
      out_.push_back(std::move(n));
      continue;
    }
    for (const auto& v : n.implicit_inputs)
      if (f32(v) && (home_.count(v) ? home_[v].type : F16) != F32)
        return unsupported("node '", n.name, "' (", n.op_type, ") reads float value '", v,
                           "' inside a subgraph, which would become float16; subgraphs are not converted yet");
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      if (!f32(n.inputs[k])) continue;
      const DType w = want(static_cast<int>(i), k);
      auto h = home_.find(n.inputs[k]);
      n.inputs[k] = w != NONE ? value_in(n.inputs[k], w) : h == home_.end() ? n.inputs[k] : h->second.name;
    }
    const DType ht = prec == 1 ? F16 : F32;
    const bool fout = std::any_of(n.outputs.begin(), n.outputs.end(), [&](auto& v) { return f32(v); });
    if (prec == 1 && fout) convert_attributes(n, n.name);
    std::vector<std::pair<std::string, std::string>> output_casts;  // (home name, graph output)
    for (auto& v : n.outputs) {
      if (!f32(v)) continue;
      const DType gt = gout_.count(v) ? (keep(v) ? F32 : F16) : ht;
      if (gt == ht) {
        home_[v] = {v, ht};
        continue;
      }
      const std::string renamed = names_.make(v + (ht == F16 ? "_fp16" : "_fp32"));
      home_[v] = {renamed, ht};
      cache_[v + (gt == F16 ? "|16" : "|32")] = v;
      output_casts.push_back({renamed, v});
      v = renamed;
    }
    if (prec == 2) {
      result.decisions.push_back({n.name, n.op_type, "kept float32", why_[i]});
      ++kept;
    } else if (fout) {
      result.decisions.push_back({n.name, n.op_type, "converted", "float16"});
      ++result.rewrites;
    }
    out_.push_back(std::move(n));
    for (const auto& [from, to] : output_casts) add_cast(from, keep(to) ? F32 : F16, to);
  }
  g_.nodes = std::move(out_);
  for (auto& t : new_inits_) g_.initializers.push_back(std::move(t));
  for (auto& vi : g_.value_info)
    if (f32(vi.name) && vi.type.kind == ValueType::Kind::kTensor && home_.count(vi.name))
      vi.type.elem = gout_.count(vi.name) ? (keep(vi.name) ? F32 : F16) : home_[vi.name].type;
  for (auto& out : g_.outputs)
    if (gout_.count(out.name) && !keep(out.name)) out.type.elem = F16, io_changed = true;
  LLMC_RETURN_IF_ERROR(verify(g_).with_context("quantize-fp16 produced an invalid graph"));

  for (const auto& name : o_.nodes)
    if (std::none_of(g_.nodes.begin(), g_.nodes.end(), [&](const Node& n) { return n.name == name; }))
      result.warnings.push_back("node-block-list '" + name + "' matched no node");
  auto report = [&](std::vector<std::pair<int64_t, std::string>>& list, const char* what, float bound) {
    std::sort(list.rbegin(), list.rend());
    int64_t total = 0;
    std::string worst;
    for (size_t k = 0; k < list.size(); ++k) {
      total += list[k].first;
      if (k < 3) worst += str_cat(k ? ", " : "", "'", list[k].second, "' (", list[k].first, ")");
    }
    if (total)
      result.warnings.push_back(str_cat(total, " constant value(s) with magnitude ", what, " ", bound, " ",
                                        what[0] == 'a' ? "clamped" : "raised", " to +-", bound, " in ",
                                        list.size(), " tensor(s); most in ", worst));
    return total;
  };
  const int64_t n_large = report(large_, "above", o_.max_finite), n_small = report(small_, "below", o_.min_positive);
  result.changed = result.rewrites > 0 || casts_ > 0 || converted_inits > 0 || io_changed;
  result.summary = str_cat(result.rewrites, " nodes converted to float16, ", kept, " kept float32, ", casts_,
                           " Casts inserted, ", converted_inits, " initializers converted; clamped ", n_large,
                           " values above ", o_.max_finite, " and ", n_small, " below ", o_.min_positive);
  return result;
}

}  // namespace

std::vector<OptionSpec> QuantizeFp16::options() const {
  return {
      bool_option("keep-io-types", true, "keep float32 graph inputs/outputs (Casts at the boundary)"),
      bool_option("keep-kv-types", false, "keep the KV cache (past_key_values.*, present.*) float32 too"),
      list_option("op-block-list", "default", {},
                  "op types kept in float32; 'default' stands for ONNX Runtime's list plus norms and softmax"),
      list_option("node-block-list", "", {}, "node names kept in float32"),
      float_option("min-positive-val", "5.96e-08", 0, 65504, "smaller nonzero magnitudes are raised to this", true),
      float_option("max-finite-val", "65504", 0, 65504, "larger finite magnitudes are clamped to this", true),
  };
}

Status QuantizeFp16::check(const PassOptions& resolved) const { return parse(resolved).status(); }

std::unique_ptr<Pass> make_quantize_fp16() { return std::make_unique<QuantizeFp16>(); }

Result<PassResult> QuantizeFp16::run(Model& model, const PassOptions& options, PassContext& context) {
  LLMC_ASSIGN_OR_RETURN(Options opt, parse(options));
  const size_t before = initializer_bytes(model);
  rt::ThreadPool pool(context.threads);
  auto r = Converter(model.graph, opt, pool).run(before);
  if (!r.is_ok()) return r.status().with_context(context.model_path);
  r->bytes_after = initializer_bytes(model);
  r->summary += str_cat("; initializers ", r->bytes_before, " -> ", r->bytes_after, " bytes");
  return r;
}

}  // namespace llmc
