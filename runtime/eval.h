// Accuracy measurements on a causal LM: perplexity over token windows, and the comparison of
// two models on the same inputs (top-1 agreement, KL divergence, logit error).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "runtime/decoder.h"

namespace llmc::rt {

struct WindowOptions {
  int64_t ctx = 0;     // window length; required > 1
  int64_t stride = 0;  // 0: ctx (non-overlapping windows)
  int64_t limit = 0;   // 0: all tokens; else only the first `limit` tokens
  // Called after each window with (windows done, total); optional (progress lines).
  std::function<void(size_t, size_t)> progress;
};

// The [begin, end) windows and, for each, the first target position it scores: a target p is
// scored once, by the first window that holds p-1 and p, and never as a window's first token.
struct Window {
  int64_t begin, end, first_scored;
};
Result<std::vector<Window>> plan_windows(int64_t num_tokens, const WindowOptions& options);

struct PerplexityResult {
  double nll_sum = 0;  // natural log
  int64_t scored = 0;  // tokens whose log-likelihood was summed
  int64_t windows = 0;
  int64_t tokens = 0;  // tokens considered (after --limit)
  double perplexity() const;
};

Result<PerplexityResult> perplexity(Decoder& model, const std::vector<int32_t>& tokens,
                                    const WindowOptions& options);

struct CompareResult {
  int64_t positions = 0;
  double top1_agreement = 0;  // fraction of positions where argmax agrees
  double mean_kl = 0;         // mean KL(base || other), nats
  double max_abs_logit_error = 0;
  double mean_abs_logit_error = 0;
  PerplexityResult base_ppl, other_ppl;
};

Result<CompareResult> compare_models(Decoder& base, Decoder& other, const std::vector<int32_t>& tokens,
                                     const WindowOptions& options);

// log softmax of one row, in double.
void log_softmax(const float* logits, int64_t n, std::vector<double>& out);

}  // namespace llmc::rt
