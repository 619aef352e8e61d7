// Byte-level BPE on small made-up vocabularies: merge order against a naive reference, special
// tokens, bytes that are not UTF-8, create()'s checks and hostile serialized bytes. The parity
// with Hugging Face on a real vocabulary is bpe_tokenizer_parity_test.cpp.
#include "formats/bpe_tokenizer.h"

#include <catch2/catch.hpp>
#include <map>
#include <random>

#include "formats/byte_alphabet.h"
#include "formats/json.h"

namespace llmc {
namespace {

// The 256 byte symbols in byte order, so a byte's id is the byte.
BpeVocabulary byte_vocabulary() {
  BpeVocabulary v;
  for (int b = 0; b < 256; ++b) v.tokens.push_back(bytes_to_alphabet(std::string(1, static_cast<char>(b))));
  return v;
}

void add_merge(BpeVocabulary* v, const std::string& left, const std::string& right) {
  v->merges.push_back(left + " " + right);
  if (std::find(v->tokens.begin(), v->tokens.end(), left + right) == v->tokens.end()) {
    v->tokens.push_back(left + right);
    if (!v->token_types.empty()) v->token_types.push_back(1);
  }
}

int32_t add_token(BpeVocabulary* v, const std::string& text, int32_t type) {
  if (v->token_types.empty()) v->token_types.assign(v->tokens.size(), 1);
  v->tokens.push_back(text);
  v->token_types.push_back(type);
  return static_cast<int32_t>(v->tokens.size() - 1);
}

int32_t id_of(const BpeVocabulary& v, const std::string& token) {
  return static_cast<int32_t>(std::find(v.tokens.begin(), v.tokens.end(), token) - v.tokens.begin());
}

// "hello", " the", specials <s> </s> (control) and <tool> <tool_call> (user-defined).
BpeVocabulary small_vocabulary() {
  BpeVocabulary v = byte_vocabulary();
  for (auto [l, r] : {std::pair{"Ġ", "t"}, {"Ġt", "h"}, {"Ġth", "e"}, {"h", "e"}, {"l", "l"},
                      {"he", "ll"}, {"hell", "o"}})
    add_merge(&v, l, r);
  v.bos_id = add_token(&v, "<s>", 3);
  v.eos_id = add_token(&v, "</s>", 3);
  add_token(&v, "<tool>", 4);
  add_token(&v, "<tool_call>", 4);
  return v;
}

std::shared_ptr<const BpeTokenizer> make(BpeVocabulary v) {
  auto tok = BpeTokenizer::create(std::move(v), "test vocab");
  INFO(tok.status().message());
  REQUIRE(tok.is_ok());
  return tok.value();
}

// Merges by rank the slow way: find the lowest-ranked adjacent pair (leftmost on ties), merge,
// repeat.
std::vector<int32_t> naive_bpe(const BpeVocabulary& v, const std::string& text) {
  std::map<std::pair<std::string, std::string>, size_t> rank;
  for (size_t r = 0; r < v.merges.size(); ++r) {
    size_t sp = v.merges[r].find(' ');
    rank[{v.merges[r].substr(0, sp), v.merges[r].substr(sp + 1)}] = r;  // later duplicates win
  }
  std::vector<std::string> sym;
  for (unsigned char b : text) sym.push_back(bytes_to_alphabet(std::string(1, static_cast<char>(b))));
  while (true) {
    size_t best = sym.size(), best_rank = SIZE_MAX;
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      auto it = rank.find({sym[i], sym[i + 1]});
      if (it != rank.end() && it->second < best_rank) best = i, best_rank = it->second;
    }
    if (best == sym.size()) break;
    sym[best] += sym[best + 1];
    sym.erase(sym.begin() + static_cast<long>(best) + 1);
  }
  std::vector<int32_t> ids;
  for (const std::string& s : sym) ids.push_back(id_of(v, s));
  return ids;
}

TEST_CASE("BPE merges lowest rank first, leftmost on ties, like a naive loop", "[bpe]") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 40; ++trial) {
    BpeVocabulary v = byte_vocabulary();
    std::vector<std::string> pool = {"a", "b", "c"};
    for (int m = 0; m < 30; ++m) {  // random merges over tokens made so far
      const std::string l = pool[rng() % pool.size()], r = pool[rng() % pool.size()];
      add_merge(&v, l, r);
      pool.push_back(l + r);
    }
    auto tok = make(v);
    for (int s = 0; s < 20; ++s) {
      std::string text;
      for (size_t n = rng() % 60; n > 0; --n) text.push_back("abc"[rng() % 3]);
      INFO("trial " << trial << " text " << text);
      CHECK(tok->encode(text, false, false) == naive_bpe(v, text));
    }
  }
}

