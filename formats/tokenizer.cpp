#include "formats/tokenizer.h"

#include <cctype>

namespace llmc {

namespace {
constexpr size_t kCorpusPiece = 1 << 16;  // bytes encoded at a time by encode_corpus

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// The end of the piece starting at `begin`: just after a newline that at least kCorpusPiece bytes
// in is followed by a non-space byte, or the end of the text.
size_t piece_end(const std::string& text, size_t begin) {
  for (size_t nl = text.find('\n', begin + kCorpusPiece); nl != std::string::npos; nl = text.find('\n', nl + 1))
    if (nl + 1 < text.size() && !is_space(text[nl + 1])) return nl + 1;
  return text.size();
}
}  // namespace

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  int prev = -1;
  for (int32_t id : ids) {
    out += decode_piece(prev, id);
    prev = id;
  }
  return out;
}

std::vector<int32_t> Tokenizer::encode_corpus(const std::string& text, int64_t max_tokens) const {
  std::vector<int32_t> ids;
  for (size_t begin = 0; begin < text.size();) {
    if (max_tokens >= 0 && static_cast<int64_t>(ids.size()) >= max_tokens) break;
    const size_t end = piece_end(text, begin);
    const auto piece = encode(text.substr(begin, end - begin), begin == 0 && adds_bos(), false);
    ids.insert(ids.end(), piece.begin(), piece.end());
    begin = end;
  }
  return ids;
}

std::string tokenizer_metadata_key(const std::string& kind) { return "llmcompress.tokenizer." + kind; }

}  // namespace llmc
