// Shared by the tokenizer parity tests (BPE, WordPiece) that compare our ids with Hugging Face
// `tokenizers`' written by a Python script: the corpus slices both read, and the ids files.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace llmc::testing {

// The first `max_bytes` of `text`, not splitting a UTF-8 character.
std::string utf8_prefix(const std::string& text, size_t max_bytes);
// Whitespace-separated ids, as the reference scripts write them.
std::vector<int32_t> ids_of(const std::string& text);
// ("corpus NAME", first 100 KB) of every .txt file in `corpora_dir`, sorted by name.
std::vector<std::pair<std::string, std::string>> corpus_slices(const std::string& corpora_dir);

// A parity test's inputs for its reference script: every edge case (named by its first 40
// bytes), then the corpus slices, each written to DIR/inputN.txt (as `file_text` maps it, when
// given: the text a script can read), in that order.
struct ParityText {
  std::string name, text, path;
  bool from_corpus = false;
};
std::vector<ParityText> write_parity_texts(const std::string& dir, const std::vector<std::string>& edge_cases,
                                           const std::string& corpora_dir,
                                           std::string (*file_text)(const std::string&) = nullptr);

}  // namespace llmc::testing
