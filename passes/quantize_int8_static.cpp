#include "passes/quantize_int8_static.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <map>

#include "calibration/activation_statistics.h"
#include "calibration/quant_params.h"
#include "ir/graph_rewrite.h"
#include "passes/pass_statistics.h"
#include "passes/quant_utils.h"

namespace llmc {

namespace {

struct Options {
  calib::ObserverOptions observer;
  DType activation_type = DType::kU8;
  bool activation_symmetric = false;
  bool per_tensor = false;  // weights
  bool reduce_range = false;  // weights on ONNX Runtime's 7-bit grid
  std::set<std::string> op_types{"MatMul"};
  std::string exclude;
  bool percentile_given = false;
};

Result<Options> parse(const PassOptions& o) {
  Options p;
  LLMC_ASSIGN_OR_RETURN(p.observer.kind, calib::parse_observer_kind(option_string(o, "method", "minmax")));
  p.percentile_given = o.count("percentile") > 0;
  p.observer.percentile = option_double(o, "percentile", p.observer.percentile);
  p.activation_symmetric = option_string(o, "activation-type", "uint8") == "int8";
  // S8S8 (what GPUs and TensorRT take) when int8; U8 asymmetric otherwise.
  p.activation_type = p.activation_symmetric ? DType::kI8 : DType::kU8;
  // percentile: of |x| (ONNX Runtime's default; the range is then clipped to [min, max]) unless
  // percentile-tails=two cuts (100 - percentile) / 2 % from each tail of x.
  const bool two_tails = option_string(o, "percentile-tails", "abs") == "two";
  if (two_tails && p.activation_symmetric)
    return invalid_input("percentile-tails=two needs uint8 activations: int8 activations are symmetric, so their range is of |x|");
  p.observer.symmetric = p.activation_symmetric || !two_tails;
  p.per_tensor = option_flag(o, "per-tensor");
  p.reduce_range = option_flag(o, "reduce-range");
  p.op_types = split_list(option_string(o, "op-types", "MatMul"));
  p.exclude = option_string(o, "exclude", "");
  LLMC_RETURN_IF_ERROR(calib::validate_observer_options(p.observer));
  return p;
}

// Why a MatMul/Gemm cannot take the QDQ form, or "" when it can. Sets the weight tensor.
std::string unsuitable(const Graph& g, const Node& n, const Tensor** weight) {
  if (n.inputs.size() < 2 || n.inputs[0].empty()) return "has no activation or weight input";
  if (g.find_initializer(n.inputs[0]) && !g.is_graph_input(n.inputs[0])) return "activation input is a constant";
  const Tensor* w = nullptr;
  if (std::string why = weight_unsuitable(g, n, 1, &w); !why.empty()) return why;
  *weight = w;
  return "";
}

std::string fmt(double v) { return str_cat(static_cast<float>(v)); }

}  // namespace

std::vector<OptionSpec> QuantizeInt8Static::options() const {
  return {
      choice_option("method", "minmax", {"minmax", "percentile", "entropy", "mse"},
                    "how activation ranges are chosen from the calibration data"),
      float_option("percentile", "", 0, 100, "method=percentile: the percentile kept (default 99.99)", true),
      choice_option("percentile-tails", "abs", {"abs", "two"},
                    "method=percentile: of |x| (as ONNX Runtime) or half the cut from each tail of x"),
      choice_option("activation-type", "uint8", {"uint8", "int8"}, "uint8 asymmetric or int8 symmetric activations"),
      bool_option("per-tensor", false, "one weight scale per tensor instead of per output channel"),
      bool_option("reduce-range", false,
                  "7-bit weights (as ONNX Runtime's reduce_range): exact in ONNX Runtime on CPUs without VNNI"),
      list_option("op-types", "MatMul", {"MatMul", "Gemm"}, "op types to quantise"),
      string_option("exclude", "", "node or weight names / regular expressions left in float, comma-separated"),
  };
}

Status QuantizeInt8Static::check(const PassOptions& resolved) const { return parse(resolved).status(); }

std::unique_ptr<Pass> make_quantize_int8_static() { return std::make_unique<QuantizeInt8Static>(); }

Result<PassResult> QuantizeInt8Static::run(Model& model, const PassOptions& options, PassContext& context) {
  LLMC_ASSIGN_OR_RETURN(Options opt, parse(options));
  LLMC_ASSIGN_OR_RETURN(NodeFilter filter, NodeFilter::parse(opt.exclude));
  PassStatistics statistics(context);
  if (statistics.samples() == 0)
    return invalid_input(context.model_path, ": int8-static needs --calib DATA (calibration samples to measure ",
                         "activation ranges), and ",
                         context.calibration || context.statistics ? "the calibration set is empty" : "none was given");
  Graph& g = model.graph;
  PassResult result;
  result.bytes_before = initializer_bytes(model);
  if (opt.percentile_given && opt.observer.kind != calib::ObserverKind::kPercentile)
    result.warnings.push_back(str_cat("percentile=", opt.observer.percentile, " is ignored: method is ",
                                      calib::observer_kind_name(opt.observer.kind)));

  // 1. Which nodes take the QDQ form, and which activations they read.
  std::vector<const Tensor*> weight_of(g.nodes.size(), nullptr);
  std::vector<std::string> activations;
  std::set<std::string> seen;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (!n.domain.empty() || (n.op_type != "MatMul" && n.op_type != "Gemm")) continue;
    const Tensor* w = nullptr;
    std::string why = opt.op_types.count(n.op_type) ? unsuitable(g, n, &w) : "op type not selected (--op-types)";
    if (why.empty() && filter.excluded(n.name, n.inputs[1])) why = "excluded by --exclude";
    if (!why.empty()) {
      result.decisions.push_back({n.name, n.op_type, "skipped", why});
      continue;
    }
    weight_of[i] = w;
    if (seen.insert(n.inputs[0]).second) activations.push_back(n.inputs[0]);
  }
  for (const auto& p : filter.unmatched()) result.warnings.push_back("--exclude '" + p + "' matched no node or weight");
  if (activations.empty()) {
    result.bytes_after = result.bytes_before;
    result.summary = str_cat("no MatMul/Gemm to quantise (", result.decisions.size(), " skipped)");
    return result;
  }
  if (model.opset("") < 13)
    return invalid_input(context.model_path, ": default opset ", model.opset(""),
                         " is below 13, which per-channel QuantizeLinear/DequantizeLinear (axis) needs; ",
                         "convert the model to opset 13 or newer first");

