// A causal LM with a KV cache, over any model shaped like Hugging Face decoder exports:
// input `input_ids` [batch, seq] (+ optional `attention_mask`, `position_ids`), inputs
// `past_key_values.{i}.key/.value` [batch, heads, past, head_dim], outputs `logits`
// [batch, seq, vocab] and `present.{i}.key/.value`. Batch 1. A graph without past inputs
// (exported with use_cache=False) runs: each step re-runs the whole sequence.
#pragma once
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "runtime/session.h"

namespace llmc::rt {

class Decoder {
 public:
  // Fails with a clear message when the model lacks input_ids/logits or its past/present
  // inputs and outputs do not pair up.
  static Result<std::unique_ptr<Decoder>> create(std::shared_ptr<Session> session);

  // Runs `tokens` after what is already cached; returns logits [tokens.size(), vocab].
  // The cache grows by tokens.size() positions.
  Result<Value> forward(const std::vector<int32_t>& tokens);
  // Runs `tokens` from an empty cache (no cache kept): logits for every position.
  Result<Value> forward_fresh(const std::vector<int32_t>& tokens);
  void reset();
  int64_t cached_positions() const { return past_len_; }
  int64_t vocab_size() const { return vocab_; }
  // Bytes held by the KV cache now.
  size_t cache_bytes() const;

 private:
  explicit Decoder(std::shared_ptr<Session> s) : session_(std::move(s)) {}
  Result<std::vector<Value>> run(const std::vector<int32_t>& tokens, std::vector<Value>& past);

  std::shared_ptr<Session> session_;
  std::vector<std::string> past_names_;     // inputs, in pairs order
  std::vector<std::string> present_names_;  // matching outputs
  std::vector<std::vector<int64_t>> past_empty_shapes_;
  DType cache_dtype_ = DType::kF32;
  bool has_mask_ = false, has_positions_ = false;
  std::vector<Value> past_;
  std::vector<int32_t> history_;  // every token so far, for graphs without past inputs
  int64_t past_len_ = 0;
  int64_t vocab_ = 0;
};

struct SamplingOptions {
  float temperature = 0.f;  // 0: greedy
  int top_k = 0;            // 0: whole vocabulary
  float top_p = 1.f;
  uint64_t seed = 0;
};

// Picks the next token from one row of logits.
int32_t sample_token(const float* logits, int64_t vocab, const SamplingOptions& options, std::mt19937_64& rng);

}  // namespace llmc::rt
