// Tokens matched whole anywhere in the text before any other tokenization (Hugging Face's added
// tokens: BPE control/user-defined tokens, BERT's [CLS] [SEP] ...): at the leftmost position where
// one starts, the longest wins (HF's added-vocabulary split, Aho-Corasick leftmost-longest).
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace llmc {

class AddedTokenMatcher {
 public:
  struct Entry {
    std::string_view text;  // a view: the caller keeps the token text alive
    int32_t id;
  };
  void add(std::string_view text, int32_t id) {
    if (text.empty()) return;
    auto& bucket = by_first_byte_[static_cast<unsigned char>(text[0])];
    bucket.push_back({text, id});
    // Longest first, so the first hit at a position is the longest.
    std::stable_sort(bucket.begin(), bucket.end(),
                     [](const Entry& a, const Entry& b) { return a.text.size() > b.text.size(); });
  }
  // The added token starting at text[pos] (longest), or nullptr.
  const Entry* match(std::string_view text, size_t pos) const {
    for (const Entry& e : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
      if (text.compare(pos, e.text.size(), e.text) == 0) return &e;
    }
    return nullptr;
  }

 private:
  std::array<std::vector<Entry>, 256> by_first_byte_;
};

}  // namespace llmc