  // 2. Activation ranges over the calibration samples, on the unmodified model (copied out:
  // the rewrite below makes a shared service's cache stale).
  std::map<std::string, calib::QuantRange> ranges;
  {
    calib::StatisticsRequest request;
    request.values = activations;
    request.kinds = calib::kRange;
    request.observer = opt.observer;
    auto measured = statistics.get(model, request);
    if (!measured.is_ok()) return measured.status().with_context(context.model_path + ": calibrating activations");
    for (const auto& [name, s] : *measured) ranges[name] = s->range;
  }

  // 3. Rewrite.
  GraphRewrite rw(g);
  struct ActQ {
    std::string quantized, scale, zero_point;
    calib::QuantParams params;
  };
  struct WeightQ {
    std::string values, scales, zero_points;
    std::vector<float> scale;
    int axis = 1;
  };
  std::map<std::string, ActQ> acts;      // by activation name
  std::map<std::string, WeightQ> weights;  // by weight name + layout
  const char* act_desc = opt.activation_symmetric ? "int8 symmetric" : "uint8 asymmetric";
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& n = g.nodes[i];
    const Tensor* w = weight_of[i];
    if (!w) {
      rw.keep(std::move(n));
      continue;
    }
    const std::string x = n.inputs[0];
    if (!acts.count(x)) {
      const calib::QuantRange range = ranges.at(x);
      auto qp = calib::quant_params(range, opt.activation_type, opt.activation_symmetric);
      if (!qp.is_ok()) return qp.status().with_context("activation '" + x + "'");
      ActQ a;
      a.params = *qp;
      a.scale = rw.initializer(Tensor::from_vector(x + "_scale", DType::kF32, {}, std::vector<float>{qp->scale}));
      if (opt.activation_type == DType::kU8)
        a.zero_point = rw.initializer(Tensor::from_vector(x + "_zero_point", DType::kU8, {},
                                                    std::vector<uint8_t>{static_cast<uint8_t>(qp->zero_point)}));
      else
        a.zero_point = rw.initializer(Tensor::from_vector(x + "_zero_point", DType::kI8, {},
                                                    std::vector<int8_t>{static_cast<int8_t>(qp->zero_point)}));
      a.quantized = rw.add_named("QuantizeLinear", x + "_QuantizeLinear", {x, a.scale, a.zero_point}, x + "_quantized");
      acts.emplace(x, a);
    }
    const ActQ& a = acts.at(x);
    const int axis = n.op_type == "Gemm" && n.attr_int("transB", 0) != 0 ? 0 : 1;
    const std::string key = w->name() + (axis == 0 ? "^T" : "");
    if (!weights.count(key)) {  // a weight shared by several nodes is quantised once
      auto q = quantize_weight_along(*w, axis, opt.per_tensor, nullptr, opt.reduce_range);
      if (!q.is_ok()) return q.status().with_context(context.model_path + ": node '" + n.name + "'");
      WeightQ r;
      r.axis = axis;
      r.scale.assign(q->scales.data_as<float>(), q->scales.data_as<float>() + q->scales.numel());
      const std::vector<int64_t> sdims = q->scales.dims();
      r.values = rw.initializer(std::move(q->values));
      r.scales = rw.initializer(std::move(q->scales));
      r.zero_points = rw.initializer(Tensor::from_vector(w->name() + "_zero_point", DType::kI8, sdims,
                                                   std::vector<int8_t>(r.scale.size(), 0)));
      weights.emplace(key, r);
    }
    const WeightQ& wq = weights.at(key);
    std::vector<Attribute> axis_attr;
    if (!opt.per_tensor) axis_attr.push_back(Attribute::make_int("axis", wq.axis));
    // Dedicated DQ pairs: every DequantizeLinear output has exactly this one consumer.
    n.inputs[0] = rw.add_named("DequantizeLinear", n.name + "_input_DequantizeLinear", {a.quantized, a.scale, a.zero_point},
                       x + "_dequantized");
    n.inputs[1] = rw.add_named("DequantizeLinear", n.name + "_weight_DequantizeLinear", {wq.values, wq.scales, wq.zero_points},
                       w->name() + "_dequantized", axis_attr);
    std::string bias_note;
    if (n.op_type == "Gemm" && n.inputs.size() > 2 && !n.inputs[2].empty()) {
      const Tensor* b = g.find_initializer(n.inputs[2]);
      const int64_t N = w->dims()[axis == 1 ? 1 : 0];
      if (b && !g.is_graph_input(n.inputs[2]) && b->dtype() == DType::kF32 && b->dims() == std::vector<int64_t>{N}) {
        // int32 bias with scale sx * ws[n], zero point 0.
        std::vector<float> bs(static_cast<size_t>(N));
        std::vector<int32_t> bq(static_cast<size_t>(N));
        for (int64_t c = 0; c < N; ++c) {
          bs[c] = a.params.scale * wq.scale[opt.per_tensor ? 0 : c];
          const double v = std::nearbyint(static_cast<double>(b->data_as<float>()[c]) / bs[c]);
          bq[c] = static_cast<int32_t>(std::clamp(v, double(INT32_MIN), double(INT32_MAX)));
        }
        const std::string bqn = rw.initializer(Tensor::from_vector(b->name() + "_quantized", DType::kI32, {N}, bq));
        const std::string bsn = rw.initializer(Tensor::from_vector(b->name() + "_scale", DType::kF32, {N}, bs));
        n.inputs[2] = rw.add_named("DequantizeLinear", n.name + "_bias_DequantizeLinear", {bqn, bsn}, b->name() + "_dequantized",
                           {Attribute::make_int("axis", 0)});
        bias_note = ", int32 bias";
      } else {
        bias_note = ", bias kept float";
      }
    }
    const calib::QuantRange& r = ranges.at(x);
    result.decisions.push_back(
        {n.name, n.op_type, "quantized",
         str_cat(act_desc, " activation (", calib::observer_kind_name(opt.observer.kind), " [", fmt(r.min), ", ", fmt(r.max),
                 "], scale ", fmt(a.params.scale), ", zp ", a.params.zero_point, "), int8 weight ",
                 opt.per_tensor ? "per tensor" : "per channel", bias_note)});
    rw.keep(std::move(n));
    ++result.rewrites;
  }
  rw.commit();
  finish_result(model, result);
  result.summary = str_cat(result.rewrites, " of ", result.decisions.size(), " candidate nodes quantised to int8 QDQ (",
                           acts.size(), " activations calibrated with ", calib::observer_kind_name(opt.observer.kind),
                           " on ", statistics.samples(), " samples), weights ", result.bytes_before, " -> ",
                           result.bytes_after, " bytes");
  return result;
}

}  // namespace llmc
