// A calibration set: the feeds (graph input name -> value) of each sample, built from
//   (a) a text file through the model's tokenizer: every non-empty line encoded with BOS, as
//       encode_lines does (llama2.c's training data), then cut into windows;
//   (b) a 1-D int32/int64 .npy token file, windowed the same way;
//   (c) tensors with a leading sample dimension: a .npy for one input, or an .npz keyed by input
//       name (numpy.savez).
// Token windows become input_ids [1, seq_len] (the model's integer type) plus what a causal-LM
// export also needs: empty past_key_values.* [1, heads, 0, head_dim] (heads and head_dim from
// the graph input), attention_mask (ones) and position_ids (0..seq_len-1) when the model has
// them. Tensor files get the same defaults for the inputs they lack, when they hold input_ids.
// Every error names the file.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "formats/llama2c_tokenizer.h"
#include "ir/graph.h"  // Model
#include "ir/status.h"
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
  int64_t max_tokens = 0;    // text: stop tokenizing once this many tokens exist (0: all)
  std::string input_name;    // .npy tensor file: the input it holds (default: the only data input)
};

// Window start offsets into `num_tokens` tokens. Fails when num_samples or seq_len <= 0, or
// num_tokens < seq_len.
Result<std::vector<int64_t>> window_offsets(int64_t num_tokens, const CalibrationOptions& options);

// The feeds for one window of `n` tokens. Fails naming any input tokens cannot fill.
Result<Feeds> token_feeds(const Model& model, const int32_t* tokens, int64_t n);

// (a), (b) and windowing of an in-memory token stream. `source` names it in errors.
Result<CalibrationSet> calibration_from_tokens(const Model& model, const std::vector<int32_t>& tokens,
                                               const CalibrationOptions& options, const std::string& source);
Result<CalibrationSet> calibration_from_text(const Model& model, const Llama2cTokenizer& tokenizer,
                                             const std::string& text_path, const CalibrationOptions& options);
Result<CalibrationSet> calibration_from_token_file(const Model& model, const std::string& npy_path,
                                                   const CalibrationOptions& options);
// (c): .npz (by extension or zip content) or .npy. Sample i of an array with a leading sample
// dimension N is its i-th slice: an array of the input's rank + 1 gives slices of the input's
// shape; an array of the input's rank gives [1, ...] slices (rows as batch-1 samples). Dtype,
// rank and fixed dims must match the graph input. Samples view the mapped file (no copies).
Result<CalibrationSet> calibration_from_tensor_file(const Model& model, const std::string& path,
                                                    const CalibrationOptions& options);

// By content: .npz -> tensors; .npy -> 1-D integer: tokens, else tensors; any other file: text
// through `tokenizer` (an error when it is null).
Result<CalibrationSet> load_calibration_set(const Model& model, const std::string& path,
                                            const Llama2cTokenizer* tokenizer, const CalibrationOptions& options);

}  // namespace llmc::calib
