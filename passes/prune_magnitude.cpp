#include "passes/prune_magnitude.h"

#include <cmath>

#include "passes/prune_common.h"

namespace llmc {

std::vector<OptionSpec> PruneMagnitude::options() const { return prune_option_specs("layer"); }

Status PruneMagnitude::check(const PassOptions& resolved) const { return parse_prune_options(resolved).status(); }

std::unique_ptr<Pass> make_prune_magnitude() { return std::make_unique<PruneMagnitude>(); }

Result<PassResult> PruneMagnitude::run(Model& model, const PassOptions& options, PassContext& context) {
  LLMC_ASSIGN_OR_RETURN(PruneOptions opt, parse_prune_options(options));
  PassResult result;
  result.bytes_before = initializer_bytes(model);
  LLMC_ASSIGN_OR_RETURN(auto targets, select_prune_targets(model, opt, result));
  // Scores read the weights as they are before any is zeroed.
  std::vector<const float*> data;
  for (const auto& t : targets) data.push_back(model.graph.find_initializer(t.weight)->data_as<float>());
  auto score = [&](size_t i, int64_t k, int64_t n) {
    const PruneTarget& t = targets[i];
    return std::fabs(double(data[i][t.trans ? n * t.K + k : k * t.N + n]));
  };
  LLMC_RETURN_IF_ERROR(apply_pruning(model, targets, opt, score, "magnitude", result, context.threads));
  return result;
}

}  // namespace llmc