TEST_CASE("BPE encodes words, special tokens, BOS and EOS", "[bpe]") {
  BpeVocabulary v = small_vocabulary();
  auto tok = make(v);
  auto id = [&](const std::string& t) { return id_of(v, t); };
  CHECK(tok->encode("hello the", false, false) == std::vector<int32_t>{id("hello"), id("Ġthe")});
  CHECK(tok->encode("hello", true, true) == std::vector<int32_t>{v.bos_id, id("hello"), v.eos_id});
  // Longest special first at a position; specials split words apart.
  CHECK(tok->encode("a<tool_call>b<tool>c</s>", false, false) ==
        std::vector<int32_t>{'a', id("<tool_call>"), 'b', id("<tool>"), 'c', v.eos_id});
  CHECK(tok->decode(tok->encode("<s>hello<tool>", false, false)) == "hello<tool>");
  CHECK(tok->decode_piece(-1, v.bos_id) == "");
  CHECK(tok->decode_piece(-1, id("Ġthe")) == " the");
  CHECK(tok->decode_piece(-1, -5) == "");
  CHECK(tok->encode("", true, false) == std::vector<int32_t>{v.bos_id});
  CHECK(tok->encode_corpus("hello") == std::vector<int32_t>{id("hello")});  // add_bos false
  CHECK(tok->kind() == "bpe");
  CHECK(tokenizer_metadata_key(tok->kind()) == "llmcompress.tokenizer.bpe");
  CHECK((tok->vocab_size() == static_cast<int>(v.tokens.size()) && tok->bos_id() == v.bos_id &&
         tok->eos_id() == v.eos_id && !tok->adds_bos()));
}

TEST_CASE("BPE encodes any bytes, invalid UTF-8 included, and decodes them back", "[bpe]") {
  std::mt19937 rng(3);
  for (const char* pre : {"gpt2", "smollm", "qwen2", "llama-bpe"}) {
    BpeVocabulary v = small_vocabulary();
    v.pre = pre;
    auto tok = make(v);
    for (int trial = 0; trial < 300; ++trial) {
      std::string text;
      for (size_t n = rng() % 40; n > 0; --n) {
        // Mostly bytes that make words, spaces and broken multi-byte sequences; never '<'.
        const char pick[] = "ab 1'\n\t\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xFF\x80";
        char c = rng() % 4 == 0 ? static_cast<char>(rng() % 256) : pick[rng() % (sizeof pick - 1)];
        text.push_back(c == '<' ? '>' : c);
      }
      INFO("pre " << pre << " trial " << trial);
      CHECK(tok->decode(tok->encode(text, false, false)) == text);
    }
  }
}

TEST_CASE("BPE drops bytes whose symbol is not a token, as HF does without unk_token", "[bpe]") {
  BpeVocabulary v = small_vocabulary();
  v.tokens[0xFF] = "not-a-byte";
  add_merge(&v, "!", "!");
  auto tok = make(v);
  CHECK(tok->encode("!\xFF!h\xFF", false, false) == std::vector<int32_t>{id_of(v, "!!"), 'h'});
}

