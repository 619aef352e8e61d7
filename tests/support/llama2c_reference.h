// A deliberately plain float64 transcription of Karpathy's llama2.c run.c `forward()`, used as
// the ground truth that compressed / compiled models are compared against. It favours being
// obviously correct over speed: loops mirror run.c line by line, only the arithmetic is double.
#pragma once
#include <vector>

#include "formats/llama2c_checkpoint.h"

namespace llmc::testing {

class Llama2cReference {
 public:
  // Copies every weight into double once, so the checkpoint's mapping need not outlive us.
  explicit Llama2cReference(const Llama2cCheckpoint& checkpoint);

  // Logits [vocab_size] for `token` at position `pos`, appending its keys/values to the KV
  // cache. Throws std::invalid_argument unless 0 <= token < vocab_size, pos == positions()
  // (tokens must be fed in order) and pos < seq_len.
  std::vector<double> forward(int token, int pos);
  // Empties the KV cache so the next forward() starts again at pos 0.
  void reset();
  // Number of tokens fed since construction / reset().
  int positions() const { return static_cast<int>(key_cache_.empty() ? 0 : key_cache_[0].size()); }
  const Llama2cConfig& config() const { return config_; }

 private:
  using Vec = std::vector<double>;
  struct Layer {
    Vec rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3;
  };
  Llama2cConfig config_;
  Vec token_embedding_, rms_final_, classifier_;
  std::vector<Layer> layers_;
  // [layer][pos] -> kv_dim values (keys already rotated, as run.c caches them).
  std::vector<std::vector<Vec>> key_cache_, value_cache_;
};

// Logits for every position of `tokens` (fed from pos 0 with a fresh cache).
std::vector<std::vector<double>> logits_for_sequence(const Llama2cCheckpoint& checkpoint,
                                                     const std::vector<int>& tokens);

}  // namespace llmc::testing
