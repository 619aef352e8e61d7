#include "formats/tokenizer.h"

namespace llmc {

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string text;
  int prev = -1;
  for (int32_t id : ids) {
    text += decode_piece(prev, id);
    prev = id;
  }
  return text;
}

std::vector<int32_t> Tokenizer::encode_corpus(const std::string& text) const {
  return encode(text, adds_bos(), false);
}

std::string tokenizer_metadata_key(const std::string& kind) { return "llmcompress.tokenizer." + kind; }

}  // namespace llmc
