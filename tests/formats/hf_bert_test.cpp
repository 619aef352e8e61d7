// BERT import on all-MiniLM-L6-v2: the ONNX `llmcompress convert` writes, run by our runtime (via
// `llmcompress run`) and by ONNX Runtime, against a float64 numpy forward pass of the checkpoint
// (scripts/bert_reference.py, no torch) on a padded batch, so attention_mask matters; sentence
// similarities (mean pooling, as the model's 1_Pooling config says) as the model's users see them.
// Bad BERT configs: one error line naming the key or the value, exit 2, nothing written.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "formats/model_loader.h"
#include "formats/npy.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

namespace {

const char* const kSentences[] = {
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A much longer sentence about the weather in Paris, so that the others need padding here.",
};

// An .npy file's values as double (float32, float64 or int64).
std::vector<double> values(const std::string& path, std::vector<int64_t>* dims = nullptr) {
  auto t = read_npy(path, "x");
  INFO(path << ": " << t.status().message());
  REQUIRE(t.is_ok());
  if (dims) *dims = t->dims();
  std::vector<double> v(static_cast<size_t>(t->numel()));
  for (size_t i = 0; i < v.size(); ++i) {
    switch (t->dtype()) {
      case DType::kF32: v[i] = t->data_as<float>()[i]; break;
      case DType::kF64: v[i] = t->data_as<double>()[i]; break;
      case DType::kI64: v[i] = static_cast<double>(t->data_as<int64_t>()[i]); break;
      default: FAIL(path << " has an unexpected dtype");
    }
  }
  return v;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

// Mean of each sentence's hidden states over its real (mask 1) tokens.
std::vector<std::vector<double>> mean_pool(const std::vector<double>& h, const std::vector<double>& mask, int64_t batch,
                                           int64_t seq, int64_t hidden) {
  std::vector<std::vector<double>> out(static_cast<size_t>(batch), std::vector<double>(static_cast<size_t>(hidden)));
  for (int64_t b = 0; b < batch; ++b) {
    double n = 0;
    for (int64_t s = 0; s < seq; ++s) {
      if (mask[b * seq + s] == 0) continue;
      n += 1;
      for (int64_t d = 0; d < hidden; ++d) out[b][d] += h[(b * seq + s) * hidden + d];
    }
    for (double& x : out[b]) x /= n;
  }
  return out;
}

double cosine(const std::vector<double>& a, const std::vector<double>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) ab += a[i] * b[i], aa += a[i] * a[i], bb += b[i] * b[i];
  return ab / std::sqrt(aa * bb);
}

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

void expect_cli_error(const std::string& model, const std::string& what, const std::string& dir) {
  const std::string out = dir + "/out.onnx";
  auto r = run_cli("convert " + shell_quote(model) + " -o " + shell_quote(out));
  INFO(r.errors);
  CHECK(r.exit_code == 2);
  CHECK(r.errors.find(what) != std::string::npos);
  CHECK(std::count(r.errors.begin(), r.errors.end(), '\n') == 1);
  CHECK_FALSE(file_exists(out));
}

}  // namespace

