#include "formats/llama2c_tokenizer.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "tests/support/test_data.h"

namespace llmc {
namespace {

using testing::data_path;
using testing::read_text;
using testing::scratch_dir;

// A line-by-line port of llama2.c run.c's encode(): quadratic, C-string based, no cleverness.
// The fast encoder must reproduce it exactly.
std::vector<int32_t> naive_encode(const Llama2cTokenizer& t, const std::string& text, bool bos,
                                  bool eos) {
  std::map<std::string, int> vocab;  // stands in for run.c's sorted_vocab + bsearch
  for (int i = 0; i < t.vocab_size(); ++i) vocab.emplace(t.piece(i), i);
  auto str_lookup = [&](const std::string& s) {
    auto it = vocab.find(s);
    return it == vocab.end() ? -1 : it->second;
  };
  std::vector<int32_t> tokens;
  if (bos) tokens.push_back(1);
  if (text[0] != '\0') tokens.push_back(str_lookup(" "));
  std::string str_buffer;
  for (const char* c = text.c_str(); *c != '\0'; c++) {
    if ((*c & 0xC0) != 0x80) str_buffer.clear();
    str_buffer += *c;
    if ((*(c + 1) & 0xC0) == 0x80 && str_buffer.size() < 4) continue;
    int id = str_lookup(str_buffer);
    if (id != -1) {
      tokens.push_back(id);
    } else {
      for (unsigned char b : str_buffer) tokens.push_back(b + 3);
    }
    str_buffer.clear();
  }
  while (true) {
    float best_score = -1e10;
    int best_id = -1;
    int best_idx = -1;
    for (int i = 0; i + 1 < static_cast<int>(tokens.size()); i++) {
      int id = str_lookup(t.piece(tokens[i]) + t.piece(tokens[i + 1]));
      if (id != -1 && t.score(id) > best_score) {
        best_score = t.score(id);
        best_id = id;
        best_idx = i;
      }
    }
    if (best_idx == -1) break;
    tokens[best_idx] = best_id;
    tokens.erase(tokens.begin() + best_idx + 1);
  }
  if (eos) tokens.push_back(2);
  return tokens;
}

Result<Llama2cTokenizer> load() {
  std::string path = data_path("llama2c/tok512.bin");
  if (path.empty()) return invalid_input("no data");
  return Llama2cTokenizer::from_file(path);
}

std::vector<std::string> first_lines(const std::string& text, size_t n) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (lines.size() < n && std::getline(in, line)) lines.push_back(line);
  return lines;
}

std::string write_scratch(const std::string& name, const std::string& bytes) {
  std::string path = scratch_dir("tok") + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

TEST_CASE("tok512.bin parses: 512 tokens, specials and byte pieces where llama2.c puts them") {
  auto tok = load();
  if (!tok.is_ok()) return;
  CHECK(tok->vocab_size() == 512);
  CHECK(tok->piece(1) == "\n<s>\n");
  CHECK(tok->piece(2) == "\n</s>\n");
  CHECK(tok->piece(3) == "<0x00>");
  CHECK(tok->piece(258) == "<0xFF>");
  CHECK(tok->serialized() == read_text(data_path("llama2c/tok512.bin")));
  // Re-parsing the serialized bytes gives the same vocabulary.
  auto again = Llama2cTokenizer::from_bytes(tok->serialized(), "metadata");
  REQUIRE(again.is_ok());
  for (int i = 0; i < 512; ++i) CHECK((again->piece(i) == tok->piece(i) &&
                                       again->score(i) == tok->score(i)));
}

TEST_CASE("fast encode matches run.c's quadratic encode on real text") {
  auto tok = load();
  if (!tok.is_ok()) return;
  for (const char* corpus : {"corpora/tinyshakespeare.txt", "corpora/tinystories_val_prefix.txt"}) {
    const std::string path = data_path(corpus);
    if (path.empty()) return;
    const std::string text = read_text(path);
    int compared = 0;
    for (const std::string& line : first_lines(text, 300)) {
      INFO(corpus << " line: " << line);
      REQUIRE(tok->encode(line, true, false) == naive_encode(*tok, line, true, false));
      REQUIRE(tok->encode(line, false, true) == naive_encode(*tok, line, false, true));
      ++compared;
    }
    CHECK(compared == 300);
    // A multi-line chunk in one call (newlines fall back to bytes, merges span many words).
    const std::string chunk = text.substr(0, 4000);
    CHECK(tok->encode(chunk, true, true) == naive_encode(*tok, chunk, true, true));
  }
}

TEST_CASE("fast encode matches run.c on UTF-8, byte fallback and whitespace edge cases") {
  auto tok = load();
  if (!tok.is_ok()) return;
  const std::vector<std::string> cases = {
      "", " ", "  ", "a", "  leading spaces", "trailing spaces   ", " both ",
      "caf\xc3\xa9 na\xc3\xafve d\xc3\xa9j\xc3\xa0 vu",             // 2-byte code points
      "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xe2\x84\xa2 \xe2\x80\x8a",  // 3-byte (incl. vocab ™)
      "emoji \xf0\x9f\x98\x80\xf0\x9f\x8e\x89 done",                 // 4-byte
      "\xff\xfe raw bytes \x01\x7f",                                 // bytes not in vocab
      "\x80\x80\x80\x80\x80\x80 stray continuations",                // > 4 continuation bytes
      "cut \xe2\x82", "\xe2", "lead\xc3", "\t\ttabs\tand\nnewlines\r\n",
      "<0x41> looks like a byte piece", "\n<s>\n literal control text",
      "Once upon a time, there was a little girl named Lily.",
      // Equal-score ties: "ll", "oo", "pp" are merges, so "lll" could merge either pair.
      "lll", "llll", "lllll", "ooo", "pppp", " shhh... hello ooo balllll", "coool",
  };
  for (const std::string& s : cases) {
    INFO("text: " << s);
    CHECK(tok->encode(s, true, true) == naive_encode(*tok, s, true, true));
    CHECK(tok->encode(s, false, false) == naive_encode(*tok, s, false, false));
  }
  CHECK(tok->encode("", true, false) == std::vector<int32_t>{1});
  CHECK(tok->encode("", false, false).empty());

  // Property: seeded random strings over an alphabet that makes merges collide and tie.
  const std::vector<std::string> alphabet = {"a", "e", "t", "h", " ", " the", "s", "l", "o",
                                             "p", "\xc3\xa9", "\xf0\x9f\x98\x80", "\x80",
                                             "n", "d", ".", "\n"};
  std::mt19937 rng(1234);
  for (int iter = 0; iter < 300; ++iter) {
    std::string s;
    const int len = static_cast<int>(rng() % 60);
    for (int i = 0; i < len; ++i) s += alphabet[rng() % alphabet.size()];
    INFO("random text: " << s);
    REQUIRE(tok->encode(s, iter % 2 == 0, false) == naive_encode(*tok, s, iter % 2 == 0, false));
  }
}

TEST_CASE("encode/decode: BOS first, leading space dropped after BOS, round trips") {
  auto tok = load();
  if (!tok.is_ok()) return;
  auto ids = tok->encode("Once upon a time", true, false);
  REQUIRE(ids.size() >= 2);
  CHECK(ids[0] == Llama2cTokenizer::kBos);
  CHECK(ids.size() < 16);  // merged into words, not bytes
  CHECK(tok->piece(ids[1])[0] == ' ');  // the dummy prefix merged into the first word
  CHECK(tok->decode(ids) == "Once upon a time");
  CHECK(tok->decode_piece(Llama2cTokenizer::kBos, ids[1]) == tok->piece(ids[1]).substr(1));
  CHECK(tok->decode_piece(ids[1], ids[1]) == tok->piece(ids[1]));
  // Without BOS the dummy space stays; EOS adds no text.
  CHECK(tok->decode(tok->encode("Once upon a time", false, true)) == " Once upon a time");
  // Byte pieces decode to the raw byte.
  CHECK(tok->decode_piece(0, 3 + 0xE2) == "\xe2");
  CHECK(tok->decode(tok->encode("\xff\xfe\xf0\x9f\x98\x80", true, true)) ==
        "\xff\xfe\xf0\x9f\x98\x80");

  int round_trips = 0;
  for (const char* corpus : {"corpora/tinyshakespeare.txt", "corpora/tinystories_val_prefix.txt"}) {
    const std::string path = data_path(corpus);
    if (path.empty()) return;
    for (const std::string& line : first_lines(read_text(path), 300)) {
      if (line.empty()) continue;
      INFO("line: " << line);
      REQUIRE(tok->decode(tok->encode(line, true, false)) == line);
      ++round_trips;
    }
  }
  CHECK(round_trips > 350);
}

TEST_CASE("encode_lines: one BOS per non-empty line, no EOS") {
  auto tok = load();
  if (!tok.is_ok()) return;
  const std::string text = "First line.\n\nSecond line\r\n\r\n  \nlast without newline";
  auto ids = encode_lines(*tok, text);
  CHECK(std::count(ids.begin(), ids.end(), Llama2cTokenizer::kBos) == 4);
  CHECK(std::count(ids.begin(), ids.end(), Llama2cTokenizer::kEos) == 0);
  std::vector<int32_t> expected;
  for (const char* line : {"First line.", "Second line", "  ", "last without newline"}) {
    auto part = tok->encode(line, true, false);
    expected.insert(expected.end(), part.begin(), part.end());
  }
  CHECK(ids == expected);
  CHECK(encode_lines(*tok, "").empty());
  CHECK(encode_lines(*tok, "\n\r\n\n").empty());

  const std::string path = data_path("corpora/tinyshakespeare.txt");
  if (path.empty()) return;
  std::string head;
  int non_empty = 0;
  for (const std::string& line : first_lines(read_text(path), 500)) {
    head += line + "\n";
    non_empty += !line.empty();
  }
  auto corpus_ids = encode_lines(*tok, head);
  CHECK(std::count(corpus_ids.begin(), corpus_ids.end(), Llama2cTokenizer::kBos) == non_empty);
}

TEST_CASE("bad tokenizer files are rejected with the path in the message") {
  const std::string dir = scratch_dir("tok_bad");
  auto expect_error = [](const Result<Llama2cTokenizer>& r, const std::string& path,
                         const std::string& what) {
    REQUIRE_FALSE(r.is_ok());
    INFO(r.status().message());
    CHECK(r.status().message().find(path) != std::string::npos);
    CHECK(r.status().message().find(what) != std::string::npos);
  };
  const std::string empty = write_scratch("empty.bin", "");
  expect_error(Llama2cTokenizer::from_file(empty), empty, "empty");
  expect_error(Llama2cTokenizer::from_file(dir), dir, "directory");
  expect_error(Llama2cTokenizer::from_file(dir + "/missing.bin"), dir + "/missing.bin", "");

  std::string neg("\x07\0\0\0" "\0\0\0\0" "\xfb\xff\xff\xff", 12);  // length -5
  expect_error(Llama2cTokenizer::from_bytes(neg, "neg.bin"), "neg.bin", "negative length");
  expect_error(Llama2cTokenizer::from_bytes("\x07\0", "short.bin"), "short.bin", "truncated");
  std::string zero_max("\0\0\0\0", 4);
  expect_error(Llama2cTokenizer::from_bytes(zero_max, "zero.bin"), "zero.bin", "max_token_length");

  const std::string real = data_path("llama2c/tok512.bin");
  if (real.empty()) return;
  const std::string bytes = read_text(real);
  // 100 bytes end exactly after token 6: well-formed records, far too few tokens.
  const std::string cut100 = write_scratch("cut100.bin", bytes.substr(0, 100));
  expect_error(Llama2cTokenizer::from_file(cut100), cut100, "truncated");
  const std::string cut101 = write_scratch("cut101.bin", bytes.substr(0, 101));
  expect_error(Llama2cTokenizer::from_file(cut101), cut101, "truncated");
  const std::string cut_mid = write_scratch("cut_mid.bin", bytes.substr(0, bytes.size() - 2));
  expect_error(Llama2cTokenizer::from_file(cut_mid), cut_mid, "token 511");
}

TEST_CASE("the fast encoder handles a whole 800 KB corpus in one call") {
  auto tok = load();
  if (!tok.is_ok()) return;
  const std::string path = data_path("corpora/tinystories_val_prefix.txt");
  if (path.empty()) return;
  const std::string text = read_text(path);
  REQUIRE(text.size() > 700000);
  auto ids = tok->encode(text, true, false);
  CHECK(ids.size() > 100000);
  CHECK(ids.size() < 800000);
  CHECK(tok->decode(ids) == text);
  auto line_ids = encode_lines(*tok, text);
  CHECK(line_ids.size() > 100000);
  CHECK(line_ids.size() < 800000);
}

}  // namespace
}  // namespace llmc
