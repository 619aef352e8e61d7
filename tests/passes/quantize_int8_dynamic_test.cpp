// quantize-int8-dynamic: structure of the rewritten graph, weight error bounds, options,
// bad input, idempotence. (Numerical agreement with float and ONNX Runtime: end-to-end tests.)
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <random>

#include "formats/llama2c_import.h"
#include "ir/graph_utils.h"
#include "passes/quant_utils.h"
#include "passes/registry.h"
#include "runtime/session.h"
#include "tests/support/pass_fixtures.h"
#include "tests/support/session_models.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

namespace {
Tensor random_weight(const std::string& name, int64_t K, int64_t N, uint64_t seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::normal_distribution<float> d(0.f, 0.05f);
  std::vector<float> v(static_cast<size_t>(K * N));
  for (auto& x : v) x = d(rng);
  return Tensor::from_vector(name, DType::kF32, {K, N}, v);
}

std::map<std::string, int> op_counts(const Graph& g) {
  std::map<std::string, int> c;
  for (const auto& n : g.nodes) ++c[n.domain.empty() ? n.op_type : n.domain + "::" + n.op_type];
  return c;
}

Result<PassResult> run_pass(Model& m, const PassOptions& o) { return run_named_pass("quantize-int8-dynamic", m, o); }

Model stories() {
  const std::string bin = data_path("llama2c/stories260K.bin");
  if (bin.empty()) return {};
  auto m = import_llama2c(bin);
  REQUIRE(m.is_ok());
  return std::move(m).value();
}
}  // namespace

TEST_CASE("per-channel int8 weights stay within half a step of the float weights", "[passes][quantize]") {
  for (bool symmetric : {true, false})
    for (bool per_tensor : {false, true}) {
      const Tensor w = random_weight("w", 63, 17, 1);
      auto q = quantize_weight(w, symmetric, per_tensor, "w");
      REQUIRE(q.is_ok());
      for (int64_t k = 0; k < 63; ++k)
        for (int64_t n = 0; n < 17; ++n) {
          const float s = q->scales.data_as<float>()[per_tensor ? 0 : n];
          REQUIRE(std::fabs(dequantize_weight(q.value(), k, n) - w.data_as<float>()[k * 17 + n]) <= s * 0.5f + 1e-7f);
        }
    }
  std::vector<float> bad(12, 0.1f);
  bad[5] = NAN;
  auto q = quantize_weight(Tensor::from_vector("w_nan", DType::kF32, {3, 4}, bad), true, false, "w");
  REQUIRE(!q.is_ok());
  CHECK(q.status().message().find("w_nan") != std::string::npos);
  CHECK(q.status().message().find("NaN") != std::string::npos);
}

TEST_CASE("quantize-int8-dynamic rewrites every constant-weight MatMul of stories260K", "[passes][quantize][llama2c]") {
  Model m = stories();
  if (m.graph.nodes.empty()) return;
  const auto before = op_counts(m.graph);
  auto r = run_pass(m, {});
  REQUIRE(r.is_ok());
  CHECK(r->changed);
  REQUIRE(verify(m.graph).is_ok());
  const auto after = op_counts(m.graph);
  // 5 layers x 7 projections + lm_head; the two attention MatMuls per layer stay float.
  CHECK(after.at("MatMulInteger") == 36);
  CHECK(after.at("MatMul") == 10);
  CHECK(before.at("MatMul") == 46);
  // One DynamicQuantizeLinear per distinct activation: q/k/v share one, gate/up share one.
  CHECK(after.at("DynamicQuantizeLinear") == 5 * 4 + 1);
  CHECK(r->bytes_after < 0.3 * r->bytes_before);
  int quantized_weights = 0;
  for (const auto& t : m.graph.initializers) {
    const std::string& nm = t.name();
    CHECK(!(nm.find("_proj.weight") != std::string::npos && nm.size() > 7 && nm.substr(nm.size() - 7) == ".weight"));
    if (nm.find("_proj.weight_quantized") != std::string::npos) {
      CHECK(t.dtype() == DType::kI8);
      ++quantized_weights;
    }
  }
  CHECK(quantized_weights == 35);  // the float projection weights are gone, int8 ones in place
  // Running it again finds nothing left to do.
  auto again = run_pass(m, {});
  REQUIRE(again.is_ok());
  CHECK(!again->changed);
}

