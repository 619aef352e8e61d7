// GPT2LMHeadModel import. No real GPT-2 is available offline, so scripts/make_gpt2_checkpoint.py
// writes small seeded checkpoints (float32 / float16 / bfloat16, with and without the
// "transformer." prefix, gelu_new and exact gelu) and scripts/check_gpt2_import.py runs each
// converted model in our runtime and ONNX Runtime (prefill, then one KV-cache step) against
// scripts/gpt2_reference.py's float64 forward of the same rounded weights: logits and presents
// within 1e-4 (about 4e-6 measured; gelu_new in place of exact gelu alone moves the logits 2e-3).
// Bad checkpoints: one error naming the file and what is wrong, exit 2, nothing written.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>

#include "formats/model_loader.h"
#include "ir/graph_utils.h"
#include "ir/metadata_keys.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

namespace {

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

std::string script(const std::string& name) { return shell_quote(std::string(LLMC_SOURCE_DIR) + "/scripts/" + name); }


// A safetensors file holding float32 zeros of the given shapes.
std::string safetensors_of(const std::vector<std::pair<std::string, std::vector<int64_t>>>& tensors) {
  std::string header = "{";
  int64_t offset = 0;
  for (const auto& [name, dims] : tensors) {
    int64_t n = 1;
    std::string shape;
    for (int64_t d : dims) {
      n *= d;
      shape += (shape.empty() ? "" : ", ") + std::to_string(d);
    }
    if (header.size() > 1) header += ", ";
    header += "\"" + name + "\": {\"dtype\": \"F32\", \"shape\": [" + shape + "], \"data_offsets\": [" +
              std::to_string(offset) + ", " + std::to_string(offset + 4 * n) + "]}";
    offset += 4 * n;
  }
  header += "}";
  header += std::string((8 - header.size() % 8) % 8, ' ');
  std::string len(8, '\0');
  for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return len + header + std::string(static_cast<size_t>(offset), '\0');
}

}  // namespace

TEST_CASE("GPT-2 checkpoints (f32, f16, bf16) run within 1e-4 of float64 in our runtime and ONNX Runtime",
          "[gpt2][hf]") {
  const std::string py = venv_python();
  if (py.empty()) return;
  auto r = run_shell(shell_quote(py) + " " + script("check_gpt2_import.py") + " " + shell_quote(LLMC_BINARY));
  INFO(r.output);
  INFO(r.errors);
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("bf16_exact_gelu") != std::string::npos);
}

TEST_CASE("GPT-2 import: graph, metadata and tokenizer", "[gpt2][hf]") {
  const std::string py = venv_python();
  if (py.empty()) return;
  const std::string dir = scratch_dir("gpt2_import");
  auto made = run_shell(shell_quote(py) + " " + script("make_gpt2_checkpoint.py") + " " + shell_quote(dir) +
                        " --dtype F16 --no-prefix --layers 3");
  INFO(made.errors);
  REQUIRE(made.exit_code == 0);
  auto m = load_model(dir);
  INFO(m.status().message());
  REQUIRE(m.is_ok());
  CHECK(verify(m->graph).is_ok());
  REQUIRE(m->find_metadata(kMetaSource));
  CHECK(*m->find_metadata(kMetaSource) == "Hugging Face GPT2LMHeadModel");
  REQUIRE(m->find_metadata(kMetaMaxSequenceLength));
  CHECK(*m->find_metadata(kMetaMaxSequenceLength) == "128");
  REQUIRE(m->graph.inputs.size() == 1 + 2 * 3);
  REQUIRE(m->graph.outputs.size() == 1 + 2 * 3);
  CHECK(m->graph.inputs[0].name == "input_ids");
  CHECK(m->graph.inputs[6].name == "past_key_values.2.value");
  CHECK(m->graph.outputs[0].name == "logits");
  CHECK(m->graph.outputs[5].name == "present.2.key");
  std::map<std::string, int> ops;
  for (const auto& n : m->graph.nodes) ++ops[n.op_type];
  CHECK(ops["LayerNormalization"] == 2 * 3 + 1);
  CHECK(ops["Tanh"] == 3);
  CHECK(ops["Softmax"] == 3);
  // Every weight widened to float32; the attn.bias / attn.masked_bias buffers left out.
  for (const auto& t : m->graph.initializers) {
    INFO(t.name());
    CHECK(t.name().find(".attn.bias") == std::string::npos);
    CHECK(t.name().find("masked_bias") == std::string::npos);
    CHECK((t.dtype() == DType::kF32 || t.dtype() == DType::kI64));
  }
  auto tok = model_tokenizer(*m, dir, "");
  REQUIRE(tok.is_ok());
  CHECK((*tok)->encode("Once upon a time", false, false).size() < 16);

  auto gen = run_cli("run " + shell_quote(dir) + " --prompt 'The robot' --tokens 5");
  INFO(gen.errors);
  CHECK(gen.exit_code == 0);
  CHECK(gen.output.rfind("The robot", 0) == 0);
}

TEST_CASE("bad GPT-2 checkpoints: one line naming the file and the problem, exit 2, nothing written",
          "[gpt2][hf]") {
  const std::string dir = scratch_dir("gpt2_bad");
  namespace fs = std::filesystem;
  auto config = [](const std::string& extra) {
    return R"({"architectures": ["GPT2LMHeadModel"], "n_layer": 1, "n_head": 2, "vocab_size": 4, )" + extra + "}";
  };
  const std::string ok = config(R"("n_embd": 8, "n_positions": 16)");
  auto make = [&](const std::string& name, const std::string& cfg) {
    fs::create_directories(dir + "/" + name);
    write(dir + "/" + name + "/config.json", cfg);
    write(dir + "/" + name + "/model.safetensors", safetensors_of({{"transformer.wte.weight", {4, 8}}}));
    return dir + "/" + name;
  };
  expect_convert_rejects(make("no_embd", config(R"("n_positions": 16)")), "'n_embd' is missing", dir);
  expect_convert_rejects(make("relu", config(R"("n_embd": 8, "n_positions": 16, "activation_function": "relu")")),
                   "activation_function 'relu'", dir);
  expect_convert_rejects(make("heads", config(R"("n_embd": 9, "n_positions": 16)")), "n_head 2 does not divide n_embd 9",
                   dir);
  expect_convert_rejects(make("positions", config(R"("n_embd": 8, "n_positions": 100000000)")), "'n_positions'", dir);
  expect_convert_rejects(make("cross", config(R"("n_embd": 8, "n_ctx": 16, "add_cross_attention": true)")),
                   "add_cross_attention", dir);
  // The config is fine; the weights stop after wte.
  expect_convert_rejects(make("tensor", ok), "model.safetensors: tensor 'transformer.wpe.weight' is missing", dir);
  // wpe shorter than n_positions.
  const std::string shape = make("shape", ok);
  write(shape + "/model.safetensors",
        safetensors_of({{"transformer.wte.weight", {4, 8}}, {"transformer.wpe.weight", {8, 8}}}));
  expect_convert_rejects(shape, "'transformer.wpe.weight' has shape [8,8], expected [16,8]", dir);
}