TEST_CASE("BPE create() refuses inconsistent vocabularies", "[bpe]") {
  auto fails = [](BpeVocabulary v, const std::string& expected) {
    auto tok = BpeTokenizer::create(std::move(v), "vocab.gguf");
    REQUIRE_FALSE(tok.is_ok());
    INFO(tok.status().message());
    CHECK(tok.status().message().find("vocab.gguf: ") == 0);
    CHECK(tok.status().message().find(expected) != std::string::npos);
  };
  BpeVocabulary v = small_vocabulary();
  v.merges.push_back("h zz");
  fails(v, "'zz', which is not in the vocabulary");
  v = small_vocabulary();
  v.merges.push_back("l o");  // "lo" is no token
  fails(v, "'lo', which is not in the vocabulary");
  v = small_vocabulary();
  v.merges.push_back("he");
  fails(v, "not two tokens separated by one space");
  v = small_vocabulary();
  v.bos_id = static_cast<int>(v.tokens.size());
  fails(v, "bos id");
  v = small_vocabulary();
  v.eos_id = -2;
  fails(v, "eos id");
  v = small_vocabulary();
  v.pre = "falcon";
  fails(v, "pre-tokenizer 'falcon' is not supported");
  v = small_vocabulary();
  v.tokens.push_back("hello");
  v.token_types.push_back(1);
  fails(v, "'hello' appears twice");
  v = small_vocabulary();
  v.token_types.pop_back();
  fails(v, "token types");
  fails(BpeVocabulary{}, "no tokens");
}

TEST_CASE("BPE deserialize refuses hostile bytes without crashing", "[bpe]") {
  auto tok = make(small_vocabulary());
  const std::string bytes = tok->serialize();
  auto back = BpeTokenizer::deserialize(bytes, "model.onnx");
  REQUIRE(back.is_ok());
  CHECK(back.value()->serialize() == bytes);
  CHECK(back.value()->encode("hello the<tool>", true, false) == tok->encode("hello the<tool>", true, false));
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    auto r = BpeTokenizer::deserialize(bytes.substr(0, cut), "model.onnx");
    INFO("cut at " << cut);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().message().find("model.onnx: ") == 0);
  }
  CHECK_FALSE(BpeTokenizer::deserialize(bytes + "x", "m").is_ok());
  std::string version = bytes;
  version[8] = 2;
  CHECK(BpeTokenizer::deserialize(version, "m").status().message().find("version 2") != std::string::npos);
  std::mt19937 rng(11);
  int accepted = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    std::string bad = bytes;
    for (int flips = 1 + static_cast<int>(rng() % 3); flips > 0; --flips)
      bad[rng() % bad.size()] ^= static_cast<char>(1 << (rng() % 8));
    auto r = BpeTokenizer::deserialize(bad, "m");
    if (r.is_ok()) {  // a flip can still spell a valid tokenizer: it must then work
      ++accepted;
      std::vector<int32_t> ids = r.value()->encode("hello the <s> 12", true, true);
      for (int32_t id : ids) CHECK((id >= 0 && id < r.value()->vocab_size()));
    }
  }
  WARN("BPE hostile bytes: " << accepted << " of 2000 flipped copies still valid tokenizers");
}

// A tokenizer.json for the bytes plus "ab", with `pre` as its pre_tokenizer and `extra` members.
std::string tokenizer_json(const std::string& pre, const std::string& extra = "",
                           const std::string& merges = R"(["a b"])") {
  std::string vocab;
  for (int b = 0; b < 256; ++b)
    vocab += json_quote(bytes_to_alphabet(std::string(1, static_cast<char>(b)))) + ":" + std::to_string(b) + ",";
  vocab += R"("ab":256,"<s>":257)";
  return R"({"added_tokens":[{"id":257,"content":"<s>","special":true}],"normalizer":null,)"
         R"("pre_tokenizer":)" + pre + "," + extra +
         R"("post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},)"
         R"({"Sequence":{"id":"A","type_id":0}}]},)"
         R"("decoder":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{)" + vocab + R"(},"merges":)" +
         merges + "}}";
}

