// Hugging Face checkpoint import on real weights: SmolLM2's GGUF written as a sharded bfloat16
// Hugging Face checkpoint (scripts/gguf_to_hf.py: q/k rows back in rotate-half order,
// tokenizer.json from `tokenizers`) must import to the weights of the GGUF import (up to
// bfloat16 rounding, which a wrong q/k permutation would far exceed) and the same tokenizer ids.
// Bad checkpoints: one error naming the file and what is wrong, exit 2, nothing written.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "formats/model_loader.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

namespace {

std::map<std::string, const Tensor*> by_name(const Model& m) {
  std::map<std::string, const Tensor*> out;
  for (const auto& t : m.graph.initializers) out[t.name()] = &t;
  return out;
}

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }


}  // namespace

TEST_CASE("Hugging Face checkpoint of SmolLM2 imports to the GGUF import's weights and tokenizer",
          "[hf][smollm2]") {
  const std::string gguf = model_path(kSmolLm2Gguf);
  const std::string py = venv_python();
  if (gguf.empty() || py.empty()) return;
  const std::string dir = scratch_dir("hf_smollm2");
  auto conv = run_shell(shell_quote(py) + " " + shell_quote(std::string(LLMC_SOURCE_DIR) + "/scripts/gguf_to_hf.py") +
                        " " + shell_quote(gguf) + " " + shell_quote(dir) + " --dtype BF16 --shards 2");
  INFO(conv.errors);
  REQUIRE(conv.exit_code == 0);

  auto hf = load_model(dir);
  INFO(hf.status().message());
  REQUIRE(hf.is_ok());
  auto ref = load_model(gguf);
  REQUIRE(ref.is_ok());
  const auto got = by_name(*hf), want = by_name(*ref);
  REQUIRE(got.size() == want.size());
  size_t compared = 0;
  for (const auto& [name, w] : want) {
    REQUIRE(got.count(name) == 1);
    const Tensor* g = got.at(name);
    REQUIRE(g->dims() == w->dims());
    REQUIRE(g->dtype() == w->dtype());
    if (w->dtype() != DType::kF32) {  // the graph's own constants
      CHECK(std::equal(g->data(), g->data() + g->nbytes(), w->data()));
      continue;
    }
    const float* a = g->data_as<float>();
    const float* b = w->data_as<float>();
    double worst = 0;
    for (int64_t i = 0; i < w->numel(); ++i) {
      // bfloat16 keeps 8 significant bits: relative error at most 2^-9 of the larger magnitude.
      const double err = std::fabs(a[i] - b[i]) - std::ldexp(std::fabs(b[i]), -8) - 1e-30;
      worst = std::max(worst, err);
    }
    INFO(name);
    CHECK(worst <= 0);
    ++compared;
  }
  CHECK(compared > 270);

  auto tok_hf = model_tokenizer(*hf, dir, "");
  auto tok_gguf = model_tokenizer(*ref, gguf, "");
  REQUIRE(tok_hf.is_ok());
  REQUIRE(tok_gguf.is_ok());
  const std::string text = "Once upon a time, in 2024, a <|im_start|>robot said: \"héllo   wörld!\"\n\n  42";
  CHECK((*tok_hf)->encode(text, false, false) == (*tok_gguf)->encode(text, false, false));
}

TEST_CASE("bad Hugging Face checkpoints: one line naming the file, exit 2, nothing written", "[hf]") {
  const std::string dir = scratch_dir("hf_bad");
  namespace fs = std::filesystem;
  const std::string ok_config =
      R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 8, "intermediate_size": 16,
          "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 4, "max_position_embeddings": 16})";
  // config.json without a needed key.
  fs::create_directories(dir + "/nokey");
  write(dir + "/nokey/config.json", R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 8})");
  write(dir + "/nokey/model.safetensors", std::string(8, '\0'));
  expect_convert_rejects(dir + "/nokey", "'num_hidden_layers' is missing", dir);
  // An architecture this tool does not build, refused by name.
  fs::create_directories(dir + "/arch");
  write(dir + "/arch/config.json", R"({"architectures": ["FalconForCausalLM"]})");
  expect_convert_rejects(dir + "/arch", "'FalconForCausalLM'", dir);
  // Not JSON.
  fs::create_directories(dir + "/json");
  write(dir + "/json/config.json", "{\"architectures\": [\"LlamaForCausalLM\"],");
  expect_convert_rejects(dir + "/json", "config.json", dir);
  // A shard the index names is missing.
  fs::create_directories(dir + "/shard");
  write(dir + "/shard/config.json", ok_config);
  write(dir + "/shard/model.safetensors.index.json",
        R"({"weight_map": {"model.norm.weight": "model-00001-of-00002.safetensors"}})");
  expect_convert_rejects(dir + "/shard", "model-00001-of-00002.safetensors", dir);
  // Safetensors header length past the end of the file.
  fs::create_directories(dir + "/header");
  write(dir + "/header/config.json", ok_config);
  std::string st(8, '\0');
  st[0] = '\x40';
  st[1] = '\x42';
  write(dir + "/header/model.safetensors", st + "{}");
  expect_convert_rejects(dir + "/header", "model.safetensors", dir);
  // A tensor of the wrong dtype (int32 embedding).
  fs::create_directories(dir + "/dtype");
  write(dir + "/dtype/config.json", ok_config);
  std::string header = R"({"model.embed_tokens.weight": {"dtype": "I32", "shape": [4, 8], "data_offsets": [0, 128]}})";
  header += std::string((8 - header.size() % 8) % 8, ' ');
  std::string len(8, '\0');
  for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  write(dir + "/dtype/model.safetensors", len + header + std::string(128, '\0'));
  expect_convert_rejects(dir + "/dtype", "'model.embed_tokens.weight' is i32", dir);
}
