// prune-magnitude on the real stories260K: masks exactly as specified per group (layer, output
// row, N:M), the kept weights are the largest of their group, the LM head stays dense unless
// named, zeros survive write/read and later quantisation, and bad options are refused.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>

#include "formats/llama2c_import.h"
#include "formats/onnx_format.h"
#include "ir/graph_utils.h"
#include "passes/registry.h"
#include "tests/support/pass_fixtures.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

namespace {

Model stories_model() {
  const std::string bin = data_path("llama2c/stories260K.bin");
  if (bin.empty()) return {};
  auto m = import_llama2c(bin);
  REQUIRE(m.is_ok());
  return std::move(m).value();
}

// The [K, N] float32 weights of the MatMuls that are not the LM head, by name.
std::vector<const Tensor*> body_weights(const Model& m) {
  const GraphIndex idx(m.graph);
  std::vector<const Tensor*> out;
  for (const auto& n : m.graph.nodes)
    if (n.op_type == "MatMul" && !idx.is_graph_output(n.outputs[0]))
      if (const Tensor* w = m.graph.find_initializer(n.inputs[1])) out.push_back(w);
  return out;
}

int64_t zeros_of(const float* p, int64_t n) { return std::count(p, p + n, 0.f); }

}  // namespace

TEST_CASE("prune-magnitude masks: layer, row and 2:4 groups exactly, largest kept", "[passes][prune]") {
  const Model base = stories_model();
  if (base.graph.nodes.empty()) return;
  for (const auto& w : body_weights(base)) REQUIRE(zeros_of(w->data_as<float>(), w->numel()) == 0);

  SECTION("layer scope") {
    Model m = base;
    auto r = run_named_pass("prune-magnitude", m, {{"sparsity", "0.3"}});
    REQUIRE(r.is_ok());
    for (const Tensor* w : body_weights(m)) {
      INFO(w->name());
      CHECK(zeros_of(w->data_as<float>(), w->numel()) == int64_t(std::floor(0.3 * double(w->numel()))));
      // Every zeroed weight was no larger than every kept one.
      const float* before = base.graph.find_initializer(w->name())->data_as<float>();
      float max_zeroed = 0, min_kept = INFINITY;
      for (int64_t i = 0; i < w->numel(); ++i)
        if (w->data_as<float>()[i] == 0.f) max_zeroed = std::max(max_zeroed, std::fabs(before[i]));
        else min_kept = std::min(min_kept, std::fabs(before[i]));
      CHECK(max_zeroed <= min_kept);
    }
  }
  SECTION("row scope: every output row") {
    Model m = base;
    REQUIRE(run_named_pass("prune-magnitude", m, {{"sparsity", "0.5"}, {"scope", "row"}}).is_ok());
    for (const Tensor* w : body_weights(m)) {
      const int64_t K = w->dims()[0], N = w->dims()[1];
      for (int64_t n = 0; n < N; ++n) {
        int64_t z = 0;
        for (int64_t k = 0; k < K; ++k) z += w->data_as<float>()[k * N + n] == 0.f;
        REQUIRE(z == K / 2);
      }
    }
  }
  SECTION("2:4 along the input dimension") {
    Model m = base;
    auto r = run_named_pass("prune-magnitude", m, {{"pattern", "2:4"}});
    REQUIRE(r.is_ok());
    for (const Tensor* w : body_weights(m)) {
      const int64_t K = w->dims()[0], N = w->dims()[1];
      const float* p = w->data_as<float>();
      const float* before = base.graph.find_initializer(w->name())->data_as<float>();
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k0 = 0; k0 < K; k0 += 4) {
          int64_t z = 0;
          float max_zeroed = 0, min_kept = INFINITY;
          for (int64_t k = k0; k < k0 + 4; ++k) {
            const bool zero = p[k * N + n] == 0.f;
            z += zero;
            if (zero) max_zeroed = std::max(max_zeroed, std::fabs(before[k * N + n]));
            else min_kept = std::min(min_kept, std::fabs(before[k * N + n]));
          }
          REQUIRE(z == 2);
          REQUIRE(max_zeroed <= min_kept);
        }
    }
  }
}

