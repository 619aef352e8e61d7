// WordPiece against Hugging Face `tokenizers` on all-MiniLM-L6-v2's tokenizer.json: every id equal
// on the first 100 KB of each corpus, on a sweep of every assigned codepoint, and on edge cases (accents, CJK, emoji, scripts, whitespace
// and control characters, punctuation runs, special tokens in the text, over-long words), with
// and without [CLS]/[SEP]; decode equal to HF's where the text holds no special tokens. Serialization round trips; hostile bytes give
// errors, never crashes.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "formats/model_loader.h"
#include "formats/wordpiece_tokenizer.h"
#include "tests/support/test_data.h"
#include "tests/support/tokenizer_parity.h"

namespace llmc {
namespace {

using testing::ids_of;
using testing::read_text;

std::vector<std::string> edge_cases() {
  return {
      "", " ", "\u00a0", "Héllo naïve café", "HÉLLO NAÏVE CAFÉ", "Crème brûlée à la carte",
      "e\u0301 a\u0308 combining \u0303x", "日本語のテキスト、中文文本。", "中文abc中文", "한국어 텍스트",
      "😀👍🏽👨‍👩‍👧 emoji!!", "مرحبا بالعالم", "Привет, мир! ПРИВЕТ", "ΑΘΗΝΑ Ελλάδα ΣΟΦΟΣ",
      "İstanbul IĞDIR ıi", "straße STRASSE ǅ ﬀ", "a  b   c\t\td\n\ne\r\nf", "\t\n\r\v\f", "x\x01y\x7fz\u200bw",
      "soft\u00adhyphen", std::string("null\0byte", 9), "replacement \xef\xbf\xbd char", "\u2028line\u2029para\u3000ideo",
      "1234567 3.14 1e-10 ½ ² ٣٤٥", "!!!...???,,, ;;:: --- ((([[{{}}]]))) $%^&*~`|\\", "«quotes» “smart” ‘single’",
      "[CLS] hello [SEP]", "[CLS][SEP][PAD][MASK][UNK]", "[cls] lower [sep]", "x[MASK]y", "[CLS", "[UNK]word",
      "don't can't I'm we'll", "e-mail user@example.com https://example.com/a?b=c", "C++ C# .NET node.js",
      std::string(150, 'a'), "word " + std::string(101, 'b') + " end", std::string(100, 'c'),
      "Pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism",
      "\xff\xfe invalid utf8 \xc3", "tab\tseparated\tvalues\n", "   leading and trailing   ",
  };
}

// Text as Python reads it back from the file we write: invalid UTF-8 is not valid Python input,
// so those cases go to HF with the bytes replaced as a lossy decode would (our tokenizer reads
// such bytes as U+FFFD, which clean_text drops, so the same ids follow).
std::string valid_utf8(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    int len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (int k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (ok) {
      out.append(s, i, len);
      i += len;
    } else {
      out += "\xef\xbf\xbd";
      ++i;
    }
  }
  return out;
}

struct Input {
  std::string name, text;
  std::vector<int32_t> hf_ids, hf_cls_ids;
  std::string hf_decoded;
};

struct Reference {
  bool ok = false;
  std::string tokenizer_json;
  std::vector<Input> inputs;
};

Reference build_reference() {
  Reference ref;
  const std::string dir = testing::model_path(testing::kMiniLmDir);
  const std::string corpora = testing::data_path("corpora");
  const std::string python = testing::venv_python();
  if (dir.empty() || corpora.empty() || python.empty()) return ref;
  ref.tokenizer_json = dir + "/tokenizer.json";
  const std::string scratch = testing::scratch_dir("wordpiece_ref");
  std::vector<std::string> paths;
  for (auto& t : testing::write_parity_texts(scratch, edge_cases(), corpora, valid_utf8)) {
    paths.push_back(t.path);
    ref.inputs.push_back({std::move(t.name), std::move(t.text), {}, {}, ""});
  }
  std::string command = testing::shell_quote(python) + " " +
                        testing::shell_quote(std::string(LLMC_SOURCE_DIR) + "/scripts/wordpiece_reference.py") +
                        " " + testing::shell_quote(ref.tokenizer_json);
  const std::string sweep = scratch + "/unicode_sweep.txt";  // written by the script
  command += " --sweep " + testing::shell_quote(sweep);
  for (const std::string& p : paths) command.append(" ").append(testing::shell_quote(p));  // GCC 12: no + chain
  const testing::CommandResult r = testing::run_shell(command);
  if (r.exit_code != 0) {
    FAIL("wordpiece_reference.py failed (" << r.exit_code << "): " << r.errors);
    return ref;
  }
  paths.push_back(sweep);
  ref.inputs.push_back({"unicode sweep", read_text(sweep), {}, {}, ""});
  for (size_t i = 0; i < paths.size(); ++i) {
    ref.inputs[i].hf_ids = ids_of(read_text(paths[i] + ".ids"));
    ref.inputs[i].hf_cls_ids = ids_of(read_text(paths[i] + ".cls.ids"));
    ref.inputs[i].hf_decoded = read_text(paths[i] + ".decoded");
  }
  ref.ok = true;
  return ref;
}

const Reference& reference() {
  static const Reference ref = build_reference();
  return ref;
}

std::shared_ptr<const Tokenizer> minilm_tokenizer(const Reference& ref) {
  auto tok = load_tokenizer(ref.tokenizer_json);
  INFO(tok.status().message());
  REQUIRE(tok.is_ok());
  REQUIRE((*tok)->kind() == "wordpiece");
  return *tok;
}

// "" when equal, else where and how the ids first differ.
std::string difference(const Tokenizer& tok, const std::vector<int32_t>& ours, const std::vector<int32_t>& theirs) {
  if (ours == theirs) return "";
  size_t i = 0;
  while (i < ours.size() && i < theirs.size() && ours[i] == theirs[i]) ++i;
  auto show = [&](const std::vector<int32_t>& ids) {
    std::string s;
    for (size_t k = i >= 3 ? i - 3 : 0; k < std::min(ids.size(), i + 4); ++k)
      s += std::to_string(ids[k]) + "'" + tok.decode_piece(-1, ids[k]) + "' ";
    return s;
  };
  return "lengths " + std::to_string(ours.size()) + " vs " + std::to_string(theirs.size()) + ", first difference at " +
         std::to_string(i) + ": ours " + show(ours) + "| HF " + show(theirs);
}

}  // namespace

TEST_CASE("WordPiece ids equal Hugging Face tokenizers' on all-MiniLM-L6-v2", "[wordpiece]") {
  const Reference& ref = reference();
  if (!ref.ok) return;
  auto tok = minilm_tokenizer(ref);
  CHECK(tok->vocab_size() == 30522);
  CHECK(tok->bos_id() == 101);
  CHECK(tok->eos_id() == 102);
  CHECK(tok->adds_bos());
  size_t compared = 0, equal_inputs = 0;
  for (const Input& in : ref.inputs) {
    INFO(in.name);
    const std::string plain = difference(*tok, tok->encode(in.text, false, false), in.hf_ids);
    const std::string wrapped = difference(*tok, tok->encode(in.text, true, true), in.hf_cls_ids);
    CHECK(plain == "");
    CHECK(wrapped == "");
    // HF drops every special token before its decoder runs; decode_piece sees only the previous
    // token, so after a special token inside the text ("[UNK] word") the spacing may differ.
    const bool inner_special = std::any_of(in.hf_ids.begin(), in.hf_ids.end(), [](int32_t id) {
      return id == 0 || (id >= 100 && id <= 103);  // [PAD] [UNK] [CLS] [SEP] [MASK]
    });
    if (!inner_special) CHECK(tok->decode(in.hf_cls_ids) == in.hf_decoded);
    compared += in.hf_ids.size() + in.hf_cls_ids.size();
    equal_inputs += plain.empty() && wrapped.empty();
  }
  WARN("WordPiece parity: " << equal_inputs << " of " << ref.inputs.size() << " inputs equal, " << compared
                            << " HF ids compared");
}

TEST_CASE("WordPiece serialization round trips through model metadata", "[wordpiece]") {
  const Reference& ref = reference();
  if (!ref.ok) return;
  auto tok = minilm_tokenizer(ref);
  auto back = WordPieceTokenizer::deserialize(tok->serialize(), "round trip");
  INFO(back.status().message());
  REQUIRE(back.is_ok());
  CHECK((*back)->serialize() == tok->serialize());
  Model m;
  attach_tokenizer(m, *tok);
  auto from_model = model_tokenizer(m, "model", "");
  REQUIRE(from_model.is_ok());
  CHECK((*from_model)->kind() == "wordpiece");
  for (const Input& in : ref.inputs) {
    INFO(in.name);
    CHECK((*back)->encode(in.text, true, true) == in.hf_cls_ids);
    CHECK((*from_model)->encode(in.text, false, false) == in.hf_ids);
  }
}

TEST_CASE("WordPiece from vocab.txt and tokenizer_config.json gives the tokenizer.json ids", "[wordpiece]") {
  const Reference& ref = reference();
  if (!ref.ok) return;
  const std::string dir = std::filesystem::path(ref.tokenizer_json).parent_path().string();
  auto tok = load_tokenizer(dir + "/vocab.txt");
  INFO(tok.status().message());
  REQUIRE(tok.is_ok());
  CHECK((*tok)->kind() == "wordpiece");
  CHECK((*tok)->vocab_size() == 30522);
  size_t equal_inputs = 0;
  for (const Input& in : ref.inputs) {
    INFO(in.name);
    const bool plain = (*tok)->encode(in.text, false, false) == in.hf_ids;
    const bool wrapped = (*tok)->encode(in.text, (*tok)->adds_bos(), (*tok)->adds_eos()) == in.hf_cls_ids;
    CHECK(plain);
    CHECK(wrapped);
    equal_inputs += plain && wrapped;
  }
  WARN("WordPiece from vocab.txt: " << equal_inputs << " of " << ref.inputs.size() << " inputs equal HF's");
}

TEST_CASE("tokenize wraps text in [CLS] ... [SEP] with a BERT tokenizer", "[wordpiece]") {
  const std::string dir = testing::model_path(testing::kMiniLmDir);
  if (dir.empty()) return;
  for (const char* file : {"/tokenizer.json", "/vocab.txt"}) {
    auto r = testing::run_cli("tokenize " + testing::shell_quote(dir + file) + " --text 'Hello, world!'");
    INFO(r.errors);
    CHECK(r.exit_code == 0);
    CHECK(r.output == "101 7592 1010 2088 999 102\n");
    auto bare = testing::run_cli("tokenize " + testing::shell_quote(dir + file) + " --text 'Hello, world!' --no-bos");
    CHECK(bare.output == "7592 1010 2088 999\n");
  }
}

TEST_CASE("WordPiece deserialize turns hostile bytes into errors", "[wordpiece]") {
  WordPieceVocabulary v;
  v.tokens = {"[UNK]", "[CLS]", "[SEP]", "hello", "##lo", "hel", "world", "."};
  v.unk_id = 0;
  v.bos_id = 1;
  v.eos_id = 2;
  v.add_bos = true;
  v.added = {{1, true}, {2, true}};
  auto tok = WordPieceTokenizer::create(v, "test");
  REQUIRE(tok.is_ok());
  // Longest match first: "hellolo" is hello + ##lo; "helo" has no piece for its "o", so is [UNK].
  CHECK((*tok)->encode("Hello hellolo helo world.", true, true) == std::vector<int32_t>{1, 3, 3, 4, 0, 6, 7, 2});
  CHECK((*tok)->decode({1, 3, 3, 4, 6, 7, 2}) == "hello hellolo world.");
  const std::string good = (*tok)->serialize();
  REQUIRE(WordPieceTokenizer::deserialize(good, "x").is_ok());
  // Every truncation, and random byte flips: an error or a working tokenizer, never a crash.
  for (size_t n = 0; n < good.size(); ++n) {
    auto r = WordPieceTokenizer::deserialize(good.substr(0, n), "cut");
    CHECK_FALSE(r.is_ok());
  }
  std::mt19937 rng(7);
  int errors = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string bad = good;
    for (int k = 0; k < 1 + trial % 4; ++k) bad[rng() % bad.size()] = static_cast<char>(rng());
    auto r = WordPieceTokenizer::deserialize(bad, "flipped");
    if (!r.is_ok()) {
      ++errors;
      CHECK(r.status().message().find("flipped") != std::string::npos);
    } else {
      (void)(*r)->encode("hello world [CLS] x", true, true);
    }
  }
  CHECK(errors > 0);
  CHECK_FALSE(WordPieceTokenizer::deserialize(good + "x", "trailing").is_ok());
  CHECK_FALSE(WordPieceTokenizer::deserialize("llmc.wordpiece\x01\x7f\x02##\xff\xff\xff\xff\x7f", "huge").is_ok());
}

