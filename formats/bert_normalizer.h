// The text side of BERT's WordPiece tokenizer, as Hugging Face `tokenizers` (Rust) does it:
//   BertNormalizer    clean_text: drop NUL, U+FFFD and control characters (Cc Cf Co, but not tab,
//                     newline, carriage return), turn whitespace into ' '; handle_chinese_chars:
//                     put spaces around CJK ideographs so each is a word; strip_accents: NFD, then
//                     drop nonspacing marks (Mn); lowercase: Unicode's per-character full mapping.
//   BertPreTokenizer  split at whitespace (dropped) and around punctuation (Unicode P* and ASCII
//                     symbols !-/ :-@ [-` {-~, each its own word).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace llmc {

struct BertNormalizerOptions {
  bool enabled = true;  // false: tokenizer.json has no normalizer, text is used as given
  bool clean_text = true;
  bool handle_chinese_chars = true;
  bool strip_accents = true;  // tokenizer.json's null means "as lowercase"; resolved by the reader
  bool lowercase = true;
};

// `text` (UTF-8; an invalid byte reads as U+FFFD, as a lossy decode would) normalized.
std::u32string bert_normalize(std::string_view text, const BertNormalizerOptions& options);
// The words of normalized text, as views into it.
std::vector<std::u32string_view> bert_pre_tokenize(std::u32string_view text);

}  // namespace llmc
