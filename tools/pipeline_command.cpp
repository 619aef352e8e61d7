#include "tools/pipeline_command.h"

#include <cstdint>
#include <cstdio>

#include "formats/atomic_file.h"
#include "runtime/session.h"

namespace llmc::cli {

void add_pipeline_flags(CLI::App* cmd, PipelineFlags& f) {
  cmd->add_option("-o,--output", f.output, "output .onnx")->required();
  // A flag that refines another (--calib-samples of --calib) is refused without it: silently
  // ignoring it would run with settings the user did not ask for.
  CLI::Option* calib =
      cmd->add_option("--calib", f.calib, "calibration data: text file (model's tokenizer), token .npy, or .npy/.npz tensors");
  cmd->add_option("--calib-samples", f.calib_samples, "calibration windows (tensor files: at most this many samples)")
      ->capture_default_str()->check(CLI::Range(int64_t{1}, kMaxSamples))->needs(calib);
  cmd->add_option("--calib-seq-len", f.calib_seq_len, "tokens per calibration window")
      ->capture_default_str()->check(CLI::Range(int64_t{1}, kMaxSequence))->needs(calib);
  cmd->add_option("--calib-seed", f.calib_seed, "seed for the calibration window offsets")
      ->capture_default_str()->check(CLI::Range(uint64_t{0}, uint64_t{INT64_MAX}))->needs(calib);
  cmd->add_option("--tokenizer", f.tokenizer, "tokenizer for --eval and text --calib (default: the one inside the model)");
  CLI::Option* eval = cmd->add_option("--eval", f.eval_text, "text file: perplexity before/after, top-1 agreement and KL");
  cmd->add_option("--eval-limit", f.eval_limit, "score only the first N tokens of --eval")
      ->check(CLI::NonNegativeNumber)->needs(eval);
  cmd->add_option("--eval-ctx", f.eval_ctx, "window length for --eval (default: model maximum)")
      ->check(CLI::Range(int64_t{0}, kMaxSequence))->needs(eval);
  cmd->add_option("--threads", f.threads, "threads for calibration and --eval (0 = all cores)")->check(CLI::Range(0, rt::kMaxThreads));
  cmd->add_option("--keep-intermediate", f.keep_intermediate,
                  "directory: write the model after each step (kept for debugging even when a later step fails)");
  cmd->add_option("--report", f.report, "write the JSON report to this file");
  cmd->add_flag("--external-data", f.external_data, "weights in OUTPUT.data");
  cmd->add_flag("--json", f.json, "print the report as JSON (no progress lines)");
  cmd->add_flag("--quiet", f.quiet, "no progress lines");
}

void apply_pipeline_flags(const PipelineFlags& f, Recipe& recipe) {
  if (!f.tokenizer.empty()) recipe.tokenizer = f.tokenizer;
  if (!f.calib.empty()) recipe.calibration = CalibrationSpec{f.calib, f.calib_samples, f.calib_seq_len, f.calib_seed};
  if (!f.eval_text.empty()) recipe.eval = EvalSpec{f.eval_text, f.eval_ctx, f.eval_limit};
}

PipelineOptions pipeline_options(const PipelineFlags& f) {
  PipelineOptions o;
  o.output = f.output;
  o.keep_intermediate = f.keep_intermediate;
  o.external_data = f.external_data;
  o.threads = f.threads;
  o.quiet = f.quiet || f.json;
  return o;
}

Status run_recipe(Recipe& recipe, const PipelineFlags& f, bool require_change) {
  LLMC_RETURN_IF_ERROR(validate_recipe(recipe));
  PipelineOptions options = pipeline_options(f);
  options.require_change = require_change;
  LLMC_ASSIGN_OR_RETURN(PipelineResult r, run_pipeline(recipe, options));
  const std::string report = pipeline_report_json(recipe, options, r);
  if (!f.report.empty()) LLMC_RETURN_IF_ERROR(write_file_atomically(f.report, report + "\n"));
  if (f.json) std::printf("%s\n", report.c_str());
  else print_pipeline_summary(options, r);
  for (const auto& s : r.steps)
    for (const auto& w : s.result.warnings) std::fprintf(stderr, "llmcompress: warning: %s: %s\n", s.pass.c_str(), w.c_str());
  if (!r.all_asserts_passed()) {
    std::string failed;
    for (const auto& a : r.asserts)
      if (!a.passed) failed += str_cat(failed.empty() ? "" : ", ", a.spec.metric, " = ", a.value, " (limit ", a.spec.limit, ")");
    return Status(StatusCode::kCheckFailed, str_cat("asserts failed: ", failed, "; wrote ", f.output, " anyway"));
  }
  return Status::ok();
}

}  // namespace llmc::cli
