// GGUF tokenizer metadata read as our tokenizers: the SentencePiece ("llama") kind becomes a
// llama2.c tokenizer (the real-model parity lives in scripts/check_gguf_spm.py, ctest
// gguf_spm_tokenizer_vs_hf_tokenizers_and_llama2c); here hand-built vocabularies check the
// mapping and every refusal names the file and what is wrong.
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>

#include "formats/gguf_tokenizer.h"
#include "formats/llama2c_tokenizer.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

namespace {

constexpr uint32_t kU32 = 4, kF32 = 6, kBool = 7, kString = 8, kArray = 9;

// A GGUF holding only tokenizer metadata (no tensors).
struct TokenizerGguf {
  std::string model = "llama";
  std::vector<std::string> tokens;
  std::vector<float> scores;
  int bos = 1;
  bool space_prefix = true;

  TokenizerGguf() {
    tokens = {"<unk>", "<s>", "</s>"};
    for (int b = 0; b < 256; ++b) {
      char t[8];
      std::snprintf(t, sizeof t, "<0x%02X>", b);
      tokens.emplace_back(t);
    }
    for (const char* t : {"\xE2\x96\x81", "a", "b", "ab", "\xE2\x96\x81" "ab"}) tokens.emplace_back(t);
    for (size_t i = 0; i < tokens.size(); ++i) scores.push_back(i < 259 ? 0.0f : -static_cast<float>(i));
  }

  std::string bytes() const {
    std::string out = "GGUF";
    auto pod = [&](auto v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); };
    auto str = [&](const std::string& s) { pod(uint64_t{s.size()}), out += s; };
    pod(uint32_t{3}), pod(uint64_t{0}), pod(uint64_t{5});
    str("tokenizer.ggml.model"), pod(kString), str(model);
    str("tokenizer.ggml.tokens"), pod(kArray), pod(kString), pod(uint64_t{tokens.size()});
    for (const auto& t : tokens) str(t);
    str("tokenizer.ggml.scores"), pod(kArray), pod(kF32), pod(uint64_t{scores.size()});
    for (float s : scores) pod(s);
    str("tokenizer.ggml.bos_token_id"), pod(kU32), pod(static_cast<uint32_t>(bos));
    str("tokenizer.ggml.add_space_prefix"), pod(kBool), pod(static_cast<uint8_t>(space_prefix));
    return out;
  }

  std::string write(const std::string& dir, const std::string& name) const {
    const std::string path = dir + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes();
    return path;
  }
};

void expect_refused(const TokenizerGguf& t, const std::string& dir, const std::string& name, const std::string& what) {
  const std::string path = t.write(dir, name);
  auto g = GgufFile::open(path);
  REQUIRE(g.is_ok());
  auto tok = gguf_tokenizer(*g);
  REQUIRE_FALSE(tok.is_ok());
  INFO(tok.status().message());
  CHECK(tok.status().message().find(path) != std::string::npos);
  CHECK(tok.status().message().find(what) != std::string::npos);
}

}  // namespace

TEST_CASE("GGUF SentencePiece vocabulary reads as a llama2.c tokenizer", "[gguf][tokenizer]") {
  const std::string dir = scratch_dir("gguf_spm");
  auto g = GgufFile::open(TokenizerGguf().write(dir, "spm.gguf"));
  REQUIRE(g.is_ok());
  auto tok = gguf_tokenizer(*g);
  REQUIRE(tok.is_ok());
  const Tokenizer& t = **tok;
  CHECK(t.kind() == "llama2c");
  CHECK(t.vocab_size() == 264);
  // "ab ab": dummy prefix, "▁" + "a" + "b" merge to "▁ab" (259 + 4 = 263) twice; "é" is not in
  // the vocabulary and falls back to its two UTF-8 bytes (0xC3 0xA9 -> ids 198, 172).
  CHECK(t.encode("ab ab", true, false) == std::vector<int32_t>{1, 263, 263});
  CHECK(t.encode("\xC3\xA9", false, false) == std::vector<int32_t>{259, 0xC3 + 3, 0xA9 + 3});
  CHECK(t.decode_piece(1, 263) == "ab");
  CHECK(t.decode_piece(263, 263) == " ab");
  // Serialised into the artifact and read back: the same tokenizer.
  auto again = Llama2cTokenizer::from_bytes(t.serialize(), "metadata");
  REQUIRE(again.is_ok());
  CHECK(again->encode("ab ab", true, true) == t.encode("ab ab", true, true));
}

TEST_CASE("GGUF tokenizers the llama2.c layout cannot hold are refused by name", "[gguf][tokenizer]") {
  const std::string dir = scratch_dir("gguf_spm_bad");
  TokenizerGguf kind;
  kind.model = "t5";
  expect_refused(kind, dir, "kind.gguf", "tokenizer.ggml.model 't5'");
  TokenizerGguf bos;
  bos.bos = 5;
  expect_refused(bos, dir, "bos.gguf", "bos_token_id is 5");
  TokenizerGguf bytes;
  std::swap(bytes.tokens[3], bytes.tokens[4]);
  expect_refused(bytes, dir, "bytes.gguf", "token 3 is '<0x01>'");
  TokenizerGguf scores;
  scores.scores.pop_back();
  expect_refused(scores, dir, "scores.gguf", "tokenizer.ggml.scores has 263 entries for 264 tokens");
  TokenizerGguf prefix;
  prefix.space_prefix = false;
  expect_refused(prefix, dir, "prefix.gguf", "add_space_prefix");
  TokenizerGguf small;
  small.tokens.resize(100);
  small.scores.resize(100);
  expect_refused(small, dir, "small.gguf", "has 100 tokens");
}
