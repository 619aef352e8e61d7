// llmcompress pipeline RECIPE.yaml -o OUT.onnx [--input MODEL] [--keep-intermediate DIR] [--report FILE]
// llmcompress pipeline MODEL --passes "smooth-quant{alpha=0.5},quantize-int8-static{method=entropy}"
//                      -o OUT.onnx [--calib DATA] [--eval TEXT]
// Runs the recipe's steps in order (see `llmcompress passes`), checks its asserts and writes the
// artifact with its manifest. The recipe is validated whole before any work; a failed assert
// still writes the artifact and the report, and exits 1 so CI can gate on it.
#include "passes/registry.h"
#include "tools/cli_common.h"
#include "tools/commands.h"
#include "tools/pipeline_command.h"

namespace llmc::cli {

namespace {
struct Args {
  std::string source, input, passes;
  PipelineFlags flags;
};

Status run(const Args& a) {
  Recipe recipe;
  if (!a.passes.empty()) {
    recipe.input = a.input.empty() ? a.source : a.input;
    if (!a.input.empty() && !a.source.empty())
      return invalid_input("with --passes give the model once (as the argument or --input), not both");
    LLMC_ASSIGN_OR_RETURN(recipe.steps, parse_pass_list(a.passes));
    recipe.option_where.resize(recipe.steps.size());
  } else {
    if (a.source.empty()) return invalid_input("give a recipe file, or a model with --passes LIST");
    LLMC_ASSIGN_OR_RETURN(recipe, parse_recipe_file(a.source));
    if (!a.input.empty()) {
      recipe.input = a.input;
      recipe.section_where["input"] = "--input";
    }
    const PipelineFlags& f = a.flags;
    if (!f.calib.empty() || !f.eval_text.empty() || !f.tokenizer.empty())
      return invalid_input(a.source, ": --calib, --eval and --tokenizer belong in the recipe (calibration, eval, tokenizer)");
  }
  apply_pipeline_flags(a.flags, recipe);
  PipelineFlags flags = a.flags;
  if (flags.report.empty() && a.passes.empty()) flags.report = flags.output + ".report.json";
  return run_recipe(recipe, flags);
}
}  // namespace

void add_pipeline_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("pipeline", "Run a recipe (or a --passes list) of passes with eval and asserts");
  cmd->add_option("source", a->source, "recipe (.yaml / .json), or with --passes the model");
  cmd->add_option("--input", a->input, "the model (overrides the recipe's input)");
  cmd->add_option("--passes", a->passes, "steps as one line: pass{option=value,...},pass,...");
  add_pipeline_flags(cmd, a->flags);
  cmd->footer("Recipe keys: input, tokenizer, calibration {data, samples, seq_len, seed}, steps [- pass: NAME, "
              "option: value ...], eval {text, context, limit}, bench {prompt_len, tokens}, asserts {max_ppl_increase, "
              "min_top1_agreement, max_size_ratio, min_decode_speedup}. A recipe writes OUT.report.json unless "
              "--report says where.\n\nPasses and their options:\n" + format_pass_help(pass_catalog()));
  cmd->callback([a, &exit_code] { exit_code = report("pipeline", run(*a)); });
}

}  // namespace llmc::cli
