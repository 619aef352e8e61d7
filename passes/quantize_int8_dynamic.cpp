#include "passes/quantize_int8_dynamic.h"

#include <map>

#include "ir/graph_rewrite.h"
#include "ir/graph_utils.h"
#include "passes/quant_utils.h"
#include "runtime/file_pages.h"

namespace llmc {

namespace {

struct Options {
  bool per_tensor = false;
  bool symmetric = true;
  bool reduce_range = false;
  bool contrib = false;
  std::set<std::string> op_types{"MatMul", "Gather"};
  std::string exclude;
};

Options parse(const PassOptions& o) {
  Options p;
  p.per_tensor = option_flag(o, "per-tensor");
  p.reduce_range = option_flag(o, "reduce-range");
  p.symmetric = option_string(o, "weight-type", "int8") == "int8";
  p.contrib = option_string(o, "format", "qoperator") == "contrib";
  p.op_types = split_list(option_string(o, "op-types", "MatMul,Gather"));
  p.exclude = option_string(o, "exclude", "");
  return p;
}

// Why a MatMul/Gemm cannot take the int8 form, or "" when it can. Sets the weight tensor.
std::string unsuitable(const Graph& g, const Node& n, const Tensor** weight) {
  if (n.inputs.size() < 2) return "has no weight input";
  const Tensor* w = nullptr;
  if (std::string why = weight_unsuitable(g, n, 1, &w); !why.empty()) return why;
  if (n.op_type == "Gemm") {
    if (n.attr_int("transA", 0) != 0) return "Gemm with transA=1";
    if (n.attr_float("alpha", 1.f) != 1.f) return "Gemm with alpha != 1";
    if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
      // The bias is added after the integer product, by an Add (which broadcasts C as Gemm
      // does), so it need not be an initializer: PyTorch's exporter passes biases it
      // deduplicated through Identity nodes (Hugging Face GPT-2's Conv1D layers).
      const Tensor* c = g.find_initializer(n.inputs[2]);
      if (c && c->dtype() != DType::kF32) return "Gemm bias is not float32";
      if (n.attr_float("beta", 1.f) != 1.f) return "Gemm with beta != 1";
    }
  }
  *weight = w;
  return "";
}

// Embedding tables: Gather(data = float32 [V, D] initializer, token ids from a graph input) on
// axis 0. Gathers of computed indices (rotary tables by position, shapes) are left alone.
std::string unsuitable_gather(const Graph& g, const Node& n, const Tensor** table) {
  if (n.inputs.size() < 2 || !g.is_graph_input(n.inputs[1])) return "indices are not a graph input";
  const Tensor* w = g.find_initializer(n.inputs[0]);
  if (!w || g.is_graph_input(n.inputs[0])) return "data is not a constant initializer";
  if (w->dtype() != DType::kF32 || w->dims().size() != 2) return "data is not a 2-D float32 table";
  if (n.attr_int("axis", 0) != 0) return "gathers along axis " + std::to_string(n.attr_int("axis", 0));
  *table = w;
  if (w->numel() < 4096) return "table too small to be worth quantising";
  return "";
}

}  // namespace

std::vector<OptionSpec> QuantizeInt8Dynamic::options() const {
  return {
      bool_option("per-tensor", false, "one weight scale per tensor instead of per output channel"),
      bool_option("reduce-range", false,
                  "7-bit weights (as ONNX Runtime's reduce_range): exact in ONNX Runtime on CPUs without VNNI"),
      choice_option("weight-type", "int8", {"int8", "uint8"}, "int8 symmetric or uint8 asymmetric weights"),
      choice_option("format", "qoperator", {"qoperator", "contrib"},
                    "MatMulInteger form (as quantize_dynamic writes) or com.microsoft DynamicQuantizeMatMul"),
      list_option("op-types", "MatMul,Gather", {"MatMul", "Gemm", "Gather"}, "op types to quantise"),
      string_option("exclude", "", "node or weight names / regular expressions left in float, comma-separated"),
  };
}

std::unique_ptr<Pass> make_quantize_int8_dynamic() { return std::make_unique<QuantizeInt8Dynamic>(); }

