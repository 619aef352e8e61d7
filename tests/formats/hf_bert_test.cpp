// BERT import (BertModel). Accuracy on all-MiniLM-L6-v2 (ours and ONNX Runtime vs a float64
// forward, fp32/fp16/bf16 weights, sentence similarities) is the ctest script
// scripts/check_bert_import.py; here: the graph's shape (standard ONNX ops only, HF's input and
// output names, the WordPiece tokenizer attached), `inspect`, and bad checkpoints giving one
// line naming the file, exit 2, nothing written.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "formats/model_loader.h"
#include "ir/metadata_keys.h"
#include "ir/graph_utils.h"
#include "tests/support/safetensors_files.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

namespace {

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// A BertModel config of width 8 (2 heads), 1 layer, vocab 4, 16 positions; `extra` is spliced in.
std::string config(const std::string& extra = R"("hidden_act": "gelu")") {
  return R"({"architectures": ["BertModel"], "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
             "num_attention_heads": 2, "vocab_size": 4, "max_position_embeddings": 16, )" +
         extra + "}";
}

// A checkpoint directory `dir`/`name` with config.json and a model.safetensors of one tensor
// described by `header_entry` ("name": {...}) over `data`.
std::string checkpoint(const std::string& dir, const std::string& name, const std::string& config_text,
                       const std::string& header_entry, const std::string& data) {
  const std::string d = dir + "/" + name;
  std::filesystem::create_directories(d);
  write(d + "/config.json", config_text);
  write(d + "/model.safetensors", safetensors_bytes("{" + header_entry + "}", data));
  return d;
}

}  // namespace

TEST_CASE("BERT import of all-MiniLM-L6-v2: standard ops, HF names, WordPiece tokenizer", "[bert][hf]") {
  const std::string dir = model_path(kMiniLmDir);
  if (dir.empty()) return;
  auto m = load_model(dir);
  INFO(m.status().message());
  REQUIRE(m.is_ok());
  CHECK(verify(m->graph).is_ok());
  std::vector<std::string> inputs;
  for (const auto& v : m->graph.inputs) {
    inputs.push_back(v.name);
    CHECK(v.type.elem == DType::kI64);
  }
  CHECK(inputs == std::vector<std::string>{"input_ids", "attention_mask", "token_type_ids"});
  REQUIRE(m->graph.outputs.size() == 1);
  CHECK(m->graph.outputs[0].name == "last_hidden_state");
  CHECK(m->graph.outputs[0].type.dims.back().value == 384);
  for (const auto& n : m->graph.nodes) {
    INFO(n.name);
    CHECK(n.domain.empty());
  }
  // Checkpoint weights keep their names (constants are named after their node, "/encoder/..."):
  // 3 embeddings, their LayerNorm's 2, 16 per layer.
  const auto weights = std::count_if(m->graph.initializers.begin(), m->graph.initializers.end(),
                                     [](const auto& t) { return t.name()[0] != '/'; });
  CHECK(weights == 3 + 2 + 6 * 16);
  CHECK(m->find_metadata(tokenizer_metadata_key("wordpiece")) != nullptr);
  CHECK(*m->find_metadata(kMetaMaxSequenceLength) == "512");
}