TEST_CASE("BERT import of all-MiniLM-L6-v2 matches a float64 reference in our runtime and ONNX Runtime",
          "[bert]") {
  const std::string model = model_path(kMiniLmDir);
  const std::string py = venv_python();
  if (model.empty() || py.empty()) return;
  const std::string dir = scratch_dir("hf_bert");
  std::string sentences;
  for (const char* s : kSentences) sentences += std::string(s) + "\n";
  write(dir + "/sentences.txt", sentences);
  auto ref_run = run_shell(shell_quote(py) + " " + shell_quote(std::string(LLMC_SOURCE_DIR) + "/scripts/bert_reference.py") +
                           " " + shell_quote(model) + " " + shell_quote(dir + "/sentences.txt") + " " +
                           shell_quote(dir + "/ref"));
  INFO(ref_run.errors);
  REQUIRE(ref_run.exit_code == 0);

  const std::string onnx = dir + "/minilm.onnx";
  auto conv = run_cli("convert " + shell_quote(model) + " -o " + shell_quote(onnx));
  INFO(conv.errors);
  REQUIRE(conv.exit_code == 0);
  std::string inputs;
  for (const char* name : {"input_ids", "attention_mask", "token_type_ids"})
    inputs += std::string(" --input ") + name + "=" + shell_quote(dir + "/ref/" + name + ".npy");
  auto ours_run = run_cli("run " + shell_quote(onnx) + inputs + " --output-dir " + shell_quote(dir + "/ours"));
  INFO(ours_run.errors);
  REQUIRE(ours_run.exit_code == 0);
  auto ort_run = run_shell(shell_quote(py) + " " + shell_quote(std::string(LLMC_SOURCE_DIR) + "/scripts/ort_run.py") +
                           " " + shell_quote(onnx) + inputs + " --output-dir " + shell_quote(dir + "/ort"));
  INFO(ort_run.errors);
  REQUIRE(ort_run.exit_code == 0);

  std::vector<int64_t> dims;
  const auto ref = values(dir + "/ref/last_hidden_state.npy", &dims);
  REQUIRE(dims.size() == 3);
  const int64_t batch = dims[0], seq = dims[1], hidden = dims[2];
  CHECK(batch == static_cast<int64_t>(std::size(kSentences)));
  CHECK(hidden == 384);
  const auto ours = values(dir + "/ours/last_hidden_state.npy");
  const auto ort = values(dir + "/ort/last_hidden_state.npy");
  const double ours_err = max_abs_diff(ours, ref), ort_err = max_abs_diff(ort, ref), ours_ort = max_abs_diff(ours, ort);
  WARN("MiniLM last_hidden_state max |error| vs float64: ours " << ours_err << ", ONNX Runtime " << ort_err
                                                                 << ", ours vs ONNX Runtime " << ours_ort);
  CHECK(ours_err <= 1e-4);
  CHECK(ort_err <= 1e-4);
  CHECK(ours_ort <= 1e-4);

  // The ids the reference took from HF's tokenizer are the ones ours gives (the converted model
  // carries it).
  const auto ids = values(dir + "/ref/input_ids.npy");
  const auto mask = values(dir + "/ref/attention_mask.npy");
  auto tok = load_tokenizer(onnx);
  INFO(tok.status().message());
  REQUIRE(tok.is_ok());
  for (int64_t b = 0; b < batch; ++b) {
    const auto mine = (*tok)->encode(kSentences[b], true, true);
    std::vector<int32_t> theirs;
    for (int64_t s = 0; s < seq; ++s)
      if (mask[b * seq + s] != 0) theirs.push_back(static_cast<int32_t>(ids[b * seq + s]));
    CHECK(mine == theirs);
  }

  const auto pooled_ours = mean_pool(ours, mask, batch, seq, hidden);
  const auto pooled_ref = mean_pool(ref, mask, batch, seq, hidden);
  const std::pair<int, int> pairs[] = {{0, 1}, {0, 2}, {1, 2}};
  double sim[3];
  for (int p = 0; p < 3; ++p) {
    const auto [a, b] = pairs[p];
    sim[p] = cosine(pooled_ours[a], pooled_ours[b]);
    const double want = cosine(pooled_ref[a], pooled_ref[b]);
    WARN("cosine('" << kSentences[a] << "', '" << kSentences[b] << "'): ours " << sim[p] << ", float64 " << want);
    CHECK(std::fabs(sim[p] - want) <= 1e-4);
  }
  CHECK(sim[0] > sim[1]);
  CHECK(sim[0] > sim[2]);
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

TEST_CASE("bad BERT configs: one line naming the key or value, exit 2, nothing written", "[bert]") {
  const std::string dir = scratch_dir("hf_bert_bad");
  namespace fs = std::filesystem;
  const std::string config =
      R"({"architectures": ["BertModel"], "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
          "num_attention_heads": 2, "vocab_size": 4, "max_position_embeddings": 16, "hidden_act": "ACT"})";
  auto with_act = [&](const std::string& act) {
    std::string s = config;
    return s.replace(s.find("ACT"), 3, act);
  };
  fs::create_directories(dir + "/nokey");
  write(dir + "/nokey/config.json", R"({"architectures": ["BertModel"], "hidden_size": 8, "num_hidden_layers": 1})");
  write(dir + "/nokey/model.safetensors", std::string(8, '\0'));
  expect_cli_error(dir + "/nokey", "'intermediate_size' is missing", dir);
  fs::create_directories(dir + "/relu");
  write(dir + "/relu/config.json", with_act("relu"));
  expect_cli_error(dir + "/relu", "hidden_act 'relu'", dir);
  fs::create_directories(dir + "/position");
  std::string relative = with_act("gelu");
  relative.insert(relative.size() - 1, R"(, "position_embedding_type": "relative_key")");
  write(dir + "/position/config.json", relative);
  expect_cli_error(dir + "/position", "'relative_key'", dir);
  // A good config whose checkpoint lacks a tensor: the error names it.
  fs::create_directories(dir + "/tensor");
  write(dir + "/tensor/config.json", with_act("gelu"));
  write(dir + "/tensor/model.safetensors", std::string("\x02\0\0\0\0\0\0\0{}", 10));
  expect_cli_error(dir + "/tensor", "'embeddings.word_embeddings.weight' is missing", dir);
}
