#include "formats/bert_normalizer.h"

#include "formats/byte_alphabet.h"
#include "formats/unicode_tables.h"

namespace llmc {

namespace {

// The CJK ideograph blocks of BERT's original tokenization.py, which `tokenizers` copies (Korean
// and Japanese kana are not among them: those scripts space their words).
bool is_chinese_char(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool is_tab_or_newline(char32_t c) { return c == '\t' || c == '\n' || c == '\r'; }

// Rust's char::is_ascii_punctuation or a Unicode P* character.
bool is_bert_punctuation(char32_t c) {
  if (c < 0x80) return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
  return is_punctuation(c);
}

std::u32string decode(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    char32_t cp;
    const int len = decode_utf8(text, pos, &cp);
    out.push_back(len == 0 ? char32_t{0xFFFD} : cp);
    pos += len == 0 ? 1 : static_cast<size_t>(len);
  }
  return out;
}

}  // namespace

std::u32string bert_normalize(std::string_view text, const BertNormalizerOptions& o) {
  std::u32string s = decode(text);
  if (!o.enabled) return s;
  // One pass per step, in the order BertNormalizer::normalize applies them: each step sees the
  // previous one's output (lowercasing the letters accent stripping left, for instance).
  std::u32string next;
  next.reserve(s.size());
  if (o.clean_text) {
    for (char32_t c : s) {
      if (c == 0 || c == 0xFFFD || (!is_tab_or_newline(c) && is_control(c))) continue;
      next.push_back(is_whitespace(c) ? U' ' : c);
    }
    s.swap(next);
    next.clear();
  }
  if (o.handle_chinese_chars) {
    for (char32_t c : s) {
      if (is_chinese_char(c)) {
        next.push_back(U' ');
        next.push_back(c);
        next.push_back(U' ');
      } else {
        next.push_back(c);
      }
    }
    s.swap(next);
    next.clear();
  }
  char32_t buf[kMaxStripped > kMaxLowercase ? kMaxStripped : kMaxLowercase];
  if (o.strip_accents) {
    for (char32_t c : s) next.append(buf, static_cast<size_t>(strip_accents(c, buf)));
    s.swap(next);
    next.clear();
  }
  if (o.lowercase) {
    for (char32_t c : s) next.append(buf, static_cast<size_t>(to_lowercase(c, buf)));
    s.swap(next);
  }
  return s;
}

std::vector<std::u32string_view> bert_pre_tokenize(std::u32string_view text) {
  std::vector<std::u32string_view> words;
  size_t start = 0;
  auto flush = [&](size_t end) {
    if (end > start) words.push_back(text.substr(start, end - start));
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (is_whitespace(c)) {
      flush(i);
      start = i + 1;
    } else if (is_bert_punctuation(c)) {
      flush(i);
      words.push_back(text.substr(i, 1));
      start = i + 1;
    }
  }
  flush(text.size());
  return words;
}

}  // namespace llmc
