#include "formats/bpe_pretokenizer.h"

#include <algorithm>

#include "formats/byte_alphabet.h"
#include "formats/unicode_tables.h"

namespace llmc {
namespace {

// Character classes the regexes test. Letters, numbers and whitespace exclude each other;
// everything in none of them ("other") is what [^\s\p{L}\p{N}] matches.
enum : uint8_t {
  kOther = 0,
  kLetter = 1,
  kNumber = 2,
  kSpace = 4,    // \s
  kNewline = 8,  // \r or \n (also kSpace)
};

struct Char {
  size_t begin;  // byte offset in the span
  char32_t cp;   // 0xFFFFFFFF for an invalid UTF-8 byte
  uint8_t cls;
};

uint8_t classify(char32_t cp) {
  if (cp == '\r' || cp == '\n') return kSpace | kNewline;
  if (cp < 0x80) {  // the common case, without the table searches
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return kLetter;
    if (cp >= '0' && cp <= '9') return kNumber;
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return kSpace;
    return kOther;
  }
  if (is_letter(cp)) return kLetter;
  if (is_number(cp)) return kNumber;
  if (is_whitespace(cp)) return kSpace;
  return kOther;
}

constexpr char32_t kInvalidByte = 0xFFFFFFFF;

// `text` as characters, plus a sentinel whose `begin` is text.size().
void decode_chars(std::string_view text, std::vector<Char>* chars) {
  chars->clear();
  chars->reserve(text.size() + 1);
  for (size_t pos = 0; pos < text.size();) {
    char32_t cp;
    int len = decode_utf8(text, pos, &cp);
    if (len == 0) {
      chars->push_back({pos, kInvalidByte, kOther});
      pos += 1;
    } else {
      chars->push_back({pos, cp, classify(cp)});
      pos += static_cast<size_t>(len);
    }
  }
  chars->push_back({text.size(), 0, kOther});
}

// Matchers: given the characters [0, n) of the span being split and a start i < n, the end of
// the regex's match at i. The regexes match every character, so the end is always > i.
class Matcher {
 public:
  Matcher(const Char* c, size_t n) : c_(c), n_(n) {}

  size_t gpt2(size_t i) const {
    if (size_t end = contraction(i, /*ignore_case=*/false)) return end;
    // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: without the space the first character would
    // itself have to be a letter/number/other, which a space is not, so no backtracking is needed.
    size_t p = i + (c_[i].cp == ' ' ? 1 : 0);
    if (p < n_) {
      if (c_[p].cls == kLetter) return run(p, kLetter);
      if (c_[p].cls == kNumber) return run(p, kNumber);
      if (c_[p].cls == kOther) return run_other(p);
    }
    return whitespace(i);
  }

  // Llama 3's regex, or Qwen2's when max_digits is 1.
  size_t llama3(size_t i, size_t max_digits) const {
    if (size_t end = contraction(i, /*ignore_case=*/true)) return end;
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if ((c_[i].cls & (kLetter | kNumber | kNewline)) == 0 && i + 1 < n_ && c_[i + 1].cls == kLetter)
      return run(i + 1, kLetter);
    if (c_[i].cls == kLetter) return run(i, kLetter);
    // \p{N}{1,3} (Qwen2: \p{N})
    if (c_[i].cls == kNumber) return std::min(run(i, kNumber), i + max_digits);
    // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
    size_t p = i + (c_[i].cp == ' ' ? 1 : 0);
    if (p < n_ && c_[p].cls == kOther) return run(run_other(p), kNewline);
    // \s*[\r\n]+ : the whitespace run up to its last newline (c_[i] is whitespace here).
    size_t k = run(i, kSpace);
    for (size_t m = k; m > i; --m) {
      if (c_[m - 1].cls & kNewline) return m;
    }
    return whitespace(i);
  }