TEST_CASE("WordPiece tokenizer.json problems are errors naming the file", "[wordpiece]") {
  const std::string base =
      R"({"normalizer": {"type": "BertNormalizer", "lowercase": true}, "pre_tokenizer": {"type": "BertPreTokenizer"},
          "model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0, "a": 1}}})";
  REQUIRE(WordPieceTokenizer::from_tokenizer_json(base, "t.json").is_ok());
  auto expect_error = [](const std::string& json, const std::string& what) {
    auto r = WordPieceTokenizer::from_tokenizer_json(json, "t.json");
    REQUIRE_FALSE(r.is_ok());
    INFO(r.status().message());
    CHECK(r.status().message().find("t.json") != std::string::npos);
    CHECK(r.status().message().find(what) != std::string::npos);
  };
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = base;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  expect_error(with(R"("unk_token": "[UNK]")", R"("unk_token": "[NOPE]")"), "[NOPE]");
  expect_error(with(R"("type": "BertPreTokenizer")", R"("type": "Whitespace")"), "Whitespace");
  expect_error(with(R"("type": "BertNormalizer")", R"("type": "NFKC")"), "NFKC");
  expect_error(with(R"("a": 1)", R"("a": 5)"), "no token with id 1");
  expect_error(with(R"("a": 1)", R"("a": 1, "b": 1)"), "gives id 1");
  expect_error(with(R"("a": 1)", R"("a": 99999999)"), "far past");
  expect_error(base.substr(0, 60), "t.json");
}

}  // namespace llmc