TEST_CASE("quantize-int8-dynamic options: exclude, per-tensor, uint8, contrib, op-types", "[passes][quantize][llama2c]") {
  Model base = stories();
  if (base.graph.nodes.empty()) return;
  {
    Model m = base;
    auto r = run_pass(m, {{"exclude", "/lm_head/MatMul,.*down_proj.*,nothing_matches_this"}});
    REQUIRE(r.is_ok());
    int skipped = 0;
    for (const auto& d : r->decisions) skipped += d.reason == "excluded by --exclude";
    CHECK(skipped == 6);
    REQUIRE(r->warnings.size() == 1);
    CHECK(r->warnings[0].find("nothing_matches_this") != std::string::npos);
  }
  {
    Model m = base;
    auto r = run_pass(m, {{"weight-type", "uint8"}, {"per-tensor", "1"}});
    REQUIRE(r.is_ok());
    for (const auto& t : m.graph.initializers)
      if (t.name().find("_proj.weight_scale") != std::string::npos) CHECK(t.dims().empty());
    for (const auto& n : m.graph.nodes)
      if (n.op_type == "MatMulInteger") CHECK(n.inputs.size() == 4);  // weight zero point given
  }
  {
    Model m = base;
    auto r = run_pass(m, {{"format", "contrib"}, {"op-types", "MatMul"}});
    REQUIRE(r.is_ok());
    CHECK(op_counts(m.graph).at("com.microsoft::DynamicQuantizeMatMul") == 36);
    CHECK(m.opset("com.microsoft") == 1);
    CHECK(op_counts(m.graph).count("Cast") == 0);  // embedding not selected
  }
  Model m = base;
  CHECK(!run_pass(m, {{"weight-type", "int4"}}).is_ok());
  CHECK(!run_pass(m, {{"op-types", "Conv"}}).is_ok());
  CHECK(!run_pass(m, {{"exclude", "(unclosed"}}).is_ok());
}

// Gemm (selected with op-types): weight [K, N] or transposed, bias an initializer or passed
// through an Identity (as PyTorch exports Hugging Face GPT-2's Conv1D layers); beta != 1 and
// transA stay float. The int8 graph's output stays within int8 error of the float one.
TEST_CASE("quantize-int8-dynamic on Gemm: bias through Identity and transB quantised, beta 2 kept", "[passes][quantize]") {
  const int64_t M = 5, K = 48, N = 40;
  std::mt19937 rng(3);
  std::vector<float> xs = random_floats(M * K, rng), bias = random_floats(N, rng);
  for (int variant = 0; variant < 4; ++variant) {
    INFO("variant " << variant << " (0: bias initializer, 1: bias via Identity, 2: transB, 3: beta 2)");
    Model m;
    m.opset_imports = {{"", 17}};
    const Tensor w = random_weight("W", K, N, 11);
    m.graph.initializers = {variant == 2 ? Tensor::from_vector("W", DType::kF32, {N, K}, std::vector<float>(w.data_as<float>(), w.data_as<float>() + K * N)) : w,
                            Tensor::from_vector("b0", DType::kF32, {N}, bias)};
    m.graph.inputs = {tensor_info("X", DType::kF32, {M, K})};
    m.graph.outputs = {tensor_info("Y", DType::kF32, {M, N})};
    Node gemm = node("gemm", "Gemm", {"X", "W", variant == 1 ? "b" : "b0"}, {"Y"});
    if (variant == 2) gemm.attributes.push_back(Attribute::make_int("transB", 1));
    if (variant == 3) gemm.attributes.push_back(Attribute::make_float("beta", 2.f));
    if (variant == 1) m.graph.nodes.push_back(node("id", "Identity", {"b0"}, {"b"}));
    m.graph.nodes.push_back(gemm);
    const Model before = m;
    auto r = run_pass(m, {{"op-types", "Gemm"}});
    REQUIRE(r.is_ok());
    REQUIRE(r->decisions.size() == 1);
    CHECK(r->decisions[0].action == (variant == 3 ? "skipped" : "quantized"));
    const std::map<std::string, rt::Value> feeds{{"X", make_value(DType::kF32, {M, K}, xs)}};
    auto ref = rt::Session::create(std::make_shared<const Model>(before), {1});
    auto got = rt::Session::create(std::make_shared<const Model>(m), {1});
    REQUIRE(ref.is_ok());
    REQUIRE(got.is_ok());
    auto a = (*ref)->run(feeds), b = (*got)->run(feeds);
    REQUIRE(a.is_ok());
    REQUIRE(b.is_ok());
    CHECK(relative_gap(b.value()[0].data<float>(), a.value()[0].data<float>(), M * N) < 2e-2);
    if (variant != 3) CHECK(relative_gap(b.value()[0].data<float>(), a.value()[0].data<float>(), M * N) > 0);
  }
}
