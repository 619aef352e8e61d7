// The llama2.c tokenizer (tokenizer.bin / tok512.bin): a scored vocabulary of byte strings,
// encoded exactly as llama2.c's run.c does: optional BOS, a dummy-prefix space, UTF-8 code
// points looked up whole with byte fallback (<0xXX> = id byte+3), then BPE merges always
// taking the highest-scoring adjacent pair (leftmost on ties) until none applies.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "formats/tokenizer.h"
#include "ir/status.h"

namespace llmc {

class Llama2cTokenizer final : public Tokenizer {
 public:
  static constexpr int kBos = 1;
  static constexpr int kEos = 2;

  // Parses the binary format: int32 max_token_length, then per token: float32 score,
  // int32 byte length, bytes. The vocab size is not stored: records are read to the end of the
  // file, and fewer than 259 (<unk>, BOS, EOS, 256 byte tokens) is an error. `source` names
  // the file in error messages.
  static Result<Llama2cTokenizer> from_bytes(const std::string& bytes, const std::string& source);
  static Result<Llama2cTokenizer> from_file(const std::string& path);

  // The exact bytes it was parsed from (stored in model metadata, re-parsed later).
  const std::string& serialized() const { return serialized_; }
  std::string serialize() const override { return serialized_; }
  std::string kind() const override { return "llama2c"; }
  int vocab_size() const override { return static_cast<int>(pieces_.size()); }
  int bos_id() const override { return kBos; }
  int eos_id() const override { return kEos; }
  bool adds_bos() const override { return true; }
  const std::string& piece(int id) const { return pieces_[id]; }
  float score(int id) const { return scores_[id]; }

  // O(n log n) in the text length (a heap of candidate merges, not run.c's quadratic loop),
  // with identical results. Text is taken as bytes: run.c would stop at a NUL byte, we encode
  // it with its byte-fallback token.
  std::vector<int32_t> encode(const std::string& text, bool bos, bool eos) const override;
  // The text of `token` following `prev_token`, as run.c's decode(): the leading space of a
  // piece after BOS is dropped and <0xXX> pieces become the raw byte; BOS and EOS give "", so
  // decode(encode(x, true, true)) == x. `token` must be a valid id.
  std::string decode_piece(int prev_token, int token) const override;
  // Each non-empty line encoded on its own with BOS before it (no EOS), as llama2.c's training
  // data was; CRLF lines encode like LF lines.
  std::vector<int32_t> encode_corpus(const std::string& text, int64_t max_tokens = -1) const override;

 private:
  int lookup(const std::string& s) const;  // -1 when absent
  std::string serialized_;
  int max_token_length_ = 0;
  size_t max_piece_len_ = 0;  // longest piece: longer pair concatenations skip the lookup
  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int> index_;
};

// tok.encode_corpus(text): kept for the tests that name the llama2.c layout.
inline std::vector<int32_t> encode_lines(const Llama2cTokenizer& tok, const std::string& text) {
  return tok.encode_corpus(text);
}

}  // namespace llmc
