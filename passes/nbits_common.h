// Shared by the weight-only passes (quantize-int4 = RTN, quantize-int4-gptq): the options, which
// MatMul weights are quantised at which bits, the rewrite into com.microsoft MatMulNBits and the
// report. A pass supplies only how the codes of one weight are chosen.
//
//   Y = MatMul(X, W), W [K, N] constant float32
//     →  Y = MatMulNBits(X, W_Q4, W_scales[, W_zero_points]; K, N, bits, block_size, accuracy_level)
//
// Mixed precision: the LM head (a MatMul writing a graph output) gets `lm-head` bits (8 by
// default: a 4-bit LM head is where peers' users see the damage), `layer-bits` gives bits per
// layer by name, `exclude` keeps layers float. Embedding Gathers are never touched.
#pragma once
#include <regex>
#include <string>
#include <vector>

#include "passes/nbits_quant.h"
#include "passes/pass.h"

namespace llmc {

struct NBitsOptions {
  NBitsFormat format;      // the default for every layer
  int accuracy_level = 4;  // MatMulNBits' attribute: 4 = int8 activations in the product
  std::string lm_head;     // "4", "8" or "float"
  std::vector<std::pair<std::regex, std::string>> layer_bits;  // first match wins: "4", "8", "float"
  std::vector<std::string> layer_bits_text;                    // the patterns as given (messages)
  std::string exclude;
};

std::vector<OptionSpec> nbits_option_specs();
Result<NBitsOptions> parse_nbits_options(const PassOptions& o);

// One weight to quantise (nodes sharing it are rewritten alike).
struct NBitsTarget {
  std::vector<size_t> nodes;  // indices in graph.nodes, the first one's input is X
  std::string weight;
  int64_t K = 0, N = 0;
  NBitsFormat format;
  bool lm_head = false;
};

// The weights to quantise, with a "skipped" decision (and why) for every MatMul left alone.
Result<std::vector<NBitsTarget>> select_nbits_targets(const Model& model, const NBitsOptions& options,
                                                      PassResult& result);

// The weight of `t` as rows of output features, [N, K] float32 (split across `pool`, optional).
std::vector<float> weight_rows(const Model& model, const NBitsTarget& t, rt::ThreadPool* pool = nullptr);

// Rewrites every target's nodes into MatMulNBits from packed[i] (for targets[i]), with a
// "quantized" decision per node (its format, `method` and notes[i]), the summary (bytes of the
// quantised weights before and after, the LM head counted apart) and finish_result.
void rewrite_nbits(Model& model, const std::vector<NBitsTarget>& targets, std::vector<NBitsTensors>&& packed,
                   const NBitsOptions& options, const std::string& method, const std::vector<std::string>& notes,
                   PassResult& result);

}  // namespace llmc
