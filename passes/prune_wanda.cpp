#include "passes/prune_wanda.h"

#include <cmath>

#include "passes/pass_statistics.h"
#include "passes/prune_common.h"

namespace llmc {

std::vector<OptionSpec> PruneWanda::options() const { return prune_option_specs("row"); }

Status PruneWanda::check(const PassOptions& resolved) const { return parse_prune_options(resolved).status(); }

std::unique_ptr<Pass> make_prune_wanda() { return std::make_unique<PruneWanda>(); }

Result<PassResult> PruneWanda::run(Model& model, const PassOptions& options, PassContext& context) {
  LLMC_ASSIGN_OR_RETURN(PruneOptions opt, parse_prune_options(options));
  PassResult result;
  result.bytes_before = initializer_bytes(model);
  LLMC_ASSIGN_OR_RETURN(auto targets, select_prune_targets(model, opt, result));
  PassStatistics stats(context);
  calib::StatisticsRequest request;
  request.kinds = calib::kL2Norm;
  for (const auto& t : targets) request.values.push_back(model.graph.nodes[t.node].inputs[0]);
  LLMC_ASSIGN_OR_RETURN(auto measured, stats.require(model, request, "prune-wanda", "the input norms ||x_k||"));
  std::vector<const float*> data;
  std::vector<const std::vector<double>*> norms;
  for (const auto& t : targets) {
    const std::string& x = model.graph.nodes[t.node].inputs[0];
    const calib::ChannelStatistics* s = measured.at(x);
    if (s->channels != t.K)
      return invalid_input("node '", model.graph.nodes[t.node].name, "': activation '", x, "' has ", s->channels,
                           " channels, the weight ", t.K, " inputs");
    norms.push_back(&s->l2_norm);
    data.push_back(model.graph.find_initializer(t.weight)->data_as<float>());
  }
  auto score = [&](size_t i, int64_t k, int64_t n) {
    const PruneTarget& t = targets[i];
    return std::fabs(double(data[i][t.trans ? n * t.K + k : k * t.N + n])) * (*norms[i])[k];
  };
  LLMC_RETURN_IF_ERROR(apply_pruning(model, targets, opt, score, "wanda", result, context.threads));
  result.summary += str_cat(" from ", stats.samples(), " calibration samples");
  return result;
}

}  // namespace llmc
