// Shared by the pass tests: the real stories260K model with evaluation tokens and a calibration
// set, running a pass by name, and measuring a model with the runtime.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "calibration/calibration_data.h"
#include "passes/pass.h"
#include "runtime/decoder.h"

namespace llmc::testing {

struct StoriesFixture {
  Model model;
  std::vector<int32_t> eval_tokens;  // the first 4096 tokens of the TinyStories prefix
  calib::CalibrationSet calib;       // windows from the tokens after them
};

// False (after data_path's skip / CI failure) when the real data is missing.
bool load_stories(StoriesFixture& s, int64_t samples = 8, int64_t seq_len = 128);

// Runs the registered pass `name` with a 2-thread context.
Result<PassResult> run_named_pass(const std::string& name, Model& m, const PassOptions& o,
                                  const std::vector<Feeds>* calibration = nullptr);

std::unique_ptr<rt::Decoder> decoder_for(const Model& m);
// Float64 sum over every calibration token of x_k^2, per channel k of each value in `taps`
// (what Wanda's and prune-ffn's norms square), measured here with the runtime.
std::map<std::string, std::vector<double>> activation_sumsq(const Model& m, const std::vector<Feeds>& samples,
                                                            const std::vector<std::string>& taps);
// Every initializer's element count.
int64_t parameter_count(const Model& m);
// The node named `name` (a test failure when there is none).
const Node& node_named(const Graph& g, const std::string& name);
// max |a - b| of two float32 values of one shape.
double max_abs_gap(const rt::Value& a, const rt::Value& b);
// Perplexity over non-overlapping 256-token windows.
double perplexity_of(const Model& m, const std::vector<int32_t>& tokens);
// A stories260K-shaped model (5 layers, empty KV cache) written to a scratch folder `label`
// and run on 18 tokens by ONNX Runtime (scripts/ort_run.py) and by our runtime: max |ours −
// ORT| / max |ORT| of the logits. -1 when there is no Python venv (test_data.h's rules).
double ort_relative_gap(const Model& m, const std::string& label);
// max |ours - ref| / max |ref| over n floats (a test failure when ref is all zeros).
double relative_gap(const float* ours, const float* ref, int64_t n);

}  // namespace llmc::testing
