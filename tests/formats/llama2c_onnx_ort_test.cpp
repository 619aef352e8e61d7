// The imported stories260K ONNX graph, run by ONNX Runtime (scripts/ort_run.py), must give the
// logits of a plain float64 llama2.c forward pass: full prompt, then one KV-cache step.
#include <catch2/catch.hpp>
#include <cmath>

#include "formats/llama2c_checkpoint.h"
#include "formats/llama2c_tokenizer.h"
#include "formats/npy.h"
#include "tests/support/llama2c_reference.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

namespace {

void write_i64_ids(const std::string& path, const std::vector<int>& ids) {
  std::vector<int64_t> v(ids.begin(), ids.end());
  auto t = Tensor::from_vector("input_ids", DType::kI64, {1, static_cast<int64_t>(v.size())}, v);
  REQUIRE(write_npy(path, t).is_ok());
}

std::string ort_run(const std::string& py, const std::string& model,
                    const std::vector<std::string>& inputs, const std::string& out_dir) {
  std::string cmd = shell_quote(py) + " " + shell_quote(std::string(LLMC_SOURCE_DIR) + "/scripts/ort_run.py") +
                    " " + shell_quote(model) + " --output-dir " + shell_quote(out_dir);
  for (const auto& in : inputs) cmd += " --input " + shell_quote(in);
  auto r = run_shell(cmd);
  INFO(r.errors);
  REQUIRE(r.exit_code == 0);
  return out_dir;
}

// Max |ort - ref| over positions [first, first+n) of logits [1, n, vocab].
double max_abs_diff(const Tensor& logits, const std::vector<std::vector<double>>& ref, size_t first) {
  REQUIRE(logits.dtype() == DType::kF32);
  const int64_t n = logits.dims()[1], vocab = logits.dims()[2];
  const float* p = logits.data_as<float>();
  double worst = 0;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t v = 0; v < vocab; ++v)
      worst = std::max(worst, std::fabs(p[t * vocab + v] - ref[first + t][v]));
  return worst;
}

}  // namespace

TEST_CASE("stories260K imported to ONNX matches a float64 llama2.c forward in ONNX Runtime",
          "[formats][llama2c][ort]") {
  const std::string bin = data_path("llama2c/stories260K.bin");
  const std::string tok_path = data_path("llama2c/tok512.bin");
  const std::string text_path = data_path("corpora/tinystories_val_prefix.txt");
  if (bin.empty() || tok_path.empty() || text_path.empty()) return;
  const std::string py = venv_python();
  if (py.empty()) return;

  const std::string dir = scratch_dir("ort_llama");
  const std::string model = dir + "/stories260K.onnx";
  auto conv = run_cli("convert " + shell_quote(bin) + " --tokenizer " + shell_quote(tok_path) +
                      " -o " + shell_quote(model));
  INFO(conv.errors);
  REQUIRE(conv.exit_code == 0);

  auto tok = Llama2cTokenizer::from_file(tok_path);
  REQUIRE(tok.is_ok());
  const std::string text = read_text(text_path).substr(0, 2000);
  std::vector<int32_t> ids32 = tok->encode(text.substr(0, text.find('\n')), true, false);
  REQUIRE(ids32.size() > 20);
  ids32.resize(std::min<size_t>(ids32.size(), 48));
  std::vector<int> prompt(ids32.begin(), ids32.end() - 1);
  const int next = ids32.back();

  auto ck = read_llama2c_checkpoint(bin);
  REQUIRE(ck.is_ok());
  std::vector<int> all = prompt;
  all.push_back(next);
  const auto ref = logits_for_sequence(ck.value(), all);
  const auto& c = ck->config;

  // Prefill: empty past.
  std::vector<std::string> inputs;
  write_i64_ids(dir + "/ids.npy", prompt);
  inputs.push_back("input_ids=" + dir + "/ids.npy");
  const std::string empty_past = dir + "/past_empty.npy";
  REQUIRE(write_npy(empty_past, Tensor::zeros("p", DType::kF32, {1, c.n_kv_heads, 0, c.head_size()})).is_ok());
  for (int l = 0; l < c.n_layers; ++l)
    for (const char* kv : {"key", "value"})
      inputs.push_back("past_key_values." + std::to_string(l) + "." + kv + "=" + empty_past);
  const std::string out1 = dir + "/out1";
  ort_run(py, model, inputs, out1);
  auto logits = read_npy(out1 + "/logits.npy", "logits");
  REQUIRE(logits.is_ok());
  REQUIRE(logits->dims() == std::vector<int64_t>{1, static_cast<int64_t>(prompt.size()), c.vocab_size});
  const double prefill_err = max_abs_diff(logits.value(), ref, 0);
  INFO("prefill max |ORT - float64| = " << prefill_err);
  CHECK(prefill_err < 1e-3);

  // One decode step feeding the presents back as the past.
  inputs.clear();
  write_i64_ids(dir + "/next.npy", {next});
  inputs.push_back("input_ids=" + dir + "/next.npy");
  for (int l = 0; l < c.n_layers; ++l)
    for (const char* kv : {"key", "value"}) {
      const std::string name = std::to_string(l) + "." + kv;
      auto present = read_npy(out1 + "/present." + name + ".npy", "present");
      REQUIRE(present.is_ok());
      CHECK(present->dims() == std::vector<int64_t>{1, c.n_kv_heads, static_cast<int64_t>(prompt.size()), c.head_size()});
      inputs.push_back("past_key_values." + name + "=" + out1 + "/present." + name + ".npy");
    }
  const std::string out2 = dir + "/out2";
  ort_run(py, model, inputs, out2);
  auto step = read_npy(out2 + "/logits.npy", "logits");
  REQUIRE(step.is_ok());
  REQUIRE(step->dims() == std::vector<int64_t>{1, 1, c.vocab_size});
  const double step_err = max_abs_diff(step.value(), ref, prompt.size());
  INFO("KV-cache step max |ORT - float64| = " << step_err);
  CHECK(step_err < 1e-3);
}
