// Byte-level BPE against Hugging Face `tokenizers` on SmolLM2's real vocabulary: every id equal on
// corpus slices, edge cases and a sweep over every assigned codepoint, for each pre-tokenizer
// (scripts/bpe_reference.py writes the vocabulary and HF's ids; no GGUF reader needed here).
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "formats/bpe_tokenizer.h"
#include "tests/support/test_data.h"
#include "tests/support/tokenizer_parity.h"

namespace llmc {
namespace {

using testing::ids_of;
using testing::read_text;

constexpr const char* kPres[] = {"smollm", "gpt2", "llama-bpe", "qwen2"};

std::vector<std::string> edge_cases() {
  return {
      "", " ", "  ", "\t", "\n", "\u00a0", "a\u00a0b", "\t\tx", "   \n\n  ", "hello   ",
      "trailing spaces \t ", "a  b   c\t\td\n\ne", "x\r\ny\r\n\r\n", "  leading", " \n x",
      "1234567", "3.14", "x=1e-10, y=-42;", "mixed123abc456def", "٣٤٥ Arabic-Indic digits",
      "Ⅻ roman ½ ²", "I'll've", "don't DON'T It'S", "'s 're 'sa 'll'd", "'''", "it'ſa",
      "<|im_start|>user\nhi<|im_end|>", "<|im_start|><|im_end|>", "<|im_start", "a<|endoftext|>b",
      "日本語のテキスト、中文文本。", "😀👍🏽👨‍👩‍👧 emoji!!", "e\u0301 a\u0308 combining ̃x",
      "مرحبا بالعالم", "Привет, мир!", "\u2028\u2029\u3000x\u200b", "ẞ ß ﬀ ǅ", "\u0085x",
      "def f(x):\n    return x**2  # square\n\n\n", std::string(1000, 'a'), std::string(300, ' '),
      [] {
        std::string s;
        for (int i = 0; i < 20; ++i) s += "Pneumonoultramicroscopicsilicovolcanoconiosis";
        return s;
      }(),
  };
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

struct Input {
  std::string name;
  std::string text;
  bool from_corpus = false;
  std::vector<std::vector<int32_t>> hf_ids;  // per kPres entry
};

struct Reference {
  bool ok = false;
  std::string dir;
  BpeVocabulary vocab;  // pre as the GGUF says ("smollm")
  std::vector<Input> inputs;
};

Reference build_reference() {
  Reference ref;
  const std::string gguf = testing::model_path(testing::kSmolLm2Gguf);
  const std::string corpora = testing::data_path("corpora");
  const std::string python = testing::venv_python();
  if (gguf.empty() || corpora.empty() || python.empty()) return ref;
  ref.dir = testing::scratch_dir("bpe_ref");
  std::vector<std::string> paths;
  for (auto& t : testing::write_parity_texts(ref.dir, edge_cases(), corpora)) {
    paths.push_back(t.path);
    ref.inputs.push_back({std::move(t.name), std::move(t.text), t.from_corpus, {}});
  }

  std::string command = testing::shell_quote(python);
  for (const std::string& arg : {std::string(LLMC_SOURCE_DIR) + "/scripts/bpe_reference.py", gguf, ref.dir})
    command.append(" ").append(testing::shell_quote(arg));
  for (const std::string& p : paths) command.append(" ").append(testing::shell_quote(p));
  testing::CommandResult r = testing::run_shell(command);
  if (r.exit_code != 0) {
    FAIL("bpe_reference.py failed (" << r.exit_code << "): " << r.errors);
    return ref;
  }
  paths.push_back(ref.dir + "/unicode_sweep.txt");
  ref.inputs.push_back({"unicode sweep", read_text(paths.back()), false, {}});
  for (size_t i = 0; i < paths.size(); ++i) {
    for (const char* pre : kPres) ref.inputs[i].hf_ids.push_back(ids_of(read_text(paths[i] + "." + pre + ".ids")));
  }
  ref.vocab.tokens = lines_of(read_text(ref.dir + "/tokens.txt"));
  ref.vocab.merges = lines_of(read_text(ref.dir + "/merges.txt"));
  for (const std::string& t : lines_of(read_text(ref.dir + "/types.txt"))) ref.vocab.token_types.push_back(std::stoi(t));
  for (const std::string& line : lines_of(read_text(ref.dir + "/meta.txt"))) {
    std::istringstream in(line);
    std::string key, value;
    in >> key >> value;
    if (key == "pre") ref.vocab.pre = value;
    if (key == "bos") ref.vocab.bos_id = std::stoi(value);
    if (key == "eos") ref.vocab.eos_id = std::stoi(value);
    if (key == "add_bos") ref.vocab.add_bos = value == "1";
  }
  ref.ok = true;
  return ref;
}

// Built once per test run: the Python reference takes a while.
const Reference& reference() {
  static const Reference ref = build_reference();
  return ref;
}

std::shared_ptr<const BpeTokenizer> make(const Reference& ref, const std::string& pre) {
  BpeVocabulary v = ref.vocab;
  v.pre = pre;
  auto tok = BpeTokenizer::create(std::move(v), "smollm2 dump");
  INFO(tok.status().message());
  REQUIRE(tok.is_ok());
  return tok.value();
}

// "" when equal, else where and how the ids first differ.
std::string difference(const Tokenizer& tok, const std::vector<int32_t>& ours,
                       const std::vector<int32_t>& theirs) {
  if (ours == theirs) return "";
  size_t i = 0;
  while (i < ours.size() && i < theirs.size() && ours[i] == theirs[i]) ++i;
  auto show = [&](const std::vector<int32_t>& ids) {
    std::string s;
    for (size_t k = i >= 3 ? i - 3 : 0; k < std::min(ids.size(), i + 4); ++k)
      s += std::to_string(ids[k]) + "'" + tok.decode_piece(-1, ids[k]) + "' ";
    return s;
  };
  return "lengths " + std::to_string(ours.size()) + " vs " + std::to_string(theirs.size()) +
         ", first difference at " + std::to_string(i) + ": ours " + show(ours) + "| HF " + show(theirs);
}

TEST_CASE("BPE ids equal Hugging Face tokenizers' on SmolLM2's vocabulary", "[bpe]") {
  const Reference& ref = reference();
  if (!ref.ok) return;
  size_t compared = 0;
  for (size_t p = 0; p < std::size(kPres); ++p) {
    auto tok = make(ref, kPres[p]);
    for (const Input& in : ref.inputs) {
      INFO("pre " << kPres[p] << ", " << in.name);
      std::vector<int32_t> ours = tok->encode(in.text, false, false);
      CHECK(difference(*tok, ours, in.hf_ids[p]) == "");
      compared += in.hf_ids[p].size();
    }
  }
  WARN("BPE parity: " << compared << " HF ids compared over " << ref.inputs.size() << " inputs x "
                      << std::size(kPres) << " pre-tokenizers");
}

// `text` less the bytes encoding drops: those whose symbol the vocabulary lacks (SmolLM2 has no
// token for some control characters).
std::string without_dropped_bytes(const BpeTokenizer& tok, const std::string& text) {
  bool dropped[256];
  for (int b = 0; b < 256; ++b) {
    dropped[b] = tok.encode(std::string(1, static_cast<char>(b)), false, false).empty();
  }
  std::string kept;
  for (unsigned char b : text) {
    if (!dropped[b]) kept.push_back(static_cast<char>(b));
  }
  return kept;
}

TEST_CASE("BPE from_tokenizer_json gives HF's ids from HF's own tokenizer.json", "[bpe]") {
  const Reference& ref = reference();
  if (!ref.ok) return;
  for (size_t p = 0; p < std::size(kPres); ++p) {
    const std::string path = ref.dir + "/tokenizer." + kPres[p] + ".json";
    auto tok = BpeTokenizer::from_tokenizer_json(read_text(path), path);
    INFO(tok.status().message());
    REQUIRE(tok.is_ok());
    const BpeVocabulary& v = tok.value()->vocabulary();
    CHECK(v.pre == kPres[p]);
    CHECK(v.tokens == ref.vocab.tokens);
    CHECK(v.merges == ref.vocab.merges);
    CHECK(v.token_types == ref.vocab.token_types);  // control tokens were added as special
    for (const Input& in : ref.inputs) {
      INFO("pre " << kPres[p] << ", " << in.name);
      CHECK(difference(*tok.value(), tok.value()->encode(in.text, false, false), in.hf_ids[p]) == "");
    }
  }
}

TEST_CASE("BPE decode(encode(text)) gives the text back", "[bpe]") {
  const Reference& ref = reference();
  if (!ref.ok) return;
  for (const char* pre : kPres) {
    auto tok = make(ref, pre);
    for (const Input& in : ref.inputs) {
      std::vector<int32_t> ids = tok->encode(in.text, true, true);
      bool has_control = std::any_of(ids.begin() + 1, ids.end() - 1, [&](int32_t id) {
        return ref.vocab.token_types[static_cast<size_t>(id)] == 3;
      });
      if (has_control) continue;  // control tokens decode to "" by design
      INFO("pre " << pre << ", " << in.name);
      CHECK(tok->decode(ids) == without_dropped_bytes(*tok, in.text));
    }
  }
}

TEST_CASE("BPE serialize/deserialize keeps SmolLM2's tokenizer", "[bpe]") {
  const Reference& ref = reference();
  if (!ref.ok) return;
  auto tok = make(ref, "smollm");
  std::string bytes = tok->serialize();
  auto back = BpeTokenizer::deserialize(bytes, "metadata");
  REQUIRE(back.is_ok());
  const BpeVocabulary& a = tok->vocabulary();
  const BpeVocabulary& b = back.value()->vocabulary();
  CHECK(a.tokens == b.tokens);
  CHECK(a.merges == b.merges);
  CHECK(a.token_types == b.token_types);
  CHECK((a.pre == b.pre && a.bos_id == b.bos_id && a.eos_id == b.eos_id && a.add_bos == b.add_bos));
  CHECK(back.value()->serialize() == bytes);
  for (const Input& in : ref.inputs) {
    if (in.from_corpus) CHECK(back.value()->encode(in.text, false, false) == in.hf_ids[0]);
  }
  WARN("BPE serialized SmolLM2 tokenizer: " << bytes.size() << " bytes");
}

TEST_CASE("BPE encode speed on the corpus slices", "[bpe]") {
  const Reference& ref = reference();
  if (!ref.ok) return;
  auto tok = make(ref, "smollm");
  size_t bytes = 0, tokens = 0;
  auto start = std::chrono::steady_clock::now();
  for (int repeat = 0; repeat < 5; ++repeat) {
    for (const Input& in : ref.inputs) {
      if (!in.from_corpus) continue;
      bytes += in.text.size();
      tokens += tok->encode(in.text, false, false).size();
    }
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  WARN("BPE encode: " << static_cast<int64_t>(tokens / seconds) << " tokens/s, "
                      << bytes / seconds / 1e6 << " MB/s (" << tokens << " tokens)");
}

}  // namespace
}  // namespace llmc
