// Byte-level BPE, as GPT-2, SmolLM2, Qwen2 and Llama 3 tokenize: special tokens split out of the
// text first, then a pre-tokenizer regex (which one: the GGUF `tokenizer.ggml.pre` name), each
// piece's bytes mapped to GPT-2's printable byte alphabet, then merges applied by rank (lowest
// first, leftmost on ties) within the piece. Ids equal Hugging Face `tokenizers`' on the same
// vocabulary and merges (with no unk_token: a byte whose symbol is not a token is dropped).
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "formats/tokenizer.h"
#include "ir/status.h"

namespace llmc {

// What a GGUF file (tokenizer.ggml.*) or a tokenizer.json gives.
struct BpeVocabulary {
  std::vector<std::string> tokens;   // in byte-alphabet form ("Ġthe"), index = id
  std::vector<std::string> merges;   // "Ġ t", rank = index
  // GGUF token types (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte); empty
  // means all normal. Control and user-defined tokens are matched whole in the input text.
  std::vector<int32_t> token_types;
  // Pre-tokenizer: "gpt2" (GPT-2's regex), "smollm" (each digit alone, then GPT-2's),
  // "llama-bpe" (Llama 3's regex; a piece that is a token skips merging, as its ignore_merges),
  // "qwen2" (Llama 3's regex with single digits). Others are refused by name.
  std::string pre = "gpt2";
  int bos_id = -1;
  int eos_id = -1;
  bool add_bos = false;
};

class BpeTokenizer final : public Tokenizer {
 public:
  // Checks: ids of merges' halves and results exist, bos/eos in range, pre known, tokens unique.
  static Result<std::shared_ptr<const BpeTokenizer>> create(BpeVocabulary vocab, const std::string& source);
  // A Hugging Face tokenizer.json whose model is BPE with a ByteLevel pre-tokenizer/decoder.
  // Special added tokens become control tokens, others user-defined. BOS/EOS come from a
  // TemplateProcessing post-processor when there is one ([BOS] $A [EOS]); tokenizer.json does not
  // name them otherwise (tokenizer_config.json does), so they stay -1.
  static Result<std::shared_ptr<const BpeTokenizer>> from_tokenizer_json(const std::string& json,
                                                                         const std::string& source);
  // The inverse of serialize().
  static Result<std::shared_ptr<const BpeTokenizer>> deserialize(const std::string& bytes,
                                                                 const std::string& source);

  ~BpeTokenizer() override;
  std::string kind() const override { return "bpe"; }
  int vocab_size() const override;
  int bos_id() const override;
  int eos_id() const override;
  bool adds_bos() const override;
  std::vector<int32_t> encode(const std::string& text, bool bos, bool eos) const override;
  std::string decode_piece(int prev_token, int token) const override;
  std::string serialize() const override;
  const BpeVocabulary& vocabulary() const;

 private:
  struct State;  // lookup tables built by create(), in bpe_tokenizer.cpp
  explicit BpeTokenizer(std::unique_ptr<const State> state);
  std::unique_ptr<const State> state_;
};

}  // namespace llmc