 private:
  // \s+(?!\S)|\s+ at a whitespace character: the run, less its last character when a
  // non-space follows and the run is longer than one (that character then leads the next piece).
  size_t whitespace(size_t i) const {
    size_t k = run(i, kSpace);
    if (k == i) return i + 1;  // unreachable: every character is in some class
    if (k == n_ || k - i == 1) return k;
    return k - 1;
  }

  // 's|'t|'re|'ve|'m|'ll|'d (case-insensitive for Llama 3, where Oniguruma's case folding also
  // lets U+017F LATIN SMALL LETTER LONG S match s). 0 when none matches.
  size_t contraction(size_t i, bool ignore_case) const {
    if (c_[i].cp != '\'' || i + 1 >= n_) return 0;
    auto is = [&](size_t k, char lower) {
      char32_t cp = c_[k].cp;
      if (cp == static_cast<char32_t>(lower)) return true;
      if (!ignore_case) return false;
      return cp == static_cast<char32_t>(lower - 'a' + 'A') || (lower == 's' && cp == 0x17F);
    };
    if (is(i + 1, 's') || is(i + 1, 't') || is(i + 1, 'm') || is(i + 1, 'd')) return i + 2;
    if (i + 2 < n_ && ((is(i + 1, 'r') && is(i + 2, 'e')) || (is(i + 1, 'v') && is(i + 2, 'e')) ||
                       (is(i + 1, 'l') && is(i + 2, 'l'))))
      return i + 3;
    return 0;
  }

  // The end of the run of characters having any bit of `mask`, from i.
  size_t run(size_t i, uint8_t mask) const {
    while (i < n_ && (c_[i].cls & mask)) ++i;
    return i;
  }
  size_t run_other(size_t i) const {
    while (i < n_ && c_[i].cls == kOther) ++i;
    return i;
  }

  const Char* c_;
  size_t n_;
};

// Splits characters [from, to) of `chars` with the regex of `kind` (kSmolLm: GPT-2's).
void split_with_regex(const std::vector<Char>& chars, size_t from, size_t to, BpePreTokenizer kind,
                      std::vector<BytePiece>* pieces) {
  // The matcher sees only [from, to): the lookahead (?!\S) stops at the sub-span's end, as in HF
  // where each earlier split's piece is matched on its own.
  Matcher m(chars.data() + from, to - from);
  for (size_t i = 0; i < to - from;) {
    size_t end = kind == BpePreTokenizer::kLlama3  ? m.llama3(i, 3)
                 : kind == BpePreTokenizer::kQwen2 ? m.llama3(i, 1)
                                                   : m.gpt2(i);
    pieces->push_back({chars[from + i].begin, chars[from + end].begin});
    i = end;
  }
}

}  // namespace

std::optional<BpePreTokenizer> bpe_pre_tokenizer_named(const std::string& name) {
  if (name == "gpt2") return BpePreTokenizer::kGpt2;
  if (name == "smollm") return BpePreTokenizer::kSmolLm;
  if (name == "llama-bpe") return BpePreTokenizer::kLlama3;
  if (name == "qwen2") return BpePreTokenizer::kQwen2;
  return std::nullopt;
}

void pre_tokenize(BpePreTokenizer kind, std::string_view text, std::vector<BytePiece>* pieces) {
  thread_local std::vector<Char> chars;
  decode_chars(text, &chars);
  const size_t n = chars.size() - 1;
  if (kind != BpePreTokenizer::kSmolLm) {
    split_with_regex(chars, 0, n, kind, pieces);
    return;
  }
  // Digits(individual_digits=true): each number character is a piece; the text between goes to
  // the GPT-2 regex.
  size_t start = 0;
  for (size_t i = 0; i <= n; ++i) {
    if (i < n && chars[i].cls != kNumber) continue;
    if (i > start) split_with_regex(chars, start, i, BpePreTokenizer::kGpt2, pieces);
    if (i < n) pieces->push_back({chars[i].begin, chars[i + 1].begin});
    start = i + 1;
  }
}

}  // namespace llmc
