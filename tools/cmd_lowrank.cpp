// llmcompress lowrank MODEL -o OUT --method svd|asvd|svd-llm [--rank-ratio R | --energy E | --param-ratio P (0.8)]
//                     [--allocation error|uniform] [--rank-multiple M] [--include RE] [--exclude RE] [--alpha A] [--calib DATA] [--eval TEXT]
// Maps its flags onto a one-step recipe (factorize-<method>) and runs it like `pipeline`: the
// report lists every layer's rank, parameters and bytes before/after and its error, and with
// --eval, perplexity, top-1 agreement and KL before/after.
#include "passes/registry.h"
#include "tools/cli_common.h"
#include "tools/commands.h"
#include "tools/pipeline_command.h"

namespace llmc::cli {

namespace {
struct LowRankArgs {
  std::string model, method = "svd-llm", rank_ratio, energy, param_ratio, include, exclude, alpha, allocation, rank_multiple;
  PipelineFlags flags;
};

Status run_lowrank(const LowRankArgs& a) {
  const std::string pass = "factorize-" + a.method;
  if (!make_pass(pass).is_ok()) {
    std::string known;
    for (const auto& n : pass_names())
      if (n.rfind("factorize-", 0) == 0) known += (known.empty() ? "" : ", ") + n.substr(10);
    return invalid_input("unknown --method '", a.method, "' (available: ", known, ")");
  }
  if (!a.alpha.empty() && a.method != "asvd") return invalid_input("--alpha is for --method asvd");
  PassOptions options;
  if (!a.rank_ratio.empty()) options["rank-ratio"] = a.rank_ratio;
  if (!a.energy.empty()) options["energy"] = a.energy;
  if (!a.param_ratio.empty()) options["param-ratio"] = a.param_ratio;
  if (!a.include.empty()) options["include"] = a.include;
  if (!a.exclude.empty()) options["exclude"] = a.exclude;
  if (!a.alpha.empty()) options["alpha"] = a.alpha;
  if (!a.allocation.empty()) options["allocation"] = a.allocation;
  if (!a.rank_multiple.empty()) options["rank-multiple"] = a.rank_multiple;
  Recipe recipe;
  recipe.input = a.model;
  recipe.steps.push_back({pass, options, "--method " + a.method});
  recipe.option_where.resize(1);
  apply_pipeline_flags(a.flags, recipe);
  return run_recipe(recipe, a.flags, /*require_change=*/true);
}

std::vector<PassInfo> lowrank_passes() {
  std::vector<PassInfo> out;
  for (auto& p : pass_catalog())
    if (p.name.rfind("factorize-", 0) == 0) out.push_back(std::move(p));
  return out;
}
}  // namespace

void add_lowrank_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<LowRankArgs>();
  CLI::App* cmd = app.add_subcommand("lowrank", "Replace weight matrices by two low-rank factors (SVD, ASVD, SVD-LLM)");
  cmd->add_option("model", a->model, "ONNX model, llama2.c checkpoint or GGUF file")->required();
  cmd->add_option("--method", a->method, "svd, asvd or svd-llm (asvd and svd-llm need --calib)")->capture_default_str();
  cmd->add_option("--rank-ratio", a->rank_ratio, "every layer keeps this fraction of its full rank, in (0, 1]");
  cmd->add_option("--energy", a->energy, "every layer keeps the fewest components holding this fraction of its σ², in (0, 1]");
  cmd->add_option("--param-ratio", a->param_ratio,
                  "whole-model budget: the factorised layers keep at most this fraction of their parameters, in (0, 1] "
                  "(0.8 when no budget is given)");
  cmd->add_option("--allocation", a->allocation,
                  "with --param-ratio: error (default: ranks where they remove the most output error per parameter) "
                  "or uniform (every layer keeps the same fraction)");
  cmd->add_option("--rank-multiple", a->rank_multiple,
                  "every rank a multiple of this (32: whole packed panels of our float kernels, a little faster decode)");
  cmd->add_option("--alpha", a->alpha, "asvd: input scale exponent (default 0.5)");
  cmd->add_option("--include", a->include, "only these nodes/weights (names or regexes, comma-separated)");
  cmd->add_option("--exclude", a->exclude, "nodes/weights left dense (names or regexes, comma-separated)");
  add_pipeline_flags(cmd, a->flags);
  cmd->footer("The passes behind --method and their options (also usable in recipes):\n" +
              format_pass_help(lowrank_passes()));
  cmd->callback([a, &exit_code] { exit_code = report("lowrank", run_lowrank(*a)); });
}

}  // namespace llmc::cli
