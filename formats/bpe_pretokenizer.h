// The pre-tokenizers of byte-level BPE: the regexes GPT-2 and Llama 3 split text with before
// merging, written as hand matchers (std::regex has no \p classes and is slow). Each one equals
// Hugging Face tokenizers' Oniguruma match on the same text: leftmost alternative first, greedy
// with backtracking, the lookahead `(?!\S)` seeing only the span being split.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmc {

enum class BpePreTokenizer {
  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kGpt2,
  // Every \p{N} alone first (HF Digits(individual_digits=true)), then kGpt2 within the rest.
  kSmolLm,
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
  // \s*[\r\n]+|\s+(?!\S)|\s+
  kLlama3,
  // Llama 3's with \p{N} for \p{N}{1,3}: each digit alone (Qwen2's tokenizer.json, llama.cpp).
  kQwen2,
};

// The GGUF `tokenizer.ggml.pre` names: "gpt2", "smollm", "qwen2" and "llama-bpe" (Llama 3's).
std::optional<BpePreTokenizer> bpe_pre_tokenizer_named(const std::string& name);

// A piece of the text: bytes [begin, end) of the span given to pre_tokenize.
struct BytePiece {
  size_t begin = 0;
  size_t end = 0;
};

// Appends the pieces `text` (a span without special tokens) splits into, covering it whole and
// in order. Invalid UTF-8 bytes count as one "other" character each (neither letter, number nor
// space), so every byte lands in some piece.
void pre_tokenize(BpePreTokenizer kind, std::string_view text, std::vector<BytePiece>* pieces);

}  // namespace llmc
