// llmcompress prune MODEL -o OUT --method magnitude|wanda|sparsegpt [--sparsity 0.5 | --pattern 2:4 [--packed]]
//                   [--scope row|layer|global] [--include RE] [--exclude RE] [--calib DATA] [--eval TEXT]
// Maps its flags onto a one-step recipe (prune-<method>) and runs it like `pipeline`: the
// report lists every weight's achieved sparsity, bytes before/after and, with --eval,
// perplexity, top-1 agreement and KL before/after.
#include "passes/registry.h"
#include "tools/cli_common.h"
#include "tools/commands.h"
#include "tools/pipeline_command.h"

namespace llmc::cli {

namespace {
struct PruneArgs {
  std::string model, method = "magnitude", sparsity, pattern, scope, include, exclude, structured, ratio, multiple_of;
  bool packed = false;
  PipelineFlags flags;
};

// --structured ffn|heads: the prune-ffn / prune-heads passes (whole neurons or head groups
// removed, a smaller dense model).
Result<PassStep> structured_step(const PruneArgs& a) {
  if (!a.sparsity.empty() || !a.pattern.empty() || !a.scope.empty() || a.packed)
    return invalid_input("--structured removes whole neurons by --ratio; --sparsity, --pattern, --scope and --packed are for unstructured pruning");
  if (a.structured != "ffn" && a.structured != "heads")
    return invalid_input("unknown --structured '", a.structured, "' (available: ffn, heads)");
  if (a.structured == "heads" && !a.multiple_of.empty()) return invalid_input("--multiple-of is for --structured ffn");
  PassOptions options;
  if (!a.ratio.empty()) options["ratio"] = a.ratio;
  if (!a.multiple_of.empty()) options["multiple-of"] = a.multiple_of;
  return PassStep{"prune-" + a.structured, options, "--structured " + a.structured};
}

Status run_prune(const PruneArgs& a) {
  if (!a.structured.empty()) {
    LLMC_ASSIGN_OR_RETURN(auto step, structured_step(a));
    Recipe recipe;
    recipe.input = a.model;
    recipe.steps.push_back(std::move(step));
    recipe.option_where.resize(1);
    apply_pipeline_flags(a.flags, recipe);
    return run_recipe(recipe, a.flags, /*require_change=*/true);
  }
  if (!a.ratio.empty() || !a.multiple_of.empty()) return invalid_input("--ratio and --multiple-of need --structured ffn|heads");
  const std::string pass = "prune-" + a.method;
  if (!make_pass(pass).is_ok()) {
    std::string known;
    for (const auto& n : pass_names())
      if (n.rfind("prune-", 0) == 0) known += (known.empty() ? "" : ", ") + n.substr(6);
    return invalid_input("unknown --method '", a.method, "' (available: ", known, ")");
  }
  PassOptions options;
  if (!a.sparsity.empty()) options["sparsity"] = a.sparsity;
  if (!a.pattern.empty()) options["pattern"] = a.pattern;
  if (!a.scope.empty()) options["scope"] = a.scope;
  if (!a.include.empty()) options["include"] = a.include;
  if (!a.exclude.empty()) options["exclude"] = a.exclude;
  Recipe recipe;
  recipe.input = a.model;
  recipe.steps.push_back({pass, options, "--method " + a.method});
  if (a.packed) {  // the pattern's weights stored packed: the last step, so it sees what pruning made
    if (a.pattern != "2:4" && a.pattern != "1:4") return invalid_input("--packed stores --pattern 2:4 or 1:4 weights packed; give one of them");
    recipe.steps.push_back({"pack-nm-sparse", {{"pattern", a.pattern}}, "--packed"});
  }
  recipe.option_where.resize(recipe.steps.size());
  apply_pipeline_flags(a.flags, recipe);
  return run_recipe(recipe, a.flags, /*require_change=*/true);
}

std::vector<PassInfo> prune_passes() {
  std::vector<PassInfo> out;
  for (auto& p : pass_catalog())
    if (p.name.rfind("prune-", 0) == 0) out.push_back(std::move(p));
  return out;
}
}  // namespace

void add_prune_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<PruneArgs>();
  CLI::App* cmd = app.add_subcommand("prune", "Zero the least important weights (magnitude, Wanda, ...)");
  cmd->add_option("model", a->model, "ONNX model, llama2.c checkpoint or GGUF file")->required();
  cmd->add_option("--method", a->method, "magnitude, or wanda or sparsegpt (both need --calib)")->capture_default_str();
  cmd->add_option("--sparsity", a->sparsity, "fraction of weights zeroed, in (0, 1) (default 0.5)");
  cmd->add_option("--pattern", a->pattern, "N:M: at most N nonzeros in every M weights along the input dimension");
  cmd->add_flag("--packed", a->packed,
                "with --pattern 2:4 or 1:4: store the pruned weights packed (values + 2-bit positions, op "
                "com.llmcompress.NMSparseMatMul): faster decode in llmcompress, but ONNX Runtime cannot run it");
  cmd->add_option("--scope", a->scope, "compare scores per output row, per layer or globally (default: the method's)");
  cmd->add_option("--structured", a->structured, "ffn or heads: remove whole feed-forward neurons or attention head groups instead (a smaller dense model; needs --calib)");
  cmd->add_option("--ratio", a->ratio, "with --structured: fraction of each block's neurons removed, in (0, 1) (default 0.25)");
  cmd->add_option("--multiple-of", a->multiple_of, "with --structured: kept neuron count rounded down to a multiple of this");
  cmd->add_option("--include", a->include, "only these nodes/weights (names or regexes, comma-separated)");
  cmd->add_option("--exclude", a->exclude, "nodes/weights left dense (names or regexes, comma-separated)");
  add_pipeline_flags(cmd, a->flags);
  cmd->footer("The passes behind --method and their options (also usable in recipes):\n" + format_pass_help(prune_passes()));
  cmd->callback([a, &exit_code] { exit_code = report("prune", run_prune(*a)); });
}

}  // namespace llmc::cli
