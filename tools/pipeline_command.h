// What every pass command (`pipeline`, `quantize`, later `prune`, `lowrank`, `distill`)
// shares: the calibration / eval / output flags, their mapping onto a Recipe, and running it
// with one summary, --json and report. A command adds its own flags and builds the steps.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "tools/pipeline.h"
#include "tools/recipe.h"

namespace llmc::cli {

struct PipelineFlags {
  std::string output, calib, tokenizer, eval_text, keep_intermediate, report;
  int64_t calib_samples = 16, calib_seq_len = 128, eval_limit = 0, eval_ctx = 0;
  uint64_t calib_seed = 0;
  int threads = 0;
  bool external_data = false, json = false, quiet = false;
};

// -o, --calib*, --tokenizer, --eval*, --threads, --external-data, --json, --quiet,
// --keep-intermediate, --report.
void add_pipeline_flags(CLI::App* cmd, PipelineFlags& f);
// --calib, --tokenizer and --eval onto the recipe's calibration, tokenizer and eval sections.
void apply_pipeline_flags(const PipelineFlags& f, Recipe& recipe);
PipelineOptions pipeline_options(const PipelineFlags& f);

// Validates, runs, prints (summary or --json), writes --report; a failed assert is exit 1
// after the artifact and report are written.
Status run_recipe(Recipe& recipe, const PipelineFlags& f, bool require_change = false);

}  // namespace llmc::cli
