// Runs a validated Recipe end to end: load the input, load calibration data, run the steps
// through the PassManager (with the activation-statistics service), evaluate and bench the
// result against the input, check the asserts, stamp the manifest, write the artifact
// atomically. `pipeline` and `quantize` both call it, so a recipe and the equivalent command
// line produce the same bytes.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "passes/pass_manager.h"
#include "tools/recipe.h"

namespace llmc::cli {

struct PipelineOptions {
  std::string output;
  std::string keep_intermediate;  // directory: the model after each step, "NN-<pass>.onnx"
  bool external_data = false;
  int threads = 0;
  bool quiet = false;             // no progress lines
  // quantize's contract: when the last step changed nothing, fail without writing.
  bool require_change = false;
};

struct EvalMetrics {
  double ppl_before = 0, ppl_after = 0, top1 = 0, kl = 0, max_logit_error = 0;
  int64_t positions = 0;
};

struct AssertOutcome {
  AssertSpec spec;
  double value = 0;
  bool passed = false;
};

struct PipelineResult {
  std::vector<StepRecord> steps;
  size_t bytes_before = 0, bytes_after = 0;
  int64_t params_before = 0, params_after = 0;
  std::string calibration_source;
  std::string input_sha256;
  std::optional<EvalMetrics> eval;
  std::optional<double> decode_speedup;  // median of paired per-token ratios
  double decode_ms_before = 0, decode_ms_after = 0;
  std::vector<AssertOutcome> asserts;
  double seconds = 0;  // run_pipeline from start to the artifact's commit
  // Where the time went (each step's own time is in steps[i].seconds): reading the input,
  // waiting for its hash once the artifact's weights are written (the hash runs beside the
  // passes and the write), writing the artifact (without that wait).
  double load_seconds = 0, hash_wait_seconds = 0, write_seconds = 0;
  std::string manifest;
  bool all_asserts_passed() const;
};

Result<PipelineResult> run_pipeline(const Recipe& recipe, const PipelineOptions& options);

// The report: JSON (what --json prints and `pipeline` writes beside the artifact) and the
// human summary (decisions per step, bytes, metrics, asserts).
std::string pipeline_report_json(const Recipe& recipe, const PipelineOptions& options, const PipelineResult& r);
void print_pipeline_summary(const PipelineOptions& options, const PipelineResult& r);

}  // namespace llmc::cli