TEST_CASE("prune-magnitude leaves the LM head dense unless named and zeros survive write and quantisation",
          "[passes][prune]") {
  Model m = stories_model();
  if (m.graph.nodes.empty()) return;
  const std::string head = "lm_head.weight";
  auto dense = [&](const Model& x) {
    const Tensor* t = x.graph.find_initializer(head);
    return t ? zeros_of(t->data_as<float>(), t->numel()) : -1;
  };
  Model named = m;
  REQUIRE(run_named_pass("prune-magnitude", m, {{"sparsity", "0.5"}}).is_ok());
  CHECK(dense(m) == 0);  // the LM head (-1 if the import stopped naming it so)
  REQUIRE(run_named_pass("prune-magnitude", named, {{"sparsity", "0.5"}, {"include", ".*lm_head.*"}}).is_ok());
  for (const Tensor* w : body_weights(named)) CHECK(zeros_of(w->data_as<float>(), w->numel()) == 0);
  CHECK(dense(named) > 0);

  const std::string dir = scratch_dir("prune_roundtrip");
  REQUIRE(write_onnx(m, dir + "/p.onnx").is_ok());
  auto back = read_onnx(dir + "/p.onnx");
  REQUIRE(back.is_ok());
  for (const Tensor* w : body_weights(m)) {
    const Tensor* r = back->graph.find_initializer(w->name());
    REQUIRE(r);
    CHECK(r->identical_to(*w));
  }
  // int8: a zero weight quantises to 0 (symmetric); fp16: 0 stays 0.
  Model q8 = m, q16 = m;
  REQUIRE(run_named_pass("quantize-int8-dynamic", q8, {}).is_ok());
  REQUIRE(run_named_pass("quantize-fp16", q16, {}).is_ok());
  for (const Tensor* w : body_weights(m)) {
    INFO(w->name());
    const Tensor* i8 = q8.graph.find_initializer(w->name() + "_quantized");
    const Tensor* f16 = q16.graph.find_initializer(w->name());
    REQUIRE(i8);
    REQUIRE(f16);
    REQUIRE(f16->dtype() == DType::kF16);
    for (int64_t i = 0; i < w->numel(); ++i) {
      if (w->data_as<float>()[i] != 0.f) continue;
      REQUIRE(i8->data_as<int8_t>()[i] == 0);
      REQUIRE(f16->data_as<uint16_t>()[i] == 0);
    }
  }
}

TEST_CASE("prune-magnitude refuses bad options before work, naming what is wrong", "[passes][prune][bad-input]") {
  Model m = stories_model();
  if (m.graph.nodes.empty()) return;
  struct Case {
    PassOptions options;
    std::string mentions;
  };
  for (const auto& c : std::vector<Case>{
           {{{"sparsity", "0"}}, "option 'sparsity' must be a number in (0, 1)"},
           {{{"sparsity", "1"}}, "option 'sparsity' must be a number in (0, 1)"},
           {{{"sparsity", "-0.5"}}, "option 'sparsity' must be a number in (0, 1)"},
           {{{"pattern", "4:4"}}, "N must be smaller than M"},
           {{{"pattern", "2-4"}}, "pattern must be N:M"},
           {{{"pattern", "0:4"}}, "pattern must be N:M"},
           {{{"pattern", "2:4"}, {"sparsity", "0.5"}}, "not both"},
           {{{"pattern", "2:4"}, {"scope", "global"}}, "scope=global"},
           {{{"pattern", "3:5"}}, "is not divisible by M = 5"},
       }) {
    Model copy = m;
    auto r = run_named_pass("prune-magnitude", copy, c.options);
    INFO(c.mentions);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().message().find(c.mentions) != std::string::npos);
  }
}
