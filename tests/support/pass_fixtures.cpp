#include "tests/support/pass_fixtures.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>

#include "formats/llama2c_import.h"
#include "formats/npy.h"
#include "formats/onnx_format.h"
#include "formats/llama2c_tokenizer.h"
#include "passes/registry.h"
#include "runtime/eval.h"
#include "tests/support/test_data.h"

namespace llmc::testing {

bool load_stories(StoriesFixture& s, int64_t samples, int64_t seq_len) {
  const std::string bin = data_path("llama2c/stories260K.bin");
  const std::string tok = data_path("llama2c/tok512.bin");
  const std::string text = data_path("corpora/tinystories_val_prefix.txt");
  if (bin.empty() || tok.empty() || text.empty()) return false;
  auto m = import_llama2c(bin);
  REQUIRE(m.is_ok());
  s.model = std::move(m).value();
  auto t = Llama2cTokenizer::from_file(tok);
  REQUIRE(t.is_ok());
  std::string prefix = read_text(text).substr(0, 60000);
  prefix = prefix.substr(0, prefix.rfind('\n'));
  const std::vector<int32_t> all = encode_lines(*t, prefix);
  REQUIRE(all.size() > 8192);
  s.eval_tokens.assign(all.begin(), all.begin() + 4096);
  calib::CalibrationOptions o;
  o.num_samples = samples;
  o.seq_len = seq_len;
  auto set = calib::calibration_from_tokens(s.model, std::vector<int32_t>(all.begin() + 4096, all.end()), o, "tinystories");
  REQUIRE(set.is_ok());
  s.calib = std::move(set).value();
  return true;
}

Result<PassResult> run_named_pass(const std::string& name, Model& m, const PassOptions& o,
                                  const std::vector<Feeds>* calibration) {
  PassContext ctx;
  ctx.model_path = "test.onnx";
  ctx.calibration = calibration;
  ctx.threads = 2;
  return run_pass(name, m, o, ctx);
}

std::map<std::string, std::vector<double>> activation_sumsq(const Model& m, const std::vector<Feeds>& samples,
                                                            const std::vector<std::string>& taps) {
  auto session = rt::Session::create(std::make_shared<const Model>(m), {2});
  REQUIRE(session.is_ok());
  std::map<std::string, std::vector<double>> sumsq;
  for (const auto& feeds : samples) {
    auto outs = (*session)->run(feeds, taps);
    REQUIRE(outs.is_ok());
    for (size_t i = 0; i < taps.size(); ++i) {
      const rt::Value& v = (*outs)[i];
      const int64_t K = v.shape().back(), rows = v.numel() / K;
      auto& acc = sumsq[taps[i]];
      acc.resize(K, 0.0);
      for (int64_t t = 0; t < rows; ++t)
        for (int64_t k = 0; k < K; ++k) acc[k] += double(v.data<float>()[t * K + k]) * v.data<float>()[t * K + k];
    }
  }
  return sumsq;
}

int64_t parameter_count(const Model& m) {
  int64_t n = 0;
  for (const Tensor& t : m.graph.initializers) n += t.numel();
  return n;
}

const Node& node_named(const Graph& g, const std::string& name) {
  for (const Node& n : g.nodes)
    if (n.name == name) return n;
  FAIL("no node " << name);
  return g.nodes[0];
}

double max_abs_gap(const rt::Value& a, const rt::Value& b) {
  REQUIRE(a.shape() == b.shape());
  double worst = 0;
  for (int64_t i = 0; i < a.numel(); ++i) worst = std::max(worst, double(std::fabs(a.data<float>()[i] - b.data<float>()[i])));
  return worst;
}

std::unique_ptr<rt::Decoder> decoder_for(const Model& m) {
  auto s = rt::Session::create(std::make_shared<const Model>(m), {2});
  REQUIRE(s.is_ok());
  auto d = rt::Decoder::create(std::shared_ptr<rt::Session>(std::move(s).value()));
  REQUIRE(d.is_ok());
  return std::move(d).value();
}

double perplexity_of(const Model& m, const std::vector<int32_t>& tokens) {
  auto d = decoder_for(m);
  rt::WindowOptions w;
  w.ctx = 256;
  auto r = rt::perplexity(*d, tokens, w);
  REQUIRE(r.is_ok());
  return r->perplexity();
}

double ort_relative_gap(const Model& m, const std::string& label) {
  const std::string py = venv_python();
  if (py.empty()) return -1;
  const std::string dir = scratch_dir(label);
  REQUIRE(write_onnx(m, dir + "/m.onnx").is_ok());
  const std::vector<int32_t> tokens{1, 403, 407, 261, 378, 300, 281, 400, 290, 330, 350, 270, 411, 262, 299, 500, 17, 42};
  auto ours = decoder_for(m)->forward_fresh(tokens);
  REQUIRE(ours.is_ok());
  std::vector<int64_t> ids(tokens.begin(), tokens.end());
  REQUIRE(write_npy(dir + "/ids.npy", Tensor::from_vector("ids", DType::kI64, {1, int64_t(ids.size())}, ids)).is_ok());
  REQUIRE(write_npy(dir + "/past.npy", Tensor::zeros("p", DType::kF32, {1, 4, 0, 8})).is_ok());
  std::string cmd = shell_quote(py) + " " + shell_quote(std::string(LLMC_SOURCE_DIR) + "/scripts/ort_run.py") + " " +
                    shell_quote(dir + "/m.onnx") + " --output-dir " + shell_quote(dir + "/out") + " --input input_ids=" +
                    shell_quote(dir + "/ids.npy");
  for (int l = 0; l < 5; ++l)
    for (const char* kv : {"key", "value"})
      cmd += " --input past_key_values." + std::to_string(l) + "." + kv + "=" + shell_quote(dir + "/past.npy");
  auto r = run_shell(cmd);
  INFO(r.errors);
  REQUIRE(r.exit_code == 0);
  auto theirs = read_npy(dir + "/out/logits.npy", "logits");
  REQUIRE(theirs.is_ok());
  REQUIRE(theirs->numel() == ours->numel());
  return relative_gap(ours->data<float>(), theirs->data_as<float>(), ours->numel());
}

double relative_gap(const float* ours, const float* ref, int64_t n) {
  double worst = 0, peak = 0;
  for (int64_t i = 0; i < n; ++i) {
    worst = std::max(worst, double(std::fabs(ours[i] - ref[i])));
    peak = std::max(peak, double(std::fabs(ref[i])));
  }
  INFO("max |ours - ref| = " << worst << ", max |ref| = " << peak);
  REQUIRE(peak > 0);
  return worst / peak;
}

}  // namespace llmc::testing