TEST_CASE("a BERT checkpoint with vocab.txt only carries that WordPiece tokenizer", "[bert][hf]") {
  const std::string minilm = model_path(kMiniLmDir);
  if (minilm.empty()) return;
  namespace fs = std::filesystem;
  const std::string dir = scratch_dir("hf_bert_vocab") + "/model";
  fs::create_directories(dir);
  for (const char* f : {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"})
    fs::create_symlink(minilm + "/" + f, dir + "/" + f);
  auto m = load_model(dir);
  INFO(m.status().message());
  REQUIRE(m.is_ok());
  auto tok = model_tokenizer(*m, dir, "");
  REQUIRE(tok.is_ok());
  CHECK((*tok)->kind() == "wordpiece");
  CHECK((*tok)->encode("Hello, world!", true, true) == std::vector<int32_t>{101, 7592, 1010, 2088, 999, 102});
}

TEST_CASE("inspect shows a BERT checkpoint's WordPiece tokenizer", "[bert]") {
  const std::string model = model_path(kMiniLmDir);
  if (model.empty()) return;
  auto r = run_cli("inspect " + shell_quote(model));
  INFO(r.errors);
  REQUIRE(r.exit_code == 0);
  INFO(r.output);
  CHECK(r.output.find("tokenizer: wordpiece, 30522 tokens, bos 101, eos 102, adds bos") != std::string::npos);
}

TEST_CASE("bad BERT configs: one line naming config.json and the key or value, exit 2, nothing written",
          "[bert][hf]") {
  const std::string dir = scratch_dir("hf_bert_bad_config");
  const std::string empty = R"("x": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]})";
  for (const char* key : {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                          "vocab_size", "max_position_embeddings"}) {
    std::string c = config();
    const size_t at = c.find(std::string("\"") + key + "\"");
    c.erase(at, c.find(',', at) + 1 - at);
    INFO(key);
    expect_convert_rejects(checkpoint(dir, key, c, empty, ""), std::string("config.json: '") + key + "' is missing",
                           dir);
  }
  expect_convert_rejects(checkpoint(dir, "relu", config(R"("hidden_act": "relu")"), empty, ""), "hidden_act 'relu'",
                         dir);
  expect_convert_rejects(
      checkpoint(dir, "position", config(R"("position_embedding_type": "relative_key")"), empty, ""),
      "'relative_key'", dir);
  std::string heads = config();
  heads.replace(heads.find("\"num_attention_heads\": 2"), 24, "\"num_attention_heads\": 3");
  expect_convert_rejects(checkpoint(dir, "heads", heads, empty, ""), "3 heads do not divide hidden_size 8", dir);
}

TEST_CASE("bad BERT weights: missing, wrong dtype or shape: one line naming the file, exit 2, nothing written",
          "[bert][hf]") {
  const std::string dir = scratch_dir("hf_bert_bad_weights");
  const std::string name = "\"embeddings.word_embeddings.weight\": ";
  expect_convert_rejects(
      checkpoint(dir, "missing", config(), R"("other": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]})",
                 std::string(4, '\0')),
      "config.json: tensor 'embeddings.word_embeddings.weight' is missing", dir);
  expect_convert_rejects(
      checkpoint(dir, "int", config(), name + R"({"dtype": "I32", "shape": [4, 8], "data_offsets": [0, 128]})",
                 std::string(128, '\0')),
      "model.safetensors: tensor 'embeddings.word_embeddings.weight' is i32", dir);
  expect_convert_rejects(
      checkpoint(dir, "shape", config(), name + R"({"dtype": "F32", "shape": [8, 4], "data_offsets": [0, 128]})",
                 std::string(128, '\0')),
      "model.safetensors: tensor 'embeddings.word_embeddings.weight' has shape [8,4], expected [4,8]", dir);
  // float16 by its header, but with float32's byte count.
  expect_convert_rejects(
      checkpoint(dir, "bytes", config(), name + R"({"dtype": "F16", "shape": [4, 8], "data_offsets": [0, 128]})",
                 std::string(128, '\0')),
      "model.safetensors", dir);
  // A task model's checkpoint ("bert." names, bfloat16) is read through its prefix: the next
  // tensor it lacks is named with it.
  expect_convert_rejects(checkpoint(dir, "prefixed", config(),
                                    R"("bert.embeddings.word_embeddings.weight": {"dtype": "BF16", "shape": [4, 8], )"
                                    R"("data_offsets": [0, 64]})",
                                    std::string(64, '\0')),
                         "tensor 'bert.embeddings.token_type_embeddings.weight' is missing", dir);
}
