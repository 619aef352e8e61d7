// A calibration set: the feeds (graph input name -> value) of each sample, built from data that
// tools/ has already read (calibration/ reads no files, so it needs no formats/):
//   (a) a token stream (text through the model's tokenizer, or a token .npy), cut into windows;
//   (b) tensors with a leading sample dimension, named by the input they feed (an .npz keyed by
//       input name, or one .npy).
// Token windows become input_ids [1, seq_len] (the model's integer type) plus what a causal-LM
// export also needs: empty past_key_values.* [1, heads, 0, head_dim] (heads and head_dim from
// the graph input), attention_mask (ones) and position_ids (0..seq_len-1) when the model has
// them. Tensors get the same defaults for the inputs they lack, when they hold input_ids.
// Every error is prefixed with `source` (the file the data came from).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"  // Model
#include "ir/status.h"
#include "ir/tensor.h"
#include "runtime/value.h"

namespace llmc::calib {

using Feeds = std::map<std::string, rt::Value>;

struct CalibrationSet {
  std::vector<Feeds> samples;
  std::string source;  // one line for reports: "corpus.txt: 8 windows of 128 tokens (seed 0)"
  size_t size() const { return samples.size(); }
  bool empty() const { return samples.empty(); }
};

enum class WindowPlacement {
  kSeededRandom,  // offsets drawn from a mt19937_64 seeded with `seed` (windows may overlap)
  kEvenlySpaced,  // first window at 0, last ending at the stream's end, evenly in between
};

struct CalibrationOptions {
  int64_t num_samples = 16;  // token windows; for tensor files, the most samples to take
  int64_t seq_len = 128;     // tokens per window
  uint64_t seed = 0;
  WindowPlacement placement = WindowPlacement::kSeededRandom;
  int64_t max_tokens = 0;    // text (read by tools/): stop tokenizing once this many tokens exist (0: all)
  std::string input_name;    // a lone array (one .npy): the input it feeds (see lone_array_input)
};

// Window start offsets into `num_tokens` tokens. Fails when num_samples or seq_len <= 0, or
// num_tokens < seq_len.
Result<std::vector<int64_t>> window_offsets(int64_t num_tokens, const CalibrationOptions& options);

// The feeds for one window of `n` tokens. Fails naming any input tokens cannot fill.
Result<Feeds> token_feeds(const Model& model, const int32_t* tokens, int64_t n);

// (a): windows of an in-memory token stream. `source` prefixes errors and opens
// the set's `source` line.
Result<CalibrationSet> calibration_from_tokens(const Model& model, const std::vector<int32_t>& tokens,
                                               const CalibrationOptions& options, const std::string& source);

// The input a lone array (one .npy) feeds: options.input_name, else the model's only data input,
// else input_ids; an error when the model has several inputs and none of those applies.
Result<std::string> lone_array_input(const Model& model, const CalibrationOptions& options);

// (b): each array is named by the model input it feeds; sample i of an array with a leading
// sample dimension N is its i-th slice: an array of the input's rank + 1 gives slices of the
// input's shape; an array of the input's rank gives [1, ...] slices (rows as batch-1 samples).
// Dtype, rank and fixed dims must match the graph input; all arrays must hold N samples; at most
// options.num_samples are taken. Samples view the arrays' bytes without copying, and hold the
// arrays' owners, so a mapped file stays mapped while any sample lives.
Result<CalibrationSet> calibration_from_tensors(const Model& model, const std::vector<Tensor>& arrays,
                                                const CalibrationOptions& options, const std::string& source);

}  // namespace llmc::calib
