// The float64 llama2.c reference must reproduce Karpathy's run.c greedy generations byte for
// byte; that is what lets the rest of the suite use it as ground truth for stories260K.
#include <catch2/catch.hpp>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "formats/llama2c_checkpoint.h"
#include "formats/llama2c_tokenizer.h"
#include "tests/support/llama2c_reference.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

namespace {

// run.c safe_printf(): a single-byte piece that is neither printable nor whitespace is
// dropped; printf("%s") also stops at an embedded NUL.
void safe_append(std::string& out, const std::string& piece) {
  std::string p = piece.substr(0, piece.find('\0'));
  if (p.empty()) return;
  if (p.size() == 1) {
    const unsigned char b = static_cast<unsigned char>(p[0]);
    if (!(std::isprint(b) || std::isspace(b))) return;
  }
  out += p;
}

struct Generation {
  std::string text;
  std::vector<int> tokens;       // every token fed, starting with BOS
  double min_margin = 1e300;     // smallest top-1 minus top-2 logit among sampled steps
  int min_margin_pos = -1;
};

// run.c generate() with temperature 0: feed prompt_tokens[0]; while pos < steps, force the
// next prompt token during the prompt, else take the argmax (first index on ties, as run.c's
// sample_argmax); stop on BOS; print decode(token, next); finally print "\n".
Generation generate(Llama2cReference& ref, const Llama2cTokenizer& tok,
                    const std::vector<int>& prompt_tokens, int steps) {
  Generation g;
  const int num_prompt = static_cast<int>(prompt_tokens.size());
  int token = prompt_tokens[0];
  g.tokens.push_back(token);
  int pos = 0;
  while (pos < steps) {
    std::vector<double> logits = ref.forward(token, pos);
    int next;
    if (pos < num_prompt - 1) {
      next = prompt_tokens[pos + 1];
    } else {
      next = 0;
      for (int i = 1; i < static_cast<int>(logits.size()); ++i)
        if (logits[i] > logits[next]) next = i;
      double second = -1e300;
      for (int i = 0; i < static_cast<int>(logits.size()); ++i)
        if (i != next && logits[i] > second) second = logits[i];
      if (logits[next] - second < g.min_margin) {
        g.min_margin = logits[next] - second;
        g.min_margin_pos = pos;
      }
    }
    ++pos;
    if (next == 1) break;
    safe_append(g.text, tok.decode_piece(token, next));
    token = next;
    g.tokens.push_back(token);
  }
  g.text += "\n";
  return g;
}

void require_matches_golden(const Generation& g, const std::string& golden) {
  size_t diff = 0;
  while (diff < g.text.size() && diff < golden.size() && g.text[diff] == golden[diff]) ++diff;
  INFO("first differing byte " << diff << " (generated " << g.text.size() << " bytes, golden "
       << golden.size() << "); smallest greedy margin " << g.min_margin << " at pos "
       << g.min_margin_pos);
  CHECK(g.text == golden);
}

}  // namespace

TEST_CASE("float64 llama2.c reference reproduces run.c greedy output from BOS",
          "[llama2c][reference]") {
  const std::string model = data_path("llama2c/stories260K.bin");
  const std::string tokenizer = data_path("llama2c/tok512.bin");
  const std::string golden = data_path("llama2c/golden/stories260K_t0_n256.txt");
  if (model.empty() || tokenizer.empty() || golden.empty()) return;
  auto ck = read_llama2c_checkpoint(model);
  REQUIRE(ck.is_ok());
  auto tok = Llama2cTokenizer::from_file(tokenizer);
  REQUIRE(tok.is_ok());
  Llama2cReference ref(ck.value());
  // run.c encodes the empty prompt as just BOS.
  Generation g = generate(ref, tok.value(), {Llama2cTokenizer::kBos}, 256);
  require_matches_golden(g, read_text(golden));
}

TEST_CASE("float64 llama2.c reference reproduces run.c greedy output with a prompt",
          "[llama2c][reference]") {
  const std::string model = data_path("llama2c/stories260K.bin");
  const std::string tokenizer = data_path("llama2c/tok512.bin");
  const std::string golden =
      data_path("llama2c/golden/stories260K_t0_n64_prompt_once_upon_a_time.txt");
  if (model.empty() || tokenizer.empty() || golden.empty()) return;
  auto ck = read_llama2c_checkpoint(model);
  REQUIRE(ck.is_ok());
  auto tok = Llama2cTokenizer::from_file(tokenizer);
  REQUIRE(tok.is_ok());
  const std::vector<int32_t> encoded = tok->encode("Once upon a time", true, false);
  const std::vector<int> prompt(encoded.begin(), encoded.end());
  REQUIRE(prompt.size() >= 2);
  REQUIRE(prompt[0] == Llama2cTokenizer::kBos);
  Llama2cReference ref(ck.value());
  Generation g = generate(ref, tok.value(), prompt, 64);
  require_matches_golden(g, read_text(golden));
}

TEST_CASE("llama2.c reference: batch helper equals incremental forward - misuse throws",
          "[llama2c][reference]") {
  const std::string model = data_path("llama2c/stories260K.bin");
  if (model.empty()) return;
  auto ck = read_llama2c_checkpoint(model);
  REQUIRE(ck.is_ok());
  const std::vector<int> tokens = {1, 400, 300, 7, 511};
  const auto batch = logits_for_sequence(ck.value(), tokens);
  REQUIRE(batch.size() == tokens.size());
  Llama2cReference ref(ck.value());
  for (size_t pos = 0; pos < tokens.size(); ++pos) {
    const auto logits = ref.forward(tokens[pos], static_cast<int>(pos));
    REQUIRE(logits.size() == 512);
    CHECK(logits == batch[pos]);  // same code path, so bitwise equal
  }
  CHECK(ref.positions() == 5);
  CHECK_THROWS_AS(ref.forward(1, 7), std::invalid_argument);    // skips positions
  CHECK_THROWS_AS(ref.forward(512, 5), std::invalid_argument);  // token out of range
  ref.reset();
  CHECK(ref.positions() == 0);
  CHECK(ref.forward(tokens[0], 0) == batch[0]);  // reset really empties the cache
}

TEST_CASE("llama2.c checkpoint reader rejects truncated, empty and directory inputs",
          "[llama2c][reference]") {
  const std::string model = data_path("llama2c/stories260K.bin");
  if (model.empty()) return;
  const std::string dir = scratch_dir("llama2c_bad");

  const std::string truncated = dir + "/truncated.bin";
  {
    std::string bytes = read_text(model);
    REQUIRE(bytes.size() > 4);
    std::ofstream(truncated, std::ios::binary).write(bytes.data(), bytes.size() - 4);
  }
  auto r = read_llama2c_checkpoint(truncated);
  REQUIRE_FALSE(r.is_ok());
  CHECK_THAT(r.status().message(), Catch::Contains(truncated) && Catch::Contains("implies"));

  const std::string empty = dir + "/empty.bin";
  std::ofstream(empty, std::ios::binary).close();
  r = read_llama2c_checkpoint(empty);
  REQUIRE_FALSE(r.is_ok());
  CHECK_THAT(r.status().message(), Catch::Contains(empty));

  r = read_llama2c_checkpoint(dir);
  REQUIRE_FALSE(r.is_ok());
  CHECK_THAT(r.status().message(), Catch::Contains(dir));
}
