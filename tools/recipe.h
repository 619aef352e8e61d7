// A recipe: what `llmcompress pipeline` runs. Read from YAML (JSON is accepted: it is YAML),
// or built from a command line (`quantize` flags, `--passes` one-liners). The whole recipe is
// checked before any work starts, and every error names the recipe file, line and key:
//
//   input: ${LLMC_DATA}/llama2c/stories260K.bin   # ${VAR} from the environment; relative paths from the recipe's folder
//   tokenizer: tok512.bin              # optional: text calibration and eval (default: the model's)
//   calibration: {data: corpus.txt, samples: 16, seq_len: 128, seed: 0}
//   steps:
//     - pass: smooth-quant
//       alpha: 0.5
//     - pass: quantize-int8-static
//       method: entropy
//   eval: {text: corpus.txt, context: 0, limit: 20000}
//   bench: {prompt_len: 16, tokens: 32}
//   asserts: {max_ppl_increase: 2%, min_top1_agreement: 0.9, max_size_ratio: 0.3, min_decode_speedup: 1.5}
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "passes/pass_manager.h"

namespace llmc::cli {

// Bounds on sizes a recipe or flag may ask for, checked before anything is allocated.
inline constexpr int64_t kMaxSamples = 1 << 20;
inline constexpr int64_t kMaxSequence = 1 << 20;

struct CalibrationSpec {
  std::string data;       // text file (model's tokenizer), token .npy, or .npy/.npz tensors
  int64_t samples = 16;   // windows (tensor files: at most this many samples)
  int64_t seq_len = 128;  // tokens per window
  uint64_t seed = 0;
};

struct EvalSpec {
  std::string text;    // perplexity and agreement text (the model's tokenizer)
  int64_t ctx = 0;     // 0: the model's maximum sequence length
  int64_t limit = 0;   // tokens to score, 0: all
};

struct BenchSpec {
  int64_t prompt_len = 16;
  int64_t tokens = 32;  // decoded tokens, paired base vs artifact in one process
};

// The metrics an assert can gate on, and which section produces them.
struct AssertSpec {
  std::string metric;  // max_ppl_increase, min_top1_agreement, max_size_ratio, min_decode_speedup
  double limit = 0;    // max_ppl_increase as a fraction (2% = 0.02)
  std::string where;   // "recipe.yaml:14"
};

struct Recipe {
  std::string path;  // recipe file, "" for one built from a command line
  std::string input;
  std::string tokenizer;  // for text calibration and eval; default: the one inside the model
  std::optional<CalibrationSpec> calibration;
  std::vector<PassStep> steps;
  // Per step: option name -> "file:line", so an option error points at its own line.
  std::vector<std::map<std::string, std::string>> option_where;
  std::optional<EvalSpec> eval;
  std::optional<BenchSpec> bench;
  std::vector<AssertSpec> asserts;
  std::string where(const std::string& section) const;  // "recipe.yaml:LINE" of a top-level key
  std::map<std::string, std::string> section_where;
};

// Parses a YAML/JSON recipe: structure and types only. Relative paths become relative to the
// recipe's folder.
Result<Recipe> parse_recipe_file(const std::string& path);

// Everything that can be known before work starts: pass names and options (resolved in
// place), calibration present for passes that need it, input and data files exist, each
// assert has a section that produces its metric.
Status validate_recipe(Recipe& recipe);

// The recipe as canonical JSON for the manifest: resolved options, file names without folders
// (the same recipe run from elsewhere gives the same bytes).
std::string recipe_json(const Recipe& recipe);

}  // namespace llmc::cli
