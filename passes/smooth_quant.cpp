#include "passes/smooth_quant.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>

#include "calibration/activation_statistics.h"
#include "passes/channel_scaling.h"
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
  std::vector<ScaleGroup> groups = scale_groups(g, opt.op_types, filter, result);
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
  ChannelScaler scaler(g, /*fold_into_matmul=*/false);
  for (const ScaleGroup& grp : groups) {
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
    if (opt.fold_only && !scaler.foldable(grp)) {
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
    const std::string where = scaler.apply(grp, s);
    for (const auto& m : grp.members)
      result.decisions.push_back({g.nodes[m.node].name, g.nodes[m.node].op_type, "smoothed",
                                  str_cat("alpha ", opt.alpha, ", s in [", fmt(lo), ", ", fmt(hi), "], ", where)});
    result.rewrites += static_cast<int64_t>(grp.members.size());
  }
  scaler.commit();
  const int64_t folded = scaler.folded(), inserted = scaler.inserted();
  finish_result(model, result);
  result.summary = str_cat(result.rewrites, " MatMuls in ", folded + inserted, " groups smoothed (alpha ", opt.alpha, "; ",
                           folded, " folded into their producer, ", inserted, " with an inserted Mul) from ",
                           statistics.samples(), " samples");
  return result;
}

}  // namespace llmc