TEST_CASE("BPE from_tokenizer_json reads vocab, merges, added tokens and the BOS template", "[bpe]") {
  const std::string byte_level = R"({"type":"ByteLevel","add_prefix_space":false,"use_regex":true})";
  auto tok = BpeTokenizer::from_tokenizer_json(tokenizer_json(byte_level), "tokenizer.json");
  INFO(tok.status().message());
  REQUIRE(tok.is_ok());
  const BpeVocabulary& v = tok.value()->vocabulary();
  CHECK(v.pre == "gpt2");
  CHECK((v.bos_id == 257 && v.add_bos && v.eos_id == -1 && v.token_types[257] == 3));
  CHECK(tok.value()->encode("ab<s>", true, true) == std::vector<int32_t>{257, 256, 257});
  // Merges as [a, b] pairs, as newer tokenizers write them.
  auto pairs = BpeTokenizer::from_tokenizer_json(tokenizer_json(byte_level, "", R"([["a","b"]])"), "t");
  REQUIRE(pairs.is_ok());
  CHECK(pairs.value()->vocabulary().merges == std::vector<std::string>{"a b"});
}

TEST_CASE("BPE from_tokenizer_json refuses what it cannot reproduce, naming it", "[bpe]") {
  auto fails = [](const std::string& json, const std::string& expected) {
    auto tok = BpeTokenizer::from_tokenizer_json(json, "tokenizer.json");
    REQUIRE_FALSE(tok.is_ok());
    INFO(tok.status().message());
    CHECK(tok.status().message().find("tokenizer.json: ") == 0);
    CHECK(tok.status().message().find(expected) != std::string::npos);
  };
  const std::string byte_level = R"({"type":"ByteLevel","add_prefix_space":false,"use_regex":true})";
  fails(tokenizer_json(R"({"type":"Metaspace","replacement":"_"})"), "pre_tokenizer Metaspace");
  fails(tokenizer_json(R"({"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":false},)" +
                       byte_level + "]}"),
        "pre_tokenizer Sequence[Digits,ByteLevel]");
  fails(tokenizer_json(R"({"type":"ByteLevel","add_prefix_space":true,"use_regex":true})"), "ByteLevel");
  std::string nfc = tokenizer_json(byte_level);
  const std::string null_normalizer = R"("normalizer":null)";
  nfc.replace(nfc.find(null_normalizer), null_normalizer.size(), R"("normalizer":{"type":"NFC"})");
  fails(nfc, "normalizer NFC");
  fails(tokenizer_json(byte_level, "", R"(["a zz"])"), "'zz', which is not in the vocabulary");
  fails(tokenizer_json(byte_level, "", R"([["a b","c"]])"), "token with a space");
  fails(R"({"model":{"type":"WordPiece","vocab":{}}})", "model type 'WordPiece' is not BPE");
  fails(R"({"model":)", "tokenizer.json");
  fails("", "tokenizer.json");
  // Flipped bytes: an error or a working tokenizer, never a crash.
  const std::string good = tokenizer_json(byte_level);
  std::mt19937 rng(5);
  for (int trial = 0; trial < 1000; ++trial) {
    std::string bad = good;
    bad[rng() % bad.size()] ^= static_cast<char>(1 << (rng() % 8));
    auto tok = BpeTokenizer::from_tokenizer_json(bad, "tokenizer.json");
    if (!tok.is_ok()) continue;
    for (int32_t id : tok.value()->encode("abc<s>", true, true)) {
      CHECK((id >= 0 && id < tok.value()->vocab_size()));
      tok.value()->decode_piece(-1, id);
    }
  }
}

}  // namespace
}  // namespace llmc
