// llama2.c checkpoints (the legacy `stories*.bin` layout): a 7-int32 header, then float32
// weights. A positive vocab_size means the classifier shares the token embedding; a negative
// one means a separate classifier follows the (unused) RoPE tables.
#pragma once
#include <memory>
#include <string>

#include "formats/mapped_file.h"
#include "ir/status.h"

namespace llmc {

struct Llama2cConfig {
  int dim = 0;
  int hidden_dim = 0;
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int vocab_size = 0;  // always positive here; see shared_classifier
  int seq_len = 0;
  bool shared_classifier = true;
  int head_size() const { return dim / n_heads; }
  // In 64 bits: a hostile header's dim * n_kv_heads overflows int before it is validated.
  int kv_dim() const { return static_cast<int>(static_cast<int64_t>(dim) * n_kv_heads / n_heads); }
};

// Views into the mapped file, each matrix row-major [out][in] as llama2.c stores it.
struct Llama2cCheckpoint {
  Llama2cConfig config;
  // Keeps the weights alive: the mapped checkpoint file, or owned buffers (synthetic models).
  std::shared_ptr<const void> owner;
  const float* token_embedding = nullptr;  // [vocab][dim]
  const float* rms_att = nullptr;          // [layer][dim]
  const float* wq = nullptr;               // [layer][dim][dim]
  const float* wk = nullptr;               // [layer][kv_dim][dim]
  const float* wv = nullptr;               // [layer][kv_dim][dim]
  const float* wo = nullptr;               // [layer][dim][dim]
  const float* rms_ffn = nullptr;          // [layer][dim]
  const float* w1 = nullptr;               // [layer][hidden][dim]
  const float* w2 = nullptr;               // [layer][dim][hidden]
  const float* w3 = nullptr;               // [layer][hidden][dim]
  const float* rms_final = nullptr;        // [dim]
  const float* classifier = nullptr;       // [vocab][dim] (== token_embedding when shared)
};

// Reads and validates a checkpoint: header values sane, file size exactly what the header
// implies. Errors name the file and the mismatch.
Result<Llama2cCheckpoint> read_llama2c_checkpoint(const std::string& path);

// True when the first bytes look like a llama2.c header whose implied size equals the file's.
bool looks_like_llama2c_checkpoint(const MappedFile& file);

}  // namespace llmc