Result<PassResult> QuantizeInt8Dynamic::run(Model& model, const PassOptions& options, PassContext& context) {
  const Options opt = parse(options);
  LLMC_ASSIGN_OR_RETURN(NodeFilter filter, NodeFilter::parse(opt.exclude));
  rt::ThreadPool pool(context.threads);
  Graph& g = model.graph;
  PassResult result;
  result.bytes_before = initializer_bytes(model);
  struct Registered {
    std::string values, scales, zero_points;  // initializer names; zero_points "" when symmetric
  };
  std::map<std::string, Registered> weights;              // by weight name (+ transposition)
  std::map<std::string, std::vector<std::string>> dql;    // activation -> (Xq, Xs, Xzp)
  GraphRewrite rw(g);
  // New nodes as the int8 forms are spelled: outputs "<name>_output_<k>".
  auto node = [&](const std::string& op, const std::string& base, std::vector<std::string> ins, int n_out,
                  std::vector<Attribute> attrs = {}, const std::string& domain = "") {
    return rw.add(op, base, std::move(ins), std::move(attrs), n_out, domain);
  };
  for (Node& n : g.nodes) {
    if (n.domain.empty() && n.op_type == "Gather") {
      const Tensor* table = nullptr;
      std::string why = unsuitable_gather(g, n, &table);
      if (!table && why != "table too small to be worth quantising") {
        rw.keep(std::move(n));  // shape/index gathers, not embeddings: nothing to report
        continue;
      }
      if (why.empty() && !opt.op_types.count("Gather")) why = "op type not selected (--op-types)";
      if (why.empty() && filter.excluded(n.name, n.inputs[0])) why = "excluded by --exclude";
      if (!why.empty()) {
        result.decisions.push_back({n.name, n.op_type, "skipped", why});
        rw.keep(std::move(n));
        continue;
      }
      const std::string key = table->name() + "#rows";
      if (!weights.count(key)) {
        auto q = quantize_weight_along(*table, 0, false, &pool);  // per row: the scale travels with the row
        if (!q.is_ok()) return q.status().with_context(context.model_path + ": node '" + n.name + "'");
        rt::release_file_pages(table->data(), table->nbytes());  // read once; keep peak memory low
        Registered r;
        r.values = rw.initializer(std::move(q->values));
        r.scales = rw.initializer(std::move(q->scales));
        weights.emplace(key, r);
      }
      const Registered& reg = weights.at(key);
      // Y = Cast<float>(Gather(Wq, ids)) * Unsqueeze(Gather(scale, ids), -1)
      const std::string rows = node("Gather", n.name + "_quant", {reg.values, n.inputs[1]}, 1, {Attribute::make_int("axis", 0)})[0];
      const std::string rowsf = node("Cast", n.name + "_quant_cast", {rows}, 1,
                                     {Attribute::make_int("to", static_cast<int64_t>(DType::kF32))})[0];
      const std::string sc = node("Gather", n.name + "_quant_scale", {reg.scales, n.inputs[1]}, 1, {Attribute::make_int("axis", 0)})[0];
      std::string sc3;
      if (model.opset("") >= 13) {
        const std::string axes = rw.initializer(Tensor::from_vector(n.name + "_quant_axes", DType::kI64, {1}, std::vector<int64_t>{-1}));
        sc3 = node("Unsqueeze", n.name + "_quant_scale_unsqueeze", {sc, axes}, 1)[0];
      } else {  // axes was an attribute before opset 13
        sc3 = node("Unsqueeze", n.name + "_quant_scale_unsqueeze", {sc}, 1, {Attribute::make_ints("axes", {-1})})[0];
      }
      node("Mul", n.name + "_quant_dequant", {rowsf, sc3}, 1);
      rw.last().outputs[0] = n.outputs[0];
      result.decisions.push_back({n.name, n.op_type, "quantized", "int8 symmetric, per row (embedding)"});
      ++result.rewrites;
      continue;
    }
    const bool candidate = n.domain.empty() && (n.op_type == "MatMul" || n.op_type == "Gemm");
    if (!candidate) {
      rw.keep(std::move(n));
      continue;
    }
    const Tensor* w = nullptr;
    std::string why = opt.op_types.count(n.op_type) ? unsuitable(g, n, &w) : "op type not selected (--op-types)";
    if (why.empty() && filter.excluded(n.name, n.inputs[1])) why = "excluded by --exclude";
    if (!why.empty()) {
      result.decisions.push_back({n.name, n.op_type, "skipped", why});
      rw.keep(std::move(n));
      continue;
    }
    if (model.opset("") < 11)
      return invalid_input(context.model_path, ": default opset ", model.opset(""),
                           " has no DynamicQuantizeLinear (needs 11); convert the model to a newer opset first");
    const bool trans = n.op_type == "Gemm" && n.attr_int("transB", 0) != 0;
    const std::string key = w->name() + (trans ? "^T" : "");
    if (!weights.count(key)) {  // a weight shared by several nodes is quantised once
      auto q = quantize_weight(trans ? transpose_2d(*w) : *w, opt.symmetric, opt.per_tensor, w->name(), &pool, 1,
                               opt.reduce_range);
      if (!q.is_ok()) return q.status().with_context(context.model_path + ": node '" + n.name + "'");
      // A weight mapped from the input file is read once: hand its pages back, so peak memory
      // holds the float model once, not the float model plus every int8 weight made so far.
      rt::release_file_pages(w->data(), w->nbytes());
      Registered r;
      r.values = rw.initializer(std::move(q->values));
      r.scales = rw.initializer(std::move(q->scales));
      if (!q->symmetric) r.zero_points = rw.initializer(std::move(q->zero_points));
      weights.emplace(key, r);
    }
    const Registered& reg = weights.at(key);
    const std::string &wq = reg.values, &ws = reg.scales, &wzp = reg.zero_points;
    const std::string x = n.inputs[0];
    const std::string y = n.outputs[0];
    const bool has_bias = n.op_type == "Gemm" && n.inputs.size() > 2 && !n.inputs[2].empty();
    std::string result_value;
    if (opt.contrib) {
      std::vector<std::string> ins{x, wq, ws};
      if (!wzp.empty()) ins.push_back(wzp);
      result_value = node("DynamicQuantizeMatMul", n.name + "_quant", ins, 1, {}, "com.microsoft")[0];
    } else {
      if (!dql.count(x)) dql[x] = node("DynamicQuantizeLinear", x + "_QuantizeLinear", {x}, 3);
      const auto& xq = dql[x];
      std::vector<std::string> mm_in{xq[0], wq, xq[2]};
      if (!wzp.empty()) mm_in.push_back(wzp);
      const std::string acc = node("MatMulInteger", n.name + "_quant", mm_in, 1)[0];
      const std::string accf = node("Cast", n.name + "_quant_cast", {acc}, 1,
                                    {Attribute::make_int("to", static_cast<int64_t>(DType::kF32))})[0];
      const std::string scale = node("Mul", n.name + "_quant_scales_mul", {xq[1], ws}, 1)[0];
      result_value = node("Mul", n.name + "_quant_output_scale_mul", {accf, scale}, 1)[0];
    }
    if (has_bias) result_value = node("Add", n.name + "_bias_add", {result_value, n.inputs[2]}, 1)[0];
    rw.last().outputs[0] = y;  // the last node writes the original output name
    result.decisions.push_back({n.name, n.op_type, "quantized",
                                std::string(opt.symmetric ? "int8 symmetric" : "uint8 asymmetric") +
                                    (opt.per_tensor ? ", per tensor" : ", per channel") +
                                    (opt.contrib ? ", DynamicQuantizeMatMul" : ", MatMulInteger")});
    ++result.rewrites;
  }
  rw.commit();
  if (opt.contrib && result.rewrites > 0 && model.opset("com.microsoft") < 1) model.set_opset("com.microsoft", 1);
  for (const auto& p : filter.unmatched()) result.warnings.push_back("--exclude '" + p + "' matched no node or weight");
  finish_result(model, result);
  result.summary = str_cat(result.rewrites, " of ", result.decisions.size(), " candidate nodes quantised to int8, weights ",
                           result.bytes_before, " -> ", result.bytes_after, " bytes");
  return result;
}

}  // namespace llmc
